import { describe, expect, it } from 'vitest';
import { checkEngineReferences, realWidthReferences, type EngineReference } from '@dda/conformance';
import { cloneTensors, engines, type DecoderConfig, type DecoderEngine, type EngineDecoder, type TensorMap } from '@dda/model';
import '@dda/backend-onnxruntime';

// The real-width PyTorch references (@dda/conformance's realWidthReferences) are tight enough to catch
// a wrong decoder: each reference below, perturbed as an engine with that bug would compute, fails the
// `reference` check on the onnxruntime engine (which passes the unperturbed ones within 1.1e-6 of the
// largest logit, engine-conformance-real-width*.test.ts) by more than ten times its 1e-4 tolerance
// (measured: no RoPE scaling 4.1e-3, wrong key-value heads 1.3, no biases 0.21, swapped norms 0.16,
// q/k norms of 1 0.079, the window doubled 0.41).
const start = { backends: ['onnxruntime-cpu'] };
const references = realWidthReferences();

const named = (model: string): EngineReference => references.find((r) => r.name.startsWith(`${model} `))!;

/** `ref` with its first example only, its config changed, and `change` applied in place to copies of its base and adapter tensors (one map of both). */
function perturbed(ref: EngineReference, config: Partial<DecoderConfig>, change: (tensors: TensorMap) => void = () => {}): EngineReference {
  const adapter = ref.weights.adapter!;
  const [base, lora] = [cloneTensors(ref.weights.base), cloneTensors(adapter.weights)];
  change(new Map([...base, ...lora]));
  return { ...ref, config: { ...ref.config, ...config }, weights: { base, adapter: { ...adapter, weights: lora } }, examples: ref.examples.slice(0, 1) };
}

/**
 * Rolls the key-value heads of layer 0 by one (the output rows of the k and v projections and of
 * their LoRA B): query head h then reads key-value head ⌊h / group⌋ + 1 (mod the number of key-value heads).
 */
const rollKvHeads = (kvHeads: number) => (w: TensorMap): void => {
  for (const n of ['k_proj.weight', 'v_proj.weight', 'k_proj.lora_B.weight', 'v_proj.lora_B.weight']) {
    const t = [...w].find(([name]) => name.includes('layers.0.') && name.endsWith(n))![1];
    const block = t.data.length / kvHeads;
    t.data.set([...t.data.subarray(block), ...t.data.subarray(0, block)]);
  }
};

/** Swaps the values of two tensors of the same shape. */
const swap = (a: string, b: string) => (w: TensorMap): void => {
  const [x, y] = [w.get(a)!.data, w.get(b)!.data];
  const tmp = Float32Array.from(x);
  x.set(y);
  y.set(tmp);
};

/** Sets every entry of the tensors whose names end with one of `suffixes` to `value`. */
const fill = (value: number, ...suffixes: string[]) => (w: TensorMap): void => {
  for (const [n, t] of w) if (suffixes.some((s) => n.endsWith(s))) t.data.fill(value);
};

describe('the real-width references catch a wrong decoder (the reference check fails, by more than 10× its tolerance)', () => {
  const llama = named('llama3.2-1b');
  const cases: [string, () => EngineReference][] = [
    ['Llama-3.2-1B without its llama3 RoPE scaling', () => perturbed(llama, { ropeScaling: null })],
    ['Llama-3.2-1B with query heads on the wrong key-value heads (GQA mapping)', () => perturbed(llama, {}, rollKvHeads(llama.config.numKvHeads))],
    ['Qwen2-0.5B without its q/k/v biases', () => perturbed(named('qwen2-0.5b'), {}, fill(0, '_proj.bias'))],
    ['Qwen3-0.6B with its two layer norms swapped', () => perturbed(named('qwen3-0.6b'), {}, swap('model.layers.0.input_layernorm.weight', 'model.layers.0.post_attention_layernorm.weight'))],
    ['Qwen3-0.6B without its q/k norm weights (all 1)', () => perturbed(named('qwen3-0.6b'), {}, fill(1, 'q_norm.weight', 'k_norm.weight'))],
    ['gemma-3-270m with a 16-token window instead of 8', () => perturbed(named('gemma-3-270m'), { slidingWindow: 16 })],
  ];
  it.each(cases)('%s', async (_what, make) => {
    const report = await checkEngineReferences('onnxruntime', [make()], start);
    const f = report.findings[0]!;
    expect(f.status, f.message).toBe('fail');
    const [, by, allowed] = /by ([0-9.e+-]+) of .* \(([0-9.e+-]+) allowed\)/.exec(f.message) ?? [];
    expect(Number(by), f.message).toBeGreaterThan(10 * Number(allowed));
  }, 60_000);
});

describe('the real-width references compare sampled gradient entries (gradIndices)', () => {
  it('gradient rows 0.1 % too large fail the check, at 1e-3 of the largest sampled entry', async () => {
    const e = (await engines.resolve(start, ['onnxruntime'])).value;
    const scaled: DecoderEngine = {
      ...e,
      open: async (...args) => {
        const d = await e.open(...args);
        return Object.assign(Object.create(d) as EngineDecoder, { forEachGradientRow: ((enc, onRow) => d.forEachGradientRow(enc, (i, row) => onRow(i, row.map((x) => 1.001 * x)))) satisfies EngineDecoder['forEachGradientRow'] });
      },
    };
    const f = (await checkEngineReferences(scaled, [named('gemma-3-270m')])).findings[0]!;
    expect(f.status, f.message).toBe('fail');
    expect(f.message).toMatch(/example 0: the gradient of '.*' differs from the reference's by 1\.0\de-3 of its largest sampled entry \(200 sampled\)/);
  }, 60_000);
});
