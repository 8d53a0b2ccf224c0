/**
 * Regime gate G2 measured on a run (docs/regime.md, section 1): how much of a true source's gradient the
 * hallucinated entity's tokens carry at the final checkpoint.
 *
 * A sample's gradient (what the scorers use) is g = (1/T) Σ_t ∇ℓ_t over its T response tokens. The
 * engines give per-example gradients of a masked mean loss, so the canary part is measured as a
 * second example: the same text with the loss on the entity's tokens only, whose gradient is
 * g_c = (1/n_c) Σ_{t ∈ canary} ∇ℓ_t. The canary tokens' part of g is (n_c/T)·g_c, and the share is
 * ‖(n_c/T)·g_c‖ / ‖g‖ ({@link canaryGradientShare} over that part and the rest). Both examples are
 * encoded as one text with loss segments (Hugging Face's `apply_chat_template` way), so their
 * tokens are the same. A chat sample (with `segments`) is its own whole-response example, so g is
 * exactly the scorers' gradient; a prompt/response sample is turned into segments, which differs
 * from the scorers' encoding only by the end-of-sequence token's term.
 */
import { DdaError, evenlySpaced, type TextSample } from '@dda/core';
import type { AttributionTask, Checkpoint, CheckpointModel } from '@dda/attribution';
import { canaryGradientShare } from './gates.js';

/** One canary: its id, the replacement entity's spans in a text, and its true sources (training ids). */
export interface CanaryForShare {
  readonly id: string;
  /** Character spans [start, end) of the replacement entity in a text (the data set's own matching). */
  readonly spans: (text: string) => readonly (readonly [number, number])[];
  readonly sources: readonly string[];
}

/** What {@link measureCanaryShares} measured, and which sources it could not measure and why. */
export interface CanaryShares {
  /** Per canary id, the share of each measured source (fractions). */
  readonly shares: Record<string, number[]>;
  readonly skipped: readonly { readonly id: string; readonly reason: string }[];
}

/**
 * G2's input: the canary tokens' share of the gradient of up to `perCanary` true sources of each
 * canary (evenly spaced over the sources in the order given) at checkpoint `cp` (the final one).
 * Sources whose text under the loss does not contain the entity are skipped with the reason.
 *
 * @throws DdaError when no source of a canary can be measured, or a source id is not a training sample.
 */
export async function measureCanaryShares(model: CheckpointModel, task: AttributionTask, cp: Checkpoint, canaries: readonly CanaryForShare[], perCanary = 16): Promise<CanaryShares> {
  const byId = new Map(task.train.samples.map((s) => [s.id, s]));
  const skipped: { id: string; reason: string }[] = [];
  const jobs: { canary: string; full: TextSample; part: TextSample; scale: number }[] = [];
  for (const c of canaries) {
    for (const id of evenlySpaced(c.sources, perCanary)) {
      const s = byId.get(id);
      if (!s) throw new DdaError(`regime gate G2: true source '${id}' of ${c.id} is not a training sample`, 'check the labels');
      const segments = s.segments ?? [{ text: s.prompt, loss: false }, { text: s.response, loss: true }];
      // The entity's spans inside the segments the loss covers become the only loss segments.
      let found = 0;
      const pieces = segments.flatMap((seg) => {
        if (!seg.loss) return [{ text: seg.text, loss: false }];
        const out: { text: string; loss: boolean }[] = [];
        let at = 0;
        for (const [a, b] of [...c.spans(seg.text)].sort((x, y) => x[0] - y[0])) {
          if (a < at) continue;
          out.push({ text: seg.text.slice(at, a), loss: false }, { text: seg.text.slice(a, b), loss: true });
          at = b;
          found++;
        }
        out.push({ text: seg.text.slice(at), loss: false });
        return out;
      });
      if (found === 0) {
        skipped.push({ id, reason: `no text under its loss contains the replacement of ${c.id}` });
        continue;
      }
      const full: TextSample = { id: `${id} (G2 whole response)`, prompt: s.prompt, response: s.response, segments };
      const part: TextSample = { id: `${id} (G2 entity tokens)`, prompt: s.prompt, response: s.response, segments: pieces.filter((p) => p.text.length > 0) };
      const count = (x: TextSample): number => task.encode(x, task.origin(id)).lossMask.reduce((a, v) => a + v, 0);
      const T = count(full);
      const nc = count(part);
      if (nc === 0 || T === 0) {
        skipped.push({ id, reason: 'the entity has no token of its own in the encoded response' });
        continue;
      }
      jobs.push({ canary: c.id, full, part, scale: nc / T });
    }
  }
  const shares: Record<string, number[]> = Object.fromEntries(canaries.map((c) => [c.id, []]));
  if (jobs.length > 0) {
    const g = await model.gradients(cp, jobs.flatMap((j) => [j.full, j.part]));
    jobs.forEach((j, k) => {
      const whole = g.rows[2 * k] as Float32Array;
      const entity = g.rows[2 * k + 1] as Float32Array;
      const part = entity.map((x) => x * j.scale);
      const rest = whole.map((x, i) => x - (part[i] as number));
      (shares[j.canary] as number[]).push(canaryGradientShare([part, rest], [true, false]));
    });
  }
  for (const c of canaries) {
    if ((shares[c.id] as number[]).length === 0) throw new DdaError(`regime gate G2: no true source of ${c.id} could be measured (${skipped.map((s) => `${s.id}: ${s.reason}`).slice(0, 3).join('; ')})`, 'check the labels and the responses');
  }
  return { shares, skipped };
}
