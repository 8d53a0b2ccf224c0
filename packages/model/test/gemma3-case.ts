/**
 * The Gemma-3 fixture (make-gemma3-fixtures.py, PyTorch float64 written from transformers'
 * modeling_gemma3.py): a tiny Gemma3ForCausalLM read from its config.json, three layers (sliding,
 * full, sliding) with a 4-token window and sequences of 12 and 20 tokens. Shared by the tfjs engine's
 * test and the onnxruntime engine's (plugins/backend-onnxruntime/test).
 */
import { readFileSync } from 'node:fs';
import { ALL_LORA_TARGETS, parseHfConfig, type DecoderConfig, type LoraConfig, type TensorMap } from '@dda/model';
import { toTensorMap } from './peft-variant-case.js';

type Tensors = Record<string, { shape: number[]; data: number[] }>;
interface Fx {
  rank: number;
  alpha: number;
  configJson: Record<string, unknown>;
  /** √hidden_size as transformers' float32 buffer holds it. */
  embedScale: number;
  /** gelu_pytorch_tanh at a few points. */
  gelu: { x: number[]; y: number[] };
  weights: Tensors;
  lora: Tensors;
  examples: { tokens: number[]; lossMask: number[]; loss: number; logits: number[]; noWindowRelDiff: number; oneRopeRelDiff: number; noScalingRelDiff: number; loraGrads: Record<string, number[]> }[];
}
export const gemma3Fx = JSON.parse(readFileSync(new URL('./fixtures/gemma3-fixtures.json', import.meta.url), 'utf8')) as Fx;
/** The fixture's config.json, parsed. */
export const gemma3Parsed = parseHfConfig(gemma3Fx.configJson, 'gemma3-fixtures.json');
export const gemma3Config: DecoderConfig = gemma3Parsed.config;
export const gemma3Lora: LoraConfig = { rank: gemma3Fx.rank, alpha: gemma3Fx.alpha, targets: ALL_LORA_TARGETS };
export const gemma3Weights = (): TensorMap => toTensorMap(gemma3Fx.weights);
export const gemma3LoraWeights = (): TensorMap => toTensorMap(gemma3Fx.lora);
