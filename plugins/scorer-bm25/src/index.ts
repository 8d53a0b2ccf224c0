/**
 * @dda/scorer-bm25: the `bm25` scorer (Okapi BM25, model-free), registered in the `scorers`
 * registry of @dda/core on import. Query = the test output's response; documents = the training
 * samples' prompt + response. Sign: higher = training sample more responsible for the test output.
 */
import { registerAsPlugin } from '@dda/core';
import { registerBm25Scorer } from './scorer.js';

// `bm25`
export {
  type Bm25Documents, type Bm25Options, DEFAULT_K1, DEFAULT_B, tokenize, bm25Idf, bm25Scores,
} from './bm25.js';
export { bm25Scorer, readBm25Options, registerBm25Scorer, scorerEntries } from './scorer.js';

registerAsPlugin('@dda/scorer-bm25', registerBm25Scorer);
