/**
 * Test measurements f(z_e, θ) (METHOD.md, "Influence at one checkpoint"): what the test gradient
 * ∇θ f of every gradient scorer is the gradient of. Each is a weighted sum of mean response-token
 * losses (nats/token), oriented like the loss of the error: lowering f makes the erroneous output
 * more likely, so a training sample whose gradient step lowers f scores higher.
 */
import { DdaError, measurements, type Measurement, type MeasurementTerm, type RegistryEntry, type PluginOptions, type TextSample } from '@dda/core';

/** `loss`: f = ℓ(z_e), the mean cross-entropy of the erroneous output (and EOS) given its prompt. */
export const lossMeasurement: Measurement = {
  id: 'loss',
  description: 'f = ℓ(output): mean response-token cross-entropy of the output to explain, nats/token',
  needs: [],
  terms: (query) => [{ sample: query, weight: 1 }],
};

function needCorrection(id: string, query: TextSample, correction: TextSample | null): TextSample {
  if (correction === null) throw new DdaError(`measurement '${id}' needs the corrected output of query '${query.id}'`, "give every query a 'corrected' field, or use --measurement loss");
  if (correction.response === query.response) throw new DdaError(`query '${query.id}': its corrected output equals its output, so the '${id}' measurement is 0`, 'give the corrected output, or leave the query out');
  return correction;
}

/**
 * `contrastive`: f = ℓ(error) − ℓ(correction), so ∇f = ∇ℓ(error) − ∇ℓ(correction). What the error
 * and its correction share (format, topic, most of the sentence) cancels (after CEA, Ladhak et al.
 * 2023, and the DDA authors' ground/error model pair).
 */
export const contrastiveMeasurement: Measurement = {
  id: 'contrastive',
  description: 'f = ℓ(output) − ℓ(corrected output): difference of mean response-token cross-entropies, nats/token; lower = the error more likely than its correction',
  needs: ['corrections'],
  terms: (query, correction) => [
    { sample: query, weight: 1 },
    { sample: { ...needCorrection('contrastive', query, correction), id: `${query.id}#corrected` }, weight: -1 },
  ],
};

/**
 * Where an output and its correction differ, widened to whole words: the output's span and the
 * correction's span between a common prefix and a common suffix (character offsets).
 *
 * @returns `[start, endInOutput, endInCorrection]`: the prefix is `output.slice(0, start)` in both.
 */
export function differingSpan(output: string, corrected: string): [number, number, number] {
  let p = 0;
  while (p < output.length && p < corrected.length && output[p] === corrected[p]) p++;
  let q = 0;
  while (q < output.length - p && q < corrected.length - p && output[output.length - 1 - q] === corrected[corrected.length - 1 - q]) q++;
  const word = (ch: string | undefined): boolean => ch !== undefined && /[\p{L}\p{N}_]/u.test(ch);
  // Widen the spans where a boundary splits a word (in the output or in the correction).
  const splits = (t: string, i: number): boolean => word(t[i - 1]) && word(t[i]);
  while (p > 0 && (splits(output, p) || splits(corrected, p))) p--;
  while (q > 0 && (splits(output, output.length - q) || splits(corrected, corrected.length - q))) q--;
  return [p, output.length - q, corrected.length - q];
}

/**
 * The separate places where an output and its correction differ, on word tokens (runs of letters,
 * digits and `_`, or one other non-space character; whitespace separates them and is not compared):
 * the hunks of a longest-common-subsequence alignment of the tokens between the common prefix and
 * suffix of {@link differingSpan}. One hunk for a single replaced span; more when a token they share
 * lies between two changes (e.g. 'strong winds … england .' vs 'heavy winds … china .'), or when
 * text is added after a shared token. Changes separated by one shared token of the punctuation inside
 * names ({@link NAME_PUNCTUATION}: `,` `-` `'` `’` `&` `/`) are one hunk, the punctuation included
 * ('paris, france' → 'berlin, germany' is one multi-word entity replaced, not two changes); a
 * sentence's `.` or a shared word keeps them apart. Each hunk is `[output text, correction text]`
 * ('' for nothing).
 */
export function differingHunks(output: string, corrected: string): [string, string][] {
  const [a, bOut, bCor] = differingSpan(output, corrected);
  const tokens = (t: string, from: number, to: number): { text: string; start: number; end: number }[] =>
    [...t.slice(from, to).matchAll(/[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu)].map((m) => ({ text: m[0], start: from + (m.index ?? 0), end: from + (m.index ?? 0) + m[0].length }));
  const x = tokens(output, a, bOut);
  const y = tokens(corrected, a, bCor);
  // lcs[i][j]: longest common subsequence of x[i..] and y[j..].
  const lcs = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) lcs[i]![j] = x[i]!.text === y[j]!.text ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  // Each hunk as token ranges [i0, i1) of x and [j0, j1) of y.
  const ranges: [number, number, number, number][] = [];
  const slice = (t: string, ts: typeof x, from: number, to: number): string => (from < to ? t.slice(ts[from]!.start, ts[to - 1]!.end) : '');
  let i = 0;
  let j = 0;
  let hi = 0;
  let hj = 0;
  const close = (): void => {
    if (i > hi || j > hj) {
      const last = ranges[ranges.length - 1];
      // Two replacements with one shared name-punctuation token between them: the same hunk.
      const replacing = (r: readonly number[]): boolean => r[1]! > r[0]! && r[3]! > r[2]!;
      if (last && hi - last[1] === 1 && hj - last[3] === 1 && replacing(last) && replacing([hi, i, hj, j]) && NAME_PUNCTUATION.test(x[last[1]]!.text)) {
        last[1] = i;
        last[3] = j;
      } else {
        ranges.push([hi, i, hj, j]);
      }
    }
  };
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i]!.text === y[j]!.text && lcs[i]![j] === lcs[i + 1]![j + 1]! + 1) {
      close();
      i++;
      j++;
      hi = i;
      hj = j;
    } else if (j < y.length && (i === x.length || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
      j++;
    } else {
      i++;
    }
  }
  close();
  return ranges.map(([i0, i1, j0, j1]) => [slice(output, x, i0, i1), slice(corrected, y, j0, j1)]);
}

/** The punctuation inside names that {@link differingHunks} does not take as a boundary between two changes. */
const NAME_PUNCTUATION = /^[,\-'’&/]$/;

/**
 * Whether every hunk is the same replacement of one entity by another (CEA's swap at each mention,
 * e.g. 'China … China's' → 'Britain … Britain's'): entity-margin then takes the span from the first
 * mention to the last, as it does for one mention (the real-text benchmark's held-out summaries
 * name an entity up to twice).
 */
function oneSwapRepeated(hunks: readonly [string, string][]): boolean {
  const [o, k] = hunks[0]!;
  return o !== '' && k !== '' && hunks.every(([x, y]) => x === o && y === k);
}

/** A sample whose loss covers only `response.slice(a, b)`: segments prompt | prefix | span (loss) | suffix. */
function spanSample(id: string, s: TextSample, a: number, b: number): TextSample {
  const r = s.response;
  const segments = [
    { text: s.prompt, loss: false },
    ...(a > 0 ? [{ text: r.slice(0, a), loss: false }] : []),
    { text: r.slice(a, b), loss: true },
    ...(b < r.length ? [{ text: r.slice(b), loss: false }] : []),
  ];
  return { id, prompt: s.prompt + r.slice(0, a) + r.slice(b), response: r.slice(a, b), segments };
}

/**
 * `entity-margin`: f = log p(original entity) − log p(hallucinated entity), each the mean
 * log-probability (nats/token) of the entity's tokens at the position where the output and its
 * correction differ, given the same prefix. As losses: f = ℓ(hallucinated tokens) − ℓ(original
 * tokens); lowering f makes the hallucinated entity more likely than the original. A query whose
 * output and correction differ in more than one separate span ({@link differingHunks}), or by an
 * insertion or deletion only, is refused: contrastive measures those. The one exception is the same
 * swap at several mentions (every span the same entity replaced by the same one): its margin is
 * over the tokens from the first mention to the last, the words between them included. A name
 * with punctuation inside ('paris, france' → 'berlin, germany') is one span (see
 * {@link differingHunks}; so are two changes around one comma, the comma then measured with them).
 */
export const entityMarginMeasurement: Measurement = {
  id: 'entity-margin',
  description: 'f = log p(original entity) − log p(hallucinated entity) at the position where output and correction differ (mean over each entity\'s tokens, nats/token); lower = the hallucination more likely. Needs one replaced span (or one swap repeated at several mentions: the span from the first to the last): corrections that differ otherwise in several places are refused (use contrastive)',
  needs: ['corrections'],
  terms: (query, correction): MeasurementTerm[] => {
    const c = needCorrection('entity-margin', query, correction);
    if (c.prompt !== query.prompt) throw new DdaError(`query '${query.id}': the corrected output has another prompt`, 'a correction keeps the prompt and changes the output only');
    const [a, bOut, bCor] = differingSpan(query.response, c.response);
    if (bOut <= a || bCor <= a) throw new DdaError(`query '${query.id}': the output and its correction differ by an insertion or deletion, not a replaced entity`, 'use --measurement contrastive for such corrections');
    const hunks = differingHunks(query.response, c.response);
    if (hunks.length > 1 && !oneSwapRepeated(hunks)) {
      const shown = hunks.map(([o, k]) => `${o ? JSON.stringify(o) : '(nothing)'} → ${k ? JSON.stringify(k) : '(nothing)'}`).join(', ');
      throw new DdaError(
        `query '${query.id}': the output and its correction differ in ${hunks.length} separate spans (${shown}); entity-margin is the margin at the one position where they differ, and over ${hunks.length} spans it would average the tokens from the first difference to the last, shared tokens included`,
        'use --measurement contrastive for multi-span corrections, or correct one entity per query',
      );
    }
    return [
      { sample: spanSample(`${query.id}#hallucinated`, query, a, bOut), weight: 1 },
      { sample: spanSample(`${query.id}#original`, c, a, bCor), weight: -1 },
    ];
  },
};

/** Registry entries of the built-in measurements. */
export const measurementEntries: readonly RegistryEntry<Measurement, PluginOptions>[] = [lossMeasurement, contrastiveMeasurement, entityMarginMeasurement].map((m, i) => ({
  id: m.id, description: m.description, priority: 30 - 10 * i, create: () => m,
}));

/** Adds `loss`, `contrastive` and `entity-margin` to the `measurements` registry (idempotent). */
export function registerMeasurements(): void {
  for (const e of measurementEntries) if (!measurements.has(e.id)) measurements.register(e);
}
