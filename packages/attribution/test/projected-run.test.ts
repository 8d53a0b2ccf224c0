import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttributionRun, CheckpointModel, GradientProjector, loadTask, type AttributionTask, type Checkpoint } from '@dda/attribution';
import { makeUserRun, type UserRun } from './fixtures/user-run.js';

// An attribution run over projected gradients (RunOptions.projection), on the tiny user run
// (10 training samples, 3 queries; θ0, checkpoint-50, checkpoint-100).
let dir: string;
let run: UserRun;
let task: AttributionTask;
const spec = { kind: 'rademacher' as const, seed: 7, dim: 384 };
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dda-projected-run-'));
  run = makeUserRun(join(dir, 'user'), 10, 3);
  task = await loadTask({ base: run.base, checkpoints: [run.run], train: run.train, queries: run.queries });
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('AttributionRun with a projection', () => {
  it('scores every scorer on the rows projected by the index\'s projection: grad-dot equals the inner products of the projected full gradients', async () => {
    const projected = new AttributionRun(task, { artifactsDir: join(dir, 'a'), projection: spec, blockRows: 4 });
    const s = await projected.scoreCheckpoints('grad-dot');
    const model = await CheckpointModel.open(task);
    try {
      for (const [k, cp] of [task.checkpoints.find((c) => c.id === 'checkpoint-100') as Checkpoint].entries()) {
        const train = await model.gradients(cp, task.train.samples);
        const queries = await model.gradients(cp, task.queries.map((q) => q.sample));
        const p = new GradientProjector(spec, { names: train.parameterNames, sizes: train.parameterSizes });
        const pt = train.rows.map((r) => Float32Array.from(p.project(r)));
        const pq = queries.rows.map((r) => Float32Array.from(p.project(r)));
        const m = s.epochs[s.epochs.length - 1 - k]!;
        expect(m.provenance.checkpoints).toEqual(['checkpoint-100']);
        let scale = 0;
        const want: number[] = [];
        pt.forEach((t) => pq.forEach((q) => {
          let d = 0;
          for (let x = 0; x < spec.dim; x++) d += (t[x] as number) * (q[x] as number);
          want.push(d);
          scale = Math.max(scale, Math.abs(d));
        }));
        m.values.forEach((v, i) => expect(Math.abs(v - (want[i] as number)) / scale, `entry ${i}`).toBeLessThan(1e-6));
      }
    } finally {
      await model.dispose();
    }
    // The projected gradients have their own keys: a full run in the same folder computes its own.
    const full = new AttributionRun(task, { artifactsDir: join(dir, 'a'), blockRows: 4 });
    const f = await full.scoreCheckpoints('grad-dot');
    expect(full.reused.filter((n) => n.startsWith('gradients/'))).toEqual([]);
    expect(f.epochs[1]!.values).not.toEqual(s.epochs[1]!.values);
    // And a projected run again reuses them.
    const again = new AttributionRun(task, { artifactsDir: join(dir, 'a'), projection: spec, blockRows: 4 });
    await again.scoreCheckpoints('grad-dot');
    expect(again.computed.filter((n) => n.startsWith('gradients/'))).toEqual([]);
    await projected.dispose();
    await full.dispose();
    await again.dispose();
  }, 300_000);

  it('projects the full gradients an earlier run stored (storeGradients) instead of computing them again: the same scores, bit for bit', async () => {
    const fresh = new AttributionRun(task, { artifactsDir: join(dir, 'c-fresh'), projection: spec, blockRows: 4, storeGradients: true });
    const want = await fresh.scoreCheckpoints('grad-dot');
    await fresh.dispose();
    const stored = join(dir, 'c-stored');
    const full = new AttributionRun(task, { artifactsDir: stored, blockRows: 4, storeGradients: true });
    await full.scoreCheckpoints('grad-dot');
    await full.dispose();
    const lines: string[] = [];
    const projected = new AttributionRun(task, { artifactsDir: stored, projection: spec, blockRows: 4, storeGradients: true, log: (l) => lines.push(l) });
    const got = await projected.scoreCheckpoints('grad-dot');
    await projected.dispose();
    expect(got.epochs.map((m) => [...m.values])).toEqual(want.epochs.map((m) => [...m.values]));
    for (const cp of task.checkpoints) {
      expect(lines).toContain(`gradients/${cp.id}/train: projected from the full gradients an earlier run stored (--store-gradients), not computed again`);
      expect(lines).toContain(`gradients/${cp.id}/queries: projected from the full gradients an earlier run stored (--store-gradients), not computed again`);
    }
  }, 300_000);

  it('runs per-tensor scorers on the projected blocks (datainf), and trak on top', async () => {
    const r = new AttributionRun(task, { artifactsDir: join(dir, 'b'), projection: spec, blockRows: 4, scorerOptions: { trak: { projectionDim: 32 } } });
    for (const id of ['datainf', 'grad-cos', 'trak']) {
      const s = await r.scoreCheckpoints(id);
      expect(s.epochs.every((m) => m.values.every(Number.isFinite)), id).toBe(true);
    }
    await r.dispose();
  }, 300_000);
});
