import { describe, expect, it } from 'vitest';
import { DdaError } from '@dda/core';
import { loadDocSummaryJsonl, SYSTEM_PROMPT, userPrompt } from '../src/index.js';

const line = (o: unknown): string => JSON.stringify(o);

describe('loadDocSummaryJsonl', () => {
  it('parses records, skips blank lines, defaults ids to line numbers', () => {
    const text = [line({ id: 'x', document: 'd1', summary: 's1' }), '', line({ document: 'd2', summary: 's2', extra: 1 }), ''].join('\r\n');
    expect(loadDocSummaryJsonl(`\uFEFF${text}`, 'my.jsonl')).toEqual([
      { id: 'x', document: 'd1', summary: 's1' },
      { id: 'line-3', document: 'd2', summary: 's2' },
    ]);
  });

  const bad: [string, string, RegExp][] = [
    ['bad JSON', `${line({ document: 'a', summary: 'b' })}\n{"document": "a",`, /^data\.jsonl:2: invalid JSON/],
    ['not an object', `[1, 2]`, /^data\.jsonl:1: expected a JSON object, got an array/],
    ['missing document', `\n\n${line({ summary: 'b' })}`, /^data\.jsonl:3: missing field 'document'/],
    ['missing summary', line({ document: 'a' }), /^data\.jsonl:1: missing field 'summary'/],
    ['non-string summary', line({ document: 'a', summary: 3 }), /^data\.jsonl:1: field 'summary' must be a string, got number/],
    ['empty document', line({ document: '  ', summary: 'b' }), /^data\.jsonl:1: field 'document' is empty/],
    ['non-string id', line({ id: 7, document: 'a', summary: 'b' }), /^data\.jsonl:1: field 'id'/],
    [
      'duplicate id',
      [line({ id: 'k', document: 'a', summary: 'b' }), line({ id: 'j', document: 'a', summary: 'b' }), line({ id: 'k', document: 'c', summary: 'd' })].join('\n'),
      /^data\.jsonl:3: duplicate id 'k' \(first used on line 1\)/,
    ],
    ['empty file', '', /^data\.jsonl: no records/],
    ['blank file', '\n  \n', /^data\.jsonl: no records/],
  ];
  for (const [name, text, re] of bad) {
    it(`names file and line for ${name}`, () => {
      let err: unknown;
      try {
        loadDocSummaryJsonl(text, 'data.jsonl');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DdaError);
      expect((err as Error).message).toMatch(re);
    });
  }
});

describe('instruction format', () => {
  it('matches METHOD.md exactly', () => {
    expect(SYSTEM_PROMPT).toBe('You will act as a summarization expert.');
    expect(userPrompt('rain in wales .')).toBe(
      'Document: rain in wales .\n\nYour task is to read the Document and produce a succinct and accurate summary that captures the key points and main arguments presented in the text.\n\nSummary:',
    );
  });
});
