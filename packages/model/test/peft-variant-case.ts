/**
 * The PEFT-variant fixtures (make-peft-variant-fixtures.py, PyTorch float64, PEFT's own module
 * selection and scaling): rsLoRA, rank_pattern / alpha_pattern, a regular-expression target_modules,
 * exclude_modules and layers_to_transform on a tiny 3-layer Qwen2-style model. Shared by the tfjs
 * engine's test and the onnxruntime engine's (plugins/backend-onnxruntime/test).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, readPeftAdapter, writeSafetensors, type DecoderConfig, type PeftAdapter, type TensorMap } from '@dda/model';

type Tensors = Record<string, { shape: number[]; data: number[] }>;
/** One adapter of the fixture: its adapter_config.json, PEFT's scaling per module, its tensors and two examples. */
export interface VariantCase {
  adapterConfig: Record<string, unknown>;
  scaling: Record<string, number>;
  lora: Tensors;
  examples: { tokens: number[]; lossMask: number[]; loss: number; logits: number[]; loraGrads: Record<string, number[]> }[];
}
interface Fx {
  config: { vocab: number; d: number; layers: number; heads: number; kv: number; ffn: number; theta: number; bias: boolean; tied: boolean; window: number | null };
  weights: Tensors;
  adapters: Record<string, VariantCase>;
}
export const variantFx = JSON.parse(readFileSync(new URL('./fixtures/peft-variant-fixtures.json', import.meta.url), 'utf8')) as Fx;

export const toTensorMap = (o: Tensors): TensorMap => new Map(Object.entries(o).map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));

const c = variantFx.config;
/** The fixture's model. */
export const variantModelConfig: DecoderConfig = {
  vocabSize: c.vocab, hiddenSize: c.d, numLayers: c.layers, numHeads: c.heads, numKvHeads: c.kv, intermediateSize: c.ffn,
  ropeTheta: c.theta, rmsNormEps: 1e-5, maxSeqLen: 32, tieWordEmbeddings: c.tied, attentionBias: c.bias, slidingWindow: c.window,
};

/** The adapter as a PEFT folder (the fixture's adapter_config.json and tensors), read back with readPeftAdapter. */
export function readVariantAdapter(x: VariantCase): PeftAdapter {
  const dir = mkdtempSync(join(tmpdir(), 'dda-peft-variant-'));
  try {
    writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(x.adapterConfig));
    writeFileSync(join(dir, ADAPTER_WEIGHTS_FILE), writeSafetensors(toTensorMap(x.lora), { format: 'pt' }));
    return readPeftAdapter(dir, variantModelConfig);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** max |a-b| / max |b|: relative error at the scale of the reference. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let k = 0; k < b.length; k++) {
    num = Math.max(num, Math.abs((a[k] as number) - (b[k] as number)));
    den = Math.max(den, Math.abs(b[k] as number));
  }
  return num / den;
}
