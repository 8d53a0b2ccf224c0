import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attributionOutputs, run } from './run-cli.js';
import { makeUserRun, type UserRun } from '../../attribution/test/fixtures/user-run.js';
import { writeParquet, writeSavedDataset } from '../../data/test/columnar-files.js';

// One training set in every format dda reads it in: the same records, the same scores.
const dir = mkdtempSync(join(tmpdir(), 'dda-formats-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let u: UserRun;
const train: Record<string, string> = {};
beforeAll(() => {
  u = makeUserRun(join(dir, 'user'), 6, 2);
  const rows = readFileSync(u.train, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; prompt: string; response: string });
  const messages = rows.map((r, i) => ({ id: r.id, messages: [...(i % 2 ? [{ role: 'system', content: 'the mayor said' }] : []), { role: 'user', content: r.prompt }, { role: 'assistant', content: r.response }] }));
  const sharegpt = rows.map((r, i) => ({ id: r.id, ...(i % 2 ? { system: 'the mayor said' } : {}), conversations: [{ from: 'human', value: r.prompt }, { from: 'gpt', value: r.response }] }));
  train.jsonl = join(dir, 'messages.jsonl');
  writeFileSync(train.jsonl, messages.map((r) => JSON.stringify(r)).join('\n'));
  train.sharegpt = join(dir, 'sharegpt.json');
  writeFileSync(train.sharegpt, JSON.stringify(sharegpt));
  train.parquet = writeParquet(join(dir, 'sharegpt.parquet'), sharegpt, 4);
  train.saved = writeSavedDataset(join(dir, 'saved'), sharegpt, 2);
  writeFileSync(join(dir, 'dataset_info.json'), JSON.stringify({ mine: { file_name: 'sharegpt.parquet', formatting: 'sharegpt', columns: { messages: 'conversations', system: 'system' } } }));
  train.datasetInfo = `${join(dir, 'dataset_info.json')}#mine`;
});

describe('dda attribute on one training set as JSON Lines, ShareGPT, Parquet, a save_to_disk folder and a dataset_info.json entry', () => {
  it('gives identical scores', async () => {
    const outputs: Record<string, Record<string, string>> = {};
    for (const [name, path] of Object.entries(train)) {
      const out = join(dir, `out-${name}`);
      const r = await run(['attribute', '--base', u.base, '--checkpoints', u.run, '--train', path, '--queries', u.queries, '--out', out]);
      expect(r.code, `${name}: ${r.err}`).toBe(0);
      const { 'scores.npy': npy, 'scores.json': json } = attributionOutputs(out);
      // The top-k lists name where each record is (the file and line or row): the rest must match.
      const topk = readFileSync(join(out, 'topk.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { top: { where: string }[] });
      outputs[name] = { npy: npy!, json: json!, topk: JSON.stringify(topk.map((q) => ({ ...q, top: q.top.map(({ where: _, ...t }) => t) }))) };
    }
    expect(JSON.parse(outputs.jsonl!.topk!)[0].top).toHaveLength(6);
    for (const name of Object.keys(train)) expect(outputs[name], name).toEqual(outputs.jsonl);
    // summary.json records what was read, through which dataset_info.json entry.
    const summary = JSON.parse(readFileSync(join(dir, 'out-datasetInfo', 'summary.json'), 'utf8')) as { inputs: { rendering: { train: unknown } } };
    expect(summary.inputs.rendering.train).toMatchObject({ file: join(dir, 'sharegpt.parquet'), dataset: train.datasetInfo, shapes: { sharegpt: 6 } });
  }, 120_000);
});
