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

function wordRegExp(word: string): RegExp {
  let re = cache.get(word);
  if (re === undefined) {
    re = new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(word)}(?![\\p{L}\\p{N}_])`, 'gu');
    if (cache.size > 1000) cache.clear();
    cache.set(word, re);
  }
  return re;
}

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
