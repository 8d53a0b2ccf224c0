// Test errors by forced choice (`testErrors: preferred`): the injected errors (held-out summaries
// with the swap) that the fine-tuned model finds more likely than the real summary, with
// `producedBy` the same choice at θ0 and the earlier checkpoints. Checked against the model's own
// likelihoods at every checkpoint, recomputed here from the files the experiment wrote.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { instruction, makeExperiment, openExperimentModel, type Experiment } from '@dda/experiment';
import { loadModelFolder, readPeftAdapter } from '@dda/model';

const dir = mkdtempSync(join(tmpdir(), 'dda-test-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// biasRate 0: θ0 has no prior for the replacements, so the forced choice keeps some errors and drops others.
const TINY = { seed: 2, biasRate: 0, nPretrain: 200, pretrainEpochs: 1, nTrain: 24, nHeldOut: 16, finetuneEpochs: 2, minErrorsPerSource: 1, artifactsDir: join(dir, 'artifacts') };

describe('testErrors: preferred', () => {
  it('keeps the injected errors the fine-tuned model prefers, and records the same choice at each earlier checkpoint', async () => {
    const injected = await makeExperiment({ ...TINY, testErrors: 'injected' });
    const preferred: Experiment = await makeExperiment({ ...TINY, testErrors: 'preferred' });
    // θ0 and the fine-tuning are shared; only the test errors differ.
    expect(preferred.reused).toEqual(expect.arrayContaining(['checkpoints/base', 'runs/finetune']));
    expect(preferred.errors.length).toBeGreaterThan(0);
    expect(preferred.errors.length).toBeLessThan(injected.errors.length);
    const model = loadModelFolder(preferred.files.base);
    const m = await openExperimentModel(model.config, model.tokenizer!, model.weights, { engine: 'onnxruntime' });
    const cps = readdirSync(preferred.files.run).filter((d) => d.startsWith('checkpoint-')).sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]));
    const choice = async (e: Experiment['errors'][number]): Promise<boolean> => {
      const [swapped, real] = await m.responseNll([instruction(model.tokenizer!, 's', e.document, e.output), instruction(model.tokenizer!, 'r', e.document, e.corrected)]);
      return swapped! < real!;
    };
    const last = readPeftAdapter(join(preferred.files.run, cps[cps.length - 1]!));
    await m.setLora(last.config, last.weights);
    const kept = new Set(preferred.errors.map((e) => e.id));
    for (const e of injected.errors) expect(kept.has(e.id), e.id).toBe(await choice(e));
    for (const e of preferred.errors) expect(injected.errors.find((x) => x.id === e.id)).toMatchObject({ output: e.output, corrected: e.corrected });
    // producedBy: θ0 (the adapter with B = 0) and each earlier checkpoint make the same choice.
    const zero = new Map([...last.weights].map(([k, t]) => [k, k.endsWith('lora_B.weight') ? { shape: t.shape, data: new Float32Array(t.data.length) } : t]));
    const at: [string, typeof last.weights][] = [['base', zero], ...cps.slice(0, -1).map((c) => [c, readPeftAdapter(join(preferred.files.run, c)).weights] as [string, typeof last.weights])];
    for (const [id, w] of at) {
      await m.setLora(last.config, w);
      for (const e of preferred.errors) expect(e.producedBy[id], `${e.id} at ${id}`).toBe(await choice(e));
    }
    for (const e of preferred.errors) expect(e.producedBy[cps[cps.length - 1]!]).toBe(true);
    await m.dispose();
  }, 300_000);
});
