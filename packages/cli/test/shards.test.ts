import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { mergeShards, resolveShard } from '@dda/attribution';
import { attributionOutputs as outputs, run as cli } from './run-cli.js';
import { makeUserRun, type UserRun } from '../../attribution/test/fixtures/user-run.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = join(ROOT, 'packages/cli/bin/dda.js');
const dir = mkdtempSync(join(tmpdir(), 'dda-shards-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let u: UserRun;
const args = (): string[] => ['--base', u.base, '--checkpoints', u.run, '--train', u.train, '--queries', u.queries, '--block-rows', '8', '--top-k', '5'];


let reference: Record<string, string>;
beforeAll(async () => {
  u = makeUserRun(join(dir, 'user'), 60);
  const r = await cli(['attribute', ...args(), '--out', join(dir, 'single')]);
  expect(r.code, r.err).toBe(0);
  reference = outputs(join(dir, 'single'));
});

describe('the shard contract (engine-neutral)', () => {
  it('reads the shard from --shard i/n, --shard slurm, or --shards n with SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX', () => {
    expect(resolveShard('2/4', undefined, {})).toEqual({ index: 2, count: 4 });
    expect(resolveShard('slurm', undefined, { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' })).toEqual({ index: 1, count: 3 });
    expect(resolveShard(undefined, 4, { SLURM_ARRAY_TASK_ID: '3' })).toEqual({ index: 3, count: 4 });
    expect(resolveShard(undefined, 4, { JOB_COMPLETION_INDEX: '0' })).toEqual({ index: 0, count: 4 });
    expect(resolveShard(undefined, undefined, { SLURM_ARRAY_TASK_ID: '3' })).toBeNull(); // never inferred from the environment alone
    expect(() => resolveShard('4/4', undefined, {})).toThrow(/shard index 4 is outside 0\.\.3/);
    expect(() => resolveShard('1-4', undefined, {})).toThrow(/not of the form i\/n/);
    expect(() => resolveShard(undefined, 2, {})).toThrow(/neither is set/);
  });

  it('4 shards then a merge give the one-machine outputs; a shard run twice skips; the merge names missing and mismatched shards', async () => {
    const out = join(dir, 'sharded');
    for (const i of [0, 1, 3]) expect((await cli(['attribute', ...args(), '--out', out, '--shard', `${i}/4`])).code).toBe(0);
    const missing = await cli(['merge', '--out', out]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/missing shard 2 of 4.*resubmit only those: sbatch --array=2/);
    // A shard made from other inputs (another debiaser and β) is named too.
    expect((await cli(['attribute', ...args(), '--debias', 'raw', '--beta', '0.5', '--out', out, '--shard', '2/4'])).code).toBe(0);
    expect((await cli(['merge', '--out', out])).err).toMatch(/shard 2 made from other inputs \(method\.debias: "[\w-]+" in shard 0, "raw" in shard 2; method\.beta: 1 in shard 0, 0\.5 in shard 2; /);
    const s2 = await cli(['attribute', ...args(), '--out', out, '--shard', '2/4']);
    expect(s2.code, s2.err).toBe(0);
    expect(s2.out).toMatch(/shard 2\/4 done/);
    const again = await cli(['attribute', ...args(), '--out', out, '--shard', '2/4']);
    expect(again.out).toMatch(/shard 2\/4 had finished earlier/);
    const m = await cli(['merge', '--out', out]);
    expect(m.code, m.err).toBe(0);
    expect(m.out).toMatch(/merged 4 shards \(0 artifacts computed at the merge\)/); // every block was stored by a shard
    expect(outputs(out)).toEqual(reference);
  });

  it('the merge of a scorer that streams its gradients in several passes says it does the later passes, naming each block once', async () => {
    const small = makeUserRun(join(dir, 'small'), 8, 2);
    const a = ['--base', small.base, '--checkpoints', small.run, '--train', small.train, '--queries', small.queries, '--block-rows', '4', '--scorer', 'datainf', '--out', join(dir, 'datainf')];
    for (const i of [0, 1]) {
      const r = await cli(['attribute', ...a, '--shard', `${i}/2`, '--quiet']);
      expect(r.code, r.err).toBe(0);
    }
    const m = await cli(['merge', '--out', join(dir, 'datainf'), '--progress', 'none']);
    expect(m.code, m.err).toBe(0);
    expect(m.err).not.toContain('should have stored');
    const line = m.err.split('\n').find((l) => l.includes('merge: ')) ?? '';
    expect(line).toMatch(/merge: 'datainf' streams its training gradients in several passes; the shards did the first, the merge did the others on one machine \(by design\), computing the gradients of 6 blocks again \(gradients\/base\/train\/0, gradients\/base\/train\/1, gradients\/checkpoint-50\/train\/0, .*\)$/);
    const blocks = /again \(([^)]*)\)/.exec(line)?.[1]?.split(', ') ?? [];
    expect(new Set(blocks).size).toBe(blocks.length);
  });

  it('the merge compares the inputs as they are now with the shards\' before computing anything: an edited training record is refused by name, with its block and the shards to run again', async () => {
    const e = makeUserRun(join(dir, 'edited'), 16, 2);
    const out = join(dir, 'edited-out');
    // 16 samples in blocks of 4: blocks 0-3 at θ0 and 2 checkpoints, 12 units; shard 0 of 2 computes blocks 0 and 2, shard 1 blocks 1 and 3.
    const a = ['--base', e.base, '--checkpoints', e.run, '--train', e.train, '--queries', e.queries, '--block-rows', '4', '--top-k', '3', '--progress', 'none'];
    for (const i of [0, 1]) expect((await cli(['attribute', ...a, '--out', out, '--shard', `${i}/2`, '--quiet'])).code).toBe(0);
    const original = readFileSync(e.train, 'utf8');
    const lines = original.split('\n');
    const edited = (): string => lines.map((l, i) => (i === 5 ? JSON.stringify({ ...JSON.parse(l), response: JSON.parse(lines[7] as string).response }) : l)).join('\n');
    writeFileSync(e.train, edited());
    const refused = await cli(['merge', '--out', out, '--progress', 'none']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/cannot merge .*: the inputs are not those the shards ran with \(--train \S+train\.jsonl changed since the shards ran: record t5 \(\S*train\.jsonl:6\) changed, in training block 1 \(samples 5-8\) of 4 rows\); the work of shard 1 of 2 is of the old inputs/);
    expect(refused.err).toMatch(/restore the inputs as the shards had them and merge again; or run again the shards whose blocks changed \(dda slurm \.\.\. --only 1; or dda attribute \.\.\. --shard 1\/2\), or all of them/);
    expect(existsSync(join(out, 'topk.csv'))).toBe(false); // refused before computing anything
    // Restored: merged, nothing computed again, and no word of passes (grad-dot takes one).
    writeFileSync(e.train, original);
    const restored = await cli(['merge', '--out', out, '--progress', 'none']);
    expect(restored.code, restored.err).toBe(0);
    expect(restored.out).toMatch(/merged 2 shards \(0 artifacts computed at the merge\)/);
    // A score block gone from the store is computed again at the merge, and grad-dot is still not said to stream in several passes.
    const blocks = join(out, 'artifacts', 'scores', 'grad-dot', 'checkpoint-50');
    const gone = readdirSync(blocks)[0] as string;
    rmSync(join(blocks, gone), { recursive: true });
    rmSync(join(out, 'topk.csv'));
    const again = await cli(['merge', '--out', out, '--progress', 'none']);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/merged 2 shards \([1-9]\d* artifacts? computed at the merge\)/);
    expect(again.err).not.toMatch(/several passes/);
    // Edited again and only shard 1 run again: shard 0's blocks have not changed and are used; the outputs are a one-machine run's on the edited file.
    writeFileSync(e.train, edited());
    expect((await cli(['attribute', ...a, '--out', out, '--shard', '1/2', '--quiet'])).code).toBe(0);
    const logged: string[] = [];
    const merged = await mergeShards(out, { log: (l) => logged.push(l) });
    expect(logged.join('\n')).toMatch(/merge: shard 0 ran before the training file changed; none of its \(checkpoint, block\) units is among those that changed, so its work is used as it is/);
    // Nothing of the shards' computed again: only the training-loss check, which shard 0 made on the old file.
    expect(merged.computedAtMerge.filter((n) => !n.startsWith('losses/') && n.endsWith('/train-sample'))).toEqual([]);
    expect((await cli(['attribute', ...a, '--out', join(dir, 'edited-single'), '--quiet'])).code).toBe(0);
    expect(outputs(out)).toEqual(outputs(join(dir, 'edited-single')));
  });

  it('the Kubernetes Indexed Job example runs locally for its indices with the same contract', async () => {
    const manifest = parseYaml(readFileSync(join(ROOT, 'examples/kubernetes/attribute-indexed-job.yaml'), 'utf8')) as {
      kind: string; spec: { completionMode: string; completions: number; template: { spec: { containers: { command: string[]; args: string[]; env?: { name: string; value: string }[] }[] } } };
    };
    expect(manifest.kind).toBe('Job');
    expect(manifest.spec.completionMode).toBe('Indexed');
    const c = manifest.spec.template.spec.containers[0]!;
    const data = join(dir, 'k8s');
    mkdirSync(data, { recursive: true });
    // The manifest's paths live under $(DATA) (a shared volume): point it at this run's files.
    const env: Record<string, string> = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    env.DATA = join(dir, 'user');
    env.OUT = join(data, 'out');
    const expand = (s: string): string => s.replace(/\$\((\w+)\)/g, (_, v: string) => env[v] ?? process.env[v] ?? '');
    const argv = c.args.map(expand);
    expect(c.command.slice(-1)[0]).toMatch(/dda(\.js)?$/);
    for (let index = 0; index < manifest.spec.completions; index++) {
      await promisify(execFile)(process.execPath, [BIN, ...argv], { env: { ...process.env, JOB_COMPLETION_INDEX: String(index) } });
    }
    expect(existsSync(join(env.OUT, 'shards', `shard-1-of-${manifest.spec.completions}.json`))).toBe(true);
    const m = await cli(['merge', '--out', env.OUT]);
    expect(m.code, m.err).toBe(0);
    // The same command line without sharding, in one process.
    const single = join(data, 'single');
    const shardless = argv.flatMap((a, i) => (a === '--shards' || argv[i - 1] === '--shards' ? [] : a === env.OUT ? [single] : [a]));
    expect((await cli(shardless)).code).toBe(0);
    expect(outputs(env.OUT)).toEqual(outputs(single));
  });
});
