import { describe, expect, it } from 'vitest';
import { parseFieldMap, readLabels, readQueryData, readQueryRecords, readTrainingData, readTrainingRecords } from '@dda/data';
import { tempFiles } from './temp-files.js';

// What a record means for the model, and every field that is read and not used.
const { file, jsonl } = tempFiles('dda-rendering-');
const logged = (): { lines: string[]; log: (l: string) => void } => {
  const lines: string[] = [];
  return { lines, log: (l) => lines.push(l) };
};

describe('system and history turns, as LLaMA-Factory renders Alpaca records', () => {
  it('Alpaca system and history become the system turn and earlier turns; instruction and input are joined by a newline', async () => {
    const p = jsonl([{ system: 'S', history: [['h1', 'a1'], ['h2', 'a2']], instruction: 'I', input: 'X', output: 'O' }]);
    const [r] = await readTrainingRecords(p);
    expect(r!.content).toEqual({
      chat: [
        { role: 'system', content: 'S' }, { role: 'user', content: 'h1' }, { role: 'assistant', content: 'a1' }, { role: 'user', content: 'h2' }, { role: 'assistant', content: 'a2' },
        { role: 'user', content: 'I\nX' }, { role: 'assistant', content: 'O' },
      ],
    });
    const [q] = await readQueryRecords(jsonl([{ system: 'S', history: [['h1', 'a1']], instruction: 'I', output: 'O' }]));
    expect(q!.prompt).toEqual({ chat: [{ role: 'system', content: 'S' }, { role: 'user', content: 'h1' }, { role: 'assistant', content: 'a1' }, { role: 'user', content: 'I' }] });
  });

  it('a history in a CSV cell is JSON; a malformed history is refused naming the record', async () => {
    const c = file('csv', `instruction,output,history\nI,O,"${JSON.stringify([['h', 'a']]).replace(/"/g, '""')}"\n`);
    expect((await readTrainingRecords(c))[0]!.content).toEqual({ chat: [{ role: 'user', content: 'h' }, { role: 'assistant', content: 'a' }, { role: 'user', content: 'I' }, { role: 'assistant', content: 'O' }] });
    await expect(readTrainingRecords(jsonl([{ instruction: 'I', output: 'O', history: [['only one']] }]))).rejects.toThrow(/:1: history entry 1 is not an \[instruction, response\] pair/);
    await expect(readTrainingRecords(jsonl([{ instruction: 'I', output: 'O', history: 'h' }]))).rejects.toThrow(/:1: field 'history' is not valid JSON/);
  });

  it('prompt/response in chat format take system and history; messages records take a system field as the system turn', async () => {
    const [r] = await readTrainingRecords(jsonl([{ system: 'S', history: [['h', 'a']], prompt: 'P', response: 'R' }]), { promptFormat: 'chat' });
    expect(r!.content).toEqual({ chat: [{ role: 'system', content: 'S' }, { role: 'user', content: 'h' }, { role: 'assistant', content: 'a' }, { role: 'user', content: 'P' }, { role: 'assistant', content: 'R' }] });
    const msgs = [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a' }];
    const [m] = await readTrainingRecords(jsonl([{ system: 'S', messages: msgs }]));
    expect(m!.content).toEqual({ chat: [{ role: 'system', content: 'S' }, ...msgs] });
    const [mq] = await readQueryRecords(jsonl([{ system: 'S', messages: msgs }]));
    expect(mq!.prompt).toEqual({ chat: [{ role: 'system', content: 'S' }, { role: 'user', content: 'u' }] });
    await expect(readTrainingRecords(jsonl([{ system: 'S', messages: [{ role: 'system', content: 'T' }, ...msgs] }]))).rejects.toThrow(/:1: both a 'system' field and a system message/);
  });

  it('refuses system and history with raw prompts, naming the record and --prompt-format chat', async () => {
    for (const extra of [{ system: 'S' }, { history: [['h', 'a']] }]) {
      const name = Object.keys(extra)[0]!;
      const re = new RegExp(`:1: field '${name}' cannot be used with --prompt-format raw`);
      await expect(readTrainingRecords(jsonl([{ prompt: 'P', response: 'R', ...extra }]))).rejects.toThrow(re);
      await expect(readQueryRecords(jsonl([{ prompt: 'P', output: 'O', ...extra }]))).rejects.toThrow(re);
      await expect(readTrainingRecords(jsonl([{ prompt: 'P', response: 'R', ...extra }]))).rejects.toThrow(/--prompt-format chat/);
    }
  });
});

describe('fields read and not used are reported, one line per field', () => {
  it('training: unknown fields and fields the record shape does not use, with the count and an example record', async () => {
    const p = jsonl([
      { instruction: 'I1', output: 'O1', extra: 1 },
      { instruction: 'I2', output: 'O2', extra: 2, summary: 'S', group: 'g' },
      { instruction: 'I3', output: 'O3', extra: 3 },
      { instruction: 'I4', output: 'O4' },
    ]);
    const { lines, log } = logged();
    const { rendering } = await readTrainingData(p, { log });
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(`warning: training data ${p}: field 'extra' is read and not used in 3 of 4 record(s): not a field of a training record ({"messages": [...]}, {"conversations": [...]}, {"instruction", "input"?, "output"}, {"document", "summary"} or {"prompt", "response"}, each with an optional "id"); e.g. ${p}:1: {"instruction":"I1","output":"O1","extra":1}`);
    expect(lines[1]).toMatch(new RegExp(`^warning: training data .*: field 'summary' is read and not used in 1 of 4 record\\(s\\): not used by alpaca records; e.g. .*:2: `));
    expect(lines[2]).toMatch(/field 'group' is read and not used in 1 of 4 record\(s\): groups are read from the queries only/);
    expect(rendering).toEqual({
      file: p, shapes: { alpaca: 4 }, promptFormat: 'raw', fields: {}, used: ['instruction', 'output'], kept: [],
      ignored: [
        { column: 'extra', records: 3, example: `${p}:1`, reason: expect.stringMatching(/^not a field of a training record/) },
        { column: 'summary', records: 1, example: `${p}:2`, reason: 'not used by alpaca records' },
        { column: 'group', records: 1, example: `${p}:2`, reason: 'groups are read from the queries only' },
      ],
    });
  });

  it('extra CSV columns and a system field on METHOD.md records are reported, not dropped silently', async () => {
    const p = file('csv', 'document,summary,system,source\nD1,S1,sys,web\nD2,S2,,web\n');
    const { lines, log } = logged();
    const { rendering } = await readTrainingData(p, { log });
    expect(rendering.used).toEqual(['document', 'summary']);
    expect(rendering.ignored.map((x) => [x.column, x.records, x.reason])).toEqual([
      ['system', 1, 'document/summary records have the fixed system turn of METHOD.md'],
      ['source', 2, expect.stringMatching(/^not a field of a training record/)],
    ]);
    expect(lines.map((l) => /field '(\w+)'.* in (\d) of 2/.exec(l)?.slice(1))).toEqual([['system', '1'], ['source', '2']]);
  });

  it('queries: other fields are kept beside the query (one line says so); fields of ours the shape does not use are warned', async () => {
    const p = jsonl([{ id: 'q1', document: 'D', output: 'O', summary: 'ref', produced_by_base: true }, { id: 'q2', document: 'D2', output: 'O2', produced_by_base: false }]);
    const { lines, log } = logged();
    const { records, rendering } = await readQueryData(p, { log });
    expect(records.map((q) => q.meta)).toEqual([{ produced_by_base: true }, { produced_by_base: false }]);
    expect(rendering.kept).toEqual(['produced_by_base']);
    expect(rendering.ignored.map((x) => [x.column, x.records, x.reason])).toEqual([['summary', 1, 'not used by document-summary queries']]);
    expect(lines).toEqual([
      `warning: queries ${p}: field 'summary' is read and not used in 1 of 2 record(s): not used by document-summary queries; e.g. ${p}:1: {"id":"q1","document":"D","output":"O","summary":"ref","produced_by_base":true}`,
      `queries ${p}: field(s) 'produced_by_base' kept beside each query in the outputs, not used by the attribution`,
    ]);
  });

  it('a clean file logs nothing', async () => {
    const { lines, log } = logged();
    await readTrainingData(jsonl([{ id: 'a', prompt: 'P', response: 'R' }, { id: 'b', prompt: 'P', completion: 'C' }]), { log });
    await readQueryData(jsonl([{ id: 'q', group: 'g', prompt: 'P', output: 'O', corrected: 'C' }]), { log });
    expect(lines).toEqual([]);
  });
});

describe('one field map per file', () => {
  it('a mapping whose column no record has is an error naming the file and its columns as they are', async () => {
    const q = jsonl([{ prompt: 'P', output: 'O' }]);
    await expect(readQueryRecords(q, { fields: parseFieldMap(['prompt=question'], '--query-fields') })).rejects.toThrow(
      `queries '${q}': --query-fields maps 'prompt' from column 'question', which no record of the file has (its columns: prompt, output)`,
    );
    const t = file('csv', 'question,answer\nQ,A\n');
    await expect(readTrainingRecords(t, { fields: parseFieldMap(['prompt=question', 'response=reply']) })).rejects.toThrow(/training data '.*': --fields maps 'response' from column 'reply', which no record of the file has \(its columns: question, answer\)/);
  });

  it('a required field missing from a record names the mapped column and the record\'s columns as they are in the file', async () => {
    const p = jsonl([{ question: 'Q', answer: 'A' }, { question: 'Q2', reply: 'R' }]);
    await expect(readTrainingRecords(p, { fields: parseFieldMap(['prompt=question', 'response=answer']) })).rejects.toThrow(/:2: missing field 'response' \(column 'answer'\) \(its fields: question, reply\)/);
  });

  it('a field missing because a mapping reads its column as another field says so (Alpaca with response=output)', async () => {
    const p = jsonl([{ id: 'a', system: 'S', instruction: 'I', output: 'O' }]);
    await expect(readTrainingRecords(p, { fields: parseFieldMap(['response=output']) })).rejects.toThrow(
      /:1: missing field 'output' \(its fields: id, system, instruction, output\): the field mapping response=output reads column 'output' as 'response', so it is not read as 'output'; drop that mapping/,
    );
  });

  it('a column named like one of our fields, shadowed by a mapping, is reported', async () => {
    const p = jsonl([{ prompt: 'old', question: 'Q', response: 'R' }]);
    const { lines, log } = logged();
    const { records } = await readTrainingData(p, { fields: parseFieldMap(['prompt=question']), log });
    expect(records[0]!.content).toEqual({ raw: { prompt: 'Q', response: 'R' } });
    expect(lines).toEqual([`warning: training data ${p}: field 'prompt' is read and not used in 1 of 1 record(s): --fields reads 'prompt' from column 'question'; e.g. ${p}:1: {"prompt":"old","question":"Q","response":"R"}`]);
  });

  it('names the flag in mapping errors', () => {
    expect(() => parseFieldMap(['output'], '--query-fields')).toThrow(/--query-fields: 'output' is not of the form ours=theirs/);
  });
});

describe('mapped columns that are not used', () => {
  it('a query column mapped to a field the shape does not use is warned, not kept as metadata', async () => {
    const p = jsonl([{ document: 'D', output: 'O', ref: 'R' }]);
    const { lines, log } = logged();
    const { records, rendering } = await readQueryData(p, { fields: parseFieldMap(['summary=ref'], '--query-fields'), log });
    expect(records[0]!.meta).toEqual({});
    expect(rendering.ignored.map((x) => [x.column, x.reason])).toEqual([['ref', 'not used by document-summary queries']]);
    expect(lines).toHaveLength(1);
  });
});

describe('other inputs read and not used', () => {
  it('keys of a message other than role and content (e.g. OpenAI\'s weight) are warned once, with the count', async () => {
    const msgs = (w: number) => [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a', weight: w }];
    const p = jsonl([{ messages: msgs(0) }, { messages: msgs(1) }, { messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a' }] }]);
    const { lines, log } = logged();
    const { rendering } = await readTrainingData(p, { log });
    expect(rendering.ignored).toEqual([{ column: 'messages[].weight', records: 2, example: `${p}:1`, reason: 'a message is read as {role, content} only (every assistant turn carries the loss)' }]);
    expect(lines).toEqual([`warning: training data ${p}: field 'messages[].weight' is read and not used in 2 of 3 record(s): a message is read as {role, content} only (every assistant turn carries the loss); e.g. ${p}:1: {"messages":[{"role":"user","content":"u"},{"role":"assistant","content":"a","weight":0}]}`]);
  });

  it('fields of a label record other than query, group and sources are warned once', async () => {
    const p = jsonl([{ group: 'g', sources: ['t1'], note: 'x' }, { query: 'q1', sources: ['t1'], note: 'y' }]);
    const { lines, log } = logged();
    await readLabels(p, { queryIds: ['q1', 'q2'], queryGroups: [null, 'g'], groups: ['g'], trainIds: ['t1'] }, log);
    expect(lines).toEqual([`warning: labels ${p}: field 'note' is read and not used in 2 of 2 record(s): a label record has only 'query' or 'group', and 'sources'; e.g. ${p}:1: {"group":"g","sources":["t1"],"note":"x"}`]);
  });
});
