import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradientMatrix } from '@dda/core';
import { float32ToF16Bits } from '@dda/model';
import {
  CheckpointModel, GradientProjector, INDEX_FILES, buildGradientIndex, loadTask, planProjection, queryGradientIndex, readIndexHeader, readIndexRows,
  type AttributionTask, type Checkpoint, type IndexBuildOptions,
} from '@dda/attribution';
import { makeUserRun, type UserRun } from './fixtures/user-run.js';

// The index on the tiny user run (random llama2-tiny base, rank-4 LoRA on every linear map): 12
// training samples, 4 queries (each query is training sample t0, t3, t6 or t9's prompt and
// response), at checkpoint-100.
let dir: string;
let run: UserRun;
let task: AttributionTask;
let model: CheckpointModel;
let cp: Checkpoint;
let exactTrain: GradientMatrix;
let exactQueries: GradientMatrix;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dda-index-'));
  run = makeUserRun(join(dir, 'user'), 12, 4);
  task = await loadTask({ base: run.base, checkpoints: [run.run], train: run.train, queries: run.queries });
  cp = task.checkpoints.find((c) => c.id === 'checkpoint-100') as Checkpoint;
  model = await CheckpointModel.open(task);
  exactTrain = await model.gradients(cp, task.train.samples);
  exactQueries = await model.gradients(cp, task.queries.map((q) => q.sample));
}, 300_000);
afterAll(async () => {
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const build = (out: string, o: Partial<IndexBuildOptions> = {}): ReturnType<typeof buildGradientIndex> =>
  buildGradientIndex({ base: run.base, checkpoints: [run.run], train: run.train, checkpoint: 'checkpoint-100', out, dim: 2048, seed: 1, blockRows: 4, ...o });

const dot = (a: ArrayLike<number>, b: ArrayLike<number>, from = 0, to = a.length): number => {
  let s = 0;
  for (let i = from; i < to; i++) s += (a[i] as number) * (b[i] as number);
  return s;
};

describe('the seeded projection', () => {
  const layout = { names: ['a.lora_A.weight', 'a.lora_B.weight', 'b.lora_A.weight'], sizes: [300, 100, 600] };
  const rows = Array.from({ length: 6 }, (_, r) => Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 0.37 + r) * (1 + (i % 7))));

  it('splits k proportionally to tensor size, at least one each, summing to k', () => {
    expect(planProjection(layout, 100).map((m) => [m.dims, m.offset])).toEqual([[30, 0], [10, 30], [60, 40]]);
    // Shares 2.1, 0.7, 4.2: floors 2, 0, 4, the largest remainder (0.7) gets the seventh.
    expect(planProjection(layout, 7).map((m) => m.dims)).toEqual([2, 1, 4]);
    // Shares 0.9, 0.3, 1.8: by remainder 1, 0, 2; the empty one takes one from the largest.
    expect(planProjection(layout, 3).map((m) => m.dims)).toEqual([1, 1, 1]);
    expect(() => planProjection(layout, 2)).toThrow(/k = 2 dimensions for 3 tensors/);
  });

  it('projectRows: on the dot-product kernel within 1e-6 of the float64 loop per row, the same bits for the same batch, the loop itself under engine js, for both kinds', async () => {
    for (const kind of ['rademacher', 'gaussian'] as const) {
      const p = new GradientProjector({ kind, seed: 3, dim: 64 }, layout);
      const exact = rows.map((r) => p.project(r));
      const onKernel = await p.projectRows(rows);
      expect(onKernel.how).toMatch(/^float32 GEMM on onnxruntime/);
      onKernel.rows.forEach((r, i) => {
        const e = exact[i] as Float64Array;
        const scale = e.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
        r.forEach((x, j) => expect(Math.abs(x - (e[j] as number)) / scale, `${kind} row ${i} entry ${j}`).toBeLessThan(1e-6));
      });
      expect((await p.projectRows(rows)).rows).toEqual(onKernel.rows);
      const js = await p.projectRows(rows, { engine: 'js' });
      expect(js.how).toBe('float64 JavaScript loop');
      expect(js.rows).toEqual(exact);
    }
    await expect(new GradientProjector({ kind: 'rademacher', seed: 3, dim: 64 }, layout).projectRows([new Float32Array(999)])).rejects.toThrow(/a gradient row of 999 entries, expected 1000/);
  });

  it('is the same under its seed whatever rows were projected before (so independent of the block a row is in), and another seed gives another projection', () => {
    const spec = { kind: 'rademacher' as const, seed: 5, dim: 64 };
    const all = new GradientProjector(spec, layout);
    const together = rows.map((r) => Array.from(all.project(r)));
    const fresh = rows.map((r) => Array.from(new GradientProjector(spec, layout).project(r)));
    const reversed = new GradientProjector(spec, layout);
    const backwards = [...rows].reverse().map((r) => Array.from(reversed.project(r))).reverse();
    expect(fresh).toEqual(together);
    expect(backwards).toEqual(together);
    expect(Array.from(new GradientProjector({ ...spec, seed: 6 }, layout).project(rows[0] as Float32Array))).not.toEqual(together[0]);
    // Rademacher entries are ±1/√k_m exactly: projecting a unit vector gives ±1/√k_m.
    const e0 = new Float32Array(1000);
    e0[0] = 1;
    const y = all.project(e0);
    const k0 = all.modules[0]?.dims as number;
    expect(k0).toBe(19); // 64 · 300/1000 = 19.2
    for (let i = 0; i < k0; i++) expect(Math.abs(y[i] as number)).toBe(1 / Math.sqrt(k0));
    for (let i = k0; i < 64; i++) expect(y[i]).toBe(0);
  });

  it('preserves inner products in expectation: the mean over 200 seeds of ⟨Pg, Ph⟩ is within 4 standard errors of ⟨g, h⟩, for both kinds', () => {
    const g = rows[0] as Float32Array;
    const h = rows[1] as Float32Array;
    const exact = dot(g, h);
    for (const kind of ['rademacher', 'gaussian'] as const) {
      const xs = Array.from({ length: 200 }, (_, s) => {
        const p = new GradientProjector({ kind, seed: s, dim: 16 }, layout);
        return dot(p.project(g), p.project(h));
      });
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
      expect(Math.abs(mean - exact)).toBeLessThan(4 * sd / Math.sqrt(xs.length));
    }
  });
});

describe('dda index', () => {
  it('rows equal the projected full gradients (float32 products per tensor, within 1e-5 of the float64 loop) rounded to float16, bit for bit; numpy reads them with the documented line', async () => {
    const out = join(dir, 'a');
    const h = await build(out);
    expect(h).toMatchObject({ count: 12, dim: 2048, dtype: 'float16', measurement: 'loss', projection: { kind: 'rademacher', seed: 1, dim: 2048, split: 'proportional' } });
    expect(h.checkpoint).toMatchObject({ id: 'checkpoint-100', kind: 'lora', hash: cp.hash });
    expect(h.model.hash).toEqual(task.base.hash);
    expect(h.trainIds).toEqual(task.train.samples.map((s) => s.id));
    expect(h.modules.reduce((a, m) => a + m.dims, 0)).toBe(2048);
    expect(h.bytesPerRow).toEqual({ index: 4096, fullGradient: exactTrain.dim * 4 });
    // The same blocks of 4 through CheckpointModel.gradients, projected with the index's recorded
    // projection in the same batches (one product per tensor on the dot-product kernel, as the build).
    const projector = new GradientProjector(h.projection, { names: exactTrain.parameterNames, sizes: exactTrain.parameterSizes });
    const expected = new Uint16Array(12 * 2048);
    let worst = 0;
    for (let s = 0; s < 12; s += 4) {
      const g = await model.gradients(cp, task.train.samples.slice(s, s + 4));
      const batch = await projector.projectRows(g.rows);
      expect(batch.how).toMatch(/^float32 GEMM on onnxruntime/);
      batch.rows.forEach((r, i) => r.forEach((v, j) => (expected[(s + i) * 2048 + j] = float32ToF16Bits(v))));
      // Against the float64 loop: float32 accumulation, about 1e-6 of the row's largest entry.
      g.rows.forEach((r, i) => {
        const exact = projector.project(r);
        const scale = exact.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
        exact.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - (batch.rows[i] as Float64Array)[j]!) / scale)));
      });
    }
    expect(worst).toBeGreaterThan(0); // a float32 product, not the float64 loop
    expect(worst).toBeLessThan(1e-5);
    const bytes = readFileSync(join(out, INDEX_FILES.rows));
    expect(Array.from(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2))).toEqual(Array.from(expected));
    // numpy, with the line index.json documents, run in the index folder.
    const line = h.read.split('  #')[0] as string;
    expect(line).toBe('np.memmap("gradients.f16", dtype=np.float16, mode="r", shape=(12, 2048))');
    const py = `import json, numpy as np\nx = ${line}\nprint(json.dumps({"shape": list(x.shape), "rows": x.astype(np.float64).tolist()}))`;
    const r = JSON.parse(execFileSync('/usr/bin/python3', ['-c', py], { cwd: out, encoding: 'utf8', maxBuffer: 1 << 28 })) as { shape: number[]; rows: number[][] };
    expect(r.shape).toEqual([12, 2048]);
    const ours = readIndexRows(out, readIndexHeader(out), 0, 12);
    expect(r.rows.flat()).toEqual(Array.from(ours));
  }, 300_000);

  it('at θ0 (--checkpoint base: lora_B = 0) the lora_A matrices\' dimensions are exactly zero (their gradient is B-weighted), the lora_B ones are not', async () => {
    const h = await build(join(dir, 'base'), { checkpoint: 'base', dim: 256 });
    expect(h.checkpoint).toMatchObject({ id: 'base', kind: 'lora', hash: { adapterAFrom: 'checkpoint-100' } });
    const rows = readIndexRows(join(dir, 'base'), h, 0, 12);
    for (const m of h.modules) {
      let energy = 0;
      for (let i = 0; i < 12; i++) for (let x = m.offset; x < m.offset + m.dims; x++) energy += (rows[i * 256 + x] as number) ** 2;
      if (m.name.endsWith('lora_A.weight')) expect(energy).toBe(0);
      else expect(energy).toBeGreaterThan(0);
    }
  }, 300_000);

  it('resumes a build killed after its first block at the next block, to the same bytes, and cuts off a half-written block', async () => {
    const out = join(dir, 'resumed');
    await expect(build(out, { onBlock: (done) => { if (done === 4) throw new Error('killed'); } })).rejects.toThrow('killed');
    expect(JSON.parse(readFileSync(join(out, INDEX_FILES.progress), 'utf8')).rowsDone).toBe(4);
    expect(() => readIndexHeader(out)).toThrow(/its build has not finished/);
    appendFileSync(join(out, INDEX_FILES.rows), Buffer.alloc(3000, 0x7b)); // a block that was being written
    // Another block size would project the remaining rows in other batches (other last bits): refused.
    await expect(build(out, { blockRows: 2 })).rejects.toThrow(/holds an unfinished build of another index \(--block-rows: 4 in the unfinished build, 2 now\)/);
    const blocks: number[] = [];
    const lines: string[] = [];
    await build(out, { onBlock: (d) => blocks.push(d), log: (l) => lines.push(l) });
    expect(blocks).toEqual([8, 12]);
    expect(lines.join('\n')).toContain('resuming at row 4 of 12');
    expect(readFileSync(join(out, INDEX_FILES.rows)).equals(readFileSync(join(dir, 'a', INDEX_FILES.rows)))).toBe(true);
    // One build per folder: a lock held by a running process (a child that sleeps) refuses a second
    // build; a lock left by a process that has ended is taken over, and so is one with this process's
    // own id that this process does not hold (left by an earlier process with the same id).
    const locked = join(dir, 'locked');
    mkdirSync(locked, { recursive: true });
    const running = spawn('sleep', ['60']);
    try {
      writeFileSync(join(locked, 'build.lock'), JSON.stringify({ pid: running.pid, host: hostname(), started: 'then' }));
      await expect(build(locked)).rejects.toThrow(/another dda index build \(process \d+, started then\) is writing into this folder/);
    } finally {
      running.kill();
    }
    writeFileSync(join(locked, 'build.lock'), JSON.stringify({ pid: process.pid, host: hostname(), started: 'then' }));
    const own: string[] = [];
    await build(join(dir, 'locked'), { log: (l) => own.push(l) });
    expect(own.join('\n')).toContain(`build.lock was left by a build that is not running (process ${process.pid}); taking the folder over`);
    rmSync(locked, { recursive: true });
    mkdirSync(locked, { recursive: true });
    const ended = spawnSync('true').pid as number;
    writeFileSync(join(locked, 'build.lock'), JSON.stringify({ pid: ended, host: hostname(), started: 'then' }));
    const taken: string[] = [];
    await build(locked, { log: (l) => taken.push(l) });
    expect(taken.join('\n')).toContain(`build.lock was left by a build that is not running (process ${ended}); taking the folder over`);
    expect(existsSync(join(locked, 'build.lock'))).toBe(false);
    // A build whose lock is replaced while it runs (another build took the folder) stops before
    // recording its next block; the same command then resumes after the recorded one.
    const stolen = join(dir, 'stolen');
    const other = JSON.stringify({ pid: process.pid, host: hostname(), started: 'other' });
    await expect(build(stolen, { onBlock: (done) => { if (done === 4) writeFileSync(join(stolen, 'build.lock'), other); } })).rejects.toThrow(/build\.lock was replaced by another build's while it was writing; stopped before recording more rows/);
    expect(JSON.parse(readFileSync(join(stolen, INDEX_FILES.progress), 'utf8')).rowsDone).toBe(4);
    expect(readFileSync(join(stolen, 'build.lock'), 'utf8')).toBe(other); // the other build's lock is left alone
    rmSync(join(stolen, 'build.lock'));
    await build(stolen);
    expect(readFileSync(join(stolen, INDEX_FILES.rows)).equals(readFileSync(join(dir, 'a', INDEX_FILES.rows)))).toBe(true);
    // A header read, then the index rebuilt in the same process: the new header's rows read; the
    // old header's refused (its rows file is not the one it vouched for).
    const before = readIndexHeader(stolen);
    rmSync(stolen, { recursive: true });
    const rebuilt = await build(stolen);
    expect(readIndexRows(stolen, rebuilt, 0, 2)).toHaveLength(2 * rebuilt.dim);
    expect(() => readIndexRows(stolen, before, 0, 2)).toThrow(/gradients\.f16 changed after its check against index\.json/);
    // Finished: the same command does nothing; another projection into the same folder is refused.
    const again: number[] = [];
    await build(out, { onBlock: (d) => again.push(d) });
    expect(again).toEqual([]);
    await expect(build(out, { seed: 2 })).rejects.toThrow(/holds another index \(projection\.seed: index 1, given 2\)/);
  }, 300_000);

  it('scores at k = 8192 approximate exact grad-dot within 6 JL standard deviations plus float16 rounding, the top-3 equal exact grad-dot\'s, and every pair the bound decides is in exact order', async () => {
    const out = join(dir, 'large');
    const h = await build(out, { dim: 8192, seed: 3, blockRows: 12 });
    const r = await queryGradientIndex({ index: out, queries: run.queries, topK: 12 });
    const projector = new GradientProjector(h.projection, { names: exactTrain.parameterNames, sizes: exactTrain.parameterSizes });
    const rows = readIndexRows(out, h, 0, 12);
    let worst = 0;
    let determined = 0;
    for (const [j, q] of exactQueries.rows.entries()) {
      const top = r.tops[j]?.top ?? [];
      expect(top).toHaveLength(12);
      const scoreOf = new Map(top.map((t) => [t.trainId, t.score]));
      const exactScores = exactTrain.rows.map((g) => dot(g, q));
      const tols: number[] = [];
      for (const [i, g] of exactTrain.rows.entries()) {
        // Var⟨P_m g_m, P_m h_m⟩ = (‖g_m‖²‖h_m‖² + (g_m·h_m)² − 2 Σ g²h²)/k_m for Rademacher entries (exact), summed over tensors.
        let variance = 0;
        let off = 0;
        for (const m of projector.modules) {
          const gg = dot(g, g, off, off + m.size);
          const hh = dot(q, q, off, off + m.size);
          const gh = dot(g, q, off, off + m.size);
          let g2h2 = 0;
          for (let x = off; x < off + m.size; x++) g2h2 += (g[x] as number) ** 2 * (q[x] as number) ** 2;
          variance += (gg * hh + gh * gh - 2 * g2h2) / m.dims;
          off += m.size;
        }
        // float16 rounding of each stored entry: relative error ≤ 2⁻¹¹ (normal range), so |Δ| ≤ 2⁻¹¹ Σ|y_x q_x|.
        const y = rows.subarray(i * 8192, (i + 1) * 8192);
        const qp = r.queryRows[j] as Float64Array;
        let f16 = 0;
        for (let x = 0; x < 8192; x++) f16 += Math.abs((y[x] as number) * (qp[x] as number));
        const tol = 6 * Math.sqrt(variance) + 2 ** -11 * f16;
        const err = Math.abs((scoreOf.get(exactTrain.ids[i] as string) as number) - (exactScores[i] as number));
        expect(err).toBeLessThanOrEqual(tol);
        worst = Math.max(worst, err / tol);
        tols.push(tol);
      }
      const order = exactScores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]);
      expect(top.slice(0, 3).map((t) => t.trainId)).toEqual(order.slice(0, 3).map(([, i]) => exactTrain.ids[i]));
      // Every pair whose exact scores are further apart than the sum of their tolerances is ranked in the same order by the index.
      for (let a = 0; a < 12; a++) {
        for (let b = 0; b < 12; b++) {
          if ((exactScores[a] as number) - (exactScores[b] as number) <= (tols[a] as number) + (tols[b] as number)) continue;
          determined++;
          expect(scoreOf.get(exactTrain.ids[a] as string) as number).toBeGreaterThan(scoreOf.get(exactTrain.ids[b] as string) as number);
        }
      }
    }
    // The errors are well inside the bound (the largest is under a third of its tolerance at this seed), and the bound decides
    // enough pairs for the order check to mean something (60 of the 264 ordered pairs at this seed).
    expect(worst).toBeLessThan(0.5);
    expect(determined).toBeGreaterThanOrEqual(50);
    // The query whose output is training sample t0's response ranks t0 first.
    expect(r.tops[0]?.top[0]?.trainId).toBe('t0');
    expect(r.tops[0]?.top[0]?.where).toMatch(/train\.jsonl:1$/);
  }, 300_000);

  it('--normalize gives cosines (as grad-cos): a query identical to a training sample has cosine ≈ 1 with it, whatever the rows read per chunk', async () => {
    const r = await queryGradientIndex({ index: join(dir, 'large'), queries: run.queries, topK: 2, normalize: true });
    expect(r.tops.map((t) => t.top[0]?.trainId)).toEqual(['t0', 't3', 't6', 't9']);
    for (const t of r.tops) expect(t.top[0]?.score).toBeGreaterThan(0.999);
    // Read in chunks of 5 rows: the same lists, bit for bit.
    const chunked = await queryGradientIndex({ index: join(dir, 'large'), queries: run.queries, topK: 2, normalize: true, chunkRows: 5 });
    expect(chunked.tops).toEqual(r.tops);
  }, 300_000);

  it('refuses a query with another checkpoint, projection or measurement, naming the difference', async () => {
    const out = join(dir, 'a');
    // checkpoint-50's adapter in a folder named checkpoint-100: same id, other content.
    const other = join(dir, 'other', 'checkpoint-100');
    cpSync(join(run.run, 'checkpoint-50'), other, { recursive: true });
    await expect(queryGradientIndex({ index: out, queries: run.queries, checkpoints: [other] })).rejects.toThrow(/built with another model or checkpoint than those of this query, given with --base \/ --checkpoints \(checkpoint\.hash\.adapter_model\.safetensors: index "[0-9a-f]+", given "[0-9a-f]+"/);
    await expect(queryGradientIndex({ index: out, queries: run.queries, projection: { seed: 9 } })).rejects.toThrow(/projected otherwise than asked \(seed: index 1, given 9\)/);
    await expect(queryGradientIndex({ index: out, queries: run.queries, projection: { kind: 'gaussian', dim: 2048 } })).rejects.toThrow(/kind: index rademacher, given gaussian/);
    await expect(queryGradientIndex({ index: out, queries: run.queries, measurement: 'contrastive' })).rejects.toThrow(/answers queries under the measurement 'loss', not 'contrastive'/);
  }, 300_000);
});

describe('the rendering options of dda attribute', () => {
  it('--loss-on and --tokenizer are recorded in index.json, and the queries render with the recorded tokenizer', async () => {
    const out = join(dir, 'rendering');
    const h = await build(out, { lossOn: 'all', tokenizer: run.base });
    expect(h.encoding).toMatchObject({ lossOn: 'all', tokenizer: run.base });
    expect(readIndexHeader(out).encoding).toMatchObject({ lossOn: 'all', tokenizer: run.base });
    // The raw prompt/response records take the loss over the response whatever --loss-on says: the same rows as the default build.
    const plain = await build(join(dir, 'rendering-default'));
    expect(plain.encoding).not.toHaveProperty('lossOn');
    expect(readIndexRows(out, h, 0, 12)).toEqual(readIndexRows(join(dir, 'rendering-default'), plain, 0, 12));
    const r = await queryGradientIndex({ index: out, queries: run.queries, topK: 3 });
    expect(r.tops).toHaveLength(4);
    await expect(build(join(dir, 'rendering-date'), { chatDate: '2025-01-01' })).rejects.toThrow(/--chat-date 2025-01-01 has no effect/);
  }, 300_000);
});

describe("the input checks of dda attribute, at build and at query time", () => {
  /** The tiny run's training data as chat conversations (rendered with the chat template), and its queries as conversations (clean) or with raw prompts (the run's own). */
  const chatFiles = (): { train: string; queries: string } => {
    const rows = readFileSync(run.train, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; prompt: string; response: string });
    const train = join(dir, 'chat-train.jsonl');
    writeFileSync(train, rows.map((r) => JSON.stringify({ id: r.id, messages: [{ role: 'user', content: r.prompt }, { role: 'assistant', content: r.response }] })).join('\n'));
    const queries = join(dir, 'chat-queries.jsonl');
    writeFileSync(queries, [0, 3, 6, 9].map((i) => JSON.stringify({ id: `q${i}`, messages: [{ role: 'user', content: rows[i]!.prompt }], output: rows[i]!.response })).join('\n'));
    return { train, queries };
  };
  const warnings = (lines: readonly string[]): string[] => lines.filter((l) => l.startsWith('warning:'));

  it('a raw-prompt query against an index of chat-rendered training data warns as dda attribute does; a query rendered as the training data gives no warning', async () => {
    const chat = chatFiles();
    const out = join(dir, 'chat');
    const built: string[] = [];
    const h = await build(out, { train: chat.train, log: (l) => built.push(l) });
    // The build logs the first sample as the model sees it, and records how the samples render and their loss at the last checkpoint.
    expect(built.find((l) => l.startsWith('training data:'))).toContain(`first sample as the model sees it, prompt | response (${chat.train}:1): "<|user|> `);
    expect(h.trainingData?.rendering).toMatchObject({ records: 12, chat: 12, prefix: '<|user|> ' });
    expect(h.trainingData?.loss).toMatchObject({ checkpoint: 'checkpoint-100', samples: 12, checkpointHash: cp.hash });
    // The run's trainer_state.json logged loss 2 at step 100: compared, with a line either way.
    expect(h.trainingData?.check).toMatchObject({ checkpoint: 'checkpoint-100', logged: 2 });
    expect(built.some((l) => /^(training loss check: |warning: the final checkpoint's loss on --train is )/.test(l))).toBe(true);
    expect(readIndexHeader(out).trainingData).toEqual(h.trainingData);
    const raw: string[] = [];
    const r = await queryGradientIndex({ index: out, queries: run.queries, topK: 3, log: (l) => raw.push(l) });
    expect(raw.find((l) => l.startsWith('queries:'))).toContain(`first query as the model sees it, prompt | output (${run.queries}:1): "`);
    expect(warnings(raw)).toContainEqual(expect.stringContaining('warning: the training samples are conversations rendered with the chat template (every one begins "<|user|> "), but 4 of 4 queries give a raw prompt that does not'));
    expect(r.queryLoss).toMatchObject({ checkpoint: 'checkpoint-100', queries: 4, training: h.trainingData?.loss.measured });
    const clean: string[] = [];
    const c = await queryGradientIndex({ index: out, queries: chat.queries, topK: 3, log: (l) => clean.push(l) });
    expect(warnings(clean)).toEqual([]);
    expect(clean.some((l) => l.startsWith('query loss check: '))).toBe(true);
    expect(c.queryLoss).toMatchObject({ warning: null });
    // Words outside the word-level vocabulary and the end token written out, in the queries.
    const bad = join(dir, 'bad-queries.jsonl');
    writeFileSync(bad, JSON.stringify({ id: 'b', messages: [{ role: 'user', content: 'the mayor said ?' }], output: 'the zyzzyva voted . <eos>' }));
    const badLines: string[] = [];
    await queryGradientIndex({ index: out, queries: bad, topK: 3, log: (l) => badLines.push(l) });
    expect(warnings(badLines)).toEqual([
      expect.stringContaining(`have words outside the model's word-level vocabulary, which the tokenizer maps to <unk>, so the model reads another text than the record's: ${bad}:1: "zyzzyva"`),
      expect.stringContaining(`1 response(s) or output(s) end with the end token written out ('<eos>'; first: ${bad}:1)`),
    ]);
  }, 300_000);

  it("the build measures the training data's loss as dda attribute does, and a query compares its outputs' loss with the one index.json records (the training data need not be at hand); an index without the record skips the checks, saying so", async () => {
    const out = join(dir, 'a');
    const h = await build(out); // built by the first test already (then as it is on disk)
    const final = task.checkpoints[task.checkpoints.length - 1] as Checkpoint;
    const l = await model.losses(final, task.train.samples);
    expect(h.trainingData?.loss.measured).toBeCloseTo(l.reduce((a, b) => a + b, 0) / l.length, 12);
    // The recorded training loss, not the training file's, is what the queries are compared with: a tenth of it makes the queries' ratio 10× as large.
    const moved = join(dir, 'a-edited');
    cpSync(out, moved, { recursive: true });
    const rec = JSON.parse(readFileSync(join(moved, INDEX_FILES.header), 'utf8')) as { trainingData: { loss: { measured: number } } };
    const first = await queryGradientIndex({ index: out, queries: run.queries, topK: 2 });
    const ratio = (first.queryLoss as { ratio: number }).ratio;
    // The queries are training samples: their loss is close to the training data's, no warning.
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(1.5);
    rec.trainingData.loss.measured /= 10;
    writeFileSync(join(moved, INDEX_FILES.header), JSON.stringify(rec));
    const lines: string[] = [];
    const r = await queryGradientIndex({ index: moved, queries: run.queries, topK: 2, log: (x) => lines.push(x) });
    expect((r.queryLoss as { ratio: number }).ratio).toBeCloseTo(10 * ratio, 9);
    expect(warnings(lines)).toEqual([expect.stringContaining(`warning: the final checkpoint's loss on the query outputs is ${(10 * ratio).toFixed(2)}× its loss on --train`)]);
    expect(r.tops).toEqual(first.tops); // informational: the scores are the same
    // An index of an earlier version (no record): the queries' own checks still run; the comparisons with the training data are skipped, with a line.
    delete (rec as { trainingData?: unknown }).trainingData;
    writeFileSync(join(moved, INDEX_FILES.header), JSON.stringify(rec));
    const old: string[] = [];
    const o = await queryGradientIndex({ index: moved, queries: run.queries, topK: 2, log: (x) => old.push(x) });
    expect(o.queryLoss).toEqual({ skipped: 'the index records no loss on the training data (built by an earlier version)' });
    expect(old.some((x) => x.startsWith('index: index.json records no checks of the training data (built by an earlier version)'))).toBe(true);
  }, 300_000);
});
