import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run } from './run-cli.js';

// A demo that would run for minutes if a check let it through: every case below must fail at parsing.
const DEMO = ['demo', '--out', '/nonexistent-dda-dir'];

describe('dda: numeric flags given something that is not a number', () => {
  it('names the flag and the value, for every command and for array flags', async () => {
    const beta = await run([...DEMO, '--beta', 'abc']);
    expect(beta).toMatchObject({ code: 2, err: "dda: --beta must be a number, got 'abc'" });
    expect((await run([...DEMO, '--n-train=12x'])).err).toBe("dda: --n-train must be a number, got '12x'");
    const attr = await run(['attribute', '--base', 'b', '--checkpoints', 'c', '--train', 't', '--queries', 'q', '--top-k', 'ten', '--block-rows', '1e2']);
    expect(attr).toMatchObject({ code: 2, err: "dda: --top-k must be a number, got 'ten'" });
    const bench = await run(['bench', '--seeds', '0', 'one', '-2', 'two', '--out', '/nonexistent-dda-dir']);
    expect(bench).toMatchObject({ code: 2, err: "dda: --seeds must be a number, got 'one', 'two'" });
    const two = await run([...DEMO, '--k', 'x', '--beta', 'y']);
    expect(two.err).toBe("dda: --k must be a number, got 'x'; --beta must be a number, got 'y'");
  });

  it('as a JSON error event with --progress json', async () => {
    const r = await run([...DEMO, '--beta', 'abc', '--progress', 'json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.err)).toEqual({ event: 'error', message: "--beta must be a number, got 'abc'" });
  });
});

describe('dda: did you mean', () => {
  it('suggests the closest flags of the command for unknown flags, once per flag typed', async () => {
    const r = await run([...DEMO, '--n-trian', '12', '--sede', '1']);
    expect(r).toMatchObject({ code: 2, err: 'dda: Unknown arguments: n-trian, sede (--n-trian: did you mean --n-train?; --sede: did you mean --seed?)' });
    expect((await run(['attribute', '--base', 'b', '--checkpoints', 'c', '--train', 't', '--queries', 'q', '--labls', 'l'])).err).toBe('dda: Unknown argument: labls (--labls: did you mean --labels?)');
    expect((await run([...DEMO, '--zzzzzz'])).err).toBe('dda: Unknown argument: zzzzzz');
    // A misspelt required flag: yargs says it is missing; the hint names the flag typed.
    const missing = await run(['attribute', '--bse', 'b', '--checkpoints', 'c', '--train', 't', '--queries', 'q']);
    expect(missing).toMatchObject({ code: 2, err: 'dda: Missing required argument: base (--bse: did you mean --base?)' });
  });

  it('suggests the closest registered ids for unknown scorer, measurement, debiaser and denoiser ids', async () => {
    for (const [flag, typo, id] of [['scorer', 'grad-coss', 'grad-cos'], ['measurement', 'los', 'loss'], ['debias', 'zscroe', 'zscore'], ['denoise', 'maen', 'mean']] as const) {
      const r = await run([...DEMO, `--${flag}`, typo]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(new RegExp(`^dda: unknown \\w+ '${typo}' \\(did you mean '${id}'`));
    }
  });
});

describe('dda attribute: --beta where the method would ignore it', () => {
  const ATTR = ['attribute', '--base', 'b', '--checkpoints', 'c', '--train', 't', '--queries', 'q', '--out', '/nonexistent-dda-dir'];
  it('is refused, before any file is read, with the default fitted-beta debiaser or without a debiaser, naming the debiasers that take a β', async () => {
    const fitted = await run([...ATTR, '--beta', '5']);
    expect(fitted.code).toBe(1);
    expect(fitted.err).toMatch(/--beta 5 has no effect with --debias fitted-beta, which takes no β option[\s\S]*drop --beta, or choose a debiaser with a fixed β: raw, zscore, unit-norm, rank/);
    const none = await run([...ATTR, '--beta', '0.5', '--debias', 'none']);
    expect(none.err).toMatch(/--beta 0.5 has no effect without a debiaser \(--debias none\)/);
  });

  it('is taken by a debiaser with a fixed β (the run then goes on to read the files)', async () => {
    const raw = await run([...ATTR, '--beta', '5', '--debias', 'raw']);
    expect(raw.code).toBe(1);
    expect(raw.err).not.toMatch(/--beta/);
  });
});

describe('dda: flags misused', () => {
  const ATTR = ['attribute', '--base', 'b', '--checkpoints', 'c', '--train', 't', '--queries', 'q'];
  it('refuses a one-value flag given twice, naming it', async () => {
    expect(await run([...ATTR, '--queries', 'q2'])).toMatchObject({ code: 2, err: 'dda: --queries was given twice (give it once)' });
    expect((await run([...ATTR, '--labels', 'a', '--labels', 'b', '--out', 'x', '--out', 'y'])).err).toBe('dda: --labels was given twice; --out was given twice (give each once)');
    expect((await run([...ATTR, '--metrics', 'recall-at-k:k=100', '--out', '/nonexistent-dda-dir'])).err).toMatch(/--metrics needs --labels/);
    expect((await run([...ATTR, '--labels', 'l', '--metrics', 'recall-at-k:k', '--out', '/nonexistent-dda-dir'])).err).toMatch(/--metrics recall-at-k:k: 'k' is not option=value/);
    // The demo's --metrics are refused before any training: an unknown id, a label metric's column, one only a benchmark computes.
    expect((await run([...DEMO, '--metrics', 'ndcg'])).err).toMatch(/unknown metric 'ndcg'/);
    expect((await run([...DEMO, '--metrics', 'mrr'])).err).toMatch(/--metrics mrr: every evaluation has this metric already, in column 'mrr' \(drop it from --metrics\)/);
    expect((await run([...DEMO, '--metrics', 'average-precision'])).err).toMatch(/--metrics average-precision: every evaluation has this metric already, in column 'average_precision' \(drop it from --metrics\)/);
    expect((await run([...DEMO, '--metrics', 'recall-at-k:kk=5'])).err).toMatch(/--metrics recall-at-k: metric 'recall-at-k' has no option 'kk' \(did you mean 'k'\?/);
    // dda attribute refuses the same, with the same messages, before reading any file
    const LAB = [...ATTR, '--labels', 'l', '--out', '/nonexistent-dda-dir'];
    expect((await run([...LAB, '--metrics', 'average-precision'])).err).toMatch(/--metrics average-precision: every evaluation has this metric already, in column 'average_precision' \(drop it from --metrics\)/);
    expect((await run([...LAB, '--metrics', 'mrr'])).err).toMatch(/--metrics mrr: every evaluation has this metric already, in column 'mrr'/);
    expect((await run([...LAB, '--metrics', 'recall-at-k:kk=5'])).err).toMatch(/--metrics recall-at-k: metric 'recall-at-k' has no option 'kk' \(did you mean 'k'\?/);
    expect((await run([...DEMO, '--metrics', 'lds'])).err).toMatch(/--metrics: the metric 'lds' needs retrainedLosses, which only a benchmark/);
    expect(existsSync('/nonexistent-dda-dir')).toBe(false);
  });

  it('echoes the value of a one-letter numeric flag', async () => {
    expect(await run([...ATTR, '-k', 'abc'])).toMatchObject({ code: 2, err: "dda: --k must be a number, got 'abc'" });
  });
});

describe('dda bench --metrics', () => {
  it('overrides the config and is validated as the config field is, before anything is written', async () => {
    const r = await run(['bench', '--config', 'benchmarks/configs/tiny.json', '--metrics', 'auc', 'lds2', '--out', '/nonexistent-dda-dir']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/dda: metrics: unknown metric 'lds2' \(the benchmark's metrics are auc, recall, lds, leave-out or an id of the metrics registry \(auc, recall-at-k, average-precision, mrr, lds, leave-out, leave-out-random;/);
    expect(existsSync('/nonexistent-dda-dir')).toBe(false);
    const bad = await run(['bench', '--config', 'benchmarks/configs/tiny.json', '--metrics', 'auc', '7', '--out', '/nonexistent-dda-dir']);
    expect(bad.code).not.toBe(0);
  });
});

describe('dda bench --jobs', () => {
  it('takes an integer from 1 to the cores, refused before anything starts (a huge count once spawned a worker per unit)', async () => {
    const { availableParallelism } = await import('node:os');
    for (const jobs of ['0', '-1', '1.5', '1e9', String(availableParallelism() + 1)]) {
      for (const cmd of ['bench', 'ablate']) {
        const r = await run([cmd, '--config', 'benchmarks/configs/tiny.json', '--jobs', jobs, '--out', '/nonexistent-dda-dir']);
        expect(r.code, `${cmd} --jobs ${jobs}`).not.toBe(0);
        expect(r.err).toContain(`--jobs must be an integer from 1 to the ${availableParallelism()} cores of this machine, got ${Number(jobs)}`);
        expect(existsSync('/nonexistent-dda-dir')).toBe(false);
      }
    }
  });
});

describe('DDA_ORT_THREADS', () => {
  it('is refused before any command when it is not a positive integer (onnxruntime would not start, and the engine choice would move on to tfjs)', async () => {
    const before = process.env.DDA_ORT_THREADS;
    try {
      for (const v of ['0', '-2', '1.5', 'abc']) {
        process.env.DDA_ORT_THREADS = v;
        const r = await run(['bench', '--config', 'benchmarks/configs/tiny.json', '--out', '/nonexistent-dda-dir']);
        expect(r.code, v).not.toBe(0);
        expect(r.err).toContain(`DDA_ORT_THREADS=${v}: onnxruntime's intra-op threads per session must be a positive integer`);
        expect(existsSync('/nonexistent-dda-dir')).toBe(false);
      }
    } finally {
      if (before === undefined) delete process.env.DDA_ORT_THREADS;
      else process.env.DDA_ORT_THREADS = before;
    }
  });
});

describe('dda bench: a seed or family given twice', () => {
  it('is refused (it would count one run twice in n, the intervals and the paired tests)', async () => {
    const seeds = await run(['bench', '--config', 'benchmarks/configs/tiny.json', '--seeds', '0', '0', '--out', '/nonexistent-dda-dir']);
    expect(seeds.code).not.toBe(0);
    expect(seeds.err).toContain('a seed is given twice');
    const fams = await run(['bench', '--config', 'benchmarks/configs/tiny.json', '--families', 'llama2-tiny', 'llama2-tiny', '--out', '/nonexistent-dda-dir']);
    expect(fams.code).not.toBe(0);
    expect(fams.err).toContain('a family is given twice');
    expect(existsSync('/nonexistent-dda-dir')).toBe(false);
  });
});

describe('engine flags', () => {
  it('name an engine of the registry, refused before any file is read', async () => {
    const r = await run(['attribute', '--gradient-engine', 'jax', '--base', '/nonexistent-base', '--checkpoints', 'c', '--train', 't.jsonl', '--queries', 'q.jsonl', '--out', '/nonexistent-dda-dir']);
    expect(r.code).not.toBe(0);
    expect(r.err).toBe("dda: --gradient-engine jax: no such engine (the engines are onnxruntime, tfjs (a plugin's engine needs its plugin loaded, --plugin or plugins:))");
  });
});

