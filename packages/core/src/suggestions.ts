/**
 * "Did you mean" suggestions for misspelt ids and flags: the known names closest to what was typed,
 * by edit distance.
 */

/**
 * The optimal-string-alignment edit distance between `a` and `b`: the least number of single-character
 * insertions, deletions, substitutions and swaps of two adjacent characters that turn one into the other
 * (`grad-cos` → `grad-cso` is 1). Case-sensitive.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const n = a.length;
  const m = b.length;
  // Three rows of the dynamic programme: i-2, i-1 and i.
  let before = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  let cur = new Array<number>(m + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (before[j - 2] as number) + 1);
      cur[j] = d;
    }
    [before, prev, cur] = [prev, cur, before];
  }
  return prev[m] as number;
}

/**
 * The names among `known` closest to `typed` (at most `max`, default 3, by name): those at the least
 * edit distance from it, compared without case, if that is within a third of the typed length (at
 * least 1, at most 3); else those that start with what was typed (3 characters or more: `tracin` →
 * `tracin-cp`). Empty when nothing is close.
 */
export function closestNames(typed: string, known: Iterable<string>, max = 3): string[] {
  const t = typed.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(t.length / 3)));
  const scored: { name: string; d: number }[] = [];
  for (const name of new Set(known)) {
    const k = name.toLowerCase();
    if (name === typed) continue;
    const d = editDistance(t, k);
    if (d <= limit) scored.push({ name, d });
    else if (t.length >= 3 && k.startsWith(t)) scored.push({ name, d: limit + 1 });
  }
  const best = Math.min(...scored.map((s) => s.d));
  return scored.filter((s) => s.d === best).sort((x, y) => x.name.localeCompare(y.name)).slice(0, max).map((s) => s.name);
}

/**
 * `did you mean 'grad-cos'?` (or `'a' or 'b'?`) for the names of `known` closest to `typed`, each
 * formatted by `quote` (default `'name'`); undefined when none is close (see {@link closestNames}).
 */
export function didYouMean(typed: string, known: Iterable<string>, quote: (name: string) => string = (n) => `'${n}'`): string | undefined {
  const close = closestNames(typed, known);
  if (close.length === 0) return undefined;
  const names = close.map(quote);
  return `did you mean ${names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`}?`;
}
