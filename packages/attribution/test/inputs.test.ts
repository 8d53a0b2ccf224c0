import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRIC_COLUMNS, endTokensInText, learningRateAt, learningRateOver, loadCheckpoints, loadTask, runAttribute, type TaskFiles, type TrainerLog } from '@dda/attribution';
import { rocAuc } from '@dda/core';
import {
  SPECIAL_TOKENS, TINY_PRESETS, WordTokenizer, initDecoderWeights, initLoraWeights, saveModelFolder, writePeftAdapter,
  type DecoderConfig, type LoraConfig,
} from '@dda/model';

// A tiny random-weight base model and PEFT adapters: input handling needs no training.
const root = mkdtempSync(join(tmpdir(), 'dda-inputs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const words = ['alpha', 'beta', 'gamma', 'delta', 'omega', 'what', 'is', 'the', 'answer', 'question'];
const tok = new WordTokenizer([...SPECIAL_TOKENS, ...words, '?', '.', ':']);
const config: DecoderConfig = { ...TINY_PRESETS['llama2-tiny']!, vocabSize: tok.size, hiddenSize: 16, intermediateSize: 24, maxSeqLen: 24 };
const lora: LoraConfig = { rank: 2, alpha: 4, targets: ['q', 'v'] };
const base = join(root, 'base');
const run = join(root, 'run');
const train = join(root, 'train.jsonl');
const queries = join(root, 'queries.jsonl');

function adapter(dir: string, l: LoraConfig, seed: number, baseName: string | null = null): void {
  const w = initLoraWeights(config, l, seed);
  for (const [k, t] of w) if (k.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.01 * Math.cos(i + seed)));
  writePeftAdapter(dir, l, w, baseName);
}
const state = (step: number, log: { step: number; learning_rate?: number; epoch?: number; loss?: number }[]): string => JSON.stringify({ global_step: step, epoch: log[log.length - 1]?.epoch ?? 1, log_history: log });
const jsonl = (path: string, rows: unknown[]): string => {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n'));
  return path;
};

beforeAll(() => {
  saveModelFolder(base, { config, weights: initDecoderWeights(config, 1), tokenizer: tok });
  // Trainer output: checkpoint-2 and checkpoint-10 (ordered by step, not by name), lr decaying.
  const log = [{ step: 1, learning_rate: 1e-3, epoch: 0.5 }, { step: 2, learning_rate: 8e-4, epoch: 1, loss: 2 }, { step: 6, learning_rate: 4e-4, epoch: 3 }, { step: 10, learning_rate: 1e-4, epoch: 5, loss: 1 }];
  for (const [s, seed] of [[2, 3], [10, 4]] as const) {
    adapter(join(run, `checkpoint-${s}`), lora, seed);
    writeFileSync(join(run, `checkpoint-${s}`, 'trainer_state.json'), state(s, log.filter((e) => e.step <= s)));
  }
  jsonl(train, [
    { id: 't1', prompt: 'what is alpha ?', response: 'the answer is beta .' },
    { id: 't2', messages: [{ role: 'user', content: 'what is gamma ?' }, { role: 'assistant', content: 'delta .' }] },
    { id: 't3', instruction: 'what is the question ?', output: 'omega .' },
  ]);
  jsonl(queries, [{ id: 'q1', group: 'g', prompt: 'what is alpha ?', output: 'the answer is beta .', corrected: 'the answer is omega .' }]);
});

const files = (o: Partial<TaskFiles> = {}): TaskFiles => ({ base, checkpoints: [run], train, queries, ...o });

describe('checkpoints as users have them', () => {
  it('a trainer output folder: checkpoint-<step> in step order, learning rate and epoch from trainer_state.json', async () => {
    const lines: string[] = [];
    const t = await loadTask(files({ log: (l) => lines.push(l) }));
    // The rate of each interval's steps: Trainer logs at step s the rate of step s + 1, so the log
    // gives steps 2, 3, 7 and 11 (1e-3, 8e-4, 4e-4, 1e-4); step 1 lies on the line through steps 2
    // and 3 (1.2e-3), steps 4–6 and 8–10 on the lines between logged steps.
    expect(t.checkpoints.map((c) => [c.id, c.step, c.info.epoch])).toEqual([['checkpoint-2', 2, 1], ['checkpoint-10', 10, 5]]);
    expect(t.checkpoints[0]!.info.learningRate).toBeCloseTo((1.2e-3 + 1e-3) / 2, 15);
    expect(t.checkpoints[1]!.info.learningRate).toBeCloseTo((8e-4 + 7e-4 + 6e-4 + 5e-4 + 4e-4 + 3.25e-4 + 2.5e-4 + 1.75e-4) / 8, 15);
    expect(lines.some((l) => l.includes('checkpoint-10 0.00046875 (estimated: 2 of the 8 rates of steps 3–10 logged)'))).toBe(true);
    expect(learningRateAt({ entries: [{ step: 1, epoch: null, learningRate: 2 }, { step: 5, epoch: null, learningRate: 1 }], globalStep: 5, epoch: null }, 4)).toBe(2);
  });

  it("an adapter PEFT saved under its name (checkpoint-<step>/<name>/) given directly: the step and trainer_state.json of its checkpoint folder", async () => {
    const named = join(root, 'named-steps');
    const log = [{ step: 1, learning_rate: 1e-3, epoch: 0.5 }, { step: 2, learning_rate: 8e-4, epoch: 1, loss: 2 }, { step: 6, learning_rate: 4e-4, epoch: 3 }, { step: 10, learning_rate: 1e-4, epoch: 5, loss: 1 }];
    for (const [s, seed] of [[2, 3], [10, 4]] as const) {
      adapter(join(named, `checkpoint-${s}`, 'myadapter'), lora, seed);
      writeFileSync(join(named, `checkpoint-${s}`, 'trainer_state.json'), state(s, log.filter((e) => e.step <= s)));
    }
    const plain = await loadTask(files());
    const t = await loadTask(files({ checkpoints: [join(named, 'checkpoint-2', 'myadapter'), join(named, 'checkpoint-10', 'myadapter')] }));
    expect(t.checkpoints.map((c) => [c.id, c.step, c.info.epoch])).toEqual([['checkpoint-2-myadapter', 2, 1], ['checkpoint-10-myadapter', 10, 5]]);
    expect(t.checkpoints.map((c) => c.info.learningRate)).toEqual(plain.checkpoints.map((c) => c.info.learningRate));
    // The trainer folder itself: every checkpoint holds one adapter, of the same name, so those are its checkpoints.
    const lines: string[] = [];
    const fromRun = await loadTask(files({ checkpoints: [named], log: (l) => lines.push(l) }));
    expect(fromRun.checkpoints.map((c) => [c.id, c.step, c.info.epoch, c.info.learningRate])).toEqual(t.checkpoints.map((c) => [c.id, c.step, c.info.epoch, c.info.learningRate]));
    expect(lines).toContain(`checkpoints: every checkpoint-<step>/ of ${named} holds one adapter, in the subfolder 'myadapter' (PEFT saves an adapter not named 'default' under its name): taken as the run's checkpoints`);
    // Their steps are known, so the order is checked as for checkpoint-<step> folders.
    await expect(loadTask(files({ checkpoints: [join(named, 'checkpoint-10', 'myadapter'), join(named, 'checkpoint-2', 'myadapter')] }))).rejects.toThrow(/--checkpoints are not in step order: .*checkpoint-10.myadapter \(step 10\)/);
  });

  it('refuses a checkpoint that is the base model itself, or an adapter saved before any update (every lora_B zero)', async () => {
    await expect(loadTask(files({ checkpoints: [base] }))).rejects.toThrow(/holds exactly the weights of --base .*: it is the base model \(θ0\), not a fine-tuned checkpoint/);
    const untrained = join(root, 'untrained');
    writePeftAdapter(join(untrained, 'checkpoint-0'), lora, initLoraWeights(config, lora, 9));
    adapter(join(untrained, 'checkpoint-5'), lora, 9);
    await expect(loadTask(files({ checkpoints: [untrained] }))).rejects.toThrow(/checkpoint-0 adds nothing to --base .*: every lora_B of its adapter is zero \(4 tensors\), so B·A is zero/);
    // The same adapter once B has moved is a checkpoint like any other.
    await expect(loadTask(files({ checkpoints: [join(untrained, 'checkpoint-5')] }))).resolves.toBeDefined();
  });

  it('shows a prompt/response pair as the model sees it, with the EOS token encoding appends', async () => {
    const rawTrain = jsonl(join(root, 'raw-train.jsonl'), [{ id: 'r1', prompt: 'what is alpha ?', response: 'the answer is beta .' }]);
    const lines: string[] = [];
    await loadTask(files({ train: rawTrain, log: (l) => lines.push(l) }));
    expect(lines.find((l) => l.startsWith('training data:'))).toContain(`first sample as the model sees it, prompt | response (${rawTrain}:1): "what is alpha ?" | "the answer is beta ." + EOS token "<eos>"`);
  });

  it("a checkpoint's epoch is its own trainer_state.json's, not the last log entry's (logging_steps apart from the epoch's end)", async () => {
    const dir = join(root, 'log10');
    const entries = [{ step: 10, learning_rate: 2e-3, epoch: 0.6667, loss: 2 }, { step: 20, learning_rate: 1e-3, epoch: 1.3333, loss: 1.5 }];
    for (const [s, seed] of [[15, 5], [30, 6]] as const) {
      adapter(join(dir, `checkpoint-${s}`), lora, seed);
      writeFileSync(join(dir, `checkpoint-${s}`, 'trainer_state.json'), JSON.stringify({ global_step: s, epoch: s / 15, log_history: entries.filter((e) => e.step <= s) }));
    }
    const t = await loadTask(files({ checkpoints: [dir] }));
    expect(t.checkpoints.map((c) => [c.id, c.info.epoch])).toEqual([['checkpoint-15', 1], ['checkpoint-30', 2]]);
    // Steps 11 and 21 logged (2e-3, 1e-3): every other step on the line through them, clamped at 0.
    expect(t.checkpoints[0]!.info.learningRate).toBeCloseTo(2.3e-3, 15);
    expect(t.checkpoints[1]!.info.learningRate).toBeCloseTo(8e-4, 15);
    // Only the last checkpoints kept (save_total_limit): said, with the steps that are missing.
    const kept = join(root, 'kept');
    for (const [s, seed] of [[30, 6], [45, 7]] as const) {
      adapter(join(kept, `checkpoint-${s}`), lora, seed);
      const history = [15, 30, 45].filter((x) => x <= s).map((x) => ({ step: x, learning_rate: 1e-3, epoch: x / 15 }));
      writeFileSync(join(kept, `checkpoint-${s}`, 'trainer_state.json'), JSON.stringify({ global_step: s, epoch: s / 15, log_history: history }));
    }
    const lines: string[] = [];
    await loadTask(files({ checkpoints: [kept], log: (l) => lines.push(l) }));
    expect(lines.find((l) => l.includes('earlier one(s)'))).toContain('the checkpoints are 15 steps apart, but the first is at step 30: the 1 earlier one(s) (steps 15) are missing');
    expect(lines.some((l) => l.includes('are missing, most likely deleted by save_total_limit'))).toBe(true);
    const none: string[] = [];
    await loadTask(files({ checkpoints: [dir], log: (l) => none.push(l) }));
    expect(none.some((l) => l.includes('earlier one(s)'))).toBe(false);
  });

  it('warns when the queries are rendered unlike the training samples (a raw prompt against conversations in the chat template)', async () => {
    const tr = jsonl(join(root, 'chat-train.jsonl'), [
      { id: 'c1', messages: [{ role: 'user', content: 'what is gamma ?' }, { role: 'assistant', content: 'delta .' }] },
      { id: 'c2', messages: [{ role: 'user', content: 'what is alpha ?' }, { role: 'assistant', content: 'beta .' }] },
    ]);
    const raw = jsonl(join(root, 'raw-queries.jsonl'), [{ id: 'q1', prompt: 'what is alpha ?', output: 'the answer is beta .' }]);
    const rendered = jsonl(join(root, 'rendered-queries.jsonl'), [{ id: 'q1', prompt: '<|user|> what is alpha ? <|assistant|> ', output: 'the answer is beta .' }]);
    const lines: string[] = [];
    await loadTask(files({ train: tr, queries: raw, log: (l) => lines.push(l) }));
    expect(lines.find((l) => l.startsWith('warning: the training samples are conversations'))).toContain(`1 of 1 queries give a raw prompt that does not (e.g. ${raw}:1: "what is alpha ?")`);
    const quiet: string[] = [];
    await loadTask(files({ train: tr, queries: rendered, log: (l) => quiet.push(l) }));
    expect(quiet.some((l) => l.includes('rendered with the chat template (every one begins'))).toBe(false);
    // The other way round: raw training prompts against conversation queries, warned unless the raw
    // prompts were written already rendered with the template (they open as the queries render).
    const chatQueries = jsonl(join(root, 'chat-queries.jsonl'), [{ id: 'q1', messages: [{ role: 'user', content: 'what is alpha ?' }], output: 'the answer is beta .' }]);
    const rawTrain = jsonl(join(root, 'raw-train.jsonl'), [{ id: 'r1', prompt: 'what is gamma ?', response: 'delta .' }, { id: 'r2', prompt: 'what is alpha ?', response: 'beta .' }]);
    const preRendered = jsonl(join(root, 'pre-rendered-train.jsonl'), [{ id: 'r1', prompt: '<|user|> what is gamma ? <|assistant|> ', response: 'delta .' }, { id: 'r2', prompt: '<|user|> what is alpha ? <|assistant|> ', response: 'beta .' }]);
    const mixed: string[] = [];
    const task = await loadTask(files({ train: rawTrain, queries: chatQueries, log: (l) => mixed.push(l) }));
    expect(mixed).toContain('warning: the training samples are raw prompt/response pairs (no chat template), but 1 of 1 queries are conversations rendered with the chat template; render both the same way (--prompt-format, or the same record shape in both files)');
    expect(task.queries[0]!.sample.prompt.startsWith('<|user|> ')).toBe(true); // what the pre-rendered prompts copy
    const same: string[] = [];
    await loadTask(files({ train: preRendered, queries: chatQueries, log: (l) => same.push(l) }));
    expect(same.some((l) => l.includes('raw prompt/response pairs'))).toBe(false);
  });

  it("warns about words outside a word-level model's vocabulary (they would silently become <unk>)", async () => {
    const q = jsonl(join(root, 'oov-queries.jsonl'), [{ id: 'q1', prompt: 'what is alpha ?', output: 'the answer is zyzzyva .' }]);
    const lines: string[] = [];
    await loadTask(files({ queries: q, log: (l) => lines.push(l) }));
    expect(lines).toContainEqual(expect.stringContaining(`warning: 1 record(s) have words outside the model's word-level vocabulary, which the tokenizer maps to <unk>, so the model reads another text than the record's: ${q}:1: "zyzzyva"`));
    const clean: string[] = [];
    await loadTask(files({ log: (l) => clean.push(l) }));
    expect(clean.some((l) => l.includes('outside the model'))).toBe(false);
  });

  it("TracIn-CP's rate per interval: each step's rate from the log (the entry at step s is step s + 1's), exact where every step is logged, estimated (and said so) where not, never 'constant' for a varying log", () => {
    // The newcomer's schedule: transformers' linear schedule with 5 warm-up steps to 3e-3 over 45 steps.
    // Step k uses rate(k − 1); Trainer logs at step s the rate after the scheduler's s-th step, rate(s).
    const rate = (s: number): number => 3e-3 * (s < 5 ? s / 5 : (45 - s) / 40);
    const mean = (a: number, b: number): number => Array.from({ length: b - a + 1 }, (_, i) => rate(a + i - 1)).reduce((x, y) => x + y, 0) / (b - a + 1);
    const logEvery = (n: number): TrainerLog => ({ entries: Array.from({ length: 45 }, (_, i) => i + 1).filter((s) => s % n === 0).map((s) => ({ step: s, epoch: s / 15, learningRate: rate(s) })), globalStep: 45, epoch: 3 });
    expect([mean(1, 15), mean(16, 30), mean(31, 45)].map((x) => Number(x.toPrecision(6)))).toEqual([0.002175, 0.001725, 0.0006]);
    // Every step logged: steps 16–45 exact; step 1 (never logged) on the line through steps 2 and 3, 0 here.
    const every = logEvery(1);
    expect(learningRateOver(every, 15, 30)).toEqual({ rate: expect.closeTo(mean(16, 30), 15), how: 'logged', logged: 15, steps: 15 });
    expect(learningRateOver(every, 30, 45)).toEqual({ rate: expect.closeTo(mean(31, 45), 15), how: 'logged', logged: 15, steps: 15 });
    expect(learningRateOver(every, 0, 15)).toEqual({ rate: expect.closeTo(mean(1, 15), 15), how: 'estimated', logged: 14, steps: 15 });
    // Logged every 15 steps ((15, 0.00225), (30, 0.001125), (45, 0)): the lines between them are the
    // schedule after its warm-up, so steps 16–45 come out exact, but only 1 rate of each 15 is logged:
    // an estimate. Steps 1–15 lie before the first logged rate and its warm-up is invisible: 0.00285.
    const sparse = logEvery(15);
    expect(learningRateOver(sparse, 15, 30)).toEqual({ rate: expect.closeTo(mean(16, 30), 15), how: 'estimated', logged: 1, steps: 15 });
    expect(learningRateOver(sparse, 30, 45)).toEqual({ rate: expect.closeTo(mean(31, 45), 15), how: 'estimated', logged: 1, steps: 15 });
    expect(learningRateOver(sparse, 0, 15)).toEqual({ rate: expect.closeTo(0.00285, 15), how: 'estimated', logged: 0, steps: 15 });
    // transformers' default, linear from 3e-3 to 0 without warm-up, logged every 500 of 1,500 steps: the line through the first two logged rates is exact before them too.
    const linear = (s: number): number => 3e-3 * (1 - s / 1500);
    const plain = { entries: [500, 1000, 1500].map((s) => ({ step: s, epoch: s / 500, learningRate: linear(s) })), globalStep: 1500, epoch: 3 };
    const linearMean = (a: number, b: number): number => Array.from({ length: b - a + 1 }, (_, i) => linear(a + i - 1)).reduce((x, y) => x + y, 0) / (b - a + 1);
    for (const [a, b] of [[0, 500], [500, 1000], [1000, 1500]] as const) expect(learningRateOver(plain, a, b).rate).toBeCloseTo(linearMean(a + 1, b), 15);
    // A constant log is a constant schedule; one logged rate alone is no schedule: an estimate.
    const constant = { entries: [15, 30, 45].map((s) => ({ step: s, epoch: s / 15, learningRate: 1e-3 })), globalStep: 45, epoch: 3 };
    expect(learningRateOver(constant, 0, 15)).toEqual({ rate: 1e-3, how: 'constant', logged: 0, steps: 15 });
    expect(learningRateOver({ entries: [{ step: 15, epoch: 1, learningRate: 2e-3 }], globalStep: 15, epoch: 1 }, 0, 15)).toEqual({ rate: 2e-3, how: 'estimated', logged: 0, steps: 15 });
    expect(learningRateOver({ entries: [], globalStep: 5, epoch: null }, 0, 5).how).toBe('none');
    expect(learningRateAt(sparse, 45)).toBe(0);
  });

  it("trainer states as published: epochs a little short of an epoch's end are epoch ends (denoising, the loss window), step checkpoints are said to be, and a --train smaller than an epoch is warned about", async () => {
    // Checkpoints at steps 1, 2, 3 written at epochs 0.9973, 1.9947, 2.992 (about 1 step per epoch, batch 4: 3 records fit).
    const published = (name: string, epochs: readonly number[], batch: number): string => {
      const dir = join(root, name);
      const log = epochs.map((epoch, i) => ({ step: i + 1, epoch, loss: 3 - i, learning_rate: 1e-3 }));
      epochs.forEach((epoch, i) => {
        adapter(join(dir, `checkpoint-${i + 1}`), lora, 30 + i);
        writeFileSync(join(dir, `checkpoint-${i + 1}`, 'trainer_state.json'), JSON.stringify({ global_step: i + 1, epoch, train_batch_size: batch, log_history: log.slice(0, i + 1) }));
      });
      return dir;
    };
    const attribute = async (name: string, checkpoints: string): Promise<{ lines: string[]; r: Awaited<ReturnType<typeof runAttribute>>; scoresMethod: string }> => {
      const lines: string[] = [];
      const out = join(root, name);
      const r = await runAttribute({ ...files({ checkpoints: [checkpoints] }), out, method: { scorer: 'grad-dot', debias: null, denoise: 'zscore-mean', beta: 1 }, log: (l) => lines.push(l) });
      return { lines, r, scoresMethod: JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')).method };
    };
    const ends = await attribute('o-fractional', published('fractional', [0.9973, 1.9947, 2.992], 4));
    expect(ends.r.task.checkpoints.map((c) => c.info.epoch)).toEqual([1, 2, 3]);
    expect(ends.lines.some((l) => l.includes("not at an epoch's end"))).toBe(false);
    // The last epoch's losses: step 3's alone, not step 2's at epoch 1.9947 (the end of epoch 2).
    expect(ends.r.trainingLoss).toMatchObject({ logged: 1, loggedFrom: expect.stringMatching(/^the 'loss' entry of the last epoch logged \(step 3\)/) });
    expect(ends.r.method.description).toMatch(/denoiser 'zscore-mean' over the epoch checkpoints/);
    expect(ends.lines.some((l) => l.includes('record(s), but'))).toBe(false);
    // Step checkpoints (4 steps per epoch: epochs 0.25, 0.5, 0.75): "over the checkpoints", in the log and scores.json;
    // an epoch of 4 steps at batch 8 is 25 records or more, and --train has 3: warned.
    const steps = await attribute('o-steps', published('step-checkpoints', [0.25, 0.5, 0.75], 8));
    expect(steps.r.method.description).toMatch(/denoiser 'zscore-mean' over the checkpoints; from checkpoints checkpoint-1, checkpoint-2, checkpoint-3;/);
    expect(steps.scoresMethod).toBe(steps.r.method.description);
    expect(steps.lines.find((l) => l.includes('has 3 record(s)'))).toMatch(/^warning: --train .*train\.jsonl has 3 record\(s\), but .*checkpoint-3[/\\]trainer_state\.json says the run took 4 optimizer steps per epoch \(global_step 3 at epoch 0\.75\) × train_batch_size 8: an epoch of at least 25 records/);
  });

  it('adapter folders in the given order; the learning rate unknown without trainer_state.json, or given with --learning-rates', async () => {
    const a = join(root, 'plain-a');
    const b = join(root, 'plain-b');
    adapter(a, lora, 7);
    adapter(b, lora, 8);
    const t = await loadTask(files({ checkpoints: [b, a] }));
    expect(t.checkpoints.map((c) => c.id)).toEqual(['plain-b', 'plain-a']);
    expect(t.checkpoints.every((c) => Number.isNaN(c.info.learningRate))).toBe(true);
    const l = await loadTask(files({ checkpoints: [b, a], learningRates: [2e-4, 1e-4] }));
    expect(l.checkpoints.map((c) => c.info.learningRate)).toEqual([2e-4, 1e-4]);
  });

  it('what the method needs is checked before any model work, naming the option chosen and what to pass', async () => {
    const [a, b] = [join(root, 'plain-a'), join(root, 'plain-b')];
    const attempt = (name: string, method: { scorer: string; denoise: string | null; debias?: string | null }, o: Partial<TaskFiles> & { measurement?: string } = {}): Promise<unknown> => {
      const out = join(root, name);
      return runAttribute({ ...files({ checkpoints: [b, a] }), out, method: { debias: null, beta: 1, ...method }, ...o }).finally(() => {
        expect(existsSync(join(out, 'artifacts', 'gradients')), `${name}: no gradient computed`).toBe(false);
      });
    };
    await expect(attempt('o-lr', { scorer: 'tracin-cp', denoise: null })).rejects.toThrow(
      /--scorer tracin-cp \(it combines its scores over the checkpoints with denoiser 'lr-weighted'\) needs the learning rate at every checkpoint, and it is unknown at 'plain-b', 'plain-a'.*pass --learning-rates with the learning rate in effect at each checkpoint, 2 values in order \(plain-b, plain-a\)/,
    );
    await expect(attempt('o-lr-denoise', { scorer: 'grad-dot', denoise: 'lr-weighted' })).rejects.toThrow(/^--denoise lr-weighted needs the learning rate at every checkpoint.*or choose another --denoise/);
    const uncorrected = jsonl(join(root, 'uncorrected.jsonl'), [{ id: 'q1', prompt: 'what is alpha ?', output: 'beta .', corrected: 'omega .' }, { id: 'q2', prompt: 'what is gamma ?', output: 'delta .' }]);
    await expect(attempt('o-contrastive', { scorer: 'grad-dot', denoise: null }, { queries: uncorrected, learningRates: [1, 1], measurement: 'contrastive' })).rejects.toThrow(
      /--measurement contrastive needs the corrected output of every query; 1 of 2 have none \(first: .*uncorrected.jsonl:2, query 'q2'\).*add a "corrected" field to every query, or use --measurement loss/,
    );
    const full = join(root, 'full-cea');
    saveModelFolder(full, { config, weights: initDecoderWeights(config, 9), tokenizer: tok });
    await expect(runAttribute({ ...files({ checkpoints: [full] }), out: join(root, 'o-cea'), method: { scorer: 'cea', debias: null, denoise: null, beta: 1 } })).rejects.toThrow(/--scorer cea \(it takes optimizer steps on the LoRA adapter\) needs LoRA adapter checkpoints/);
    const lines: string[] = [];
    await runAttribute({ ...files({ checkpoints: [a] }), out: join(root, 'o-one'), method: { scorer: 'grad-dot', debias: null, denoise: 'mean', beta: 1 }, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/--denoise mean: with 1 checkpoint there is nothing to combine over/);
    // Learning rates that nothing uses are refused, as an ignored --beta is.
    await expect(attempt('o-lr-unused', { scorer: 'grad-dot', denoise: 'zscore-mean' }, { learningRates: [1, 1] })).rejects.toThrow(/^--learning-rates has no effect: nothing in this method weights the checkpoints by their learning rate \(--scorer grad-dot, --denoise zscore-mean\).*drop --learning-rates/);
  });

  it("tracin-cp keeps its own η-weighted sum over the checkpoints: a default denoiser gives way, one asked for is refused", async () => {
    const scoresOf = async (name: string, method: { scorer: string; denoise: string | null; denoiseGiven?: boolean }): Promise<{ scores: Float64Array; summary: { method: { denoise: string | null } }; lines: string[] }> => {
      const out = join(root, name);
      const lines: string[] = [];
      await runAttribute({ ...files(), out, method: { debias: null, beta: 1, ...method }, log: (l) => lines.push(l) });
      const npy = readFileSync(join(out, 'scores.npy'));
      const header = npy.readUInt16LE(8);
      return { scores: new Float64Array(npy.buffer.slice(npy.byteOffset + 10 + header, npy.byteOffset + npy.length)), summary: JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), lines };
    };
    const tracin = await scoresOf('o-tracin', { scorer: 'tracin-cp', denoise: 'zscore-mean' });
    expect(tracin.lines.join('\n')).toMatch(/--scorer tracin-cp: its checkpoint terms are combined by its own denoiser 'lr-weighted' \(Σ η_i·term_i \/ Σ η_i\), not by the default --denoise zscore-mean/);
    expect(tracin.summary.method.denoise).toBe('lr-weighted');
    // The same scores as grad-dot's terms weighted by the learning rates, and not grad-dot's z-scored mean.
    expect(tracin.scores).toEqual((await scoresOf('o-gd-lr', { scorer: 'grad-dot', denoise: 'lr-weighted' })).scores);
    expect(tracin.scores).not.toEqual((await scoresOf('o-gd-z', { scorer: 'grad-dot', denoise: 'zscore-mean' })).scores);
    await expect(runAttribute({ ...files(), out: join(root, 'o-tracin-z'), method: { scorer: 'tracin-cp', debias: null, denoise: 'zscore-mean', denoiseGiven: true, beta: 1 } })).rejects.toThrow(
      /--scorer tracin-cp combines its checkpoint terms with denoiser 'lr-weighted' \(Σ η_i·term_i \/ Σ η_i\); --denoise zscore-mean would replace that combination.*drop --denoise \(or pass --denoise lr-weighted\), or use --scorer grad-dot --denoise zscore-mean/,
    );
  });

  it('full model checkpoints: gradients over every parameter', async () => {
    const full = join(root, 'full-1');
    saveModelFolder(full, { config, weights: initDecoderWeights(config, 9), tokenizer: tok });
    const t = await loadTask(files({ checkpoints: [full] }));
    expect(t.checkpoints[0]!.kind).toBe('full');
    expect(t.baseCheckpoint.weights).toBe(t.base.weights);
  });

  it('names what does not fit: mixed kinds, other runs, other shapes, unread formats, unknown folders', async () => {
    const other = join(root, 'rank-4');
    adapter(other, { ...lora, rank: 4 }, 5);
    await expect(loadTask(files({ checkpoints: [join(run, 'checkpoint-2'), other] }))).rejects.toThrow(/checkpoints come from different runs: .*r=2.*r=4/);
    const named = join(root, 'named');
    adapter(named, lora, 5, 'org/model-a');
    const named2 = join(root, 'named2');
    adapter(named2, lora, 6, 'org/model-b');
    await expect(loadTask(files({ checkpoints: [named, named2] }))).rejects.toThrow(/adapts 'org\/model-a'.*adapts 'org\/model-b'/);
    const full = join(root, 'full-2');
    saveModelFolder(full, { config, weights: initDecoderWeights(config, 9), tokenizer: tok });
    await expect(loadTask(files({ checkpoints: [named, full] }))).rejects.toThrow(/mixes LoRA adapters and full models/);
    const wide = join(root, 'wide');
    const wideConfig = { ...config, hiddenSize: 32 };
    saveModelFolder(wide, { config: wideConfig, weights: initDecoderWeights(wideConfig, 2), tokenizer: tok });
    await expect(loadTask(files({ checkpoints: [wide] }))).rejects.toThrow(/does not fit the base model: hiddenSize 32 vs 16/);
    const bin = join(root, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'adapter_model.bin'), 'pickle');
    await expect(loadTask(files({ checkpoints: [bin] }))).rejects.toThrow(/holds adapter_model.bin, weights in a format this tool does not read.*safetensors/);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    await expect(loadTask(files({ checkpoints: [empty] }))).rejects.toThrow(/neither a PEFT adapter folder/);
    // A checkpoint whose adapter is missing but whose Trainer state is there: the state files are not weights to convert.
    const stateOnly = join(root, 'state-only');
    mkdirSync(stateOnly);
    for (const f of ['optimizer.pt', 'scheduler.pt', 'rng_state.pth', 'training_args.bin']) writeFileSync(join(stateOnly, f), 'pickle');
    await expect(loadTask(files({ checkpoints: [stateOnly] }))).rejects.toThrow(/'.*state-only' is neither a PEFT adapter folder/);
    await expect(loadTask(files({ checkpoints: [join(root, 'nope')] }))).rejects.toThrow(/'.*nope' is not a folder/);
    // An adapter PEFT saved under its name (checkpoint-15/<name>/adapter_config.json), the checkpoint given: the subfolder is named.
    const namedRun = join(root, 'named-run');
    mkdirSync(join(namedRun, 'checkpoint-15', 'myadapter'), { recursive: true });
    writeFileSync(join(namedRun, 'checkpoint-15', 'myadapter', 'adapter_config.json'), '{}');
    await expect(loadTask(files({ checkpoints: [join(namedRun, 'checkpoint-15')] }))).rejects.toThrow(
      new RegExp(`'${join(namedRun, 'checkpoint-15')}' has no adapter_config\\.json or model weights at its top, but its subfolder '${join(namedRun, 'checkpoint-15', 'myadapter')}' holds a PEFT adapter.*--checkpoints ${join(namedRun, 'checkpoint-15', 'myadapter')}`),
    );
    mkdirSync(join(namedRun, 'checkpoint-15', 'other'));
    writeFileSync(join(namedRun, 'checkpoint-15', 'other', 'adapter_config.json'), '{}');
    await expect(loadTask(files({ checkpoints: [join(namedRun, 'checkpoint-15')] }))).rejects.toThrow(/its subfolders '.*myadapter', '.*other' hold PEFT adapters \(PEFT saves an adapter not named 'default' in a subfolder of its name\).*give the subfolder of the adapter that was trained/);
    // The trainer folder of such checkpoints, two adapters in one: which was trained is unknown, refused the same way.
    await expect(loadTask(files({ checkpoints: [namedRun] }))).rejects.toThrow(/its subfolders '.*myadapter', '.*other' hold PEFT adapters/);
  });
});

describe('bad data and bad models get errors naming the file and record', () => {
  it('over-long records fail before any model work, naming file and line; --overlong truncate takes them', async () => {
    const long = jsonl(join(root, 'long.jsonl'), [{ id: 'ok', prompt: 'what is alpha ?', response: 'beta .' }, { id: 'too-long', prompt: Array(30).fill('alpha').join(' '), response: 'beta .' }]);
    await expect(loadTask(files({ train: long }))).rejects.toThrow(new RegExp(`sample 'too-long' \\(${long}:2\\): 34 tokens, longer than the model's context of 24 tokens`));
    const t = await loadTask(files({ train: long, overlong: 'truncate' }));
    expect(t.encode(t.train.samples[1]!).tokens.length).toBe(24);
    // What was cut is counted, logged and recorded in summary.json, never silent.
    expect(t.truncated).toEqual({ maxLength: 24, limitName: "the model's context", samples: 1, tokensCut: 10, cut: [{ id: 'too-long', kind: 'train', where: `${long}:2`, length: 34, tokensCut: 10, promptTokensCut: 10, responseTokensCut: 0 }] });
    expect((await loadTask(files())).truncated).toEqual({ maxLength: 24, limitName: "the model's context", samples: 0, tokensCut: 0, cut: [] });
    // --max-length is named as the limit, not the model's context.
    await expect(loadTask(files({ train: long, maxLength: 20 }))).rejects.toThrow(new RegExp(`sample 'too-long' \\(${long}:2\\): 34 tokens, longer than --max-length of 20 tokens`));
    const lines: string[] = [];
    const out = join(root, 'o-truncate');
    await runAttribute({ ...files({ train: long, overlong: 'truncate' }), out, method: { scorer: 'bm25', debias: null, denoise: null, beta: 1 }, log: (l) => lines.push(l) });
    expect(lines).toContain(`--overlong truncate cut 1 sample to 24 tokens (the model's context; 10 tokens cut in all): train 'too-long' (${long}:2) 10 of 34 tokens cut: 10 from the prompt, 0 from the response; every one in summary.json (truncated)`);
    expect((JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { truncated: unknown }).truncated).toEqual(t.truncated);
    await expect(loadTask(files({ maxLength: 1000 }))).rejects.toThrow(/--max-length 1000 is longer than the model's context \(24/);
  });

  it('a base folder without a tokenizer, or whose tokenizer does not fit the model', async () => {
    const noTok = join(root, 'no-tok');
    saveModelFolder(noTok, { config, weights: initDecoderWeights(config, 1) });
    await expect(loadTask(files({ base: noTok }))).rejects.toThrow(/--base .*no-tok: no tokenizer.json/);
    const mismatch = join(root, 'mismatch');
    cpSync(base, mismatch, { recursive: true });
    writeFileSync(join(mismatch, 'tokenizer.json'), JSON.stringify(new WordTokenizer([...SPECIAL_TOKENS, ...words]).toJSON()));
    await expect(loadTask(files({ base: mismatch }))).rejects.toThrow(/tokenizer has 18 entries but the model's vocabSize is 21/);
  });

  it('empty files, duplicate ids and labels naming unknown records', async () => {
    const empty = join(root, 'empty.jsonl');
    writeFileSync(empty, '\n');
    await expect(loadTask(files({ train: empty }))).rejects.toThrow(/training data: '.*empty.jsonl' is empty/);
    const dup = jsonl(join(root, 'dup.jsonl'), [{ id: 'q', prompt: 'what', output: 'alpha' }, { id: 'q', prompt: 'is', output: 'beta' }]);
    await expect(loadTask(files({ queries: dup }))).rejects.toThrow(/dup.jsonl:2: duplicate query id 'q'/);
    const labels = join(root, 'labels.json');
    writeFileSync(labels, JSON.stringify({ g: ['t9'] }));
    await expect(loadTask(files({ labels }))).rejects.toThrow(/training id 't9' not in the training data/);
  });

  it('attributes every record format end to end, with labels', async () => {
    const labels = join(root, 'labels-ok.json');
    writeFileSync(labels, JSON.stringify({ g: ['t1'] }));
    const r = await runAttribute({ ...files({ labels }), out: join(root, 'out'), method: { scorer: 'grad-cos', debias: 'raw', denoise: 'mean', beta: 1 }, topK: 2, recallK: 1 });
    expect(r.tops[0]!.top.map((t) => t.rank)).toEqual([1, 2]);
    // Each variant once (the method was listed again as 'method' before); the method's variant is marked.
    expect(r.metrics.filter((m) => m.source === 'average').map((m) => m.variant)).toEqual(['plain', 'debias', 'denoise', 'dda']);
    expect(r.metrics.filter((m) => m.chosen).map((m) => m.variant)).toEqual(['dda', 'dda']);
    // The copied training sample has cosine 1 with the query: first under plain influence (grad-cos at the final checkpoint).
    const plain = r.variants.find((v) => v.variant === 'plain')!.matrix;
    expect(plain.values[0]).toBeCloseTo(1, 6);
    expect(Math.max(...Array.from(plain.values))).toBe(plain.values[0]);
  });

  it('says what the final scores are: units, β as applied, a model-free scorer without checkpoint, AUC of mean scores beside the per-query mean', async () => {
    const labels = join(root, 'labels-g.json');
    writeFileSync(labels, JSON.stringify({ g: ['t1'] }));
    // Two queries in group g that rank the training samples differently.
    const two = jsonl(join(root, 'queries-two.jsonl'), [
      { id: 'q1', group: 'g', prompt: 'what is alpha ?', output: 'the answer is beta .' },
      { id: 'q2', group: 'g', prompt: 'what is gamma ?', output: 'delta .' },
    ]);
    const read = (out: string, f: string): Record<string, any> => JSON.parse(readFileSync(join(out, f), 'utf8')) as Record<string, any>;
    const rec = join(root, 'out-recommended');
    const r = await runAttribute({ ...files({ labels, queries: two }), out: rec, method: { scorer: 'grad-dot', debias: 'fitted-beta', denoise: 'zscore-mean', beta: 1 }, topK: 2, recallK: 1 });
    const scores = read(rec, 'scores.json');
    // A fitted-β residual over z-scored checkpoints is dimensionless (it read 'nats² ...' before), and β is fitted, not 1.
    expect(scores.units).toBe('dimensionless (mean of standard deviations)');
    expect(scores.beta).toMatch(/^β fitted per test column: \S+ to \S+$/);
    expect(scores.method).toContain(`debiaser 'fitted-beta' against the base model θ0 (${scores.beta as string})`);
    expect(scores.method).not.toMatch(/β ?= ?1/);
    const summary = read(rec, 'summary.json');
    expect(summary.method).toMatchObject({ beta: scores.beta, units: scores.units, description: scores.method, variant: 'dda' });
    expect(summary.metrics.auc).toMatch(/each labelled group's mean scores/);
    expect(summary.metrics.aucPerQueryMean).toMatch(/each query's own scores/);
    const [head, ...rows] = readFileSync(join(rec, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(head).toBe(METRIC_COLUMNS.join(','));
    expect(rows.filter((l) => l.startsWith('dda,1,g,'))).toHaveLength(1);
    // The per-query mean, recomputed from the method's matrix column by column.
    const m = r.method.matrix;
    const y = Uint8Array.from(m.trainIds, (id) => (id === 't1' ? 1 : 0));
    const perQuery = m.testIds.map((_, j) => 100 * rocAuc(m.trainIds.map((__, i) => m.values[i * m.testIds.length + j] as number), y));
    const g = r.metrics.find((x) => x.chosen && x.source === 'g')!;
    expect(g.aucPerQueryMean).toBeCloseTo((perQuery[0]! + perQuery[1]!) / 2, 10);
    expect(r.metrics.find((x) => x.chosen && x.source === 'average')!.aucPerQueryMean).toBeCloseTo(g.aucPerQueryMean, 10);
    // The paper's raw debias keeps the scorer's units and records the β it applied.
    const raw = join(root, 'out-raw');
    const rawRun = await runAttribute({ ...files({ labels, queries: two }), out: raw, method: { scorer: 'grad-dot', debias: 'raw', denoise: 'mean', beta: 0.5 }, topK: 2, heatMaps: 1 });
    // --heat-maps 1: the first query's top samples get maps, the second's none; 0: none at all.
    expect(rawRun.tokens.kind).toBe('computed');
    if (rawRun.tokens.kind === 'computed') expect([...rawRun.tokens.queries.keys()]).toEqual([rawRun.tops[0]?.queryId]);
    expect(readFileSync(join(raw, 'report.html'), 'utf8')).toContain('of the first 1 queries');
    expect(read(raw, 'scores.json')).toMatchObject({ units: 'nats² per squared parameter unit', beta: 0.5 });
    expect(read(raw, 'scores.json').method).toContain("debiaser 'raw' against the base model θ0 (β = 0.5)");
    // A model-free scorer has no checkpoint and no β.
    const bm = join(root, 'out-bm25');
    const none = await runAttribute({ ...files({ labels, queries: two }), out: join(root, 'out-no-maps'), method: { scorer: 'grad-dot', debias: 'raw', denoise: 'mean', beta: 0.5 }, topK: 2, heatMaps: 0 });
    expect(none.tokens).toEqual({ kind: 'omitted', reason: 'No token heat maps: --heat-maps 0 (each map takes two forward passes per listed sample).' });
    const bmLog: string[] = [];
    await runAttribute({ ...files({ labels, queries: two }), out: bm, method: { scorer: 'bm25', debias: null, denoise: null, beta: 1 }, topK: 2, measurement: 'entity-margin', log: (l) => bmLog.push(l) });
    const b = read(bm, 'scores.json');
    expect(b).toMatchObject({ units: 'BM25 relevance (≥ 0)', beta: null, measurement: 'none: the scorer takes no test gradient' });
    // A measurement asked for a scorer that takes no test gradient is said to have no effect.
    expect(bmLog.filter((l) => l.startsWith('warning: --measurement entity-margin does not apply to \'bm25\''))).toHaveLength(1);
    expect(read(raw, 'scores.json').measurement).toMatchObject({ id: 'loss' });
    expect(b.provenance.checkpoints).toEqual([]);
    expect(b.method).toContain('model-free: no checkpoint');
  });
});

describe('how the records are rendered, visible in the log and in summary.json', () => {
  it('logs the first training sample and query as the model sees them (template applied), the fields read and not used, and records it all in summary.json', async () => {
    const tr = jsonl(join(root, 'render-train.jsonl'), [
      { id: 'h', system: 'alpha', history: [['what is alpha ?', 'beta .']], instruction: 'what is gamma ?', output: 'delta .', note: 'x' },
      { id: 'p', instruction: 'what is omega ?', output: 'alpha .' },
    ]);
    const q = jsonl(join(root, 'render-q.jsonl'), [{ id: 'q', instruction: 'what is gamma ?', output: 'delta .', produced_by_base: false }]);
    const lines: string[] = [];
    const out = join(root, 'out-render');
    await runAttribute({ ...files({ train: tr, queries: q }), log: (l) => lines.push(l), out, method: { scorer: 'grad-dot', debias: null, denoise: null, beta: 1 } });
    expect(lines).toContain(`warning: training data ${tr}: field 'note' is read and not used in 1 of 2 record(s): not a field of a training record ({"messages": [...]}, {"conversations": [...]}, {"instruction", "input"?, "output"}, {"document", "summary"} or {"prompt", "response"}, each with an optional "id"); e.g. ${tr}:1: {"id":"h","system":"alpha","history":[["what is alpha ?","beta ."]],"instruction":"what is gamma ?","output":"delta .","note":"x"}`);
    // The history's assistant turn carries the loss too (LLaMA-Factory's default): two pieces after '|'.
    expect(lines).toContain(`training data: ${tr}: 2 alpaca record(s), prompt format raw, fields used: id, system, history, instruction, output, read and not used: note; first sample as the model sees it, prompt | response (${tr}:1): "<|system|> alpha <|user|> what is alpha ? <|assistant|> " | "beta . <eos>" + " <|user|> what is gamma ? <|assistant|> " | "delta . <eos>"`);
    expect(lines).toContain(`queries: ${q}: 1 alpaca record(s), prompt format raw, fields used: id, instruction, output; first query as the model sees it, prompt | output (${q}:1): "<|user|> what is gamma ? <|assistant|> " | "delta . <eos>"`);
    expect(lines).toContain(`queries ${q}: field(s) 'produced_by_base' kept beside each query in the outputs, not used by the attribution`);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { inputs: { fields: unknown; queryFields: unknown; rendering: Record<string, unknown> } };
    expect(summary.inputs.fields).toEqual({});
    expect(summary.inputs.queryFields).toEqual({});
    const rendering = summary.inputs.rendering as { promptFormat: string; template: string; train: Record<string, unknown>; queries: Record<string, unknown>; first: { query: unknown } };
    expect([rendering.promptFormat, rendering.template]).toEqual(['raw', "the word-level tokenizer's built-in template"]);
    expect(rendering.train).toMatchObject({ file: tr, shapes: { alpaca: 2 }, used: ['id', 'system', 'history', 'instruction', 'output'], ignored: [{ column: 'note', records: 1, example: `${tr}:1` }] });
    expect(rendering.queries).toMatchObject({ shapes: { alpaca: 1 }, kept: ['produced_by_base'], ignored: [] });
    // Rendered as a training conversation: the output and the template's end of turn carry the loss.
    expect(rendering.first.query).toEqual({ id: 'q', where: `${q}:1`, pieces: [{ text: '<|user|> what is gamma ? <|assistant|> ', loss: false }, { text: 'delta . <eos>', loss: true }] });
  });

  it('--fields maps the training file only: the queries keep their own columns (--query-fields maps theirs)', async () => {
    const tr = join(root, 'mapped-train.csv');
    writeFileSync(tr, 'question,answer\nwhat is alpha ?,the answer is beta .\n');
    const t = await loadTask(files({ train: tr, fields: { prompt: 'question', response: 'answer' } }));
    expect(t.train.samples[0]).toEqual({ id: '2', prompt: 'what is alpha ?', response: 'the answer is beta .' });
    expect(t.queries[0]!.sample).toEqual({ id: 'q1', prompt: 'what is alpha ?', response: 'the answer is beta .' });
    const q = jsonl(join(root, 'mapped-q.jsonl'), [{ id: 'q1', question: 'what is alpha ?', generation: 'beta .' }]);
    const m = await loadTask(files({ queries: q, queryFields: { prompt: 'question', output: 'generation' } }));
    expect(m.queries[0]!.sample).toEqual({ id: 'q1', prompt: 'what is alpha ?', response: 'beta .' });
    await expect(loadTask(files({ queryFields: { prompt: 'question' } }))).rejects.toThrow(`queries '${queries}': --query-fields maps 'prompt' from column 'question', which no record of the file has (its columns: id, group, prompt, output, corrected)`);
  });
});

describe('end tokens written into the text', () => {
  it('are warned about, naming the records: the template adds them again', async () => {
    expect(endTokensInText(tok, [{ where: 'a.jsonl:1', text: 'beta .' }])).toBeNull();
    expect(endTokensInText(tok, [{ where: 'a.jsonl:1', text: 'beta . <eos> ' }, { where: 'q.jsonl:2', text: 'x' }])).toBe(
      "1 response(s) or output(s) end with the end token written out ('<eos>'; first: a.jsonl:1), which the template or the appended EOS adds again, so the model sees it twice: remove it from the text unless the training data had it twice too",
    );
    const q = jsonl(join(root, 'q-eos.jsonl'), [{ id: 'q1', prompt: 'what is alpha ?', output: `beta . ${tok.eosText}` }]);
    const lines: string[] = [];
    await loadTask(files({ queries: q, log: (l) => lines.push(l) }));
    expect(lines.join('\n')).toMatch(/warning: 1 response\(s\) or output\(s\) end with the end token written out .*first: .*q-eos\.jsonl:1/);
  });
});

describe('records longer than a trainer would have kept', () => {
  it('are warned about when no --max-length is given (TRL keeps 1,024 tokens by default)', async () => {
    const longBase = join(root, 'long-base');
    saveModelFolder(longBase, { config: { ...config, maxSeqLen: 1100 }, weights: initDecoderWeights({ ...config, maxSeqLen: 1100 }, 1), tokenizer: tok });
    const long = jsonl(join(root, 'long.jsonl'), [{ id: 't1', prompt: Array.from({ length: 1030 }, () => 'alpha').join(' '), response: 'beta .' }, { id: 't2', prompt: 'what is alpha ?', response: 'beta .' }]);
    const lines: string[] = [];
    const ck = join(root, 'long-ck');
    adapter(ck, lora, 5);
    await loadTask({ base: longBase, checkpoints: [ck], train: long, queries, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/warning: 1 training record\(s\) are longer than 1024 tokens \(first: .*long\.jsonl:1\), TRL's default max_length; if the trainer cut them, pass --max-length/);
    const quiet: string[] = [];
    await loadTask({ base: longBase, checkpoints: [ck], train: long, queries, maxLength: 1100, log: (l) => quiet.push(l) });
    expect(quiet.join('\n')).not.toMatch(/longer than 1024 tokens/);
  });
});

describe('--loss-on', () => {
  it('all: every token of a training conversation carries the loss (TRL messages default); prompt/response records keep the response', async () => {
    const sum = (m: Float32Array): number => m.reduce((a, b) => a + b, 0);
    const assistant = await loadTask(files());
    const all = await loadTask(files({ lossOn: 'all' }));
    const [rawA, chatA] = [assistant.encode(assistant.train.samples[0]!), assistant.encode(assistant.train.samples[1]!)];
    const [rawB, chatB] = [all.encode(all.train.samples[0]!), all.encode(all.train.samples[1]!)];
    expect(chatB.tokens).toEqual(chatA.tokens);
    expect(sum(chatB.lossMask)).toBe(chatB.tokens.length - 1);
    expect(sum(chatA.lossMask)).toBeLessThan(chatA.tokens.length - 1);
    expect(rawB.lossMask).toEqual(rawA.lossMask);
  });
});

describe('system turns', () => {
  it('a query conversation without the system turn every training conversation has is warned about', async () => {
    const sys = jsonl(join(root, 'sys-train.jsonl'), [
      { id: 't1', messages: [{ role: 'system', content: 'be brief .' }, { role: 'user', content: 'what is alpha ?' }, { role: 'assistant', content: 'beta .' }] },
      { id: 't2', messages: [{ role: 'system', content: 'be brief .' }, { role: 'user', content: 'what is gamma ?' }, { role: 'assistant', content: 'delta .' }] },
    ]);
    const q = jsonl(join(root, 'sys-q.jsonl'), [{ id: 'q1', messages: [{ role: 'user', content: 'what is alpha ?' }], output: 'beta .' }]);
    const lines: string[] = [];
    await loadTask(files({ train: sys, queries: q, log: (l) => lines.push(l) }));
    expect(lines.join('\n')).toMatch(/warning: every training conversation has the system turn "be brief \.", but 1 of 1 queries have none \(the template may add its default\) \(e\.g\. .*sys-q\.jsonl:1\)/);
    const same = jsonl(join(root, 'sys-q2.jsonl'), [{ id: 'q1', messages: [{ role: 'system', content: 'be brief .' }, { role: 'user', content: 'what is alpha ?' }], output: 'beta .' }]);
    const quiet: string[] = [];
    await loadTask(files({ train: sys, queries: same, log: (l) => quiet.push(l) }));
    expect(quiet.join('\n')).not.toMatch(/system turn/);
  });
});
