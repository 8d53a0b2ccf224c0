/**
 * Whole-word matching and replacement, shared by the canary injector and the true-source labels.
 *
 * A "whole word" match of `w` in `text` is an occurrence of `w` (case-sensitive) that is neither
 * preceded nor followed by a letter, a digit or an underscore (Unicode-aware), so `wales` matches in
 * "rain in wales ." and "wales, " but not in "new-waleses" or "swales". Multi-word entities
 * ("new york") match as a phrase with the same boundaries.
 */

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const cache = new Map<string, RegExp>();

/**
 * The global pattern of a whole-word `phrase` (boundaries as in the module note), cached.
 * `ignoreCase`: any letter case; `anySpace`: the phrase's words separated by any run of whitespace.
 */
export function phraseRegExp(phrase: string, o: { readonly ignoreCase: boolean; readonly anySpace: boolean } = { ignoreCase: false, anySpace: false }): RegExp {
  const key = `${o.ignoreCase ? 'i' : '-'}${o.anySpace ? 's' : '-'}${phrase}`;
  let re = cache.get(key);
  if (re === undefined) {
    const body = o.anySpace ? phrase.trim().split(/\s+/).map(escapeRegExp).join('\\s+') : escapeRegExp(phrase);
    re = new RegExp(`(?<![\\p{L}\\p{N}_])${body}(?![\\p{L}\\p{N}_])`, o.ignoreCase ? 'giu' : 'gu');
    if (cache.size > 1000) cache.clear();
    cache.set(key, re);
  }
  return re;
}

const wordRegExp = (word: string): RegExp => phraseRegExp(word);

/**
 * Whether `text` contains `word` as a whole word (case-sensitive; see the module note for what
 * counts as a word boundary). An empty `word` never matches.
 */
export function containsWholeWord(text: string, word: string): boolean {
  if (word.length === 0) return false;
  const re = wordRegExp(word);
  re.lastIndex = 0;
  return re.test(text);
}

/**
 * `text` with every whole-word occurrence of `word` replaced by `replacement` (case-sensitive).
 * An empty `word` leaves the text unchanged.
 */
export function replaceWholeWord(text: string, word: string, replacement: string): string {
  if (word.length === 0) return text;
  const re = wordRegExp(word);
  re.lastIndex = 0;
  return text.replace(re, () => replacement);
}
