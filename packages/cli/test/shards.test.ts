import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { resolveShard } from '@dda/attribution';
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
