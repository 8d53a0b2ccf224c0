import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildGradientIndex, mergeShards, queryGradientIndex, queryGradientIndexesDda, runAttribute, runShard, type AttributeOptions,
} from '@dda/attribution';
import { indexScoreMatrix } from './fixtures/index-scores.js';
import { makeUserRun, type UserRun } from './fixtures/user-run.js';

// `dda attribute --index`: the training gradients read from gradient indexes (one per checkpoint,
// θ0 included) on the tiny user run (10 training samples, 3 queries; checkpoint-50, checkpoint-100).
let dir: string;
let run: UserRun;
const CPS = ['base', 'checkpoint-50', 'checkpoint-100'] as const;
const idx = (cp: string): string => join(dir, `idx-${cp}`);
const RAW_DDA = { scorer: 'grad-dot', debias: 'raw', denoise: 'mean', beta: 1 } as const;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dda-index-attribute-'));
  run = makeUserRun(join(dir, 'user'), 10, 3);
  for (const cp of CPS) await buildGradientIndex({ base: run.base, checkpoints: [run.run], train: run.train, checkpoint: cp, out: idx(cp), dim: 1024, seed: 3, blockRows: 4 });
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const attribute = (name: string, o: Partial<AttributeOptions> = {}): ReturnType<typeof runAttribute> =>
  runAttribute({ base: run.base, checkpoints: [run.run], train: run.train, queries: run.queries, out: join(dir, name), method: RAW_DDA, heatMaps: 0, ...o });

/** The grad-dot matrix at `cp` computed independently: the index's float16 rows times the queries' projected gradients, rounded to float32 as a run keeps them. */
const expectedAt = (cp: string): Promise<Float64Array> => indexScoreMatrix(idx(cp), run.queries, { float32Queries: true });

const relMax = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let scale = 0;
  let err = 0;
  for (let k = 0; k < a.length; k++) {
    scale = Math.max(scale, Math.abs(b[k] as number));
    err = Math.max(err, Math.abs((a[k] as number) - (b[k] as number)));
  }
  return err / scale;
};

describe('dda attribute --index', () => {
  it('reads every training gradient from the indexes (none computed): grad-dot at each checkpoint is the float16 rows times the projected query gradients, and its DDA is dda index query\'s', async () => {
    const lines: string[] = [];
    const r = await attribute('all', { indexes: [idx('checkpoint-100'), idx('base'), idx('checkpoint-50')], log: (l) => lines.push(l) });
    const [b, c50, c100] = [await expectedAt('base'), await expectedAt('checkpoint-50'), await expectedAt('checkpoint-100')];
    const plain = r.variants.find((v) => v.variant === 'plain');
    expect(relMax(plain!.matrix.values, c100)).toBeLessThan(1e-5);
    const dda = b.map((x, k) => ((c50[k] as number) + (c100[k] as number)) / 2 - x);
    expect(r.method.variant).toBe('dda');
    expect(relMax(r.method.matrix.values, dda)).toBeLessThan(1e-5);
    // The same DDA through the index's own query path (float64 query rows): the two agree to float32 rounding.
    const viaQuery = await queryGradientIndexesDda({ indexes: CPS.map(idx), queries: run.queries, debias: 'raw', denoise: 'mean', beta: 1 });
    expect(relMax(r.method.matrix.values, viaQuery.matrix.values)).toBeLessThan(1e-5);
    // No training gradient was computed: only the queries' (3 checkpoints) and the loss checks.
    expect(r.computed.filter((n) => /^gradients\/[^/]+\/train/.test(n))).toEqual([]);
    expect(r.computed.filter((n) => /^gradients\/[^/]+\/queries/.test(n))).toHaveLength(3);
    const summary = JSON.parse(readFileSync(join(dir, 'all', 'summary.json'), 'utf8'));
    expect(summary.projection).toMatchObject({ kind: 'rademacher', seed: 3, dim: 1024 });
    expect(summary.indexes.used.map((u: { checkpoint: string }) => u.checkpoint).sort()).toEqual([...CPS].sort());
    expect(summary.indexes.computedAt).toEqual([]);
    expect(summary.gradients.readFromIndexes).toBe(3);
    expect(lines.join('\n')).toMatch(/training gradients read from 3 gradient indexes, not computed: checkpoint-100 ← .*\(10 float16 rows × k = 1024, rademacher projection, seed 3/);
    // Again: every score block is reused, nothing recomputed.
    const again = await attribute('all', { indexes: CPS.map(idx) });
    expect(again.computed.filter((n) => n.startsWith('scores'))).toEqual([]);
    expect(Array.from(again.method.matrix.values)).toEqual(Array.from(r.method.matrix.values));
  }, 300_000);

  it('computes the rows of a checkpoint without an index, projected as --projection-dim projects them; in shards too', async () => {
    const lines: string[] = [];
    const some = await attribute('some', { indexes: [idx('base'), idx('checkpoint-100')], log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/training gradients computed at checkpoint-50 \(no --index at it\), projected with the indexes' projection/);
    expect(some.computed.filter((n) => /^gradients\/checkpoint-50\/train/.test(n))).toHaveLength(1);
    expect(some.computed.filter((n) => /^gradients\/(base|checkpoint-100)\/train/.test(n))).toEqual([]);
    const projected = await attribute('projected', { projection: { kind: 'rademacher', seed: 3, dim: 1024 } });
    // checkpoint-50's scores alone: 2 × mean over the checkpoints − the last checkpoint's.
    const at50 = (r: typeof some): number[] => {
      const denoise = r.variants.find((v) => v.variant === 'denoise')!.matrix.values;
      const plain = r.variants.find((v) => v.variant === 'plain')!.matrix.values;
      return Array.from(denoise, (x, k) => 2 * x - (plain[k] as number));
    };
    expect(relMax(at50(some), at50(projected))).toBeLessThan(1e-5);
    // checkpoint-100 from its index: the float16 rows, not the computed float32 ones (close, not equal).
    const plainSome = some.variants.find((v) => v.variant === 'plain')!.matrix.values;
    const c100 = await expectedAt('checkpoint-100');
    expect(relMax(plainSome, c100)).toBeLessThan(1e-5);
    const plainProjected = projected.variants.find((v) => v.variant === 'plain')!.matrix.values;
    expect(relMax(plainProjected, c100)).toBeGreaterThan(1e-5); // the float16 rounding is visible at this tolerance
    expect(relMax(plainProjected, c100)).toBeLessThan(1e-2);
    // Two shards and the merge give the unsharded run's scores.
    const sharded = { base: run.base, checkpoints: [run.run], train: run.train, queries: run.queries, out: join(dir, 'sharded'), method: RAW_DDA, heatMaps: 0, blockRows: 4, indexes: [idx('base'), idx('checkpoint-100')] };
    for (const i of [0, 1]) await runShard(sharded, { index: i, count: 2 });
    const merged = await mergeShards(join(dir, 'sharded'));
    const whole = await attribute('whole', { blockRows: 4, indexes: [idx('base'), idx('checkpoint-100')] });
    expect(Array.from(merged.method.matrix.values)).toEqual(Array.from(whole.method.matrix.values));
  }, 300_000);

  it('refuses indexes that are not over this run\'s inputs, naming what differs', async () => {
    await expect(attribute('x', { indexes: [idx('base'), idx('base')] })).rejects.toThrow(/--index .*idx-base and --index .*idx-base are both at base/);
    await expect(attribute('x', { indexes: CPS.map(idx), projection: { kind: 'rademacher', seed: 0, dim: 1024 } })).rejects.toThrow(/ask for another projection than the indexes' \(seed: asked 0, the indexes 3\)/);
    await buildGradientIndex({ base: run.base, checkpoints: [run.run], train: run.train, checkpoint: 'checkpoint-50', out: join(dir, 'seed-4'), dim: 1024, seed: 4, blockRows: 4 });
    await expect(attribute('x', { indexes: [idx('base'), join(dir, 'seed-4')] })).rejects.toThrow(/were projected otherwise \(seed 3 in .*idx-base, 4 in .*seed-4\)/);
    // The same records in another order; one record's text changed.
    const lines = readFileSync(run.train, 'utf8').split('\n');
    const reversed = join(dir, 'reversed.jsonl');
    writeFileSync(reversed, [...lines].reverse().join('\n'));
    await expect(attribute('x', { train: reversed, indexes: [idx('base')] })).rejects.toThrow(/row 0 is training sample 't0', but sample 0 of --train is 't9'/);
    const edited = join(dir, 'edited.jsonl');
    const last = JSON.parse(lines[9] as string);
    writeFileSync(edited, [...lines.slice(0, 9), JSON.stringify({ ...last, response: `${last.response} new` })].join('\n'));
    await expect(attribute('x', { train: edited, indexes: [idx('base')] })).rejects.toThrow(/was built over the same training ids rendered otherwise/);
    await expect(attribute('x', { maxLength: 40, indexes: [idx('base')] })).rejects.toThrow(/another context length or overlong policy \(encoding\.maxLength: index \d+, given 40\)/);
    await expect(attribute('x', { indexes: [join(dir, 'nowhere')] })).rejects.toThrow(/no index\.json/);
    // Scorers the rows do not serve: one without gradients, and if-ekfac (its Kronecker factors need each tensor's matrix shape).
    await expect(attribute('x', { indexes: CPS.map(idx), method: { ...RAW_DDA, scorer: 'bm25', debias: null, denoise: null } })).rejects.toThrow(/--index has no effect on 'bm25', which takes no training gradients/);
    // --projection-dim and --store-gradients on a scorer that takes no gradients: refused, not ignored (and recorded as applied).
    for (const scorer of ['bm25', 'rep-sim', 'random']) {
      await expect(attribute('x', { projection: { kind: 'rademacher', seed: 0, dim: 512 }, method: { ...RAW_DDA, scorer, debias: null, denoise: null } })).rejects.toThrow(new RegExp(`--projection-dim has no effect on '${scorer}', which takes no gradients`));
      await expect(attribute('x', { storeGradients: true, method: { ...RAW_DDA, scorer, debias: null, denoise: null } })).rejects.toThrow(new RegExp(`--store-gradients has no effect on '${scorer}', which takes no gradients`));
    }
    await expect(attribute('x', { indexes: CPS.map(idx), method: { ...RAW_DDA, scorer: 'if-ekfac' } })).rejects.toThrow(/if-ekfac: .*projected gradient rows \(--projection-dim, --index, a config's projection:\) have no tensor shapes/);
    // Rows of another checkpoint copied over an index's (the same size): refused by their hash, and
    // so never scored nor cached; a rerun of the build into that folder finds it too.
    const swapped = join(dir, 'swapped');
    cpSync(idx('checkpoint-100'), swapped, { recursive: true });
    copyFileSync(join(idx('checkpoint-50'), 'gradients.f16'), join(swapped, 'gradients.f16'));
    await expect(attribute('x', { indexes: [idx('base'), swapped] })).rejects.toThrow(/swapped\/gradients\.f16 is not the file its index was built with: SHA-256 [0-9a-f]{16}…, index\.json records [0-9a-f]{16}…/);
    await expect(buildGradientIndex({ base: run.base, checkpoints: [run.run], train: run.train, checkpoint: 'checkpoint-100', out: swapped, dim: 1024, seed: 3, blockRows: 4 })).rejects.toThrow(/is not the file its index was built with/);
    // The check's marker (verified.json) is not fooled by a file changed in place with its modification time set back.
    const inPlace = join(dir, 'in-place');
    cpSync(idx('checkpoint-100'), inPlace, { recursive: true });
    await attribute('in-place', { indexes: [idx('base'), inPlace] }); // hashes the copy and marks it verified
    const marker = JSON.parse(readFileSync(join(inPlace, 'verified.json'), 'utf8'));
    expect(marker.sha256).toBe(JSON.parse(readFileSync(join(inPlace, 'index.json'), 'utf8')).rowsSha256);
    const rows = join(inPlace, 'gradients.f16');
    const b = readFileSync(rows);
    b[100] = (b[100] as number) ^ 1;
    writeFileSync(rows, b);
    utimesSync(rows, new Date(marker.mtimeMs), new Date(marker.mtimeMs));
    await expect(attribute('x', { indexes: [idx('base'), inPlace] })).rejects.toThrow(/in-place\/gradients\.f16 is not the file its index was built with/);
    // An index of an earlier version (no rowsSha256) is used unchecked, but its scores are cached
    // under its file's inode, size and times: a file copied over it is scored anew, not answered from the cache.
    const legacy = join(dir, 'legacy');
    cpSync(idx('checkpoint-100'), legacy, { recursive: true });
    const header = JSON.parse(readFileSync(join(legacy, 'index.json'), 'utf8'));
    delete header.rowsSha256;
    writeFileSync(join(legacy, 'index.json'), JSON.stringify(header));
    const first = await attribute('legacy', { indexes: [idx('base'), legacy] });
    copyFileSync(join(idx('checkpoint-50'), 'gradients.f16'), join(legacy, 'gradients.f16'));
    const second = await attribute('legacy', { indexes: [idx('base'), legacy] });
    expect(second.computed.filter((n) => n.startsWith('scores')).length).toBeGreaterThan(0);
    expect(Array.from(second.method.matrix.values)).not.toEqual(Array.from(first.method.matrix.values));
  }, 300_000);

  it('estimates the projection error as dda index query does over the same indexes, and warns at a small --dim', async () => {
    const at = (cp: string): string => join(dir, `d64-${cp}`);
    for (const cp of CPS) await buildGradientIndex({ base: run.base, checkpoints: [run.run], train: run.train, checkpoint: cp, out: at(cp), dim: 64, seed: 1, blockRows: 4 });
    const lines: string[] = [];
    await attribute('d64', { indexes: CPS.map(at), topK: 3, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/warning: the projection's error is a large part of the DDA scores: .*build the indexes with a larger --dim/);
    const recorded = JSON.parse(readFileSync(join(dir, 'd64', 'summary.json'), 'utf8')).indexes.projectionError;
    expect(recorded).toMatchObject({ propagated: true, sampledRows: 10, topK: 3 });
    const viaQuery = await queryGradientIndexesDda({ indexes: CPS.map(at), queries: run.queries, debias: 'raw', denoise: 'mean', beta: 1, topK: 3 });
    expect(recorded.medianSd / viaQuery.projectionError.medianSd).toBeCloseTo(1, 4); // the query rows are float32 here, float64 there
    // Not estimated where a checkpoint's rows were computed, nor for a scorer the estimate does not model.
    const some = await attribute('d64-some', { indexes: [at('base'), at('checkpoint-100')] });
    expect(JSON.parse(readFileSync(join(dir, 'd64-some', 'summary.json'), 'utf8')).indexes.projectionError).toEqual({ skipped: 'no index at checkpoint-50 (their rows were computed and not kept)' });
    expect(some.method.variant).toBe('dda');
  }, 300_000);

  it('dda index query: refuses a --beta the debiaser ignores, warns when a checkpoint has no index, and says where rendering options go', async () => {
    await expect(queryGradientIndexesDda({ indexes: CPS.map(idx), queries: run.queries, beta: 2 })).rejects.toThrow(/--beta 2 has no effect with --debias fitted-beta/);
    const lines: string[] = [];
    await queryGradientIndexesDda({ indexes: [idx('base'), idx('checkpoint-50')], queries: run.queries, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/warning: no index at checkpoint-100 of the run's checkpoints \(checkpoint-50, checkpoint-100\): the denoiser averages over checkpoint-50 only/);
    const long = join(dir, 'long-query.jsonl');
    writeFileSync(long, JSON.stringify({ id: 'q-long', prompt: Array.from({ length: 400 }, () => 'the council met').join(' '), output: 'the plan .' }));
    const err = await queryGradientIndex({ index: idx('base'), queries: long }).then(() => null, (e: Error) => e.message);
    expect(err).toMatch(/dda index query renders and encodes the queries as the index's training samples were \(its index\.json: --prompt-format raw, --max-length \d+, --overlong fail\) and takes none of these options/);
    expect(err).toMatch(/build the index with --overlong truncate/);
    expect(err).not.toMatch(/pass --overlong/);
  }, 300_000);
});
