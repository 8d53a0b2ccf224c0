/**
 * A sentence splitter for formal English prose such as the State of the Union addresses: robust to
 * titles (`Mr.`, `Gen.`), initials (`Ulysses S. Grant`), dotted acronyms (`U.S.`, `D.C.`) and
 * common abbreviations (`No.`, `St.`).
 */

/**
 * Words that end with a period without ending the sentence (compared without the period,
 * case-sensitive): titles, honorifics and the abbreviations of the addresses' prose.
 */
export const ABBREVIATIONS: ReadonlySet<string> = new Set([
  'Mr', 'Mrs', 'Ms', 'Messrs', 'Dr', 'St', 'Hon', 'Hons', 'Gen', 'Col', 'Maj', 'Brig', 'Capt', 'Lt', 'Adm', 'Sgt', 'Cmdr', 'Prof',
  'Gov', 'Rep', 'Reps', 'Sen', 'Sens', 'Rev', 'Jr', 'Sr', 'Esq', 'No', 'Nos', 'Vol', 'Art', 'Sec', 'Stat', 'Co', 'Corp', 'Inc', 'Ltd', 'Bros',
  'Mt', 'Ft', 'Jan', 'Feb', 'Mar', 'Apr', 'Aug', 'Sept', 'Sep', 'Oct', 'Nov', 'Dec', 'vs', 'viz', 'cf', 'ch', 'pp', 'Cal', 'Va', 'Tex', 'Ind', 'Fla', 'Ga', 'Pa', 'Mass', 'Conn',
]);

/** An initial (`S`) or a dotted acronym without its last period (`U.S`, `D.C`, `A.D`). */
const INITIAL_OR_ACRONYM = /^(?:[A-Z]|(?:[A-Za-z]\.)+[A-Za-z])$/;

/** A candidate sentence end: `.`, `!` or `?` (repeated), closing quotes or brackets, then space before a capital or digit. */
const END = /([.!?]+)(["'\u201d\u2019)\]]*)\s+(?=["'\u201c\u2018(\[]*[A-Z0-9])/g;

/**
 * The sentences of `text`, in order, each trimmed and with its whitespace collapsed to single
 * spaces. A sentence ends at `.`, `!` or `?` (with any closing quotes or brackets) followed by
 * whitespace and an upper-case letter or a digit (possibly after an opening quote or bracket),
 * except after a period that closes an abbreviation of {@link ABBREVIATIONS}, an initial (one
 * capital letter) or a dotted acronym (`U.S.`, `D.C.`). The text after the last end is the last
 * sentence. Empty input gives `[]`.
 */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (const m of text.matchAll(END)) {
    const at = m.index;
    if (m[1] === '.') {
      const before = text.slice(start, at);
      const word = (before.split(/\s/).pop() ?? '').replace(/^["'\u201c\u2018(\[]+/, '');
      if (ABBREVIATIONS.has(word) || INITIAL_OR_ACRONYM.test(word)) continue;
    }
    const end = at + (m[1] ?? '').length + (m[2] ?? '').length;
    push(out, text.slice(start, end));
    start = end;
  }
  push(out, text.slice(start));
  return out;
}

function push(out: string[], s: string): void {
  const t = s.replace(/\s+/g, ' ').trim();
  if (t.length > 0) out.push(t);
}

/** The number of whitespace-separated words of `s`. */
export function wordCount(s: string): number {
  const t = s.trim();
  return t.length === 0 ? 0 : t.split(/\s+/).length;
}
