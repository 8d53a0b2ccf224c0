import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttributionRun, CheckpointModel, QUERY_LOSS_RATIO, TRAINING_LOSS_RATIO, checkQueryLoss, checkTrainingLoss, loadTask, methodVariants, npyBytes, readTrainerState, runAttribute, type AttributeOptions, type QueryLossCheck, type TrainingLossCheck } from '@dda/attribution';
import { makeExperiment, type Experiment } from '@dda/experiment';
import { readSafetensors, writeSafetensors } from '@dda/model';

// A very small experiment (as in the harness tests): two LoRA epochs on 120 training samples.
const SMALL = { seed: 0, nPretrain: 600, pretrainEpochs: 2, nTrain: 120, nHeldOut: 16, finetuneEpochs: 2 };
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/cli/bin/dda.js');

let dir: string;
let exp: Experiment;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dda-attr-'));
  exp = await makeExperiment({ ...SMALL, artifactsDir: join(dir, 'exp') });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const files = (): Pick<AttributeOptions, 'base' | 'checkpoints' | 'train' | 'queries' | 'labels'> => ({
  base: exp.files.base, checkpoints: [exp.files.run], train: exp.files.train, queries: exp.files.queries, labels: exp.files.labels,
});
const readNpy = (path: string, rows: number, cols: number): Float64Array => {
  const b = readFileSync(path);
  const headerLen = b.readUInt16LE(8);
  const values = new Float64Array(b.buffer.slice(b.byteOffset + 10 + headerLen, b.byteOffset + b.byteLength));
  expect(values.length).toBe(rows * cols);
  return values;
};

/** One of the loss checks (checkTrainingLoss, checkQueryLoss) on the experiment with some files replaced, and its log lines. */
async function lossCheck<C>(
  fn: (run: AttributionRun, scorer: string, log: (l: string) => void) => Promise<C | { readonly skipped: string }>, replaced: Partial<AttributeOptions>,
): Promise<{ c: C; lines: string[] }> {
  const lines: string[] = [];
  const run = new AttributionRun(await loadTask({ ...files(), ...replaced }), { artifactsDir: join(dir, 'loss-check') });
  const c = await fn(run, 'grad-dot', (l) => lines.push(l));
  await run.dispose();
  if (typeof c === 'object' && c !== null && 'skipped' in c) throw new Error(String(c.skipped));
  return { c: c as C, lines };
}

describe('dda attribute on the files of a fine-tuning run', () => {
  it('the experiment is a trainer output folder of PEFT adapters with trainer_state.json, read back with the learning rate of each checkpoint', async () => {
    const subs = readdirSync(exp.files.run).filter((f) => f.startsWith('checkpoint-')).sort();
    expect(subs).toEqual(['checkpoint-16', 'checkpoint-8']);
    for (const s of subs) expect(readdirSync(join(exp.files.run, s)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'trainer_state.json']);
    const task = await loadTask(files());
    expect(task.checkpoints.map((c) => [c.id, c.kind, c.step, c.info.epoch, c.info.learningRate])).toEqual([['checkpoint-8', 'lora', 8, 1, 3e-3], ['checkpoint-16', 'lora', 16, 2, 3e-3]]);
    expect(task.train.samples).toHaveLength(120);
    expect(task.labels?.every((l) => l.kind === 'group')).toBe(true);
    // θ0 in LoRA coordinates: the final lora_A, lora_B zero.
    for (const [name, t] of task.baseCheckpoint.weights) {
      if (name.endsWith('lora_B.weight')) expect(t.data.every((x) => x === 0)).toBe(true);
      else expect(t.data).toEqual(task.checkpoints[1]!.weights.get(name)!.data);
    }
  });

  it('the onnxruntime engine gives the tfjs engine\'s losses, representations and generations at every checkpoint', async () => {
    const task = await loadTask(files());
    const [onnx, tfjs] = await Promise.all([CheckpointModel.open(task, { gradientEngine: 'onnxruntime' }), CheckpointModel.open(task, { gradientEngine: 'tfjs' })]);
    expect([onnx.gradientEngine, onnx.backend, tfjs.gradientEngine]).toEqual(['onnxruntime', 'onnxruntime-cpu', 'tfjs']);
    const samples = [...task.train.samples.slice(0, 4), ...task.queries.slice(0, 3).map((q) => q.sample)];
    const prompts = task.queries.slice(0, 3).map((q) => q.sample.prompt);
    for (const cp of [task.baseCheckpoint, ...task.checkpoints]) {
      const [lo, lt] = [await onnx.losses(cp, samples), await tfjs.losses(cp, samples)];
      lt.forEach((l, i) => expect(Math.abs(lo[i]! - l) / l, `${cp.id} loss ${i}`).toBeLessThan(1e-5));
      const [ro, rt] = [await onnx.representations(cp, samples), await tfjs.representations(cp, samples)];
      rt.forEach((row, i) => {
        const scale = Math.max(...Array.from(row, Math.abs));
        row.forEach((x, j) => expect(Math.abs(ro[i]![j]! - x), `${cp.id} representation ${i}`).toBeLessThan(1e-4 * scale));
      });
      expect(await onnx.generate(cp, prompts, 24), cp.id).toEqual(await tfjs.generate(cp, prompts, 24));
      // cea's optimizer steps: 3 Adam steps on one test output from the checkpoint, then the losses.
      const steps = { steps: 3, learningRate: 3e-3, optimizer: 'adam' } as const;
      const [so, st] = [await onnx.lossesAfterSteps(cp, samples.slice(-1), samples, steps), await tfjs.lossesAfterSteps(cp, samples.slice(-1), samples, steps)];
      st.forEach((l, i) => {
        expect(Math.abs(so[i]! - l) / l, `${cp.id} loss after steps ${i}`).toBeLessThan(1e-4);
        expect(Math.abs((so[i]! - lo[i]!) - (l - lt[i]!)), `${cp.id} change of loss ${i}`).toBeLessThan(1e-2 * Math.abs(l - lt[i]!) + 1e-6);
      });
      expect(Array.from(await onnx.losses(cp, samples)), 'the checkpoint is left as it was').toEqual(Array.from(lo));
    }
    await Promise.all([onnx.dispose(), tfjs.dispose()]);
  });

  it('gives the benchmark path\'s scores in a fresh process, from the files alone', async () => {
    const task = await loadTask(files());
    const run = new AttributionRun(task, { artifactsDir: join(dir, 'bench-path') });
    const method = { scorer: 'grad-dot', debias: 'raw', denoise: 'mean', beta: 1 };
    const inProcess = (await methodVariants(await run.scoreCheckpoints('grad-dot'), task.checkpoints.map((c) => c.info), method)).method.matrix;
    await run.dispose();
    const out = join(dir, 'cli-out');
    const r = spawnSync(process.execPath, [CLI, 'attribute', '--base', exp.files.base, '--checkpoints', exp.files.run, '--train', exp.files.train, '--queries', exp.files.queries,
      '--labels', exp.files.labels, '--scorer', 'grad-dot', '--debias', 'raw', '--denoise', 'mean', '--out', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ROC-AUC/);
    const values = readNpy(join(out, 'scores.npy'), task.train.samples.length, task.queries.length);
    expect(Array.from(values)).toEqual(Array.from(inProcess.values));
    const meta = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8'));
    expect(meta.train_ids).toEqual(task.train.samples.map((s) => s.id));
    expect(meta.query_ids).toEqual(task.queries.map((q) => q.record.id));
    expect(meta.sign).toMatch(/higher score = training sample more responsible/);
    expect(meta.measurement).toMatchObject({ id: 'loss' }); // the test measurement the scores differentiate
    expect(r.stdout).toMatch(/^Attribution \(grad-dot;.*; test measurement loss\)/m);
    for (const f of ['topk.csv', 'topk.jsonl', 'report.html', 'summary.json', 'metrics.csv']) expect(existsSync(join(out, f)), f).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.inputs.hashes.checkpoints['checkpoint-16']['adapter_model.safetensors']).toMatch(/^[0-9a-f]{16}$/);
    expect(summary.command).toMatch(/^dda attribute --base/);
    expect(summary.trainingLoss).toMatchObject({ checkpoint: 'checkpoint-16', samples: 64, warning: null });
    expect(summary.trainingLoss.measured).toBeGreaterThan(0);
    expect(summary.trainingLoss.logged).toBe(exp.finetuneLosses[1]);
    expect(summary.queryLoss).toMatchObject({ checkpoint: 'checkpoint-16', queries: task.queries.length, training: summary.trainingLoss.measured, warning: null });
  });

  it('the run\'s trainer_state.json is what trainer.save_state() writes: the checkpoints\' log, then train_loss', () => {
    const top = readTrainerState(join(exp.files.run, 'trainer_state.json'));
    const last = readTrainerState(join(exp.files.run, 'checkpoint-16', 'trainer_state.json'));
    expect(top.history.slice(0, -1)).toEqual(last.history);
    expect(last.history.map((e) => e.loss)).toEqual(exp.finetuneLosses);
    expect(top.history[top.history.length - 1]).toEqual({ epoch: 2, step: 16, train_loss: (exp.finetuneLosses[0]! + exp.finetuneLosses[1]!) / 2 });
  });

  it('warns, with both numbers, when the training data are not rendered as the model was trained on them', async () => {
    const check = (train: string): Promise<{ c: TrainingLossCheck; lines: string[] }> => lossCheck(checkTrainingLoss, { train });
    const faithful = await check(exp.files.train);
    expect(faithful.c.warning).toBe(null);
    expect(faithful.c.ratio).toBeLessThan(TRAINING_LOSS_RATIO);
    expect(faithful.lines.join('\n')).toMatch(/training loss check: \d\.\d{3} nats\/token on 64 training samples at checkpoint-16, against \d\.\d{3} logged in training \(the 'loss' entry of the last epoch logged \(step 16\)/);
    // The same records as prompt/response pairs, the document as the raw prompt: no chat template,
    // no system prompt, no instruction (this lightly trained model's loss barely moves with subtler
    // changes: 1.07× for the Alpaca layout; the demo's, trained longer, 1.38× to 1.61×).
    const rows = readFileSync(exp.files.train, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; document: string; summary: string });
    const raw = join(dir, 'train-raw.jsonl');
    writeFileSync(raw, rows.map((r) => JSON.stringify({ id: r.id, prompt: r.document, response: r.summary })).join('\n'));
    const other = await check(raw);
    expect(other.c.ratio).toBeGreaterThan(TRAINING_LOSS_RATIO);
    expect(other.c.warning).toMatch(new RegExp(`^warning: the final checkpoint's loss on --train is ${other.c.ratio.toFixed(2)}× the training loss its trainer logged: ${other.c.measured.toFixed(3)} nats/token on 64 training samples at checkpoint-16, against ${other.c.logged.toFixed(3)} logged in training .*rendered differently from training \\(chat template, Alpaca layout, system prompt`));
    expect(other.lines).toContain(other.c.warning);
  });

  it('warns, with both numbers, when the queries are not rendered as the training data (their outputs\' loss against the training samples\')', async () => {
    const check = (queries: string): Promise<{ c: QueryLossCheck; lines: string[] }> => lossCheck(checkQueryLoss, { queries, labels: undefined });
    const faithful = await check(exp.files.queries);
    expect(faithful.c.warning).toBe(null);
    expect(faithful.c.ratio).toBeLessThan(QUERY_LOSS_RATIO);
    // The demo's queries with the document as a raw prompt after "Summarize: " (no chat template, no system prompt).
    const rows = readFileSync(exp.files.queries, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const raw = join(dir, 'queries-raw.jsonl');
    writeFileSync(raw, rows.map(({ document, ...r }) => JSON.stringify({ ...r, prompt: `Summarize: ${String(document)}` })).join('\n'));
    const other = await check(raw);
    expect(other.c.ratio).toBeGreaterThan(QUERY_LOSS_RATIO);
    expect(other.c.training).toBe(faithful.c.training);
    expect(other.c.warning).toMatch(new RegExp(`^warning: the final checkpoint's loss on the query outputs is ${other.c.ratio.toFixed(2)}× its loss on --train: ${other.c.measured.toFixed(3)} nats/token on the outputs of ${other.c.queries} queries at checkpoint-16, against ${other.c.training.toFixed(3)} on 64 training samples`));
    expect(other.lines).toContain(other.c.warning);
  });

  it('with grad-cos, a query that copies a training sample ranks that sample first', async () => {
    const train = readFileSync(exp.files.train, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; document: string; summary: string });
    const picks = [train[5]!, train[77]!];
    const queries = join(dir, 'copies.jsonl');
    writeFileSync(queries, picks.map((t) => JSON.stringify({ id: `copy-of-${t.id}`, document: t.document, output: t.summary })).join('\n'));
    // An earlier run's metrics.csv in the same --out: this run has no labels, so it must not stay beside the new scores.
    mkdirSync(join(dir, 'copies'), { recursive: true });
    writeFileSync(join(dir, 'copies', 'metrics.csv'), 'variant,source,auc\nmethod,average,99\n');
    const lines: string[] = [];
    const r = await runAttribute({ ...files(), queries, labels: undefined, out: join(dir, 'copies'), method: { scorer: 'grad-cos', debias: null, denoise: null, beta: 1 }, topK: 3, log: (l) => lines.push(l) });
    expect(existsSync(join(dir, 'copies', 'metrics.csv'))).toBe(false);
    expect(lines.join('\n')).toMatch(/removed .*metrics\.csv: it held an earlier run's metrics, and this run has no --labels/);
    expect(r.tops.map((q) => q.top[0]!.trainId)).toEqual(picks.map((t) => t.id));
    expect(r.tops[0]!.top[0]!.score).toBeCloseTo(1, 5);
    const csv = readFileSync(join(dir, 'copies', 'topk.csv'), 'utf8').split('\n');
    expect(csv[0]).toBe('query_id,group,rank,train_id,score,true_source,train_where,train_prompt,train_response');
    expect(csv[1]).toMatch(new RegExp(`^copy-of-${picks[0]!.id},,1,${picks[0]!.id},`));
  });

  it('changing one input recomputes exactly the artifacts that depend on it', async () => {
    const artifactsDir = join(dir, 'deps-artifacts');
    // The first 64 training records in blocks of 16.
    const lines = readFileSync(exp.files.train, 'utf8').trim().split('\n').slice(0, 64);
    const train64 = join(dir, 'train-64.jsonl');
    writeFileSync(train64, lines.join('\n'));
    const opts = (o: Partial<AttributeOptions>): AttributeOptions => ({ ...files(), train: train64, labels: undefined, out: join(dir, 'deps-out'), artifactsDir, blockRows: 16, method: { scorer: 'grad-dot', debias: 'raw', denoise: 'mean', beta: 1 }, ...o });
    const first = await runAttribute(opts({}));
    const cps = ['base', 'checkpoint-8', 'checkpoint-16'];
    const blocks = [0, 1, 2, 3];
    const grads = (cp: string, which: number[]): string[] => which.map((b) => `gradients/${cp}/train/${b}`);
    const scores = (cp: string, which: number[]): string[] => which.map((b) => `scores/grad-dot/${cp}/block-${b}`);
    const lossSample = 'losses/checkpoint-16/train-sample'; // the training loss check at the final checkpoint
    const queryLoss = 'losses/checkpoint-16/query-sample'; // the query loss check
    expect([...first.computed].sort()).toEqual([...cps.flatMap((cp) => [...grads(cp, blocks), `gradients/${cp}/queries`, ...scores(cp, blocks)]), lossSample, queryLoss].sort());
    expect((await runAttribute(opts({}))).computed).toEqual([]);

    // One training record (the 20th: block 1) edited.
    const rec = JSON.parse(lines[19]!) as { summary: string };
    lines[19] = JSON.stringify({ ...rec, summary: `${rec.summary} again` });
    const train = join(dir, 'train-edited.jsonl');
    writeFileSync(train, lines.join('\n'));
    const t = await runAttribute(opts({ train }));
    expect([...t.computed].sort()).toEqual([...cps.flatMap((cp) => [...grads(cp, [1]), ...scores(cp, [1])]), lossSample].sort());

    // One tensor of the first checkpoint changed: only that checkpoint is recomputed (θ0 takes lora_A from the last one).
    const run = join(dir, 'run-edited');
    cpSync(exp.files.run, run, { recursive: true });
    const path = join(run, 'checkpoint-8', 'adapter_model.safetensors');
    const st = readSafetensors(readFileSync(path), path);
    const [name, tensor] = [...st.tensors].find(([n]) => n.includes('lora_B'))!;
    const data = Float32Array.from(tensor.data);
    data[0] = (data[0] as number) + 1e-3;
    st.tensors.set(name, { shape: tensor.shape, data });
    writeFileSync(path, writeSafetensors(st.tensors, st.metadata));
    const c = await runAttribute(opts({ checkpoints: [run] }));
    expect([...c.computed].sort()).toEqual([...grads('checkpoint-8', blocks), 'gradients/checkpoint-8/queries', ...scores('checkpoint-8', blocks)].sort());

    // One query edited: the queries' gradients and every score. The training gradients were streamed
    // (not stored), so every block's are computed again; with --store-gradients, none is.
    const qLines = readFileSync(exp.files.queries, 'utf8').trim().split('\n');
    const q0 = JSON.parse(qLines[0]!) as { output: string };
    qLines[0] = JSON.stringify({ ...q0, output: `${q0.output} again` });
    const queries = join(dir, 'queries-edited.jsonl');
    writeFileSync(queries, qLines.join('\n'));
    const q = await runAttribute(opts({ queries }));
    expect([...q.computed].sort()).toEqual([...cps.flatMap((cp) => [...grads(cp, blocks), `gradients/${cp}/queries`, ...scores(cp, blocks)]), queryLoss].sort());
    const storing = (o: Partial<AttributeOptions>): AttributeOptions => opts({ artifactsDir: join(dir, 'deps-stored'), storeGradients: true, ...o });
    expect((await runAttribute(storing({}))).computed.filter((n) => n.includes('/train/'))).toHaveLength(cps.length * blocks.length);
    const qs = await runAttribute(storing({ queries }));
    expect([...qs.computed].sort()).toEqual([...cps.flatMap((cp) => [`gradients/${cp}/queries`, ...scores(cp, blocks)]), queryLoss].sort());

    // The tokenizer changed: everything that runs the model.
    const base = join(dir, 'base-edited');
    cpSync(exp.files.base, base, { recursive: true });
    writeFileSync(join(base, 'tokenizer.json'), `${readFileSync(join(base, 'tokenizer.json'), 'utf8').trimEnd()}\n\n`);
    const k = await runAttribute(opts({ base }));
    expect(k.computed.length).toBe(first.computed.length);
  }, 600_000);

  it('writes a score matrix NumPy reads in one line', () => {
    const py = '/usr/bin/python3';
    const probe = spawnSync(py, ['-c', 'import numpy'], { encoding: 'utf8' });
    expect(probe.status, `numpy under ${py} (apt-get install python3-numpy): ${probe.stderr}`).toBe(0);
    const p = join(dir, 'm.npy');
    writeFileSync(p, npyBytes(Float64Array.of(1, -2.5, 3e-9, 4, 5, 6), 2, 3));
    const r = spawnSync(py, ['-c', `import numpy; a = numpy.load(${JSON.stringify(p)}); print(a.shape, a.dtype, a[0].tolist(), a[1, 2])`], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('(2, 3) float64 [1.0, -2.5, 3e-09] 6.0');
  });
});
