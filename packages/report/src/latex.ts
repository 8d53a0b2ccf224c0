/**
 * LaTeX tables in booktabs style (`\toprule`, `\midrule`, `\bottomrule`; needs `\usepackage{booktabs}`),
 * for pasting results into papers.
 */
import { DdaError } from '@dda/core';

const LATEX_SPECIALS: Record<string, string> = {
  '\\': '\\textbackslash{}',
  '{': '\\{',
  '}': '\\}',
  $: '\\$',
  '&': '\\&',
  '#': '\\#',
  '%': '\\%',
  _: '\\_',
  '^': '\\textasciicircum{}',
  '~': '\\textasciitilde{}',
  '<': '\\textless{}',
  '>': '\\textgreater{}',
  '|': '\\textbar{}',
  // Characters our names and captions use that pdfLaTeX cannot typeset from UTF-8 text.
  'β': '$\\beta$',
  'θ': '$\\theta$',
  '×': '$\\times$',
  '−': '$-$',
  '–': '--',
  '≤': '$\\le$',
  '≥': '$\\ge$',
};

/**
 * Text as LaTeX source: escapes `\ { } $ & # % _ ^ ~ < > |` and writes β, θ, ×, −, –, ≤, ≥ as math
 * or dashes, so that the result compiles with pdfLaTeX.
 */
export function escapeLatex(s: string): string {
  return s.replace(/[\\{}$&#%_^~<>|βθ×−–≤≥]/g, (c) => LATEX_SPECIALS[c] ?? c);
}

/** A cell of {@link latexTable}: text (escaped) or `{ latex }`, inserted as is (e.g. `\textbf{93.2}`). */
export type LatexCell = string | { readonly latex: string };

/** A table of {@link latexTable}. */
export interface LatexTable {
  /** Column headers (escaped) and alignments (`l`, `r`, `c`). */
  readonly columns: readonly { readonly header: string; readonly align: 'l' | 'r' | 'c' }[];
  readonly rows: readonly (readonly LatexCell[])[];
  /** Caption as LaTeX source (not escaped, so it may hold math). Without it the tabular is not wrapped in a table float. */
  readonly caption?: string;
  readonly label?: string;
  /** Row indices before which a `\midrule` is drawn (to separate groups of rows). */
  readonly rulesBefore?: readonly number[];
  /** A `%` comment line put first, e.g. the command that produced the numbers. */
  readonly comment?: string;
}

/**
 * A booktabs table:
 * ```
 * \begin{table}[t]        (only with a caption)
 * \centering
 * \caption{...}\label{...}
 * \begin{tabular}{lr}
 * \toprule
 * method & AUC \\
 * \midrule
 * grad-dot & 93.19 \\
 * \bottomrule
 * \end{tabular}
 * \end{table}
 * ```
 * A cell starting with `[` gets a `{}` in front, so LaTeX does not read it as the optional argument of the preceding `\\`.
 * @throws DdaError if a row has another number of cells than there are columns.
 */
export function latexTable(t: LatexTable): string {
  const cell = (x: LatexCell): string => {
    const s = typeof x === 'string' ? escapeLatex(x) : x.latex;
    return s.startsWith('[') ? `{}${s}` : s;
  };
  t.rows.forEach((r, i) => {
    if (r.length !== t.columns.length) throw new DdaError(`latexTable: row ${i} has ${r.length} cells, the table has ${t.columns.length} columns`);
  });
  const rules = new Set(t.rulesBefore ?? []);
  const lines: string[] = [];
  if (t.comment !== undefined) lines.push(...t.comment.split('\n').map((l) => `% ${l}`));
  if (t.caption !== undefined) {
    lines.push('\\begin{table}[t]', '\\centering', `\\caption{${t.caption}}${t.label ? `\\label{${t.label}}` : ''}`);
  }
  lines.push(`\\begin{tabular}{${t.columns.map((c) => c.align).join('')}}`, '\\toprule');
  lines.push(`${t.columns.map((c) => cell(c.header)).join(' & ')} \\\\`, '\\midrule');
  t.rows.forEach((r, i) => {
    if (i > 0 && rules.has(i)) lines.push('\\midrule');
    lines.push(`${r.map(cell).join(' & ')} \\\\`);
  });
  lines.push('\\bottomrule', '\\end{tabular}');
  if (t.caption !== undefined) lines.push('\\end{table}');
  return `${lines.join('\n')}\n`;
}
