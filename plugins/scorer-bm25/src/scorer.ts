import { numberOption, scorers, type PluginOptions, type RegistryEntry, type Scorer } from '@dda/core';
import { DEFAULT_B, DEFAULT_K1, bm25Scores, checkBm25Options, type Bm25Documents, type Bm25Options } from './bm25.js';

/** Reads `bm25` options: k1 (default 1.5), b (default 0.75), documents (`prompt+response` | `response`). */
export function readBm25Options(options: PluginOptions): Bm25Options {
  const o: Bm25Options = {
    k1: numberOption(options, 'k1', DEFAULT_K1),
    b: numberOption(options, 'b', DEFAULT_B),
    documents: (options['documents'] ?? 'prompt+response') as Bm25Documents,
  };
  checkBm25Options(o);
  return o;
}

/**
 * The `bm25` scorer: Okapi BM25 of the test response (query) against the training text
 * (document); model-free (needs only text); BM25 relevance ≥ 0; higher = more responsible.
 */
export function bm25Scorer(options: Bm25Options = {}): Scorer {
  return {
    id: 'bm25',
    description: 'Okapi BM25 of the test output (query) against each training sample\'s text (document); model-free; BM25 relevance ≥ 0, higher = more responsible',
    needs: ['text'],
    async score(input) {
      return bm25Scores(input.train, input.test, options, input.checkpoint);
    },
  };
}

/** Registry entry `bm25`. */
export const scorerEntries: readonly RegistryEntry<Scorer, PluginOptions>[] = [
  {
    id: 'bm25',
    description: 'Okapi BM25 text retrieval baseline, model-free (options k1 = 1.5, b = 0.75, documents = prompt+response)',
    priority: 40,
    options: ['k1', 'b', 'documents'],
    create: (o) => bm25Scorer(readBm25Options(o)),
  },
];

/** Adds `bm25` to the `scorers` registry of @dda/core. Idempotent. Called when this package is imported. */
export function registerBm25Scorer(): void {
  for (const e of scorerEntries) if (!scorers.has(e.id)) scorers.register(e);
}
