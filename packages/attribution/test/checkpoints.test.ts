import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoints, readTrainerState } from '@dda/attribution';
import { TINY_PRESETS, initDecoderWeights, initLoraWeights, saveModelFolder, writePeftAdapter, type DecoderConfig, type LoraConfig } from '@dda/model';

// Trainer output folders as Hugging Face Trainer leaves them (checkpoint-<step>/ with their own
// trainer_state.json), with and without the final adapter at the top (trainer.save_model(output_dir))
// and the run's trainer_state.json there (trainer.save_state()). Random adapters: no training needed.
const root = mkdtempSync(join(tmpdir(), 'dda-checkpoints-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const config: DecoderConfig = { ...TINY_PRESETS['llama2-tiny']!, vocabSize: 20, hiddenSize: 16, intermediateSize: 24, maxSeqLen: 24 };
const lora: LoraConfig = { rank: 2, alpha: 4, targets: ['q', 'v'] };

/** A PEFT adapter whose tensors depend on `seed` only (same seed, same tensors). */
function adapter(dir: string, seed: number): string {
  const w = initLoraWeights(config, lora, seed);
  for (const [k, t] of w) if (k.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.01 * Math.cos(i + seed)));
  writePeftAdapter(dir, lora, w);
  return dir;
}
type Entry = Record<string, number>;
const history = (lr: number): Entry[] => [
  { loss: 2.5, grad_norm: 1.5, learning_rate: lr, epoch: 0.2, step: 2 },
  { loss: 2.1, grad_norm: 1.2, learning_rate: lr * 0.8, epoch: 0.6, step: 6 },
  { loss: 1.7, grad_norm: 0.9, learning_rate: lr * 0.5, epoch: 1, step: 10 },
  { loss: 1.5, grad_norm: 0.8, learning_rate: lr * 0.3, epoch: 1.2, step: 12 },
];
const state = (path: string, step: number, log: Entry[]): void => writeFileSync(path, JSON.stringify({ global_step: step, epoch: log[log.length - 1]?.epoch ?? 0, log_history: log }, null, 2));

/**
 * A trainer output folder: checkpoint-2 (seed 3) and checkpoint-10 (seed 4), each with the log up to
 * its step; `top`: the seed of the adapter at the top, or null; `topStep`: the global_step of the
 * top-level trainer_state.json (with the final train_loss entry), or null for none.
 */
function trainerRun(name: string, o: { top: number | null; topStep: number | null; lr?: number }): string {
  const dir = join(root, name);
  const log = history(o.lr ?? 1e-3);
  for (const [step, seed] of [[2, 3], [10, 4]] as const) {
    adapter(join(dir, `checkpoint-${step}`), seed);
    state(join(dir, `checkpoint-${step}`, 'trainer_state.json'), step, log.filter((e) => e.step! <= step));
  }
  if (o.top !== null) adapter(dir, o.top);
  if (o.topStep !== null) state(join(dir, 'trainer_state.json'), o.topStep, [...log.filter((e) => e.step! <= o.topStep!), { train_loss: 2, train_runtime: 9.5, epoch: 1.2, step: o.topStep }]);
  return dir;
}
const load = (paths: string[]): { lines: string[]; checkpoints: ReturnType<typeof loadCheckpoints> } => {
  const lines: string[] = [];
  return { checkpoints: loadCheckpoints(paths, { base: config, log: (l) => lines.push(l) }), lines };
};

describe('a trainer output folder with the final adapter at its top (trainer.save_model(output_dir))', () => {
  it('the same tensors as the last checkpoint: the checkpoint-<step> folders are the run, the top is not counted twice', () => {
    const r = load([trainerRun('last', { top: 4, topStep: 10 })]);
    expect(r.checkpoints.map((c) => [c.id, c.step, c.info.learningRate])).toEqual([['checkpoint-2', 2, 1e-3], ['checkpoint-10', 10, 5e-4]]);
    expect(r.lines.join('\n')).toMatch(/the adapter at the top of .*last holds the same tensors as checkpoint-10 \(the last checkpoint, which trainer.save_model\(output_dir\) saves again.*\): not counted twice/);
  });

  it('the same tensors as an earlier checkpoint (load_best_model_at_end): not counted twice, said so', () => {
    const r = load([trainerRun('best', { top: 3, topStep: 10 })]);
    expect(r.checkpoints.map((c) => c.id)).toEqual(['checkpoint-2', 'checkpoint-10']);
    expect(r.lines.join('\n')).toMatch(/same tensors as checkpoint-2 \(not the last one: the best checkpoint, which load_best_model_at_end loads back/);
  });

  it('other tensors, saved after the last checkpoint by its trainer_state.json: the run\'s end state, the last checkpoint', () => {
    const r = load([trainerRun('end', { top: 5, topStep: 12 })]);
    expect(r.checkpoints.map((c) => [c.id, c.step, c.info.learningRate, c.info.epoch])).toEqual([['checkpoint-2', 2, 1e-3, 0.2], ['checkpoint-10', 10, 5e-4, 1], ['end', 12, 3e-4, 1.2]]);
    expect(r.lines.join('\n')).toMatch(/differs from every checkpoint-<step>\/ subfolder and its trainer_state.json says global_step 12, after checkpoint-10: taken as the run's end state/);
  });

  it('other tensors and no step after the last: refused, naming what to pass instead', () => {
    const none = trainerRun('no-state', { top: 5, topStep: null });
    expect(() => load([none])).toThrow(/the adapter at the top of .*no-state differs from every checkpoint-<step>\/ subfolder \(checkpoint-2, checkpoint-10\) and there is no trainer_state.json beside it.*pass the checkpoint folders themselves in step order \(--checkpoints .*no-state\/checkpoint-2 .*no-state\/checkpoint-10\)/);
    expect(() => load([trainerRun('same-step', { top: 5, topStep: 10 })])).toThrow(/its trainer_state.json says global_step 10, not after checkpoint-10 \(step 10\)/);
    // The adapter merged into a full model and saved at the top (merge_and_unload().save_pretrained(output_dir)).
    const merged = trainerRun('merged', { top: null, topStep: 10 });
    saveModelFolder(merged, { config, weights: initDecoderWeights(config, 1) });
    expect(() => load([merged])).toThrow(/the top of .*merged holds a full model \(a merged adapter\?\) while its checkpoint-<step>\/ subfolders hold LoRA adapters.*--checkpoints .*merged\/checkpoint-2 .*merged\/checkpoint-10/);
  });
});

describe('the checkpoints of one run, in order, each once', () => {
  it('a checkpoint of a run with another learning rate (same rank, alpha, modules): refused, naming both and the first differing log entry', () => {
    const a = trainerRun('run-a', { top: null, topStep: null });
    const b = trainerRun('run-b', { top: null, topStep: null, lr: 2e-3 });
    expect(() => load([join(a, 'checkpoint-2'), join(b, 'checkpoint-10')])).toThrow(
      /checkpoints come from different runs: the training logs of .*run-a\/checkpoint-2 and .*run-b\/checkpoint-10 differ at entry 1 of log_history \(\{"loss":2.5,"grad_norm":1.5,"learning_rate":0.001,.*\} in .*, \{"loss":2.5,"grad_norm":1.5,"learning_rate":0.002,/,
    );
    expect(load([join(a, 'checkpoint-2'), join(a, 'checkpoint-10')]).checkpoints).toHaveLength(2);
  });

  it('folders out of step order: refused, naming the right order', () => {
    const a = trainerRun('run-order', { top: null, topStep: null });
    expect(() => load([join(a, 'checkpoint-10'), join(a, 'checkpoint-2')])).toThrow(/not in step order: .*checkpoint-10 \(step 10\) comes before .*checkpoint-2 \(step 2\).*give them in training order: --checkpoints .*run-order\/checkpoint-2 .*run-order\/checkpoint-10/);
  });

  it('the same tensors twice (the top-level final adapter passed beside checkpoint-10): refused, not another checkpoint', () => {
    const a = trainerRun('run-dup', { top: 4, topStep: 10 });
    const final = adapter(join(root, 'final-copy'), 4);
    expect(() => load([join(a, 'checkpoint-2'), join(a, 'checkpoint-10'), final])).toThrow(/the same checkpoint twice: .*run-dup\/checkpoint-10 and .*final-copy hold identical tensors/);
    expect(() => load([join(a, 'checkpoint-2'), join(a, 'checkpoint-10'), a])).toThrow(/the same checkpoint twice: .*run-dup\/checkpoint-2 and .*run-dup\/checkpoint-2 hold identical tensors/);
  });

  it('without trainer_state.json the checks that need it are skipped, with a log line', () => {
    const r = load([adapter(join(root, 'plain-1'), 7), adapter(join(root, 'plain-2'), 8)]);
    expect(r.checkpoints.map((c) => c.id)).toEqual(['plain-1', 'plain-2']);
    expect(r.lines.join('\n')).toMatch(/no step known for .*plain-1, .*plain-2 .*their order is taken as given, not checked/);
    expect(r.lines.join('\n')).toMatch(/no trainer_state.json of their own in .*plain-1, .*plain-2: whether they come from the same run as the others \(their log_history\) is not checked/);
  });

  it('reads the NaN and Infinity Python writes for a non-finite grad_norm', () => {
    const dir = join(root, 'nan-state');
    mkdirSync(dir);
    writeFileSync(join(dir, 'trainer_state.json'), '{"global_step": 4, "log_history": [{"loss": 3.1, "grad_norm": NaN, "learning_rate": 0.001, "step": 2}, {"loss": 2.0, "grad_norm": Infinity, "step": 4, "note": "NaN, Infinity"}]}');
    const s = readTrainerState(join(dir, 'trainer_state.json'));
    expect(s.history).toEqual([{ loss: 3.1, grad_norm: null, learning_rate: 0.001, step: 2 }, { loss: 2, grad_norm: null, step: 4, note: 'NaN, Infinity' }]);
  });

  it('rsLoRA / rank_pattern adapters are resolved against the base model; one with another rank_pattern is another run', () => {
    const write = (name: string, extra: Record<string, unknown>): string => {
      const dir = adapter(join(root, name), 7);
      const path = join(dir, 'adapter_config.json');
      writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), ...extra }));
      return dir;
    };
    const rs = write('rslora-a', { use_rslora: true });
    const [cp] = load([rs]).checkpoints;
    expect(cp!.lora!.modules!.map((m) => m.scale)).toEqual(Array(config.numLayers * 2).fill(4 / Math.sqrt(2)));
    const other = write('alpha-pattern-b', { use_rslora: true, alpha_pattern: { v_proj: 8 } });
    expect(() => load([rs, other])).toThrow(/checkpoints come from different runs: .*rslora-a has r=2, alpha=4, modules q_proj\/v_proj \(4 with their own rank and scale\)/);
  });
});
