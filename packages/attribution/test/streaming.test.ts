import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProgressSink } from '@dda/core';
import { AttributionRun, loadTask, mergeShards, runAttribute, runShard, scoreBlocksTogether, type AttributeOptions, type AttributionTask, type BlockJob } from '@dda/attribution';
import { makeExperiment, type Experiment } from '@dda/experiment';

// Streamed training gradients (computed per block, scored or folded, dropped) against the stored path
// (--store-gradients), on the small experiment of the attribute tests: the first 48 training
// samples in blocks of 16, θ0 and two LoRA checkpoints.
const SMALL = { seed: 0, nPretrain: 600, pretrainEpochs: 2, nTrain: 120, nHeldOut: 16, finetuneEpochs: 2 };
// Row-separable scorers (their blocks of scores) and trak (its block summaries: projected gradients).
const STREAMED = ['grad-dot', 'grad-cos', 'tracin-cp', 'trak'];
const MEASUREMENTS = ['loss', 'contrastive', 'entity-margin'];

let dir: string;
let exp: Experiment;
let train48: string;
let task: AttributionTask;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dda-stream-'));
  exp = await makeExperiment({ ...SMALL, artifactsDir: join(dir, 'exp') });
  train48 = join(dir, 'train-48.jsonl');
  writeFileSync(train48, readFileSync(exp.files.train, 'utf8').trim().split('\n').slice(0, 48).join('\n'));
  task = await loadTask(files());
}, 600_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const files = (): Pick<AttributeOptions, 'base' | 'checkpoints' | 'train' | 'queries'> => ({ base: exp.files.base, checkpoints: [exp.files.run], train: train48, queries: exp.files.queries });

/** Bytes of every file under `d`, the relative paths of its files, and of the folders named `train` (stored training gradients). */
function du(d: string): { bytes: number; files: string[]; trainGradientDirs: string[] } {
  let bytes = 0;
  const files: string[] = [];
  const trainGradientDirs: string[] = [];
  const walk = (p: string, rel: string): void => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const q = join(p, e.name);
      if (e.isDirectory()) {
        if (e.name === 'train' && rel.startsWith('gradients/')) trainGradientDirs.push(`${rel}${e.name}`);
        walk(q, `${rel}${e.name}/`);
      } else {
        bytes += statSync(q).size;
        files.push(`${rel}${e.name}`);
      }
    }
  };
  if (existsSync(d)) walk(d, '');
  return { bytes, files, trainGradientDirs };
}

const runs = (artifactsDir: string, storeGradients: boolean, log?: (l: string) => void): AttributionRun[] =>
  MEASUREMENTS.map((measurement) => new AttributionRun(task, { artifactsDir, blockRows: 16, measurement, storeGradients, scorerOptions: { trak: { projectionDim: 64 } }, ...(log ? { log } : {}) }));

describe('streamed training gradients', () => {
  it('give the stored path\'s scores bit for bit (tolerance 0) for grad-dot, grad-cos, tracin-cp and trak under every measurement, at θ0, every checkpoint and θ0 × θ\', and store no training gradient', async () => {
    const storedDir = join(dir, 'stored');
    const streamedDir = join(dir, 'streamed');
    const stored = runs(storedDir, true);
    const lines: string[] = [];
    const streamed = runs(streamedDir, false, (l) => lines.push(l));
    try {
      // The stored path: each scorer over the stored gradient blocks (computed once, read back).
      // The streamed path: one pass per checkpoint, every scorer and measurement scored from each block.
      const last = task.checkpoints[task.checkpoints.length - 1]!.id;
      for (const cp of ['base', ...task.checkpoints.map((c) => c.id)]) {
        const jobs: BlockJob[] = streamed.flatMap((run) => STREAMED.map((scorer) => ({ run, scorer })));
        await scoreBlocksTogether(cp === 'base' ? [...jobs, ...streamed.flatMap((run) => ['grad-dot', 'trak'].map((scorer) => ({ run, scorer, testCp: last })))] : jobs, cp);
      }
      const blocks = 3 * 3; // 3 blocks at θ0 and at each of the 2 checkpoints
      // Each block's gradients were computed once for the 9 scorer × measurement jobs and the cross reading.
      expect(streamed.flatMap((r) => r.computed).filter((n) => n.startsWith('gradients/') && n.includes('/train/')).sort()).toEqual(
        ['base', 'checkpoint-8', 'checkpoint-16'].flatMap((cp) => [0, 1, 2].map((b) => `gradients/${cp}/train/${b}`)).sort(),
      );
      expect(streamed[0]!.streamed).toHaveLength(blocks);
      for (const [m, measurement] of MEASUREMENTS.entries()) {
        for (const scorer of STREAMED) {
          const [a, b] = [await stored[m]!.scoreCheckpoints(scorer), await streamed[m]!.scoreCheckpoints(scorer)];
          for (const [x, y] of [[a.base, b.base], ...a.epochs.map((e, i) => [e, b.epochs[i]!])] as const) {
            expect(y.trainIds).toEqual(x.trainIds);
            expect(Array.from(y.values), `${scorer} under ${measurement}`).toEqual(Array.from(x.values));
            expect(y.values.some((v) => v !== 0)).toBe(true);
          }
        }
        for (const scorer of ['grad-dot', 'trak']) expect(Array.from((await streamed[m]!.crossBaseScores(scorer)).values), scorer).toEqual(Array.from((await stored[m]!.crossBaseScores(scorer)).values));
      }
      // trak's stored matrices say how they were computed.
      expect((await streamed[0]!.scores('trak', task.checkpoints[0]!)).provenance.computedOver).toMatch(/projected block by block as they were streamed in 3 blocks/);
      // Scoring again afterwards reads the stored score blocks and summaries: no gradient is computed again.
      expect(streamed.flatMap((r) => r.computed).filter((n) => n.startsWith('gradients/') && n.includes('/train/'))).toHaveLength(blocks);
      expect(lines.filter((l) => /training gradients streamed/.test(l)).map((l) => l.split(':')[0]).sort()).toEqual([...STREAMED, ...STREAMED, ...STREAMED].sort());
    } finally {
      for (const r of [...stored, ...streamed]) await r.dispose();
    }
    const [s, t] = [du(storedDir), du(streamedDir)];
    expect(s.trainGradientDirs.sort()).toEqual(['gradients/base/train', 'gradients/checkpoint-16/train', 'gradients/checkpoint-8/train']);
    expect(t.trainGradientDirs).toEqual([]);
    // The stored folder holds 48 rows × dim float32 at 3 checkpoints more; the streamed one trak's
    // summaries instead (48 rows × 64 float64 per measurement and checkpoint, about 0.3 MB with their manifests).
    const dim = stored[0]!.gradientDim(task.baseCheckpoint);
    expect(s.bytes - t.bytes).toBeGreaterThan(0.9 * 48 * dim * 4 * 3);
  }, 900_000);

  it('a run killed after k blocks resumes at block k: the same scores as a run never killed, blocks before k not recomputed', async () => {
    const opts = (o: Partial<AttributeOptions>): AttributeOptions => ({ ...files(), out: join(dir, 'resume-out'), artifactsDir: join(dir, 'resume'), blockRows: 16, method: { scorer: 'grad-dot', debias: 'raw', denoise: 'mean', beta: 1 }, ...o });
    // Killed inside block 2 of checkpoint-8 (the second checkpoint scored, after θ0): its 38th training sample's gradient.
    const kill: ProgressSink = (p) => {
      if (p.label.startsWith('gradients of') && p.label.includes('at checkpoint-8') && p.done === 2 * 16 + 6) throw new Error('killed');
    };
    await expect(runAttribute(opts({ progress: kill }))).rejects.toThrow('killed');
    const lines: string[] = [];
    const resumed = await runAttribute(opts({ log: (l) => lines.push(l) }));
    const grads = resumed.computed.filter((n) => n.startsWith('gradients/'));
    const scores = resumed.computed.filter((n) => n.startsWith('scores/'));
    // checkpoint-8: blocks 2 onward; checkpoint-16: every block and its queries; θ0: nothing.
    expect(grads.sort()).toEqual(['gradients/checkpoint-16/queries', 'gradients/checkpoint-16/train/0', 'gradients/checkpoint-16/train/1', 'gradients/checkpoint-16/train/2', 'gradients/checkpoint-8/train/2'].sort());
    expect(scores.sort()).toEqual(['scores/grad-dot/checkpoint-16/block-0', 'scores/grad-dot/checkpoint-16/block-1', 'scores/grad-dot/checkpoint-16/block-2', 'scores/grad-dot/checkpoint-8/block-2'].sort());
    expect(resumed.reused).toEqual(expect.arrayContaining(['gradients/checkpoint-8/queries', 'scores/grad-dot/checkpoint-8/block-0', 'scores/grad-dot/checkpoint-8/block-1', 'scores/grad-dot/base/block-2']));
    expect(lines.join('\n')).toMatch(/grad-dot: training gradients streamed/);
    // The never-killed reference: the stored path in a fresh folder.
    const reference = await runAttribute(opts({ out: join(dir, 'reference-out'), artifactsDir: join(dir, 'reference'), storeGradients: true }));
    expect(Array.from(resumed.method.matrix.values)).toEqual(Array.from(reference.method.matrix.values));
    for (const [i, v] of reference.variants.entries()) expect(Array.from(resumed.variants[i]!.matrix.values), v.variant).toEqual(Array.from(v.matrix.values));
    const summary = (out: string): { gradients: { path: string; streamedBlocks: number } } => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary(join(dir, 'resume-out')).gradients).toEqual({ path: 'streamed', streamedBlocks: 4 });
    expect(summary(join(dir, 'reference-out')).gradients).toEqual({ path: 'stored', streamedBlocks: 0 });
    expect(du(join(dir, 'resume')).trainGradientDirs).toEqual([]);
    expect(du(join(dir, 'reference')).trainGradientDirs).toHaveLength(3);
  }, 900_000);

  it('trak killed inside a block resumes at that block: summaries before it not recomputed, the stored path\'s scores', async () => {
    const opts = (o: Partial<AttributeOptions>): AttributeOptions => ({
      ...files(), out: join(dir, 'trak-out'), artifactsDir: join(dir, 'trak'), blockRows: 16, scorerOptions: { trak: { projectionDim: 64 } },
      method: { scorer: 'trak', debias: 'raw', denoise: 'mean', beta: 1 }, ...o,
    });
    const kill: ProgressSink = (p) => {
      if (p.label.startsWith('gradients of') && p.label.includes('at checkpoint-8') && p.done === 16 + 3) throw new Error('killed');
    };
    await expect(runAttribute(opts({ progress: kill }))).rejects.toThrow('killed');
    const resumed = await runAttribute(opts({}));
    expect(resumed.computed.filter((n) => n.startsWith('summaries/') || n.includes('/train/')).sort()).toEqual([
      'gradients/checkpoint-16/train/0', 'gradients/checkpoint-16/train/1', 'gradients/checkpoint-16/train/2', 'gradients/checkpoint-8/train/1', 'gradients/checkpoint-8/train/2',
      'summaries/trak/checkpoint-16/block-0', 'summaries/trak/checkpoint-16/block-1', 'summaries/trak/checkpoint-16/block-2', 'summaries/trak/checkpoint-8/block-1', 'summaries/trak/checkpoint-8/block-2',
    ]);
    expect(resumed.reused).toEqual(expect.arrayContaining(['summaries/trak/checkpoint-8/block-0', 'scores/trak/base']));
    const reference = await runAttribute(opts({ out: join(dir, 'trak-reference-out'), artifactsDir: join(dir, 'trak-reference'), storeGradients: true }));
    for (const [i, v] of reference.variants.entries()) expect(Array.from(resumed.variants[i]!.matrix.values), v.variant).toEqual(Array.from(v.matrix.values));
    expect(du(join(dir, 'trak')).trainGradientDirs).toEqual([]);
  }, 900_000);

  it('if-lissa streams in depth + 1 passes (one fit pass per LiSSA step) with the stored path\'s scores to float rounding, resumes inside a pass after a kill, keeps only its latest fit; small or minibatch runs store their gradients and say why', async () => {
    const DEPTH = 4;
    const cp = task.checkpoints[0]!;
    const lissa = (o: Record<string, unknown> = {}): Record<string, Record<string, unknown>> => ({ 'if-lissa': { depth: DEPTH, streamAboveBytes: 0, ...o } });
    const fitFiles = (d: string): string[] => du(join(dir, d, 'fits', 'if-lissa', cp.id)).files.filter((f) => f.endsWith('.f64')).sort();
    // Killed in fit pass 3 of 4 inside block 1 (block 0 already in the pass's running sum).
    const kill: ProgressSink = (p) => {
      if (p.label.includes('if-lissa') && p.label.includes('fit pass 3 of 4') && p.done === 16 + 5) throw new Error('killed');
    };
    const killed = new AttributionRun(task, { artifactsDir: join(dir, 'lissa'), blockRows: 16, scorerOptions: lissa(), progress: kill });
    try {
      await expect(killed.scores('if-lissa', cp)).rejects.toThrow('killed');
    } finally {
      await killed.dispose();
    }
    // On disk then: the fit of pass 2 (those of passes 0 and 1 deleted as each next one was stored) and pass 3's running sum.
    expect(fitFiles('lissa')).toEqual([expect.stringMatching(/^pass-1\/[0-9a-f]+\/fit\.f64$/), expect.stringMatching(/^pass-2\/sum-[ab]\/[0-9a-f]+\/sum\.f64$/)]);
    const lines: string[] = [];
    const resumed = new AttributionRun(task, { artifactsDir: join(dir, 'lissa'), blockRows: 16, scorerOptions: lissa(), log: (l) => lines.push(l) });
    const stored = new AttributionRun(task, { artifactsDir: join(dir, 'lissa-stored'), blockRows: 16, scorerOptions: lissa(), storeGradients: true });
    try {
      const y = await resumed.scores('if-lissa', cp);
      // Resumed: pass 3 from block 1 on, pass 4 and the score pass over every block; nothing of passes 1 and 2 again.
      expect(resumed.computed.filter((n) => n.startsWith(`gradients/${cp.id}/train/`)).sort()).toEqual([1, 2, 0, 1, 2, 0, 1, 2].map((b) => `gradients/${cp.id}/train/${b}`).sort());
      expect(resumed.computed).toEqual(expect.arrayContaining([`fits/if-lissa/${cp.id}/pass-2/block-1`, `fits/if-lissa/${cp.id}/pass-2`, `fits/if-lissa/${cp.id}/pass-3`, `scores/if-lissa/${cp.id}/block-0`]));
      expect(resumed.computed.filter((n) => /pass-[01]\b/.test(n))).toEqual([]);
      expect(resumed.reused).toEqual(expect.arrayContaining([`fits/if-lissa/${cp.id}/pass-1`, `fits/if-lissa/${cp.id}/pass-2/block-0`]));
      // The stored path: if-lissa on every stored row at once (the dual recursion here, n ≤ dim).
      const x = await stored.scores('if-lissa', cp);
      expect(y.trainIds).toEqual(x.trainIds);
      const scale = Math.max(...Array.from(x.values, Math.abs));
      expect(scale).toBeGreaterThan(0);
      expect(Math.max(...Array.from(x.values, (v, k) => Math.abs(v - y.values[k]!))) / scale).toBeLessThan(1e-9);
      expect(y.provenance.computedOver).toMatch(/LiSSA \(depth 4, .*full batch; streamed: H⁻¹ g_test iterated over the training gradients in 4 passes/);
      expect(lines.join('\n')).toMatch(/if-lissa: training gradients streamed in 5 passes, fit then score .* every training gradient is computed 5 times per checkpoint: .* the latest finalized fit and each block of scores is stored/);
      expect(resumed.gradientPath(await resumed.scorer('if-lissa'))).toBe('streamed');
      expect(resumed.matrixSeconds('if-lissa', cp.id)).toBeGreaterThan(0);
    } finally {
      await resumed.dispose();
      await stored.dispose();
    }
    // Afterwards: only the last fit, no running sum or partial, no training gradient.
    expect(fitFiles('lissa')).toEqual([expect.stringMatching(/^pass-3\/[0-9a-f]+\/fit\.f64$/)]);
    expect(du(join(dir, 'lissa')).trainGradientDirs).toEqual([]);
    // Scored again: the stored matrix, no gradient, and its seconds still include the deleted fits' (carried by the last).
    const again = new AttributionRun(task, { artifactsDir: join(dir, 'lissa'), blockRows: 16, scorerOptions: lissa() });
    try {
      await again.scores('if-lissa', cp);
      expect(again.computed).toEqual([]);
      expect(again.matrixSeconds('if-lissa', cp.id)).toBeGreaterThan(0);
    } finally {
      await again.dispose();
    }
    // By default (gradients far below 1 GiB) and with a minibatch, the gradients are stored, and the log says why.
    for (const [options, why] of [[{ streamAboveBytes: undefined }, /computes every training gradient 4 \+ 1 times per checkpoint .* the 48 training gradients of a checkpoint take [\d.]+ MiB \(at most streamAboveBytes = 1073741824\), far cheaper to store/], [{ batch: 8 }, /the option batch = 8 draws a seeded minibatch of 8 of the 48 training gradients/]] as const) {
      const log: string[] = [];
      const run = new AttributionRun(task, { artifactsDir: join(dir, 'lissa-refused'), blockRows: 16, scorerOptions: lissa(options), log: (l) => log.push(l) });
      try {
        expect(run.gradientPath(await run.scorer('if-lissa'))).toBe('stored');
        run.logGradientPath(await run.scorer('if-lissa'));
      } finally {
        await run.dispose();
      }
      expect(log.join('\n')).toMatch(/if-lissa: training gradients stored \([\d.]+ MB per checkpoint in .*\/gradients\/\): its streamed fit is refused here: if-lissa: /);
      expect(log.join('\n')).toMatch(why);
    }
  }, 900_000);

  it('two-pass streamed fits (datainf, if-ekfac) give the stored path\'s scores to float rounding, compute each gradient once per pass, store no training gradient, and say so', async () => {
    const FITTED = ['datainf', 'if-ekfac'];
    const lines: string[] = [];
    const streamed = new AttributionRun(task, { blockRows: 16, artifactsDir: join(dir, 'fit-streamed'), log: (l) => lines.push(l) });
    const stored = new AttributionRun(task, { blockRows: 16, artifactsDir: join(dir, 'fit-stored'), storeGradients: true });
    const cp = task.checkpoints[0]!;
    try {
      // Both in passes over the blocks: 2 fit passes and the score pass each, every block's
      // gradients computed once per pass for both.
      await scoreBlocksTogether(FITTED.map((scorer) => ({ run: streamed, scorer })), cp.id);
      for (const b of [0, 1, 2]) expect(streamed.computed.filter((n) => n === `gradients/${cp.id}/train/${b}`)).toHaveLength(3);
      for (const scorer of FITTED) {
        const [x, y] = [await stored.scores(scorer, cp), await streamed.scores(scorer, cp)];
        expect(y.trainIds).toEqual(x.trainIds);
        const scale = Math.max(...Array.from(x.values, Math.abs));
        expect(scale).toBeGreaterThan(0);
        expect(Math.max(...Array.from(x.values, (v, k) => Math.abs(v - y.values[k]!))) / scale, scorer).toBeLessThan(1e-9);
      }
      expect(streamed.computed.filter((n) => n.startsWith('gradients/') && n.includes('/train/'))).toHaveLength(9); // scoring afterwards computes none
      expect(streamed.computed).toEqual(expect.arrayContaining(['fits/datainf/checkpoint-8/pass-0/block-2', 'fits/datainf/checkpoint-8/pass-1', 'fits/if-ekfac/checkpoint-8/pass-1/block-0', 'scores/if-ekfac/checkpoint-8/block-1']));
      const log = lines.join('\n');
      for (const scorer of FITTED) expect(log).toMatch(new RegExp(`${scorer}: training gradients streamed in 3 passes, fit then score .* every training gradient is computed three times per checkpoint`));
      expect(streamed.gradientPath(await streamed.scorer('datainf'))).toBe('streamed');
      // if-exact's fit is dim × dim: refused at this dim (above maxSystemSize), so its gradients are stored, and the log says why.
      expect(streamed.gradientPath(await streamed.scorer('if-exact'))).toBe('stored');
      streamed.logGradientPath(await streamed.scorer('if-exact'));
      expect(lines.join('\n')).toMatch(/if-exact: training gradients stored .*its streamed fit is refused here: if-exact's streamed fit is the dim × dim second moment GᵀG, and dim = \d+ is above maxSystemSize = 8192/);
    } finally {
      await streamed.dispose();
      await stored.dispose();
    }
    expect(du(join(dir, 'fit-streamed')).trainGradientDirs).toEqual([]);
    // Each pass's running sum (and any block's own partial) is deleted once its fit is stored: the fits stay.
    const fits = du(join(dir, 'fit-streamed', 'fits'));
    expect(fits.files.filter((f) => f.includes('/block-') || f.includes('/sum-'))).toEqual([]);
    expect(fits.files.filter((f) => f.endsWith('fit.f64')).sort()).toEqual(['datainf/checkpoint-8/pass-0', 'datainf/checkpoint-8/pass-1', 'if-ekfac/checkpoint-8/pass-0', 'if-ekfac/checkpoint-8/pass-1'].map((x) => expect.stringMatching(new RegExp(`^${x}/[0-9a-f]+/fit\\.f64$`))));
  }, 900_000);

  it('datainf killed inside its second fit pass resumes at that block, sharded gives the same scores, and a fit too large to stream (trackstar above maxSystemSize) falls back to the store with the reason', async () => {
    const opts = (o: Partial<AttributeOptions>): AttributeOptions => ({
      ...files(), out: join(dir, 'datainf-out'), artifactsDir: join(dir, 'datainf'), blockRows: 16, checkpoints: [exp.files.run],
      method: { scorer: 'datainf', debias: 'raw', denoise: 'mean', beta: 1 }, ...o,
    });
    // θ0 is scored first: its second fit pass (the progress bar of that pass) killed inside block 1.
    const kill: ProgressSink = (p) => {
      if (p.label.includes('at base') && p.label.includes('fit pass 2 of 2') && p.done === 16 + 5) throw new Error('killed');
    };
    await expect(runAttribute(opts({ progress: kill }))).rejects.toThrow('killed');
    // Killed there, the pass's state on disk is one running sum (block 0 added), not a partial per block.
    const pass1 = du(join(dir, 'datainf', 'fits', 'datainf', 'base', 'pass-1')).files;
    expect(pass1.filter((f) => f.endsWith('.f64'))).toEqual([expect.stringMatching(/^sum-[ab]\/[0-9a-f]+\/sum\.f64$/)]);
    const resumed = await runAttribute(opts({}));
    const base = resumed.computed.filter((n) => n.startsWith('fits/datainf/base/') || n.startsWith('gradients/base/train'));
    expect(base.sort()).toEqual([
      'fits/datainf/base/pass-1', 'fits/datainf/base/pass-1/block-1', 'fits/datainf/base/pass-1/block-2',
      'gradients/base/train/0', 'gradients/base/train/1', 'gradients/base/train/1', 'gradients/base/train/2', 'gradients/base/train/2',
    ].sort());
    expect(resumed.reused).toEqual(expect.arrayContaining(['fits/datainf/base/pass-0', 'fits/datainf/base/pass-1/block-0']));
    const reference = await runAttribute(opts({ out: join(dir, 'datainf-reference-out'), artifactsDir: join(dir, 'datainf-reference'), storeGradients: true }));
    for (const [i, v] of reference.variants.entries()) {
      const scale = Math.max(...Array.from(v.matrix.values, Math.abs));
      expect(Math.max(...Array.from(v.matrix.values, (x, k) => Math.abs(x - resumed.variants[i]!.matrix.values[k]!))) / scale, v.variant).toBeLessThan(1e-9);
    }
    expect(du(join(dir, 'datainf')).trainGradientDirs).toEqual([]);
    const lines: string[] = [];
    const run = new AttributionRun(task, { artifactsDir: join(dir, 'trackstar-large'), blockRows: 16, scorerOptions: { trackstar: { maxSystemSize: 64 } }, log: (l) => lines.push(l) });
    try {
      expect(run.gradientPath(await run.scorer('trackstar'))).toBe('stored');
      await run.scores('trackstar', task.checkpoints[0]!);
    } finally {
      await run.dispose();
    }
    // Sharded: 2 shards store the first fit pass's partials of their blocks; the merge does the
    // other passes, and gives the one-machine run's scores.
    const shardLog: string[] = [];
    const sharded = opts({ out: join(dir, 'datainf-sharded'), artifactsDir: join(dir, 'datainf-sharded', 'artifacts'), log: (l) => shardLog.push(l) });
    for (const i of [0, 1]) await runShard(sharded, { index: i, count: 2 });
    expect(shardLog.join('\n')).toMatch(/'datainf' streams its gradients in fit passes then a score pass; this shard folded its blocks into the first fit pass/);
    const merged = await mergeShards(join(dir, 'datainf-sharded'));
    expect(merged.computedAtMerge.filter((n) => /^fits\/datainf\/[^/]+\/pass-0\/block-/.test(n))).toEqual([]);
    for (const [i, v] of resumed.variants.entries()) expect(Array.from(merged.variants[i]!.matrix.values), v.variant).toEqual(Array.from(v.matrix.values));
    expect(lines.join('\n')).toMatch(/trackstar: training gradients stored .*its streamed fit is refused here: trackstar's streamed fit is the dim × dim second moment GᵀG, and dim = \d+ is above maxSystemSize = 64/);
  }, 900_000);
});
