import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './run-cli.js';
import { makeUserRun, type UserRun } from '../../attribution/test/fixtures/user-run.js';

// One column mapping per file: --fields for --train, --query-fields for --queries.
const dir = mkdtempSync(join(tmpdir(), 'dda-fields-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let u: UserRun;
let trainCsv: string;
beforeAll(() => {
  u = makeUserRun(join(dir, 'user'), 6, 2);
  // The training data as a CSV with other column names and a column dda does not read.
  const rows = readFileSync(u.train, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; prompt: string; response: string });
  trainCsv = join(dir, 'train.csv');
  writeFileSync(trainCsv, `uid,question,answer,source\n${rows.map((r) => `${r.id},${r.prompt},${r.response},web`).join('\n')}\n`);
});

describe('--fields and --query-fields', () => {
  it('dda attribute: --fields maps the training CSV and leaves the queries\' prompt alone; unused columns are warned once; summary.json records the rendering', async () => {
    const out = join(dir, 'out');
    const r = await run(['attribute', '--base', u.base, '--checkpoints', u.run, '--train', trainCsv, '--queries', u.queries, '--fields', 'id=uid', 'prompt=question', 'response=answer', '--out', out, '--progress', 'log']);
    expect(r.code, r.err).toBe(0);
    // The fixture's trainer_state.json logs made-up losses, so the training-loss check may warn too; here only the fields' warnings count.
    const warnings = r.err.split('\n').filter((l) => l.includes('warning:') && !l.includes("the final checkpoint's loss on --train"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`warning: training data ${trainCsv}: field 'source' is read and not used in 6 of 6 record(s)`);
    expect(r.err).toMatch(/training data: .*train\.csv: 6 prompt-response record\(s\), prompt format raw, mapped id=uid prompt=question response=answer, fields used: uid, question, answer, read and not used: source; first sample as the model sees it, prompt \| response \(.*train\.csv: row 2\): ".*\?" \| ".*\."/);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { inputs: { fields: unknown; queryFields: unknown; rendering: { template: unknown; queries: { fields: unknown } } } };
    expect(summary.inputs.fields).toEqual({ id: 'uid', prompt: 'question', response: 'answer' });
    expect(summary.inputs.queryFields).toEqual({});
    expect(summary.inputs.rendering.template).toBeNull();
    expect(summary.inputs.rendering.queries.fields).toEqual({});
  }, 120_000);

  it('a mapping for a column the file lacks names the file and its columns', async () => {
    const r = await run(['attribute', '--base', u.base, '--checkpoints', u.run, '--train', u.train, '--queries', u.queries, '--query-fields', 'output=generation', '--out', join(dir, 'bad')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`queries '${u.queries}': --query-fields maps 'output' from column 'generation', which no record of the file has (its columns: id, group, prompt, output)`);
  });

  it('dda slurm keeps both mappings in the re-built dda attribute command line', async () => {
    const out = join(dir, 'slurm');
    const r = await run(['slurm', '--base', 'b', '--checkpoints', 'c', '--train', 't.csv', '--queries', 'q.jsonl', '--fields', 'prompt=question', '--query-fields', 'output=generation', 'prompt=context', '--out', out, '--shards', '2', '--dry-run']);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(out, 'slurm', 'attribute.sbatch'), 'utf8')).toMatch(/ --fields prompt=question --query-fields output=generation prompt=context /);
  });
});
