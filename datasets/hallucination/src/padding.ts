/**
 * Summary padding: K extra sentences appended to a summary that its document does not predict
 * (people, days and numbers, never a place or a company), to move a synthetic benchmark towards
 * the long, partly unpredictable responses of real summaries (docs/regime.md, section 2).
 */
import { DdaError, SeededRandom, fnv1a } from '@dda/core';
import { containsWholeWord } from './words.js';

const FIRST = ['sarah', 'john', 'david', 'emma', 'james', 'laura', 'peter', 'anna', 'tom', 'maria'];
const LAST = ['jones', 'smith', 'brown', 'wilson', 'taylor', 'lee', 'martin', 'evans'];
const DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const HOURS = ['2', '3', '4', '5', '6', '7', '8', '9', '10', '11'];
const COUNTS = ['20', '40', '60', '80', '100', '150', '200', '300'];

type Slots = { person: () => string; day: () => string; hour: () => string; count: () => string };
const PADDING: readonly ((s: Slots) => string)[] = [
  (s) => `${s.person()} and ${s.person()} will speak on ${s.day()} .`,
  (s) => `the report was written by ${s.person()} on ${s.day()} .`,
  (s) => `${s.person()} said the meeting will start at ${s.hour()} pm on ${s.day()} .`,
  (s) => `about ${s.count()} people are expected on ${s.day()} , ${s.person()} said .`,
  (s) => `${s.person()} will give an update next ${s.day()} .`,
  (s) => `the next session , led by ${s.person()} , is at ${s.hour()} am on ${s.day()} .`,
];

/**
 * `summary` followed by `k` padding sentences drawn from a generator seeded by the document (so
 * the same document always gets the same padding and no other random stream of a builder moves),
 * e.g. "... peter martin and sarah lee will speak on saturday ." With `k = 0` it returns `summary`
 * unchanged. A padding sentence never names a place, a company or any of `avoid` (whole words).
 *
 * @param document the pair's document (the seed of the padding)
 * @param k number of sentences, an integer ≥ 0
 * @param avoid entities no padding sentence may contain (e.g. the canaries' orig and replacement)
 * @throws DdaError for a bad `k`, or when no sentence without an `avoid` entity can be drawn
 */
export function padSummary(document: string, summary: string, k: number, avoid: readonly string[] = []): string {
  if (!Number.isInteger(k) || k < 0) throw new DdaError(`summaryPadding must be an integer >= 0, got ${String(k)}`);
  if (k === 0) return summary;
  const r = new SeededRandom(fnv1a(document));
  const slots: Slots = { person: () => `${r.pick(FIRST)} ${r.pick(LAST)}`, day: () => r.pick(DAYS), hour: () => r.pick(HOURS), count: () => r.pick(COUNTS) };
  const out = [summary];
  for (let i = 0; i < k; i++) {
    let s = '';
    for (let attempt = 0; ; attempt++) {
      s = r.pick(PADDING)(slots);
      if (!avoid.some((e) => containsWholeWord(s, e))) break;
      if (attempt >= 100) throw new DdaError(`summary padding: no padding sentence without ${avoid.map((e) => `'${e}'`).join(', ')} in 100 draws`, 'use canary entities that are not common first or last names');
    }
    out.push(s);
  }
  return out.join(' ');
}
