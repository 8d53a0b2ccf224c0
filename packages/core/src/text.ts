/**
 * Words of text in any script, one definition for every consumer (BM25's tokens, whole-word entity
 * matching, the attribution page's highlighting). Scripts written without spaces between words
 * (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) have no word boundaries: each of their
 * characters (with its combining marks) counts as a word.
 */

/** The unspaced scripts as a character class, for RegExps with the `v` flag. */
export const UNSPACED_SCRIPT_CLASS = String.raw`[\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}\p{sc=Thai}\p{sc=Lao}\p{sc=Khmer}\p{sc=Myanmar}]`;

/** One word (`v` flag): a character of an unspaced script with its marks, or a run of other letters, digits and marks. */
export const WORD_PATTERN = String.raw`${UNSPACED_SCRIPT_CLASS}\p{M}*|[[\p{L}\p{N}\p{M}]--${UNSPACED_SCRIPT_CLASS}]+`;

const WORDS = new RegExp(WORD_PATTERN, 'gv');

/** The words of `text` ({@link WORD_PATTERN}), in NFC and lower case, in order. */
export function wordTokens(text: string): string[] {
  return text.normalize('NFC').toLowerCase().match(WORDS) ?? [];
}
