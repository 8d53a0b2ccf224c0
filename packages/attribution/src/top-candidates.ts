/**
 * The best rows of a stream of scored rows, kept in a bounded min-heap (ties: the earlier row
 * ranks higher): shared by the index's exact scan and its approximate search.
 */
/**
 * The c best (score, then earlier row) of a stream of (score, row), as a min-heap: a query's
 * candidates in the approximate search, and the lower bound of its k-th best score in the exact scan.
 */
export class TopCandidates {
  private readonly s: Float64Array;
  private readonly r: Int32Array;
  private n = 0;

  constructor(readonly c: number) {
    this.s = new Float64Array(c);
    this.r = new Int32Array(c);
  }

  /** Whether (sa, ra) ranks below (sb, rb): a lower score, or the same score at a later row. */
  private static below(sa: number, ra: number, sb: number, rb: number): boolean {
    return sa < sb || (sa === sb && ra > rb);
  }

  /** The c-th best score pushed (the heap's least), or -Infinity before c pushes. */
  get floor(): number {
    return this.n < this.c ? -Infinity : (this.s[0] as number);
  }

  /** Keeps (score, row) if it ranks among the c best so far. */
  push(score: number, row: number): void {
    const { s, r, c } = this;
    if (this.n === c) {
      if (!TopCandidates.below(s[0] as number, r[0] as number, score, row)) return;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= c) break;
        const rr = l + 1;
        const m = rr < c && TopCandidates.below(s[rr] as number, r[rr] as number, s[l] as number, r[l] as number) ? rr : l;
        if (!TopCandidates.below(s[m] as number, r[m] as number, score, row)) break;
        s[i] = s[m] as number;
        r[i] = r[m] as number;
        i = m;
      }
      s[i] = score;
      r[i] = row;
      return;
    }
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!TopCandidates.below(score, row, s[p] as number, r[p] as number)) break;
      s[i] = s[p] as number;
      r[i] = r[p] as number;
      i = p;
    }
    s[i] = score;
    r[i] = row;
  }

  /** The rows held, best first (score descending, then earlier row). */
  ranked(): Int32Array {
    const order = Array.from({ length: this.n }, (_, k) => k).sort((a, b) => (this.s[b] as number) - (this.s[a] as number) || (this.r[a] as number) - (this.r[b] as number));
    return Int32Array.from(order, (k) => this.r[k] as number);
  }
}
