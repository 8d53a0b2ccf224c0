import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type TrainingRecord, dataFilesOf, readQueryRecords, readTrainingData, readTrainingRecords } from '@dda/data';
import { tempFiles } from './temp-files.js';
import { writeParquet, writeSavedDataset } from './columnar-files.js';

const { dir, file, jsonl } = tempFiles('dda-formats-');

// One small training set: chat messages (with a system turn and a multi-turn record), as dda's own records.
const MESSAGES = [
  { id: 'a', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Capital of France?' }, { role: 'assistant', content: 'Paris.' }] },
  { id: 'b', messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }, { role: 'user', content: '2+2?' }, { role: 'assistant', content: '4' }] },
  { id: 'c', messages: [{ role: 'user', content: 'Name a colour' }, { role: 'assistant', content: 'Blue' }] },
];
// The same as LLaMA-Factory's ShareGPT: the system turn as a first "system" turn or a `system` field.
const SHAREGPT = [
  { id: 'a', conversations: [{ from: 'system', value: 'Be brief.' }, { from: 'human', value: 'Capital of France?' }, { from: 'gpt', value: 'Paris.' }] },
  { id: 'b', conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello!' }, { from: 'human', value: '2+2?' }, { from: 'gpt', value: '4' }] },
  { id: 'c', conversations: [{ from: 'human', value: 'Name a colour' }, { from: 'gpt', value: 'Blue' }] },
];
const SHAREGPT_SYSTEM_FIELD = SHAREGPT.map((r) => (r.id === 'a' ? { id: 'a', system: 'Be brief.', conversations: r.conversations.slice(1) } : r));
// Prompt/response pairs and Alpaca records, for the flat formats.
const PAIRS = [{ id: 'p1', prompt: 'Q: one?', response: 'A: 1' }, { id: 'p2', prompt: 'Q: two?', response: 'A: 2' }, { id: 'p3', prompt: 'Q: three?', response: 'A: 3' }];
const ALPACA = [{ id: 'x', instruction: 'Translate', input: 'chat', output: 'cat', system: 'You translate.' }, { id: 'y', instruction: 'Say hi', output: 'hi' }];

const same = (r: readonly TrainingRecord[]): unknown => r.map((x) => ({ id: x.id, content: x.content }));

describe('ShareGPT, Parquet, save_to_disk folders and dataset_info.json give the records JSON Lines gives', () => {
  it('ShareGPT conversations (JSON Lines, JSON, Parquet, save_to_disk) read as the same chat messages', async () => {
    const expected = same(await readTrainingRecords(jsonl(MESSAGES)));
    const sharegpt = await readTrainingData(jsonl(SHAREGPT));
    expect(same(sharegpt.records)).toEqual(expected);
    expect(sharegpt.rendering.shapes).toEqual({ sharegpt: 3 });
    expect(same(await readTrainingRecords(file('json', JSON.stringify(SHAREGPT_SYSTEM_FIELD))))).toEqual(expected);
    const parquet = writeParquet(join(dir, 'sharegpt.parquet'), SHAREGPT);
    const rp = await readTrainingRecords(parquet);
    expect(same(rp)).toEqual(expected);
    expect(rp.map((r) => r.where)).toEqual([`${parquet}: row 1`, `${parquet}: row 2`, `${parquet}: row 3`]);
    const saved = writeSavedDataset(join(dir, 'sharegpt-saved'), SHAREGPT_SYSTEM_FIELD);
    const rs = await readTrainingRecords(saved);
    expect(same(rs)).toEqual(expected);
    // Content hashes cover every file of the folder.
    expect(dataFilesOf(saved)).toEqual(['data-00000-of-00002.arrow', 'data-00001-of-00002.arrow', 'dataset_info.json', 'state.json'].map((n) => join(saved, n)));
    expect(rs.map((r) => r.where)).toEqual([join(saved, 'data-00000-of-00002.arrow: row 1'), join(saved, 'data-00000-of-00002.arrow: row 2'), join(saved, 'data-00001-of-00002.arrow: row 1')]);
  });

  it('prompt/response pairs and Alpaca records from Parquet (several row groups) and save_to_disk folders', async () => {
    for (const rows of [PAIRS, ALPACA]) {
      const expected = same(await readTrainingRecords(jsonl(rows)));
      expect(same(await readTrainingRecords(writeParquet(join(dir, `${rows[0]!.id}.parquet`), rows, 1)))).toEqual(expected);
      expect(same(await readTrainingRecords(writeSavedDataset(join(dir, `${rows[0]!.id}-saved`), rows, 2)))).toEqual(expected);
    }
    // Ids stored as int64 read as numbers; rows without an id are numbered across the folder's files.
    const saved = writeSavedDataset(join(dir, 'numbered'), [{ id: 10, prompt: 'a', response: 'b' }, { prompt: 'c', response: 'd' }, { prompt: 'e', response: 'f' }], 2);
    expect((await readTrainingRecords(saved)).map((r) => r.id)).toEqual(['10', '2', '3']);
  });

  it('queries: a ShareGPT conversation before the output, from a save_to_disk folder', async () => {
    const q = [{ id: 'q1', conversations: [{ from: 'human', value: 'Capital?' }, { from: 'gpt', value: 'Lyon.' }], corrected: 'Paris.', source: 'web' }];
    const saved = writeSavedDataset(join(dir, 'queries-saved'), q, 1);
    const [r] = await readQueryRecords(saved);
    expect(r).toMatchObject({ id: 'q1', kind: 'sharegpt', prompt: { chat: [{ role: 'user', content: 'Capital?' }] }, output: 'Lyon.', corrected: 'Paris.', meta: { source: 'web' } });
  });

  it('dataset_info.json#name: file_name relative to it, formatting, columns and tags as LLaMA-Factory reads them', async () => {
    const data = join(dir, 'lf');
    mkdirSync(join(data, 'sub'), { recursive: true });
    // ShareGPT with OpenAI-style tags in a `messages` column, in a Parquet file in a subfolder.
    const openaiStyle = MESSAGES.map((r) => ({ id: r.id, turns: r.messages }));
    writeParquet(join(data, 'sub', 'chat.parquet'), openaiStyle);
    writeFileSync(join(data, 'alpaca.jsonl'), ALPACA.map((r) => JSON.stringify({ id: r.id, q: r.instruction, ctx: r.input, a: r.output, ...(r.system ? { sys: r.system } : {}) })).join('\n'));
    writeFileSync(join(data, 'alpaca-nosys.jsonl'), ALPACA.map((r) => JSON.stringify(r)).join('\n'));
    const info = join(data, 'dataset_info.json');
    writeFileSync(info, JSON.stringify({
      chat: { file_name: 'sub/chat.parquet', formatting: 'sharegpt', columns: { messages: 'turns' }, tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' } },
      alp: { file_name: 'alpaca.jsonl', columns: { prompt: 'q', query: 'ctx', response: 'a', system: 'sys' } },
      nosys: { file_name: 'alpaca-nosys.jsonl' },
      hub: { hf_hub_url: 'someone/data' },
      tools: { file_name: 'alpaca.jsonl', columns: { tools: 'tools' } },
      sampled: { file_name: 'alpaca.jsonl', num_samples: 1 },
    }));
    const chat = await readTrainingData(`${info}#chat`);
    expect(same(chat.records)).toEqual(same(await readTrainingRecords(jsonl(MESSAGES))));
    expect(chat.rendering).toMatchObject({ file: join(data, 'sub', 'chat.parquet'), dataset: `${info}#chat`, shapes: { sharegpt: 3 }, fields: { conversations: 'turns' } });
    expect(same(await readTrainingRecords(`${info}#alp`))).toEqual(same(await readTrainingRecords(jsonl(ALPACA))));
    // Without columns.system, LLaMA-Factory does not read a `system` column: neither does dda, and it says so.
    const log: string[] = [];
    const nosys = await readTrainingRecords(`${info}#nosys`, { log: (l) => log.push(l) });
    expect(nosys[0]!.content).toEqual({ chat: [{ role: 'user', content: 'Translate\nchat' }, { role: 'assistant', content: 'cat' }] });
    expect(log.join('\n')).toContain(`field 'system' is read and not used in 1 of 2 record(s): the dataset's "columns" in ${info} do not name it, so LLaMA-Factory does not read it`);
    expect(dataFilesOf(`${info}#chat`)).toEqual([info, join(data, 'sub', 'chat.parquet')]);

    await expect(readTrainingRecords(`${info}#hub`)).rejects.toThrow(`--train ${info}#hub: 'hf_hub_url' names a dataset that is not a local file`);
    await expect(readTrainingRecords(`${info}#tools`)).rejects.toThrow(`--train ${info}#tools: 'columns.tools' is not read for alpaca data: the chat templates dda renders have no place for tools or media`);
    await expect(readTrainingRecords(`${info}#sampled`)).rejects.toThrow("'num_samples' samples a subset of the file");
    await expect(readQueryRecords(`${info}#nope`)).rejects.toThrow(`--queries ${info}#nope: no dataset 'nope' in ${info}`);
    await expect(readTrainingRecords(`${info}#alp`, { fields: { prompt: 'q' } })).rejects.toThrow('--fields cannot be combined with a dataset of a dataset_info.json');
  });
});

describe('bad ShareGPT, Parquet and save_to_disk input names the file and the record', () => {
  it('ShareGPT: tool turns, misplaced roles, a missing final answer, two system turns', async () => {
    const call = jsonl([SHAREGPT[2], { id: 't', conversations: [{ from: 'human', value: 'weather?' }, { from: 'function_call', value: '{"name": "w"}' }, { from: 'observation', value: 'sun' }, { from: 'gpt', value: 'Sunny' }] }]);
    await expect(readTrainingRecords(call)).rejects.toThrow(`${call}:2: turn 2 is a 'function_call' turn (a tool call or its result), which the chat templates dda renders have no place for`);
    const order = jsonl([{ conversations: [{ from: 'gpt', value: 'x' }, { from: 'human', value: 'y' }] }]);
    await expect(readTrainingRecords(order)).rejects.toThrow(`${order}:1: turn 1 has role "gpt" where 'human' is due`);
    const odd = jsonl([{ conversations: [{ from: 'system', value: 's' }, { from: 'human', value: 'y' }] }]);
    await expect(readTrainingRecords(odd)).rejects.toThrow(`${odd}:1: the conversation ends with a 'human' turn`);
    const twice = jsonl([{ system: 's', conversations: [{ from: 'system', value: 's' }, { from: 'human', value: 'y' }, { from: 'gpt', value: 'z' }] }]);
    await expect(readTrainingRecords(twice)).rejects.toThrow(`${twice}:1: both a 'system' field and a 'system' turn`);
    const noValue = jsonl([{ conversations: [{ from: 'human', text: 'y' }] }]);
    await expect(readTrainingRecords(noValue)).rejects.toThrow(`${noValue}:1: turn 1 of 'conversations' has no string 'value'`);
  });

  it('Parquet and Arrow: a bad record names its row; a file that is not Parquet or Arrow is named', async () => {
    const parquet = writeParquet(join(dir, 'bad.parquet'), [{ id: 'a', prompt: 'x', response: 'y' }, { id: 'b', prompt: 'x' }, { id: 'c', prompt: 'x', response: 'z' }], 2);
    await expect(readTrainingRecords(parquet)).rejects.toThrow(`${parquet}: row 2: missing field 'response'`);
    const saved = writeSavedDataset(join(dir, 'bad-saved'), [{ id: 'a', prompt: 'x', response: 'y' }, { id: 'b', prompt: 'x', response: 'y' }, { id: 'c', prompt: 'x' }], 2);
    await expect(readTrainingRecords(saved)).rejects.toThrow(`${join(saved, 'data-00001-of-00002.arrow')}: row 1: missing field 'response'`);
    const notParquet = file('parquet', 'id,prompt\n1,2\n');
    await expect(readTrainingRecords(notParquet)).rejects.toThrow(`${notParquet}: not a valid Parquet file`);
    const broken = writeSavedDataset(join(dir, 'broken-saved'), PAIRS, 1);
    writeFileSync(join(broken, 'data-00000-of-00001.arrow'), 'not arrow at all');
    await expect(readTrainingRecords(broken)).rejects.toThrow(`${join(broken, 'data-00000-of-00001.arrow')}: not a readable Arrow IPC file`);
    const plain = join(dir, 'plain-folder');
    mkdirSync(plain);
    await expect(readTrainingRecords(plain)).rejects.toThrow(`training data: '${plain}' is a folder, and not one written by datasets' save_to_disk (no state.json)`);
    const dict = join(dir, 'dict');
    writeSavedDataset(join(dict, 'train'), PAIRS, 1);
    writeFileSync(join(dict, 'dataset_dict.json'), JSON.stringify({ splits: ['train'] }));
    await expect(readTrainingRecords(dict)).rejects.toThrow(`${dict}: a DatasetDict folder (dataset_dict.json), which holds several splits: train`);
  });
});
