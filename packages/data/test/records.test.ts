import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SYSTEM_PROMPT, parseFieldMap, readLabels, readQueryRecords, readTrainingRecords, userPrompt } from '@dda/data';
import { tempFiles } from './temp-files.js';

const { dir, file, jsonl } = tempFiles('dda-data-');

describe('training data formats', () => {
  it('reads prompt/response (and TRL completion) pairs from JSON Lines, raw by default', async () => {
    const p = jsonl([{ id: 'a', prompt: 'Q: 2+2?', response: '4' }, { prompt: 'Q: 3+3?', completion: '6' }]);
    const r = await readTrainingRecords(p);
    expect(r).toEqual([
      { id: 'a', where: `${p}:1`, kind: 'prompt-response', content: { raw: { prompt: 'Q: 2+2?', response: '4' } } },
      { id: '2', where: `${p}:2`, kind: 'prompt-response', content: { raw: { prompt: 'Q: 3+3?', response: '6' } } },
    ]);
  });

  it('treats prompts as one user turn with --prompt-format chat', async () => {
    const p = jsonl([{ prompt: 'hi', response: 'hello', system: 'be brief' }]);
    const [r] = await readTrainingRecords(p, { promptFormat: 'chat' });
    expect(r!.content).toEqual({ chat: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] });
  });

  it('reads chat messages (ShareGPT role names too) from JSON and from a CSV cell', async () => {
    const msgs = [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }];
    const j = file('json', JSON.stringify([{ id: 7, messages: msgs }, { messages: [{ role: 'human', content: 'x' }, { role: 'gpt', content: 'y' }] }]));
    const rj = await readTrainingRecords(j);
    expect(rj.map((r) => [r.id, r.where, r.kind])).toEqual([['7', `${j}: record 1`, 'messages'], ['2', `${j}: record 2`, 'messages']]);
    expect(rj[1]!.content).toEqual({ chat: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }] });
    const c = file('csv', `id,messages\nm1,"${JSON.stringify(msgs).replace(/"/g, '""')}"\n`);
    expect((await readTrainingRecords(c))[0]).toEqual({ id: 'm1', where: `${c}: row 2`, kind: 'messages', content: { chat: msgs } });
  });

  it('renders Alpaca instruction/input/output and document/summary records as conversations', async () => {
    const p = jsonl([{ instruction: 'Translate', input: 'chat', output: 'cat' }, { instruction: 'Say hi', output: 'hi' }, { document: 'D', summary: 'S' }]);
    const r = await readTrainingRecords(p);
    expect(r.map((x) => x.content)).toEqual([
      { chat: [{ role: 'user', content: 'Translate\nchat' }, { role: 'assistant', content: 'cat' }] },
      { chat: [{ role: 'user', content: 'Say hi' }, { role: 'assistant', content: 'hi' }] },
      { chat: [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt('D') }, { role: 'assistant', content: 'S' }] },
    ]);
    expect(r.map((x) => x.kind)).toEqual(['alpaca', 'alpaca', 'document-summary']);
  });

  it('maps other column names with --fields', async () => {
    const fields = parseFieldMap(['prompt=question', 'response=answer', 'id=uid']);
    const p = file('csv', 'uid,question,answer\nq1,Why?,Because.\n');
    expect(await readTrainingRecords(p, { fields })).toEqual([{ id: 'q1', where: `${p}: row 2`, kind: 'prompt-response', content: { raw: { prompt: 'Why?', response: 'Because.' } } }]);
    expect(() => parseFieldMap(['prompt'])).toThrow(/'prompt' is not of the form ours=theirs/);
    expect(() => parseFieldMap(['answer=x'])).toThrow(/unknown field 'answer'/);
  });

  it('a duplicate id that a record has from its line number (no id field) says so', async () => {
    const p = jsonl([{ prompt: 'a', response: 'b' }, { prompt: 'c', response: 'd' }, { prompt: 'e', response: 'f' }, { prompt: 'g', response: 'h' }, { id: 4, prompt: 'i', response: 'j' }]);
    await expect(readTrainingRecords(p)).rejects.toThrow(new RegExp(`:5: duplicate training id '4' \\(first used at .*:4, where it is that record's line number, as it has no 'id' field\\).*records without an 'id' field are numbered by their place in the file`));
    const q = jsonl([{ id: '2', prompt: 'a', response: 'b' }, { prompt: 'c', response: 'd' }]);
    await expect(readTrainingRecords(q)).rejects.toThrow(/:2: duplicate training id '2', its line number, as it has no 'id' field, \(first used at .*:1\)/);
  });

  it('names the file, record and field of every bad input', async () => {
    const cases: [string, RegExp][] = [
      [file('jsonl', ''), /is empty/],
      [file('jsonl', '{"prompt": "a", "response": "b"}\n{oops'), /:2: invalid JSON/],
      [file('jsonl', '[1, 2]'), /:1: expected a JSON object, got an array/],
      [jsonl([{ text: 'x' }]), /:1: not a training record \(fields: text\).*--fields/],
      [jsonl([{ prompt: 'a' }]), /:1: missing field 'response'/],
      [jsonl([{ prompt: 'a', response: '  ' }]), /:1: field 'response' is empty/],
      [jsonl([{ prompt: 'a', response: 3 }]), /:1: field 'response' must be a string, got number/],
      [jsonl([{ messages: 'nope' }]), /:1: field 'messages' is not valid JSON/],
      [jsonl([{ messages: [{ role: 'robot', content: 'x' }] }]), /:1: message 1 has role "robot"/],
      [jsonl([{ messages: [{ from: 'human', value: 'x' }, { from: 'gpt', value: 'y' }] }]), /:1: message 1 of field 'messages' is a ShareGPT turn \(\{from, value\}\).*--fields conversations=messages/],
      [jsonl([{ id: 'x', prompt: 'a', response: 'b' }, { id: 'x', prompt: 'c', response: 'd' }]), /:2: duplicate training id 'x' \(first used at .*:1\)/],
      // 90071992547409930 is read as 90071992547409940 (a double): refused, not renamed
      [file('jsonl', '{"id": 9007199254740991, "prompt": "a", "response": "b"}\n{"id": 90071992547409930, "prompt": "a", "response": "b"}'), /:2: field 'id' is the number 90071992547409940 as read, an integer beyond 2\^53 \(9007199254740991\).*write the ids as strings/],
      [file('json', '{"prompt": "a"}'), /expected a JSON array of records, got object/],
      [file('csv', 'prompt,response\na,b,c\n'), /row 2 has a different number of columns/],
      [file('json', '{"version": 1, "data": [{"prompt": "a", "response": "b"}]}'), /got an object with the key\(s\) 'version', 'data' \(the records seem to be under 'data': write that array alone to a file, e\.g\. jq '\.data'/],
      [file('csv', 'prompt;response\na;b\nc,d;e\n'), /row 3 has a different number of columns than the header \(the header is one column, 'prompt;response': the file seems to separate its columns with ';', not commas\) \(save it with commas/],
      [file('txt', 'hello'), /unknown file type/],
      [join(dir, 'missing.jsonl'), /not found/],
    ];
    for (const [p, re] of cases) await expect(readTrainingRecords(p), p).rejects.toThrow(re);
    // Latin-1 bytes (ó = 0xf3) on line 2: refused naming the line and byte, not read as U+FFFD.
    const latin = join(dir, 'latin1.jsonl');
    writeFileSync(latin, Buffer.concat([Buffer.from('{"prompt": "a", "response": "b"}\n{"prompt": "Le'), Buffer.from([0xf3]), Buffer.from('n", "response": "c"}\n')]));
    await expect(readTrainingRecords(latin)).rejects.toThrow(/is not valid UTF-8 \(line 2, byte 47: 0xf3\).*iconv -f latin1 -t utf-8/);
  });
});

describe('queries', () => {
  it('reads every query shape with optional corrected, id and group', async () => {
    const p = jsonl([
      { id: 'q1', group: 'g', prompt: 'P', output: 'O', corrected: 'C' },
      { messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'the answer' }] },
      { instruction: 'I', response: 'R', group: 3 },
      { document: 'D', output: 'O2', produced_by_base: true },
    ]);
    const q = await readQueryRecords(p);
    expect(q[0]).toEqual({ id: 'q1', where: `${p}:1`, kind: 'prompt-response', group: 'g', prompt: { raw: 'P' }, output: 'O', corrected: 'C', meta: {} });
    expect(q[1]).toMatchObject({ id: '2', prompt: { chat: [{ role: 'user', content: 'u' }] }, output: 'the answer', corrected: null, group: null });
    expect(q[2]).toMatchObject({ prompt: { chat: [{ role: 'user', content: 'I' }] }, output: 'R', group: '3' });
    expect(q[3]).toMatchObject({ prompt: { chat: [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt('D') }] }, output: 'O2', meta: { produced_by_base: true } });
  });

  it('refuses a query without an output, or whose conversation ends with the assistant and also has an output', async () => {
    await expect(readQueryRecords(jsonl([{ prompt: 'P' }]))).rejects.toThrow(/:1: missing field 'output'/);
    await expect(readQueryRecords(jsonl([{ messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a' }], output: 'o' }]))).rejects.toThrow(/must end with a user turn/);
  });
});

describe('labels', () => {
  const known = { queryIds: ['q1', 'q2', 'q3'], queryGroups: [null, 'g', 'g'], groups: ['g'], trainIds: ['t1', 't2', 't3'] };
  it('reads a JSON object keyed by query id or group, and JSON Lines naming which', async () => {
    expect(await readLabels(file('json', JSON.stringify({ q1: ['t1'], g: ['t2', 't3'] })), known)).toMatchObject([
      { key: 'q1', kind: 'query', sources: ['t1'] }, { key: 'g', kind: 'group', sources: ['t2', 't3'] },
    ]);
    expect(await readLabels(jsonl([{ group: 'g', sources: ['t1'] }]), known)).toMatchObject([{ key: 'g', kind: 'group', sources: ['t1'] }]);
  });
  it('names unknown keys and training ids', async () => {
    await expect(readLabels(file('json', JSON.stringify({ q9: ['t1'] })), known)).rejects.toThrow(/'q9' is not a query id or group of the queries/);
    await expect(readLabels(file('json', JSON.stringify({ q1: ['t9'] })), known)).rejects.toThrow(/training id 't9' not in the training data/);
    await expect(readLabels(file('json', JSON.stringify({ q1: [] })), known)).rejects.toThrow(/non-empty list of training ids/);
  });
  it('refuses a query covered by more than one key (its id and its group, or one key twice), naming the query, both keys and the file', async () => {
    const both = file('json', JSON.stringify({ g: ['t1'], q2: ['t2'] }));
    await expect(readLabels(both, known)).rejects.toThrow(new RegExp(`labels ${both}: query 'q2' is covered by both group key 'g' and query key 'q2'; it would be evaluated twice`));
    await expect(readLabels(both, known)).rejects.toThrow(/keep either the group key 'g' or the query keys of its queries, not both/);
    const twice = jsonl([{ query: 'q1', sources: ['t1'] }, { query: 'q1', sources: ['t2'] }]);
    await expect(readLabels(twice, known)).rejects.toThrow(/query 'q1' is covered by both query key 'q1' \(.*:1\) and query key 'q1' \(.*:2\)/);
    await expect(readLabels(twice, known)).rejects.toThrow(/give 'q1' once/);
    // disjoint keys pass: a query outside the group beside the group
    expect(await readLabels(file('json', JSON.stringify({ q1: ['t1'], g: ['t2'] })), known)).toHaveLength(2);
  });
  it('reads ids and groups in any script, and names an id written in another Unicode form', async () => {
    const names = { queryIds: ['ερώτηση-1', '質問-2'], queryGroups: ['αθήνα-to-москва', 'zürich-to-北京'], groups: ['αθήνα-to-москва', 'zürich-to-北京'], trainIds: ['πηγή-1', 'источник-2', 'café-3'] };
    expect(await readLabels(file('json', JSON.stringify({ 'αθήνα-to-москва': ['πηγή-1'], '質問-2': ['источник-2', 'café-3'] })), names)).toMatchObject([
      { key: 'αθήνα-to-москва', kind: 'group', sources: ['πηγή-1'] }, { key: '質問-2', kind: 'query', sources: ['источник-2', 'café-3'] },
    ]);
    await expect(readLabels(file('json', JSON.stringify({ 'zu\u0308rich-to-北京': ['πηγή-1'] })), names)).rejects.toThrow(/the data has 'zürich-to-北京', the same text in another Unicode form/);
    await expect(readLabels(file('json', JSON.stringify({ '質問-2': ['cafe\u0301-3'] })), names)).rejects.toThrow(/not in the training data \(the data has 'café-3'/);
  });
});

describe('--fields mappings are honoured', () => {
  it('consumes the mapped columns: prompt=document response=summary reads prompt/response, not the summarisation template', async () => {
    const p = jsonl([{ id: 'd1', document: 'The cat sat.', summary: 'Cat sat.' }]);
    const fields = parseFieldMap(['prompt=document', 'response=summary']);
    expect(await readTrainingRecords(p, { fields })).toEqual([{ id: 'd1', where: `${p}:1`, kind: 'prompt-response', content: { raw: { prompt: 'The cat sat.', response: 'Cat sat.' } } }]);
    const q = jsonl([{ document: 'The cat sat.', output: 'Cat sat.' }]);
    expect((await readQueryRecords(q, { fields: parseFieldMap(['prompt=document']) }))[0]!.prompt).toEqual({ raw: 'The cat sat.' });
  });

  it('refuses a mapping the record shape does not use, and one column mapped twice, naming the conflict', async () => {
    const p = jsonl([{ document: 'D', summary: 'S', question: 'Q' }]);
    await expect(readTrainingRecords(p, { fields: parseFieldMap(['prompt=question']) })).rejects.toThrow(/:1: --fields maps 'prompt' from column 'question', but the record is read as document-summary \(from its field 'document'\)/);
    await expect(readTrainingRecords(p, { fields: parseFieldMap(['prompt=question', 'document=question']) })).rejects.toThrow(/--fields maps column 'question' to both 'prompt' and 'document'/);
  });
});

describe("TRL's conversational prompt/completion", () => {
  it('reads lists of messages as a chat: the prompt turns, then the completion as the assistant turn', async () => {
    const prompt = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }];
    const p = jsonl([{ id: 'c1', prompt, completion: [{ role: 'assistant', content: 'hello' }] }]);
    expect((await readTrainingRecords(p))[0]).toEqual({ id: 'c1', where: `${p}:1`, kind: 'prompt-response', content: { chat: [...prompt, { role: 'assistant', content: 'hello' }] } });
    const q = jsonl([{ prompt, output: 'hello' }]);
    expect((await readQueryRecords(q))[0]!.prompt).toEqual({ chat: prompt });
    const bad = jsonl([{ prompt: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }], completion: [{ role: 'assistant', content: 'd' }] }]);
    await expect(readTrainingRecords(bad)).rejects.toThrow(/:1: message 2 of field 'prompt' is an assistant turn/);
  });
});
