import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCsv, readTrainingData, scanTrainingData } from '@dda/data';
import { eachRecord, type RawRecord } from '../src/read-table.js';
import { tempFiles } from './temp-files.js';

const { dir, file } = tempFiles('dda-stream-');

/** Every record of `path` read `chunk` bytes at a time (1 MiB: these files in one piece, as a whole-file read). */
async function recordsOf(path: string, chunk = 1 << 20): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  const n = await eachRecord(path, 'training data', (r) => out.push(r), chunk);
  expect(n).toBe(out.length);
  return out;
}

/** The error of reading `path` `chunk` bytes at a time. */
async function errorOf(path: string, chunk = 1 << 20): Promise<string> {
  try {
    await eachRecord(path, 'training data', () => {}, chunk);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`${path}: read without an error`);
}

// Pieces cut at every few bytes: through multi-byte characters, CRLF pairs, a byte-order mark and quoted newlines.
const CHUNKS = [1, 2, 3, 5, 7, 16, 61];

describe('JSON Lines and CSV files read as a stream', () => {
  it('give the records of one piece at any piece size: lines, CRLF, blank lines, a byte-order mark, multi-byte characters', async () => {
    const lines = ['{"id": "a", "prompt": "é ü — 日本", "response": "x"}', '', '{"id": "b", "prompt": "p\\nq", "response": "🙂"}', '   ', '{"id": "c", "prompt": "\uFEFFbom inside", "response": "z"}'];
    const p = file('jsonl', `\uFEFF${lines.join('\r\n')}\n\n`);
    const whole = await recordsOf(p);
    expect(whole.map((r) => [r.where, r.number])).toEqual([[`${p}:1`, 1], [`${p}:3`, 3], [`${p}:5`, 5]]);
    for (const chunk of CHUNKS) expect(await recordsOf(p, chunk), `${chunk} bytes`).toEqual(whole);
  });

  it('CSV: the rows of fast-csv over the whole text, cells spanning lines, at any piece size', async () => {
    // Row 4 opens with a byte-order mark inside the text: kept as the cell's first character.
    const text = 'id,prompt,response\r\na,"one, two\r\nthree",x\r\nb,"say ""hi""",y\r\n\uFEFFc,"é\n日本",🙂\r\n';
    const p = file('csv', `\uFEFF${text}`);
    const whole = await recordsOf(p);
    expect(whole.map((r) => r.value)).toEqual((await parseCsv(text, p)).map((r) => r.value));
    expect(whole.map((r) => r.where)).toEqual([`${p}: row 2`, `${p}: row 3`, `${p}: row 4`]);
    expect(whole[2]?.value.id).toBe('\uFEFFc');
    for (const chunk of CHUNKS) expect(await recordsOf(p, chunk), `${chunk} bytes`).toEqual(whole);
  });

  it('name the same file, line, row and byte in their errors at any piece size, in the order of a whole-file read', async () => {
    const ok = '{"prompt": "a", "response": "b"}';
    const bytes = (...parts: (string | number[])[]): string => {
      const p = join(dir, `bytes-${parts.length}-${Math.random().toString(36).slice(2)}.jsonl`);
      writeFileSync(p, Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x) : Buffer.from(x)))));
      return p;
    };
    const cases = [
      // invalid UTF-8 on line 4 is named before the invalid JSON of line 2: the whole file is decoded first
      bytes(`${ok}\n{"prompt": \n${ok}\n{"prompt": "L`, [0xf3], `n", "response": "c"}\n`),
      // the first malformed line, after records that were read
      file('jsonl', `${ok}\n${ok}\n[1, 2]\n{"prompt": \n`),
      file('jsonl', ' \n\n'),
      file('csv', 'id,prompt\r\n1,"a"b\r\n2,c\r\n'), // fast-csv's message quotes the text after the bad quote
      file('csv', 'id,prompt\n1,"never closed\n2,c\n'),
      file('csv', 'id;prompt\n1;a\n2,b;c\n'),
      file('csv', 'id,prompt\n'),
    ];
    const expected = [
      /is not valid UTF-8 \(line 4, byte 91: 0xf3\)/, /:3: expected a JSON object, got an array/, /is empty/, /: not valid CSV \(Parse Error: expected: ',' OR new line got: 'b'\. at 'b\\n'\\n'2,c\\n'\\n''\)/,
      /: not valid CSV \(Parse Error: missing closing: '"' in line: at '"never closed\\n'2,c\\n''\)/, /row 3 has a different number of columns than the header \(the header is one column, 'id;prompt'/, /has no records/,
    ];
    for (const [i, p] of cases.entries()) {
      const whole = await errorOf(p);
      expect(whole, p).toMatch(expected[i] as RegExp);
      for (const chunk of CHUNKS) expect(await errorOf(p, chunk), `${p}, ${chunk} bytes`).toBe(whole);
    }
  });

  it('an error of the visitor ends the reading with it, not as malformed data', async () => {
    const p = file('csv', 'prompt,response\na,b\nc,d\n');
    const seen: string[] = [];
    await expect(eachRecord(p, 'training data', (r) => {
      seen.push(r.where);
      throw new Error('stop here');
    }, 4)).rejects.toThrow(/^stop here$/);
    expect(seen).toEqual([`${p}: row 2`]);
  });
});

describe('JSON files (one array) read as a stream', () => {
  it('give the elements of JSON.parse over the whole file at any piece size: pretty and minified, brackets, commas and escapes inside strings, nesting, a byte-order mark, multi-byte characters', async () => {
    const records = [
      { id: 'a', prompt: 'é ü — 日本 🙂', response: 'x' },
      { id: 'b', prompt: 'brackets ] } [ { and , commas', response: 'a quote \" a backslash \\ then ]' },
      { id: 'c', messages: [{ role: 'user', content: '[nested]' }, { role: 'assistant', content: '{"json": "inside"}' }], n: [1, [2, [3]], { x: null }] },
      { id: 'd', prompt: '\\', response: '\\"' },
    ];
    for (const [name, text] of [['pretty', JSON.stringify(records, null, 2)], ['minified', JSON.stringify(records)], ['crlf', JSON.stringify(records, null, '\t').replace(/\n/g, '\r\n')]] as const) {
      const p = file('json', `\uFEFF${text}\n`);
      const whole = await recordsOf(p);
      expect(whole.map((r) => r.value), name).toEqual(JSON.parse(text));
      expect(whole.map((r) => [r.where, r.number])).toEqual(records.map((_, i) => [`${p}: record ${i + 1}`, i + 1]));
      for (const chunk of CHUNKS) expect(await recordsOf(p, chunk), `${name}, ${chunk} bytes`).toEqual(whole);
    }
  });

  it('name the same file, record, line and byte in their errors at any piece size; the first malformed record after the records read, invalid UTF-8 anywhere first', async () => {
    const ok = '{"prompt": "a", "response": "b"}';
    const bytes = (...parts: (string | number[])[]): string => {
      const p = join(dir, `bytes-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(p, Buffer.concat(parts.map((x) => Buffer.from(x as string))));
      return p;
    };
    const cases: [string, RegExp][] = [
      [bytes(`[${ok},\n{"prompt": \n}, {"prompt": "L`, [0xf3], `n"}]`), /is not valid UTF-8 \(line 3, byte 63: 0xf3\)/],
      [file('json', `[\n${ok},\n${ok},\n]`), /: record 3 \(line 4\): invalid JSON \(a comma before the closing bracket\)/],
      [file('json', `[${ok},,${ok}]`), /: record 2 \(line 1\): invalid JSON \(two commas with nothing between them\)/],
      [file('json', `[${ok}\n ${ok}]`), /: record 1 \(line 1\): invalid JSON \(Unexpected non-whitespace character after JSON at position \d+/],
      [file('json', `[${ok}, 3]`), /: record 2: expected a JSON object, got number/],
      [file('json', `[${ok}}, ${ok}]`), /: record 1 \(line 1\): invalid JSON \(a closing '}' without its opening '{'\)/],
      [file('json', `[${ok},\n${ok}`), /: invalid JSON \(the file ends inside the array, in record 2 \(line 2\) or after it: a missing '\]'\?\)/],
      [file('json', `[${ok}]\n[${ok}]`), /: invalid JSON \(text after the array's closing bracket, line 2\)/],
      [file('json', `{"data": [${ok}]}`), /expected a JSON array of records, got an object with the key\(s\) 'data'/],
      [file('json', '"just a string"'), /expected a JSON array of records, got string/],
      [file('json', '{"data": [oops'), /: invalid JSON \(/],
      [file('json', ' [ \n ] '), /has no records/],
      [file('json', ' \n '), /is empty/],
    ];
    for (const [p, expected] of cases) {
      const whole = await errorOf(p);
      expect(whole, p).toMatch(expected);
      for (const chunk of CHUNKS) expect(await errorOf(p, chunk), `${p}, ${chunk} bytes`).toBe(whole);
    }
  });

  it('visits the records before a malformed one', async () => {
    const p = file('json', '[{"prompt": "a", "response": "b"}, {"prompt": "c", "response": "d"}, {"prompt": }]');
    const seen: string[] = [];
    await expect(eachRecord(p, 'training data', (r) => seen.push(r.where), 5)).rejects.toThrow(/record 3 \(line 1\): invalid JSON/);
    expect(seen).toEqual([`${p}: record 1`, `${p}: record 2`]);
  });
});

describe('scanTrainingData', () => {
  it('visits the records of readTrainingData one at a time, with their index, and reports the same rendering', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => JSON.stringify(i === 7 ? { prompt: `p${i}`, response: `r${i}`, extra: 1 } : { id: `t${i}`, prompt: `p${i}`, response: `r${i}` }));
    const p = file('jsonl', rows.join('\n'));
    const logWhole: string[] = [];
    const whole = await readTrainingData(p, { log: (l) => logWhole.push(l) });
    const visited: unknown[] = [];
    const logScan: string[] = [];
    const scan = await scanTrainingData(p, { log: (l) => logScan.push(l) }, (record, index) => visited.push([index, record]));
    expect(visited).toEqual(whole.records.map((r, i) => [i, r]));
    expect(scan).toEqual({ count: 40, rendering: whole.rendering });
    expect(logScan).toEqual(logWhole);
    expect(logScan.join('\n')).toContain("field 'extra' is read and not used in 1 of 40 record(s)");
  });

  it('finds a repeated id among many (its fingerprint), naming both records as reading them all did', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ id: `id-${i}`, prompt: 'p', response: 'r' }));
    const clean = file('jsonl', rows.join('\n'));
    expect((await scanTrainingData(clean, {}, () => {})).count).toBe(5000);
    rows[4321] = JSON.stringify({ id: 'id-17', prompt: 'p', response: 'r' });
    const dup = file('jsonl', rows.join('\n'));
    await expect(scanTrainingData(dup, {}, () => {})).rejects.toThrow(`${dup}:4322: duplicate training id 'id-17' (first used at ${dup}:18)`);
    // an id taken from a record's line number
    rows[4321] = JSON.stringify({ prompt: 'p', response: 'r' });
    rows[99] = JSON.stringify({ id: '4322', prompt: 'p', response: 'r' });
    const numbered = file('jsonl', rows.join('\n'));
    await expect(scanTrainingData(numbered, {}, () => {})).rejects.toThrow(`${numbered}:4322: duplicate training id '4322', its line number, as it has no 'id' field, (first used at ${numbered}:100)`);
    expect(readFileSync(numbered, 'utf8').split('\n')).toHaveLength(5000);
  });

  it('does not visit records after one that cannot be read, and throws its error once the file is read', async () => {
    const p = file('jsonl', ['{"id": "a", "prompt": "p", "response": "r"}', '{"id": "b", "prompt": "p"}', '{"id": "c", "prompt": "p", "response": "r"}', '{"id": '].join('\n'));
    const visited: string[] = [];
    // the invalid JSON of line 4 comes first: every record is parsed before any is read
    await expect(scanTrainingData(p, {}, (r) => visited.push(r.id))).rejects.toThrow(/:4: invalid JSON/);
    expect(visited).toEqual(['a']);
    const q = file('jsonl', ['{"id": "a", "prompt": "p", "response": "r"}', '{"id": "b", "prompt": "p"}', '{"id": "c", "prompt": "p", "response": "r"}'].join('\n'));
    await expect(scanTrainingData(q, {}, () => {})).rejects.toThrow(`${q}:2: missing field 'response'`);
  });
});
