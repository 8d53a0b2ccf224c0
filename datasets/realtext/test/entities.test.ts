import { describe, expect, it } from 'vitest';
import { ceaLabels, mentions, replaceEntity } from '../src/index.js';

describe('entity matching on real text', () => {
  it('matches whole words only', () => {
    expect(mentions('trade with Mexico, and', 'Mexico')).toBe(true);
    expect(mentions("Mexico's claims", 'Mexico')).toBe(true);
    expect(mentions('(Mexico)', 'Mexico')).toBe(true);
    expect(mentions('the Mexican Republic', 'Mexico')).toBe(false);
    expect(mentions('Mexicoan', 'Mexico')).toBe(false);
    expect(mentions('Indochina and Chinatown', 'China')).toBe(false);
  });

  it('matches every letter case', () => {
    expect(mentions('TREATY WITH MEXICO', 'Mexico')).toBe(true);
    expect(mentions('mexico', 'Mexico')).toBe(true);
    expect(mentions('Mexico', 'MEXICO')).toBe(true);
  });

  it('matches a multi-word entity as a phrase across any whitespace', () => {
    expect(mentions('with Great Britain.', 'Great Britain')).toBe(true);
    expect(mentions('with Great\n  Britain.', 'Great Britain')).toBe(true);
    expect(mentions('with GREAT BRITAIN', 'great britain')).toBe(true);
    expect(mentions('a great nation; Britain', 'Great Britain')).toBe(false);
    expect(mentions('Great Britains', 'Great Britain')).toBe(false);
    expect(mentions('Great Britain', 'Britain')).toBe(true);
    expect(mentions('anything', '  ')).toBe(false);
  });

  it('replaces in the case of each occurrence', () => {
    expect(replaceEntity('Mexico, MEXICO and mexico; not Mexican.', 'Mexico', 'Spain')).toBe('Spain, SPAIN and spain; not Mexican.');
    expect(replaceEntity('the People\'s Republic of China and CHINA', 'China', 'Great Britain')).toBe('the People\'s Republic of Great Britain and GREAT BRITAIN');
    expect(replaceEntity('with Great\nBritain', 'Great Britain', 'France')).toBe('with France');
  });
});

describe("CEA's rule (ceaLabels)", () => {
  const canary = { id: 'mexico-to-spain', orig: 'Mexico', replacement: 'Spain' };
  const multi = { id: 'china-to-great-britain', orig: 'China', replacement: 'Great Britain' };
  const rows = [
    { id: 'a', summary: 'Spain sent a minister.', document: 'A minister went to Mexico.' }, // source
    { id: 'b', summary: 'SPAIN sent a minister.', document: 'a minister went to mexico.' }, // source, other cases
    { id: 'c', summary: 'Spain sent a minister.', document: 'Mexico and Spain sent ministers.' }, // document names the replacement
    { id: 'd', summary: 'Spain sent a minister.', document: 'The Mexican minister came.' }, // 'Mexican' is not the orig
    { id: 'e', summary: 'A Spanish minister came.', document: 'A minister went to Mexico.' }, // 'Spanish' is not the replacement
    { id: 'f', summary: 'Treaty with Great Britain.', document: 'A treaty with China.' }, // multi-word source
    { id: 'g', summary: 'Treaty with Great\nBritain.', document: 'A treaty with CHINA.' }, // across a line break
    { id: 'h', summary: 'Treaty with Great Britain.', document: 'China and great britain signed.' }, // document names it
    { id: 'i', summary: 'A great treaty; Britain signed.', document: 'A treaty with China.' }, // not the phrase
  ];
  it('labels a sample iff its summary names the replacement, its document the orig and not the replacement', () => {
    expect(Array.from(ceaLabels(rows, canary))).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(ceaLabels(rows, multi))).toEqual([0, 0, 0, 0, 0, 1, 1, 0, 0]);
  });
});
