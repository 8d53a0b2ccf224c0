/**
 * The llama3 RoPE-scaling fixture (make-llama3-fixtures.py, PyTorch float64 from transformers'
 * `_compute_llama3_parameters`): a tiny Llama-3.2-style model with tied embeddings, read from its
 * config.json, at positions up to 89 beyond original_max_position_embeddings 64. Shared by the tfjs
 * engine's test and the onnxruntime engine's (plugins/backend-onnxruntime/test).
 */
import { readFileSync } from 'node:fs';
import { ALL_LORA_TARGETS, parseHfConfig, type DecoderConfig, type LoraConfig, type TensorMap } from '@dda/model';
import { toTensorMap } from './peft-variant-case.js';

type Tensors = Record<string, { shape: number[]; data: number[] }>;
interface Fx {
  rank: number;
  alpha: number;
  configJson: Record<string, unknown>;
  invFreq: number[];
  weights: Tensors;
  lora: Tensors;
  /** RoPE of Llama-3.2-1B and Llama-3.1-8B (θ 5e5, their llama3 scalings) at long positions. */
  realRope: { name: string; headDim: number; theta: number; ropeScaling: Record<string, number | string>; invFreq: number[]; positions: number[]; cos: number[][]; sin: number[][] }[];
  examples: { tokens: number[]; lossMask: number[]; loss: number; logits: number[]; plainRopeRelDiff: number; loraGrads: Record<string, number[]> }[];
}
export const llama3Fx = JSON.parse(readFileSync(new URL('./fixtures/llama3-fixtures.json', import.meta.url), 'utf8')) as Fx;
/** The fixture's config.json, parsed. */
export const llama3Config: DecoderConfig = parseHfConfig(llama3Fx.configJson, 'llama3-fixtures.json').config;
export const llama3Lora: LoraConfig = { rank: llama3Fx.rank, alpha: llama3Fx.alpha, targets: ALL_LORA_TARGETS };
export const llama3Weights = (): TensorMap => toTensorMap(llama3Fx.weights);
export const llama3LoraWeights = (): TensorMap => toTensorMap(llama3Fx.lora);
