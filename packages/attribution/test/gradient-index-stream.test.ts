import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGradientIndex, prepareIndexBuild, type IndexBuildOptions, type IndexHeader, type PreparedIndexBuild } from '../src/gradient-index.js';
import { buildGradientIndexShard, indexShardRows, mergeGradientIndexShards } from '../src/gradient-index-shards.js';
import { N_RECORDS, lineOf, writeIndexData, type IndexData } from './fixtures/index-data.js';
import { makeUserRun, type UserRun } from './fixtures/user-run.js';

// `dda index build` reads its training file as a stream, and a shard keeps only its own samples.
// What it records must stay what it recorded when it read the file whole: the values below were
// written by the build at commit a897830 (readTrainingData, every record held) on these files.
const COMMITTED = {
  jsonl: { bytes: '511176ef166b5383', samples: '69e474913d9b87d5', trainIds: '6d515685ac7ded17', shape: { records: 70, chat: 0, prefix: null } },
  csv: { bytes: 'f570fb32ade2a746', samples: '13b53be63bdfd329', trainIds: '6c0310bd3597ebb6', shape: { records: 70, chat: 0, prefix: null } },
  chat: {
    bytes: '34689474bc97f478', samples: '53292d6dc68e10a5', trainIds: 'c814c553288894da',
    shape: { records: 70, chat: 70, prefix: '<|system|> You will act as a summarizati', system: 'You will act as a summarization expert.' },
  },
} as const;
const D = '<dir>';
/** Its log lines of the JSON Lines file's checks (after the model's). */
const COMMITTED_LOG = [
  `training data: ${D}/train.jsonl: 70 prompt-response record(s), prompt format raw, fields used: id, prompt, response; first sample as the model sees it, prompt | response (${D}/train.jsonl:1): "for the china council ?" | "against china china ." + EOS token "<eos>"`,
  `warning: 1 record(s) have words outside the model's word-level vocabulary, which the tokenizer maps to <unk>, so the model reads another text than the record's: ${D}/train.jsonl:21: "zebra" (the vocabulary was built from the data the model was trained on; remove or replace these words, or use a model with a subword tokenizer)`,
  `warning: 1 response(s) or output(s) end with the end token written out ('<eos>'; first: ${D}/train.jsonl:34), which the template or the appended EOS adds again, so the model sees it twice: remove it from the text unless the training data had it twice too`,
];
/** Its errors on the damaged files (the hint follows each in the message). */
const COMMITTED_ERRORS: Record<string, string> = {
  overlong: `sample 'r54' (${D}/train.jsonl:56): 37 tokens, longer than the model's context of 20 tokens`,
  mapping: `training data '${D}/train.jsonl': --fields maps 'prompt' from column 'question', which no record of the file has (its columns: id, prompt, response)`,
  badJsonFar: `${D}/bad-json-far.jsonl:62: invalid JSON (Unexpected end of JSON input)`,
  utf8AfterJson: `training data: '${D}/utf8-after-json.jsonl' is not valid UTF-8 (line 66, byte 5684: 0xff)`,
  jsonAfterField: `${D}/json-after-field.jsonl:67: invalid JSON (Unexpected end of JSON input)`,
  fieldBeforeDuplicate: `${D}/field-before-duplicate.jsonl:66: missing field 'response' (its fields: id, prompt)`,
  duplicate: `${D}/duplicate.jsonl:62: duplicate training id 'r11' (first used at ${D}/duplicate.jsonl:12)`,
  csvColumns: `${D}/columns.csv: row 50 has a different number of columns than the header`,
  empty: `training data: '${D}/empty.jsonl' is empty`,
  blank: `training data: '${D}/blank.jsonl' is empty`,
};

let dir: string;
let run: UserRun;
let data: IndexData;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dda-index-stream-'));
  run = makeUserRun(join(dir, 'user'), 12, 1);
  data = writeIndexData(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BLOCK = 8; // 70 samples: 9 blocks; 3 shards of rows 0–23, 24–47, 48–69
const options = (train: string, o: Partial<IndexBuildOptions> = {}): IndexBuildOptions => ({
  base: run.base, checkpoints: [run.run], train, checkpoint: 'checkpoint-100', out: join(dir, 'out'), dim: 256, seed: 1, blockRows: BLOCK, ...o,
});
const shardRows = (index: number) => (n: number, blockRows: number) => indexShardRows(n, blockRows, { index, count: 3 });
/** prepareIndexBuild of all rows (shard undefined) or of shard i of 3, with its log (the folder as <dir>). */
async function prepared(train: string, shard?: number, o: Partial<IndexBuildOptions> = {}): Promise<{ p: PreparedIndexBuild; log: string[] }> {
  const log: string[] = [];
  const p = await prepareIndexBuild({ ...options(train, o), log: (l) => log.push(l.split(dir).join(D)) }, shard === undefined ? undefined : shardRows(shard));
  return { p, log };
}
const ids = (p: PreparedIndexBuild): string[] => p.samples.map((s) => s.id);

describe('an index build reads its training file as a stream', () => {
  it('records the committed data hashes, training ids and rendering, and logs the same checks, sharded or not (JSON Lines, CSV, chat-rendered)', async () => {
    for (const name of ['jsonl', 'csv', 'chat'] as const) {
      const whole = await prepared(data[name]);
      const { train, trainIds } = whole.p.identity;
      expect({ bytes: train.bytes, samples: train.samples, trainIds, shape: whole.p.shape }, name).toEqual(COMMITTED[name]);
      expect(whole.p.total).toBe(N_RECORDS);
      expect(whole.p.rows).toEqual({ start: 0, end: N_RECORDS });
      if (name === 'jsonl') expect(whole.log.slice(-3)).toEqual(COMMITTED_LOG);
      for (const shard of [0, 1, 2]) {
        const s = await prepared(data[name], shard);
        const rows = indexShardRows(N_RECORDS, BLOCK, { index: shard, count: 3 });
        expect(s.p.rows).toEqual(rows);
        expect(s.p.identity).toEqual(whole.p.identity);
        expect(s.p.shape).toEqual(whole.p.shape);
        expect(s.log).toEqual(whole.log);
        expect(s.p.samples).toEqual(whole.p.samples.slice(rows.start, rows.end));
        expect(s.p.lossSamples).toEqual(whole.p.lossSamples);
      }
    }
    // --overlong truncate: the truncation counted over the whole file in every shard.
    const truncated = 'index: 1 training sample(s) truncated to 20 tokens (--overlong truncate)';
    expect((await prepared(data.jsonl, undefined, { maxLength: 20, overlong: 'truncate' })).log).toContain(truncated);
    expect((await prepared(data.jsonl, 0, { maxLength: 20, overlong: 'truncate' })).log).toContain(truncated);
  }, 120_000);

  it('a shard keeps the samples of its rows and of the training loss check, not the file\'s', async () => {
    const n = 1000;
    const train = join(dir, 'thousand.jsonl');
    writeFileSync(train, Array.from({ length: n }, (_, i) => JSON.stringify({ id: `k${i}`, prompt: 'the council met on monday ?', response: 'new roads .' })).join('\n'));
    const whole = (await prepared(train)).p;
    expect(whole.samples).toHaveLength(n);
    const rows = indexShardRows(n, BLOCK, { index: 1, count: 3 });
    const { p } = await prepared(train, 1);
    expect(ids(p)).toEqual(Array.from({ length: rows.end - rows.start }, (_, i) => `k${rows.start + i}`));
    expect(p.lossSamples).toEqual(whole.lossSamples);
    expect(p.lossSamples).toHaveLength(64);
    // The samples the shard's model task can name: its rows' and the loss check's, no others.
    const kept = new Set([...ids(p), ...p.lossSamples.map((s) => s.id)]);
    expect(p.side.origins.size).toBe(kept.size);
    expect(kept.size).toBeLessThan(rows.end - rows.start + 65);
    expect(p.side.task.origin('k0')).toBe(kept.has('k0') ? `${train}:1` : undefined);
    expect(p.side.task.origin(`k${rows.start}`)).toBe(`${train}:${rows.start + 1}`);
    expect(whole.side.origins.size).toBe(n);
  }, 120_000);

  it('bad input: every shard refuses it with the committed error, naming the file and record, whichever shard\'s rows it is in', async () => {
    const cases: Record<string, [string, Partial<IndexBuildOptions>]> = {
      overlong: [data.jsonl, { maxLength: 20 }], mapping: [data.jsonl, { fields: { prompt: 'question' } }],
      badJsonFar: [data.badJsonFar, {}], utf8AfterJson: [data.utf8AfterJson, {}], jsonAfterField: [data.jsonAfterField, {}],
      fieldBeforeDuplicate: [data.fieldBeforeDuplicate, {}], duplicate: [data.duplicate, {}], csvColumns: [data.csvColumns, {}], empty: [data.empty, {}], blank: [data.blank, {}],
    };
    expect(lineOf(60)).toBe(62); // the malformed record of bad-json-far.jsonl is in shard 2's rows (48–69)
    for (const [name, [train, o]] of Object.entries(cases)) {
      for (const shard of [undefined, 0, 2]) {
        const message = await prepared(train, shard, o).then(() => 'no error', (e: Error) => e.message.split(dir).join(D));
        expect(message, `${name}, shard ${shard}`).toContain(COMMITTED_ERRORS[name]);
      }
    }
  }, 120_000);

  it('3 shards merged are the unsharded build byte for byte, with the committed data hash and training ids', async () => {
    const one = join(dir, 'one');
    await buildGradientIndex(options(data.jsonl, { out: one }));
    const header = JSON.parse(readFileSync(join(one, 'index.json'), 'utf8')) as IndexHeader;
    expect({ bytes: header.train.bytes, samples: header.train.samples }).toEqual({ bytes: COMMITTED.jsonl.bytes, samples: COMMITTED.jsonl.samples });
    expect(header.trainIds).toHaveLength(N_RECORDS);
    expect(header.trainIds[10]).toBe(String(lineOf(10))); // record 10 has no id: its line number
    const three = join(dir, 'three');
    for (const index of [1, 2, 0]) await buildGradientIndexShard(options(data.jsonl, { out: three }), { index, count: 3 });
    mergeGradientIndexShards(three);
    const files = (out: string): Record<string, Buffer> => Object.fromEntries(readdirSync(out).filter((f) => f !== 'verified.json').sort().map((f) => [f, readFileSync(join(out, f))]));
    expect(Object.keys(files(three))).toEqual(['gradients.f16', 'index.json']);
    expect(files(three)).toEqual(files(one));
  }, 300_000);
});
