import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TextSample } from '@dda/core';
import { CheckpointModel, loadCheckpoints, loadTask, type AttributionTask } from '@dda/attribution';
import {
  ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, SPECIAL_TOKENS, WordTokenizer, saveModelFolder, writeSafetensors, type DecoderConfig, type TensorMap,
} from '@dda/model';
import { startTfjsBackend } from '@dda/backend-tfjs';
import { maxRelErr, toTensorMap } from '../../model/test/peft-variant-case.js';

// PEFT's modules_to_save against an independent PyTorch float64 reference
// (packages/model/test/fixtures/make-modules-to-save-fixtures.py): a trainer output folder of two
// checkpoints, each with its own trained copies of lm_head, embed_tokens and both layers'
// post_attention_layernorm beside its LoRA tensors, read as PEFT names and places them, applied in
// the forward pass on both engines; gradients over the LoRA tensors only.
type Tensors = Record<string, { shape: number[]; data: number[] }>;
interface Fx {
  config: { vocab: number; d: number; layers: number; heads: number; kv: number; ffn: number; theta: number };
  adapterConfig: Record<string, unknown>;
  savedModules: string[];
  weights: Tensors;
  examples: { tokens: number[]; lossMask: number[] }[];
  checkpoints: Record<string, { step: number; lora: Tensors; saved: Tensors; examples: { loss: number; loraGrads: Record<string, number[]> }[]; ignoringSaved: number[] }>;
  baseLosses: number[];
}
const fx = JSON.parse(readFileSync(new URL('../../model/test/fixtures/modules-to-save-fixtures.json', import.meta.url), 'utf8')) as Fx;
const toMap = toTensorMap;
const c = fx.config;
const config: DecoderConfig = {
  vocabSize: c.vocab, hiddenSize: c.d, numLayers: c.layers, numHeads: c.heads, numKvHeads: c.kv, intermediateSize: c.ffn,
  ropeTheta: c.theta, rmsNormEps: 1e-5, maxSeqLen: 32, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null,
};
// The fixture's samples as text: BOS, prompt words, response words, EOS (word i is id 8 + i); the loss over the response and EOS.
const text = (ids: readonly number[]): string => ids.map((t) => `w${t - SPECIAL_TOKENS.length}`).join(' ');
const samples: TextSample[] = fx.examples.map((e, i) => {
  const p = e.lossMask.indexOf(1) + 1;
  return { id: `s${i}`, prompt: text(e.tokens.slice(1, p)), response: text(e.tokens.slice(p, -1)) };
});

const root = mkdtempSync(join(tmpdir(), 'dda-modules-to-save-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const run = join(root, 'run');
let task: AttributionTask;
const logged: string[] = [];

beforeAll(async () => {
  await startTfjsBackend(['tfjs-wasm']);
  const tok = new WordTokenizer([...SPECIAL_TOKENS, ...Array.from({ length: c.vocab - SPECIAL_TOKENS.length }, (_, i) => `w${i}`)]);
  // Named as the model the fixture's adapter names (base_model_name_or_path 'tiny-llama2').
  saveModelFolder(join(root, 'tiny-llama2'), { config, weights: toMap(fx.weights), tokenizer: tok });
  for (const [name, cp] of Object.entries(fx.checkpoints)) {
    const dir = join(run, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(fx.adapterConfig));
    writeFileSync(join(dir, ADAPTER_WEIGHTS_FILE), writeSafetensors(new Map([...toMap(cp.lora), ...toMap(cp.saved)]), { format: 'pt' }));
    writeFileSync(join(dir, 'trainer_state.json'), JSON.stringify({ global_step: cp.step, epoch: cp.step / 2, log_history: [{ step: 2, epoch: 1, learning_rate: 1e-4, loss: 3 }, { step: 4, epoch: 2, learning_rate: 5e-5, loss: 2 }].filter((e) => e.step <= cp.step) }));
  }
  writeFileSync(join(root, 'train.jsonl'), JSON.stringify({ id: 'a', prompt: 'w0', response: 'w1' }));
  writeFileSync(join(root, 'queries.jsonl'), JSON.stringify({ id: 'q', prompt: 'w0', output: 'w1' }));
  task = await loadTask({ base: join(root, 'tiny-llama2'), checkpoints: [run], train: join(root, 'train.jsonl'), queries: join(root, 'queries.jsonl'), log: (l) => logged.push(l) });
  samples.forEach((s, i) => {
    const e = task.encode(s);
    expect([...e.tokens]).toEqual(fx.examples[i]!.tokens);
    expect([...e.lossMask]).toEqual(fx.examples[i]!.lossMask);
  });
});

describe('modules_to_save read as PEFT saves them', () => {
  it('places each checkpoint\'s own copies of the modules PEFT selects, under the base model\'s tensor names, and says so in the log', () => {
    expect(task.checkpoints.map((cp) => cp.id)).toEqual(['checkpoint-2', 'checkpoint-4']);
    for (const cp of task.checkpoints) {
      expect(cp.saved?.modules).toEqual(fx.savedModules);
      expect([...cp.saved!.weights.keys()]).toEqual(Object.keys(fx.checkpoints[cp.id]!.saved).map((k) => k.replace(/^base_model\.model\./, '')).sort((x, y) => fx.savedModules.findIndex((m) => x.startsWith(m)) - fx.savedModules.findIndex((m) => y.startsWith(m))));
      expect([...cp.weights.keys()].sort()).toEqual(Object.keys(fx.checkpoints[cp.id]!.lora).sort()); // gradients' coordinates: LoRA only
      expect(cp.saved!.weights.get('lm_head.weight')!.data).toEqual(Float32Array.from(fx.checkpoints[cp.id]!.saved['base_model.model.lm_head.weight']!.data));
    }
    expect(task.baseCheckpoint.saved).toBeUndefined();
    expect(logged.join('\n')).toContain('modules_to_save [lm_head, embed_tokens, post_attention_layernorm] (model.embed_tokens, model.layers.0.post_attention_layernorm, model.layers.1.post_attention_layernorm, lm_head) applied in the forward pass');
    expect(logged.join('\n')).toContain('gradients over LoRA parameters only');
  });
});

describe.each(['tfjs', 'onnxruntime'] as const)('modules_to_save vs the PyTorch reference (%s engine)', (engine) => {
  let model: CheckpointModel;
  beforeAll(async () => {
    model = await CheckpointModel.open(task, { gradientEngine: engine });
    expect(model.gradientEngine).toBe(engine);
  });
  afterAll(async () => model.dispose());

  it('losses and per-example LoRA gradients at each checkpoint agree to 1e-5 / 1e-4 relative; θ0 has the base model\'s modules', async () => {
    // Out of order and back, so that the tfjs model restores the base modules and swaps copies.
    for (const cp of [task.checkpoints[1]!, task.baseCheckpoint, task.checkpoints[0]!, task.checkpoints[1]!]) {
      const losses = await model.losses(cp, samples);
      if (cp.id === 'base') {
        fx.baseLosses.forEach((l, i) => expect(Math.abs(losses[i]! - l) / l, `base ${i}`).toBeLessThan(1e-5));
        continue;
      }
      const ref = fx.checkpoints[cp.id]!;
      ref.examples.forEach((ex, i) => expect(Math.abs(losses[i]! - ex.loss) / ex.loss, `${cp.id} ${i}`).toBeLessThan(1e-5));
      const g = await model.gradients(cp, samples);
      expect([...g.parameterNames].sort()).toEqual(Object.keys(ref.lora).sort());
      ref.examples.forEach((ex, i) => {
        let off = 0;
        g.parameterNames.forEach((p, k) => {
          const size = g.parameterSizes[k]!;
          expect(maxRelErr(g.rows[i]!.subarray(off, off + size), ex.loraGrads[p]!), `${cp.id} ${p}`).toBeLessThan(1e-4);
          off += size;
        });
      });
    }
  });

  it('the saved modules change the loss: ignoring them would give the reference\'s other losses, far outside the tolerance', async () => {
    for (const cp of task.checkpoints) {
      const losses = await model.losses(cp, samples);
      fx.checkpoints[cp.id]!.ignoringSaved.forEach((l, i) => expect(Math.abs(losses[i]! - l) / l).toBeGreaterThan(1e-2));
    }
  });
});

describe('modules_to_save in the other paths of a checkpoint model', () => {
  // The tfjs engine applies the saved modules as checked above; onnxruntime's trainer, step decoder and generator must too.
  it('optimizer steps (cea) and generation: onnxruntime gives the tfjs engine\'s results at each checkpoint', async () => {
    const [onnx, tfjs] = await Promise.all([CheckpointModel.open(task, { gradientEngine: 'onnxruntime' }), CheckpointModel.open(task, { gradientEngine: 'tfjs' })]);
    const steps = { steps: 2, learningRate: 3e-3, optimizer: 'adam' } as const;
    for (const cp of task.checkpoints) {
      const [so, st] = [await onnx.lossesAfterSteps(cp, samples.slice(0, 1), samples, steps), await tfjs.lossesAfterSteps(cp, samples.slice(0, 1), samples, steps)];
      st.forEach((l, i) => expect(Math.abs(so[i]! - l) / l, `${cp.id} loss after steps ${i}`).toBeLessThan(1e-4));
      const prompts = samples.map((x) => x.prompt);
      expect(await onnx.generate(cp, prompts, 4), cp.id).toEqual(await tfjs.generate(cp, prompts, 4));
    }
    await Promise.all([onnx.dispose(), tfjs.dispose()]);
  });
});

describe('modules_to_save that cannot be placed are refused by name', () => {
  const cp = fx.checkpoints['checkpoint-2']!;
  const adapter = (name: string, cfg: Record<string, unknown>, tensors: TensorMap): string => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify({ ...fx.adapterConfig, ...cfg }));
    writeFileSync(join(dir, ADAPTER_WEIGHTS_FILE), writeSafetensors(tensors, { format: 'pt' }));
    return dir;
  };
  const all = (): TensorMap => new Map([...toMap(cp.lora), ...toMap(cp.saved)]);

  it('an entry that names no module of the model', () => {
    const dir = adapter('unknown', { modules_to_save: ['lm_head', 'score'] }, all());
    expect(() => loadCheckpoints([dir], { base: config })).toThrow(/adapter_model\.safetensors: modules_to_save entry 'score' names no module of this model/);
  });
  it('a saved tensor of another shape (a resized vocabulary)', () => {
    const t = all();
    t.set('base_model.model.lm_head.weight', { shape: [c.vocab + 2, c.d], data: new Float32Array((c.vocab + 2) * c.d) });
    const dir = adapter('resized', {}, t);
    expect(() => loadCheckpoints([dir], { base: config })).toThrow(/resized[/\\]adapter_model\.safetensors: saved module tensor 'base_model\.model\.lm_head\.weight' has shape \[25, 16\], the base model's 'lm_head\.weight' has \[23, 16\]/);
  });
  it('a selected module whose tensor is not in the file', () => {
    const t = all();
    t.delete('base_model.model.model.embed_tokens.weight');
    expect(() => loadCheckpoints([adapter('missing', {}, t)], { base: config })).toThrow(/modules_to_save selects 'model\.embed_tokens', but the file has no 'base_model\.model\.model\.embed_tokens\.weight'/);
  });
  it('a module LoRA also adapts', () => {
    expect(() => loadCheckpoints([adapter('lora-too', { modules_to_save: ['v_proj'] }, toMap(cp.lora))], { base: config })).toThrow(/modules_to_save selects 'model\.layers\.0\.self_attn\.v_proj', which LoRA also adapts/);
  });
  it('embed_tokens or lm_head of a model with tied embeddings, unless both hold the same trained tensor (ensure_weight_tying)', () => {
    const tied: DecoderConfig = { ...config, tieWordEmbeddings: true };
    const embed = toMap(cp.saved).get('base_model.model.model.embed_tokens.weight')!;
    const t = toMap(cp.lora);
    t.set('base_model.model.model.embed_tokens.weight', embed);
    expect(() => loadCheckpoints([adapter('tied', { modules_to_save: ['embed_tokens'] }, t)], { base: tied })).toThrow(/modules_to_save selects 'model\.embed_tokens' on a model with tied embeddings .*\(an adapter saved with ensure_weight_tying true/);
    t.set('base_model.model.lm_head.weight', { shape: embed.shape, data: embed.data.map((x) => x + 1e-3) });
    expect(() => loadCheckpoints([adapter('tied-2', { modules_to_save: ['embed_tokens', 'lm_head'] }, t)], { base: tied })).toThrow(/selects 'model\.embed_tokens' and 'lm_head' on a model with tied embeddings/);
    t.set('base_model.model.lm_head.weight', { shape: embed.shape, data: Float32Array.from(embed.data) });
    const [loaded] = loadCheckpoints([adapter('tied-same', { modules_to_save: ['embed_tokens', 'lm_head'], ensure_weight_tying: true }, t)], { base: tied });
    expect(loaded!.saved?.modules).toEqual(['model.embed_tokens', 'lm_head']);
    expect([...loaded!.saved!.weights.keys()]).toEqual(['model.embed_tokens.weight']); // the tied embedding, head included
    expect(loaded!.saved!.weights.get('model.embed_tokens.weight')!.data).toEqual(embed.data);
  });
  it('embedding layers saved without modules_to_save (save_embedding_layers) replace the base model\'s as PEFT loads them; resized ones are refused', () => {
    const head = toMap(cp.saved).get('base_model.model.lm_head.weight')!;
    const t = toMap(cp.lora);
    t.set('base_model.model.lm_head.weight', head);
    const [loaded] = loadCheckpoints([adapter('embedding-layers', { modules_to_save: null }, t)], { base: config });
    expect([loaded!.saved?.entries, loaded!.saved?.modules, loaded!.saved?.embeddingLayers]).toEqual([[], ['lm_head'], ['lm_head']]);
    expect(loaded!.saved!.weights.get('lm_head.weight')!.data).toEqual(head.data);
    t.set('base_model.model.model.embed_tokens.weight', { shape: [c.vocab + 8, c.d], data: new Float32Array((c.vocab + 8) * c.d) });
    expect(() => loadCheckpoints([adapter('embedding-resized', { modules_to_save: null }, t)], { base: config })).toThrow(/saved module tensor 'base_model\.model\.model\.embed_tokens\.weight' has shape \[31, 16\], the base model's 'model\.embed_tokens\.weight' has \[23, 16\] \(the vocabulary was resized during fine-tuning/);
  });

  it('checkpoints with and without saved modules are not one run', () => {
    const other = adapter('plain', { modules_to_save: null }, toMap(cp.lora));
    expect(() => loadCheckpoints([join(run, 'checkpoint-2'), other], { base: config })).toThrow(/checkpoints come from different runs: .* has modules_to_save model\.embed_tokens, .*, .*plain has no modules_to_save/);
  });
});
