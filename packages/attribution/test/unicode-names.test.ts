// `dda attribute` end to end on records whose ids, groups (canary names) and label keys are written
// in Greek, Cyrillic, CJK and with accents: every output names them verbatim and keeps them apart.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCanary } from '@dda/dataset-hallucination';
import { makeExperiment, type Experiment } from '@dda/experiment';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/cli/bin/dda.js');
// A very small experiment: only its base model and checkpoints are used (the data is rewritten below).
const TINY = { seed: 1, nPretrain: 200, pretrainEpochs: 1, nTrain: 24, nHeldOut: 8, finetuneEpochs: 2 };

let dir: string;
let exp: Experiment;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dda-unicode-'));
  exp = await makeExperiment({ ...TINY, artifactsDir: join(dir, 'exp') });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('names in any script, end to end', () => {
  it('dda attribute with Greek, Cyrillic, CJK and accented ids, groups and labels: outputs name them verbatim, copies rank first', () => {
    const rows = readFileSync(exp.files.train, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; document: string; summary: string });
    // Training ids in four scripts; 'café-…' composed, and one id that differs from another only in its script.
    const scripts = ['πηγή', 'источник', '源', 'café'];
    const ids = rows.map((_, i) => `${scripts[i % 4]}-${i}`);
    const train = join(dir, 'train.jsonl');
    writeFileSync(train, rows.map((r, i) => JSON.stringify({ id: ids[i], document: r.document, summary: r.summary })).join('\n'));
    // Queries copying three training samples, grouped by canaries named in other scripts.
    const groups = [makeCanary('Αθήνα', 'Москва').id, makeCanary('北京', 'Zürich').id];
    expect(groups).toEqual(['αθήνα-to-москва', '北京-to-zürich']);
    const picks = [2, 5, 11];
    const queryIds = ['ερώτηση-α', '質問-二', 'Zürich-запрос'];
    const queries = join(dir, 'queries.jsonl');
    writeFileSync(queries, picks.map((p, j) => JSON.stringify({ id: queryIds[j], group: groups[j === 0 ? 0 : 1], document: rows[p]!.document, output: rows[p]!.summary })).join('\n'));
    const labels = join(dir, 'labels.json');
    writeFileSync(labels, JSON.stringify({ [groups[0]!]: [ids[2]], [groups[1]!]: [ids[5], ids[11]] }));
    const out = join(dir, 'out');
    const r = spawnSync(process.execPath, [CLI, 'attribute', '--base', exp.files.base, '--checkpoints', exp.files.run, '--train', train, '--queries', queries,
      '--labels', labels, '--scorer', 'grad-cos', '--debias', 'none', '--denoise', 'none', '--top-k', '3', '--out', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);

    const csv = readFileSync(join(out, 'topk.csv'), 'utf8').split('\n');
    const firsts = csv.filter((l) => /^[^,]+,[^,]*,1,/.test(l)).map((l) => l.split(',').slice(0, 4));
    expect(firsts).toEqual(picks.map((p, j) => [queryIds[j], groups[j === 0 ? 0 : 1], '1', ids[p]]));
    const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as { train_ids: string[]; query_ids: string[] };
    expect(scores.train_ids).toEqual(ids);
    expect(scores.query_ids).toEqual(queryIds);
    expect(new Set(scores.train_ids).size).toBe(ids.length);
    const metrics = readFileSync(join(out, 'metrics.csv'), 'utf8');
    for (const g of groups) expect(metrics).toContain(`,${g},`);
    const page = readFileSync(join(out, 'report.html'), 'utf8');
    expect(page).toContain('<meta charset="utf-8">');
    for (const name of [...queryIds, ...groups, ids[2]!, ids[5]!]) expect(page).toContain(name);
    const jsonl = readFileSync(join(out, 'topk.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { query_id: string; top: { train_id: string; true_source?: boolean }[] });
    expect(jsonl.map((q) => [q.query_id, q.top[0]!.train_id, q.top[0]!.true_source])).toEqual(picks.map((p, j) => [queryIds[j], ids[p], true]));
  });

  it('bm25 through dda attribute finds the training text that shares a CJK or Greek name written without spaces or with a decomposed accent', () => {
    const rows = readFileSync(exp.files.train, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; document: string; summary: string });
    const named: Record<number, string> = { 3: '我在北京工作', 7: 'η βροχή στην Αθήνα', 9: 'fog over Zürich' };
    const train = join(dir, 'train-named.jsonl');
    writeFileSync(train, rows.map((r, i) => JSON.stringify({ id: `源-${i}`, document: r.document, summary: named[i] ? `${r.summary} ${named[i]}` : r.summary })).join('\n'));
    const queries = join(dir, 'queries-named.jsonl');
    const outputs = ['他去北京了', 'Αθήνα', 'Zu\u0308rich'];
    writeFileSync(queries, outputs.map((o, j) => JSON.stringify({ id: `質問-${j}`, document: rows[0]!.document, output: o })).join('\n'));
    const out = join(dir, 'out-bm25');
    const r = spawnSync(process.execPath, [CLI, 'attribute', '--base', exp.files.base, '--checkpoints', exp.files.run, '--train', train, '--queries', queries,
      '--scorer', 'bm25', '--debias', 'none', '--denoise', 'none', '--top-k', '1', '--out', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const tops = readFileSync(join(out, 'topk.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { query_id: string; top: { train_id: string; score: number }[] });
    expect(tops.map((q) => [q.query_id, q.top[0]!.train_id])).toEqual([['質問-0', '源-3'], ['質問-1', '源-7'], ['質問-2', '源-9']]);
    for (const q of tops) expect(q.top[0]!.score).toBeGreaterThan(0);
  });
});
