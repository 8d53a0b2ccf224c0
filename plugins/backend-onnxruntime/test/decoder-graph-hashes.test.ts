/**
 * The decoder graphs, byte for byte (issue 25): the sha256 of the encoded ONNX model of
 * buildDecoderGraph and buildDecodeStepGraph for configs that cover every family feature and
 * graph option, recorded from the code as it was before the decoder block was written once in
 * @dda/model (decoder-block.ts); configs and weights from packages/model/test/decoder-block-cases.ts.
 * Long benchmark runs resume on artifacts computed by these graphs, so a change of any node, name,
 * order or constant fails here; change a hash only for a deliberate change of the graphs
 * (DDA_PRINT_GRAPH_HASHES=1 prints the new ones).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decoderWeightSpecs, loraWeightSpecs, type DecoderConfig, type LoraConfig, type TensorMap } from '@dda/model';
import { buildDecodeStepGraph, buildDecoderGraph, encodeOnnxModel, type DecoderGraphOptions, type OnnxModel } from '@dda/backend-onnxruntime';
import { PINNED_CONFIGS as CONFIGS, PINNED_LORA as LORA, PINNED_MODULES as MODULES, pinnedValues } from '../../../packages/model/test/decoder-block-cases.js';

/** Deterministic weights (baked weights are part of the bytes). */
const fill = (specs: readonly { name: string; shape: readonly number[] }[]): TensorMap => new Map(specs.map(({ name, shape }, s) => [name, { shape: [...shape], data: pinnedValues(name, shape, s, 0.1) }]));
const base = (c: DecoderConfig): TensorMap => fill(decoderWeightSpecs(c));
const loraWeights = (c: DecoderConfig, l: LoraConfig): TensorMap => fill(loraWeightSpecs(c, l));
const loraNames = (c: DecoderConfig, l: LoraConfig): string[] => loraWeightSpecs(c, l).map((s) => s.name);
const baseNames = (c: DecoderConfig): string[] => decoderWeightSpecs(c).map((s) => s.name);

const sha256 = (m: OnnxModel): string => createHash('sha256').update(encodeOnnxModel(m)).digest('hex');
const full = (c: string, lora: LoraConfig | null, T: number, P: number, o: DecoderGraphOptions): (() => OnnxModel) => () => buildDecoderGraph(CONFIGS[c]!, lora, T, P, o).model;

/** Every graph option and family feature, in the combinations the engine, the trainer and generation build. */
const CASES: Record<string, () => OnnxModel> = {
  'llama lora gradients + logits + hidden + position logits': full('llama', LORA, 8, 5, { gradients: true, logits: true, hidden: true, positionLogits: true }),
  'llama baked base and LoRA, loss only': full('llama', LORA, 8, 4, { gradients: false, logits: false, baseWeights: base(CONFIGS.llama!), loraWeights: loraWeights(CONFIGS.llama!, LORA) }),
  'llama-gqa per-example batch 3, baked base, gradient rows': full('llama-gqa', LORA, 8, 9, {
    gradients: true, logits: false, batch: 3, perExample: true, baseWeights: base(CONFIGS['llama-gqa']!), gradientRows: loraNames(CONFIGS['llama-gqa']!, LORA),
  }),
  'qwen2 prefill: no loss, position logits, present, baked': full('qwen2', LORA, 8, 1, {
    loss: false, gradients: false, logits: false, positionLogits: true, present: true, baseWeights: base(CONFIGS.qwen2!), loraWeights: loraWeights(CONFIGS.qwen2!, LORA),
  }),
  'qwen2 training batch 2, gradient rows': full('qwen2', LORA, 8, 6, { gradients: true, logits: false, batch: 2, gradientRows: [...loraNames(CONFIGS.qwen2!, LORA)].reverse() }),
  'qwen3 all parameters, logits': full('qwen3', null, 8, 4, { gradients: true, logits: true, parameters: 'all' }),
  'qwen3 all parameters batch 2, baked LoRA, gradient rows': full('qwen3', LORA, 8, 6, {
    gradients: true, logits: false, parameters: 'all', batch: 2, loraWeights: loraWeights(CONFIGS.qwen3!, LORA), gradientRows: baseNames(CONFIGS.qwen3!),
  }),
  'gemma3 per-example batch 2, present, logits, hidden': full('gemma3', LORA, 8, 6, { gradients: true, logits: true, hidden: true, present: true, batch: 2, perExample: true }),
  'gemma3 all parameters batch 2, gradient rows': full('gemma3', null, 8, 6, { gradients: true, logits: false, parameters: 'all', batch: 2, gradientRows: baseNames(CONFIGS.gemma3!) }),
  'gemma3 prefill, baked': full('gemma3', LORA, 16, 1, { loss: false, gradients: false, logits: false, positionLogits: true, present: true, baseWeights: base(CONFIGS.gemma3!), loraWeights: loraWeights(CONFIGS.gemma3!, LORA) }),
  'mistral sliding window, lora gradients, present': full('mistral', LORA, 8, 4, { gradients: true, logits: false, present: true }),
  'llama3 scaling, no adapters, logits only': full('llama3', null, 8, 1, { loss: false, gradients: false, logits: true, hidden: true }),
  'PEFT modules per-example batch 2, gradient rows': full('llama-gqa', MODULES, 8, 6, { gradients: true, logits: false, batch: 2, perExample: true, gradientRows: loraNames(CONFIGS['llama-gqa']!, MODULES) }),
  'PEFT modules all parameters, baked LoRA': full('qwen2', MODULES, 8, 4, { gradients: true, logits: false, parameters: 'all', loraWeights: loraWeights(CONFIGS.qwen2!, MODULES) }),
  'decode step llama, baked base and LoRA': () => buildDecodeStepGraph(CONFIGS.llama!, LORA, 12, { baseWeights: base(CONFIGS.llama!), loraWeights: loraWeights(CONFIGS.llama!, LORA) }),
  'decode step llama-gqa, fed base, no adapters': () => buildDecodeStepGraph(CONFIGS['llama-gqa']!, null, 12, {}),
  'decode step qwen2, fed base, baked LoRA': () => buildDecodeStepGraph(CONFIGS.qwen2!, LORA, 12, { loraWeights: loraWeights(CONFIGS.qwen2!, LORA) }),
  'decode step qwen3, baked base': () => buildDecodeStepGraph(CONFIGS.qwen3!, null, 12, { baseWeights: base(CONFIGS.qwen3!) }),
  'decode step gemma3, baked base and LoRA': () => buildDecodeStepGraph(CONFIGS.gemma3!, LORA, 12, { baseWeights: base(CONFIGS.gemma3!), loraWeights: loraWeights(CONFIGS.gemma3!, LORA) }),
  'decode step mistral, PEFT modules': () => buildDecodeStepGraph(CONFIGS.mistral!, MODULES, 12, { loraWeights: loraWeights(CONFIGS.mistral!, MODULES) }),
  'decode step llama3, fed base': () => buildDecodeStepGraph(CONFIGS.llama3!, null, 12, {}),
};

/** sha256 of the encoded models, recorded before the decoder block was shared (commit 4540a4d's graph builder). */
const EXPECTED: Record<string, string> = {
  'llama lora gradients + logits + hidden + position logits': 'f0764ce78ceb2bf02b57ce9394406aaf57accdaa3b5810fa699610e23057340c',
  'llama baked base and LoRA, loss only': '5696da5b9d27f17aa1b1a712ab5b738fee173f1eae281318d637a61756e48bb6',
  'llama-gqa per-example batch 3, baked base, gradient rows': '1a169d4cb667accbcdc373d45433521518431652a9991fcc86a5678d305f251c',
  'qwen2 prefill: no loss, position logits, present, baked': '15511dd99437393e730841c5ed553f48aac12787ed186257dd56caa0f5d4de05',
  'qwen2 training batch 2, gradient rows': '3523abf0ffb024ce1fa9f9c03aaee6be2aeb4881144479685d832f14a56c6070',
  'qwen3 all parameters, logits': 'de5919fc1689ec1941d5a9570affef5b654777cacf5b408cb4371b12d0c45458',
  'qwen3 all parameters batch 2, baked LoRA, gradient rows': 'b91b48fc30f3620552732b412fda280a5600e8598438514a16aa0282237b633b',
  'gemma3 per-example batch 2, present, logits, hidden': 'f5210ef2e1eef9fa709d39720c6958fd065e05ec484e3f502134ad3fdbded16b',
  'gemma3 all parameters batch 2, gradient rows': '680835ca6a6980a9e5200f7e8318822efce7ca8ecb358b10683d6ed6d73199a4',
  'gemma3 prefill, baked': 'fce56388f0a04c0f6c0c841fa88adbe1f3677b58d5e61e45ef35c485ab9e8647',
  'mistral sliding window, lora gradients, present': '92b8aa053fc13bc9e6dabde72c8e89f7b6bf209dfcf83a9946824815eb956a9c',
  'llama3 scaling, no adapters, logits only': 'de868d4d81d7b0d447f0d68bc04df7c2d012e7159b892c6c11b284c7a5f25502',
  'PEFT modules per-example batch 2, gradient rows': '39e05609be65777add8f6588fa4e101ead7322a905ff19e9500ccee4c46612fd',
  'PEFT modules all parameters, baked LoRA': '491b5e48a5689fdea2550e2c1b87c28e514fd259e9cc3536f3f62c16d0787f36',
  'decode step llama, baked base and LoRA': '50ac759c3e7fd2ac12f80262f4f848cf5a3781a0717b2916e8dc68b70fcba8f8',
  'decode step llama-gqa, fed base, no adapters': 'c019be952c325c6934676c1952ce5c811a50548b199d7a1379c4c4ae082fcdf9',
  'decode step qwen2, fed base, baked LoRA': 'f9673ec933b230476f1fdf24799a9cdc23a1e59518100b51b25efd6467cff895',
  'decode step qwen3, baked base': 'e081cfa02789fe3de5de4f578fa2241e8cf3e8dae17e5033a16fe48ea01ad570',
  'decode step gemma3, baked base and LoRA': 'db7cf921e493b7cf7486338f674e83ab389b38edb2862a687efc10459146f4eb',
  'decode step mistral, PEFT modules': '59f462ec19f804f3732e94451e84bccfc4d9854f7022760dcfacb8be973f6f67',
  'decode step llama3, fed base': '45f7f02458e14aee42581d1d26faaa9b169424ac21c31aa577d09b8131d25d87',
};

describe('decoder graphs are byte-identical to the recorded ones', () => {
  it.each(Object.keys(CASES))('%s', (name) => {
    const got = sha256(CASES[name]!());
    if (process.env.DDA_PRINT_GRAPH_HASHES) console.log(`  ${JSON.stringify(name)}: '${got}',`);
    expect(got).toBe(EXPECTED[name]);
  });
});
