/**
 * Whole-word matching and replacement, shared by the canary injector and the true-source labels.
 *
 * A "whole word" match of `w` in `text` is an occurrence of `w` (case-sensitive) that is neither
 * preceded nor followed by a letter, a digit, a combining mark or an underscore (Unicode-aware), so
 * `wales` matches in "rain in wales ." and "wales, " but not in "new-waleses" or "swales", and
 * `cafe` not in a decomposed "café". Multi-word entities ("new york") match as a phrase with the
 * same boundaries. Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer,
 * Myanmar) have no such boundaries: where the entity's edge or its neighbour is such a character,
 * no boundary is needed ("北京" matches in "我在北京工作", "Google" in "在Google工作").
 * Text and entity are compared in Unicode NFC, so composed and decomposed accents match.
 */
import { UNSPACED_SCRIPT_CLASS } from '@dda/core';

/** A letter, digit, mark or underscore of a script written with spaces between words. */
const SPACED_WORD = String.raw`[[\p{L}\p{N}\p{M}_]--${UNSPACED_SCRIPT_CLASS}]`;
const SPACED_WORD_RE = new RegExp(`^${SPACED_WORD}`, 'v');

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
    const chars = [...phrase];
    const before = SPACED_WORD_RE.test(chars[0] as string) ? `(?<!${SPACED_WORD})` : '';
    // A trailing combining mark belongs to the last letter; the boundary is then after the mark.
    const core = [...phrase.replace(/\p{M}+$/u, '')];
    const after = SPACED_WORD_RE.test(core[core.length - 1] ?? (chars[chars.length - 1] as string)) ? `(?!${SPACED_WORD})` : '';
    const body = o.anySpace ? phrase.trim().split(/\s+/).map(escapeRegExp).join('\\s+') : escapeRegExp(phrase);
    re = new RegExp(`${before}${body}${after}`, o.ignoreCase ? 'giv' : 'gv');
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
  const re = wordRegExp(word.normalize('NFC'));
  re.lastIndex = 0;
  return re.test(text.normalize('NFC'));
}

/**
 * `text` with every whole-word occurrence of `word` replaced by `replacement` (case-sensitive),
 * in NFC where it replaced something. An empty `word` or no occurrence leaves the text unchanged.
 */
export function replaceWholeWord(text: string, word: string, replacement: string): string {
  if (word.length === 0) return text;
  const re = wordRegExp(word.normalize('NFC'));
  re.lastIndex = 0;
  const nfc = text.normalize('NFC');
  return re.test(nfc) ? nfc.replace(re, () => replacement) : text;
}
