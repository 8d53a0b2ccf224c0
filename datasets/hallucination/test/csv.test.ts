import { describe, expect, it } from 'vitest';
import { DdaError } from '@dda/core';
import { loadDocSummaryCsv } from '@dda/dataset-hallucination';

describe('loadDocSummaryCsv', () => {
  it('reads a header row, quoted fields over several lines, and ignores extra columns', async () => {
    const text = 'id,document,summary,extra\nd1,"rain in wales, again .","wet\nweekend",x\n,storm in england .,gale,y\n';
    expect(await loadDocSummaryCsv(text, 'x.csv')).toEqual([
      { id: 'd1', document: 'rain in wales, again .', summary: 'wet\nweekend' },
      { id: 'line-3', document: 'storm in england .', summary: 'gale' },
    ]);
  });
  const bad: [string, string, RegExp][] = [
    ['a missing column', 'id,document\n1,abc\n', /^x\.csv: row 2: missing field 'summary'/],
    ['an empty field', 'document,summary\nabc,  \n', /^x\.csv: row 2: field 'summary' is empty/],
    ['a row with too many columns', 'document,summary\na,b\nc,d,e\n', /^x\.csv: row 3 has a different number of columns/],
    ['a duplicate id', 'id,document,summary\nk,a,b\nk,c,d\n', /^x\.csv: row 3: duplicate id 'k' \(first used on row 2\)/],
    ['no records', 'document,summary\n', /^x\.csv: no records/],
  ];
  for (const [name, text, re] of bad) {
    it(`names the file and row for ${name}`, async () => {
      const err = await loadDocSummaryCsv(text, 'x.csv').then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(DdaError);
      expect((err as Error).message).toMatch(re);
    });
  }
});
