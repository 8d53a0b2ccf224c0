/**
 * `bm25`: Okapi BM25 text retrieval as an attribution baseline (model-free, as in the paper's
 * baselines). The query is the test sample's response (the erroneous output z_e); the documents
 * are the training samples' prompt + response text (or the response alone, option `documents`).
 *
 *     score(D, Q) = Σ_{q ∈ Q} IDF(q) · f(q, D) (k1 + 1) / (f(q, D) + k1 (1 − b + b |D| / avgdl))
 *     IDF(q)      = ln((N − df(q) + 0.5) / (df(q) + 0.5) + 1)
 *
 * f(q, D): occurrences of token q in D; |D|: tokens in D; avgdl: mean |D| over the N training
 * documents; df(q): documents containing q. Every query token counts, repeats included (as in
 * rank_bm25 and Lucene). Tokenisation: Unicode NFC, lower-cased, words = runs of letters, digits
 * and combining marks (a mark belongs to its letter: Devanagari vowel signs, decomposed accents),
 * every other character a separator; each character of a script written without spaces between
 * words (Han, kana, Thai, Lao, Khmer, Myanmar) is a token of its own (character unigrams, as
 * CJK search engines do at their simplest), so '北京' matches inside '我在北京工作'.
 *
 * Sign: higher = the training text shares more (and rarer) words with the test output = more
 * responsible. Units: BM25 relevance (IDF-weighted saturated term counts, ≥ 0); comparable within a
 * test column, not across test outputs of different lengths.
 */
import { DdaError, createScoreMatrix, wordTokens, type ScoreMatrix, type TextSample } from '@dda/core';

/** Which text of a training sample forms its document. */
export type Bm25Documents = 'prompt+response' | 'response';

/** Options of {@link bm25Scores} and the `bm25` scorer. */
export interface Bm25Options {
  /** Term-frequency saturation, finite and ≥ 0 (default 1.5). */
  readonly k1?: number;
  /** Length normalisation, in [0, 1] (default 0.75). */
  readonly b?: number;
  /** Document text of a training sample (default `prompt+response`, joined by a newline). */
  readonly documents?: Bm25Documents;
}

/** Default k1 (term-frequency saturation). */
export const DEFAULT_K1 = 1.5;
/** Default b (length normalisation). */
export const DEFAULT_B = 0.75;

/** Lower-cased tokens of `text`: words of letters, digits and marks; one token per CJK (and other unspaced-script) character (see the module doc). */
export function tokenize(text: string): string[] {
  return wordTokens(text);
}

/** IDF(q) = ln((N − df + 0.5) / (df + 0.5) + 1); always > 0. */
export function bm25Idf(nDocs: number, df: number): number {
  return Math.log((nDocs - df + 0.5) / (df + 0.5) + 1);
}

function checkText(samples: readonly TextSample[], which: 'training' | 'test', fields: readonly ('prompt' | 'response')[]): void {
  samples.forEach((s, i) => {
    for (const f of fields) {
      if (typeof (s as unknown as Record<string, unknown>)[f] !== 'string') {
        throw new DdaError(
          `bm25: ${which} sample '${s.id ?? i}' has no ${f} text`,
          'bm25 needs the text of every sample (needs: text); pass samples with string prompt and response',
        );
      }
    }
  });
}

/** Throws a DdaError unless the options are valid. */
export function checkBm25Options(o: Bm25Options): { k1: number; b: number; documents: Bm25Documents } {
  const k1 = o.k1 ?? DEFAULT_K1;
  const b = o.b ?? DEFAULT_B;
  const documents = o.documents ?? 'prompt+response';
  if (!(k1 >= 0) || !Number.isFinite(k1)) throw new DdaError(`bm25: option 'k1' must be a finite number ≥ 0, got ${k1}`, 'the usual range is 1.2 to 2');
  if (!(b >= 0 && b <= 1)) throw new DdaError(`bm25: option 'b' must be in [0, 1], got ${b}`, 'the usual value is 0.75');
  if (documents !== 'prompt+response' && documents !== 'response') {
    throw new DdaError(`bm25: option 'documents' must be 'prompt+response' or 'response', got ${JSON.stringify(documents)}`);
  }
  return { k1, b, documents };
}

/**
 * BM25 scores [nTrain × nTest]: `values[i * nTest + j]` = BM25(document of train i, response of
 * test j). Memory: an inverted index of the training tokens plus the output.
 *
 * @param checkpoint - Recorded in the provenance (BM25 itself does not depend on it).
 * @throws DdaError if a sample lacks its text or an option is invalid.
 */
export function bm25Scores(
  train: readonly TextSample[],
  test: readonly TextSample[],
  options: Bm25Options = {},
  checkpoint = 'none',
): ScoreMatrix {
  const { k1, b, documents } = checkBm25Options(options);
  checkText(train, 'training', documents === 'response' ? ['response'] : ['prompt', 'response']);
  checkText(test, 'test', ['response']);
  const n = train.length;
  const m = test.length;
  // Inverted index: token → parallel arrays of (document, term frequency).
  const postings = new Map<string, { docs: number[]; tfs: number[] }>();
  const lengths = new Float64Array(n);
  train.forEach((s, d) => {
    const tokens = tokenize(documents === 'response' ? s.response : `${s.prompt}\n${s.response}`);
    lengths[d] = tokens.length;
    const counts = new Map<string, number>();
    for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, c] of counts) {
      let p = postings.get(t);
      if (!p) postings.set(t, (p = { docs: [], tfs: [] }));
      p.docs.push(d);
      p.tfs.push(c);
    }
  });
  const avgdl = n === 0 ? 0 : lengths.reduce((a, x) => a + x, 0) / n;
  // k1 (1 − b + b |D| / avgdl) per document; avgdl = 0 only when every document is empty (no postings).
  const norm = Float64Array.from(lengths, (len) => k1 * (1 - b + (avgdl > 0 ? (b * len) / avgdl : 0)));
  const out = new Float64Array(n * m);
  test.forEach((s, j) => {
    for (const q of tokenize(s.response)) {
      const p = postings.get(q);
      if (!p) continue;
      const idf = bm25Idf(n, p.docs.length);
      for (let k = 0; k < p.docs.length; k++) {
        const d = p.docs[k] as number;
        const tf = p.tfs[k] as number;
        const idx = d * m + j;
        out[idx] = (out[idx] as number) + (idf * tf * (k1 + 1)) / (tf + (norm[d] as number));
      }
    }
  });
  return createScoreMatrix(
    train.map((s) => s.id),
    test.map((s) => s.id),
    out,
    {
      method: 'bm25',
      computedOver: `Okapi BM25 (k1 = ${k1}, b = ${b}) of each test response (query) against each training sample's ${documents} text (document), over ${n} documents with avgdl = ${avgdl.toFixed(1)} tokens; model-free; units BM25 relevance ≥ 0; higher = more responsible`,
      units: 'BM25 relevance (≥ 0)',
      checkpoints: [checkpoint],
      transforms: [],
    },
  );
}
