/**
 * What `--overlong truncate` cut: every sample longer than the context that was shortened to fit,
 * counted, logged and recorded in summary.json, so that a truncation is never silent.
 */
import type { TruncationCut } from '@dda/model';

/** One sample that was cut to the context length. */
export interface TruncatedSample extends TruncationCut {
  /** The record's id (training sample or query). */
  readonly id: string;
  /** `train`, `query`, or `correction` (the query's corrected output). */
  readonly kind: 'train' | 'query' | 'correction';
  /** Where the record is (file:line). */
  readonly where: string;
}

/** Every sample `--overlong truncate` cut, in file order, and the totals. */
export interface TruncationReport {
  /** The context length the samples were cut to, in tokens. */
  readonly maxLength: number;
  /** Number of samples cut. */
  readonly samples: number;
  /** Tokens cut in all samples together. */
  readonly tokens: number;
  readonly cut: readonly TruncatedSample[];
}

/** The report of the cuts `cut`, made to fit `maxLength` tokens. */
export function truncationReport(maxLength: number, cut: readonly TruncatedSample[]): TruncationReport {
  return { maxLength, samples: cut.length, tokens: cut.reduce((a, c) => a + c.tokens, 0), cut };
}

/**
 * One log line about what was cut (undefined when nothing was): how many samples, how many tokens
 * in all, and the first `first` samples with where they are and what each lost, e.g.
 * `--overlong truncate cut 3 samples to the context of 160 tokens (412 tokens in all): train 'a7'
 * (train.jsonl:12) 150 of 310 tokens (140 prompt, 10 response), ...; every one in summary.json`.
 */
export function describeTruncation(r: TruncationReport, first = 3): string | undefined {
  if (r.samples === 0) return undefined;
  const shown = r.cut.slice(0, first).map((c) => `${c.kind} '${c.id}' (${c.where}) ${c.tokens} of ${c.length} tokens (${c.promptTokens} prompt, ${c.responseTokens} response)`);
  const more = r.samples > shown.length ? `, and ${r.samples - shown.length} more` : '';
  return `--overlong truncate cut ${r.samples} sample${r.samples === 1 ? '' : 's'} to the context of ${r.maxLength} tokens (${r.tokens} tokens in all): ${shown.join(', ')}${more}; every one in summary.json (truncated)`;
}
