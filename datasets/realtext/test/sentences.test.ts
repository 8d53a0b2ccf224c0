import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sotuDataDir, splitSentences, windowAt } from '../src/index.js';

/** A fixed excerpt of James K. Polk's address of 1846 (two `Mr.`, a quotation, a dash). */
const POLK_1846 = 'In the same dispatch the Secretary of State affirms that- Since 1837 the United States have regarded Texas as an independent sovereignty as much as Mexico, and that trade and commerce with citizens of a government at war with Mexico can not on that account be regarded as an intercourse by which assistance and succor are given to Mexican rebels. The whole current of Mr. De Bocanegra\'s remarks runs in the same direction, as if the independence of Texas had not been acknowledged. It has been acknowledged; it was acknowledged in 1837 against the remonstrance and protest of Mexico, and most of the acts of any importance of which Mr. De Bocanegra complains flow necessarily from that recognition. He speaks of Texas as still being "an integral part of the territory of the Mexican Republic," but he can not but understand that the United States do not so regard it.';

const S1 = 'In the same dispatch the Secretary of State affirms that- Since 1837 the United States have regarded Texas as an independent sovereignty as much as Mexico, and that trade and commerce with citizens of a government at war with Mexico can not on that account be regarded as an intercourse by which assistance and succor are given to Mexican rebels.';
const S2 = 'The whole current of Mr. De Bocanegra\'s remarks runs in the same direction, as if the independence of Texas had not been acknowledged.';
const S3 = 'It has been acknowledged; it was acknowledged in 1837 against the remonstrance and protest of Mexico, and most of the acts of any importance of which Mr. De Bocanegra complains flow necessarily from that recognition.';
const S4 = 'He speaks of Texas as still being "an integral part of the territory of the Mexican Republic," but he can not but understand that the United States do not so regard it.';

describe('splitSentences', () => {
  it('splits a fixed excerpt of the 1846 address into its four sentences (not after Mr.)', () => {
    expect(splitSentences(POLK_1846)).toEqual([S1, S2, S3, S4]);
  });

  it('the excerpt is the text of the installed package', () => {
    expect(readFileSync(join(sotuDataDir(), '1846_james_polk_d.txt'), 'utf8')).toContain(POLK_1846);
  });

  it('keeps titles, initials, dotted acronyms and abbreviations inside a sentence; ends at ?, ! and closing quotes', () => {
    const text = 'I met Gen. Grant and Ulysses S. Grant at St. Louis, Mo. in the U.S. Senate. The U.N. Charter, Art. 51, and Report No. 702 were read by Mrs. Smith.  Was it "fair?" We asked!\n"Yes," said Dr. Jones. (The vote was 1846 to 2.) 1847 came next.';
    expect(splitSentences(text)).toEqual([
      'I met Gen. Grant and Ulysses S. Grant at St. Louis, Mo. in the U.S. Senate.',
      'The U.N. Charter, Art. 51, and Report No. 702 were read by Mrs. Smith.',
      'Was it "fair?"',
      'We asked!',
      '"Yes," said Dr. Jones.',
      '(The vote was 1846 to 2.)',
      '1847 came next.',
    ]);
    expect(splitSentences('')).toEqual([]);
    expect(splitSentences('no end')).toEqual(['no end']);
    expect(splitSentences('lower case after a period. stays together.')).toEqual(['lower case after a period. stays together.']);
  });
});

describe('windowAt (an XSum-style pair)', () => {
  const o = { windowSentences: 3, maxDocumentWords: 30, minDocumentWords: 10, minSummaryWords: 10, maxSummaryWords: 80 };
  it('takes the first sentence as the summary and the next ones, cut to maxDocumentWords words, as the document', () => {
    const s = splitSentences(POLK_1846);
    expect(windowAt(s, 0, o)).toEqual({
      summary: S1,
      document: 'The whole current of Mr. De Bocanegra\'s remarks runs in the same direction, as if the independence of Texas had not been acknowledged. It has been acknowledged; it was acknowledged',
    });
    expect(windowAt(s, 1, { ...o, maxDocumentWords: 170 })).toEqual({ summary: S2, document: `${S3} ${S4}` });
  });

  it('refuses a window whose summary or document is outside the word limits', () => {
    const s = splitSentences(POLK_1846);
    expect(windowAt(s, 0, { ...o, maxSummaryWords: 40 })).toBeNull(); // S1 has 58 words
    expect(windowAt(s, 1, { ...o, minSummaryWords: 30 })).toBeNull(); // S2 has 23
    expect(windowAt(s, 3, o)).toBeNull(); // no document left
    expect(windowAt(s, 4, o)).toBeNull();
  });
});
