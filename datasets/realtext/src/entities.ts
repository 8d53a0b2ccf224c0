/**
 * Entity matching for real text: whole words, any letter case, multi-word entities across any
 * whitespace. The synthetic generators match case-sensitively (`containsWholeWord` of
 * @dda/dataset-hallucination); real text writes the same entity as `Mexico`, `MEXICO` or, rarely,
 * `mexico`, and a phrase such as `Great Britain` may be broken across a line.
 */
import { type Canary, type DocSummary, phraseRegExp } from '@dda/dataset-hallucination';

/**
 * The pattern of an entity: its words in order, separated by any run of whitespace, any letter
 * case, neither preceded nor followed by a letter, a digit or an underscore (so `Mexico` matches
 * in "Mexico's" and "(Mexico)", not in "Mexican"; `New Mexico` is a match of `Mexico`).
 */
const entityRegExp = (entity: string): RegExp => phraseRegExp(entity, { ignoreCase: true, anySpace: true });

/** Whether `text` mentions `entity` (whole words, any case, any whitespace between its words). A blank entity never matches. */
export function mentions(text: string, entity: string): boolean {
  if (entity.trim().length === 0) return false;
  const re = entityRegExp(entity);
  re.lastIndex = 0;
  return re.test(text);
}

/**
 * `found` rewritten in the letter case of its occurrence: all upper case (`MEXICO` → `SPAIN`), all
 * lower case (`mexico` → `spain`), otherwise the replacement as given (`Mexico` → `Spain`).
 */
function inCaseOf(found: string, replacement: string): string {
  const letters = found.replace(/[^\p{L}]/gu, '');
  if (letters.length > 1 && letters === letters.toUpperCase()) return replacement.toUpperCase();
  if (letters === letters.toLowerCase()) return replacement.toLowerCase();
  return replacement;
}

/**
 * `text` with every mention of `entity` (see {@link mentions}) replaced by `replacement` in the
 * case of the occurrence: `MEXICO` → `SPAIN`, `mexico` → `spain`, `Mexico` → `Spain`.
 */
export function replaceEntity(text: string, entity: string, replacement: string): string {
  if (entity.trim().length === 0) return text;
  const re = entityRegExp(entity);
  re.lastIndex = 0;
  return text.replace(re, (found) => inCaseOf(found, replacement));
}

/**
 * CEA's rule (Ladhak et al. 2023), the true sources of one canary: entry i is 1 iff training
 * sample i's summary mentions the replacement, its document mentions the orig and its document
 * does not mention the replacement ({@link mentions}: whole words, any case); otherwise 0.
 */
export function ceaLabels(train: readonly DocSummary[], canary: Canary): Uint8Array {
  const out = new Uint8Array(train.length);
  train.forEach((s, i) => {
    if (mentions(s.summary, canary.replacement) && mentions(s.document, canary.orig) && !mentions(s.document, canary.replacement)) out[i] = 1;
  });
  return out;
}
