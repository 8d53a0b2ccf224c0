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
  /** Which limit that is: `--max-length` or `the model's context`. */
  readonly limitName: string;
  /** Number of samples cut. */
  readonly samples: number;
  /** Tokens cut in all samples together. */
  readonly tokensCut: number;
  readonly cut: readonly TruncatedSample[];
}

/** The report of the cuts `cut`, made to fit `maxLength` tokens (the limit `limitName`). */
export function truncationReport(maxLength: number, limitName: string, cut: readonly TruncatedSample[]): TruncationReport {
  return { maxLength, limitName, samples: cut.length, tokensCut: cut.reduce((a, c) => a + c.tokensCut, 0), cut };
}

/**
 * One log line about what was cut (undefined when nothing was): how many samples, how many tokens
 * in all, and the first `first` samples with where they are and what each lost, e.g.
 * `--overlong truncate cut 3 samples to 160 tokens (the model's context; 412 tokens cut in all): train
 * 'a7' (train.jsonl:12) 150 of 310 tokens cut: 140 from the prompt, 10 from the response, ...; every
 * one in summary.json`.
 */
export function describeTruncation(r: TruncationReport, first = 3): string | undefined {
  if (r.samples === 0) return undefined;
  const shown = r.cut.slice(0, first).map((c) => `${c.kind} '${c.id}' (${c.where}) ${c.tokensCut} of ${c.length} tokens cut: ${c.promptTokensCut} from the prompt, ${c.responseTokensCut} from the response`);
  const more = r.samples > shown.length ? `, and ${r.samples - shown.length} more` : '';
  return `--overlong truncate cut ${r.samples} sample${r.samples === 1 ? '' : 's'} to ${r.maxLength} tokens (${r.limitName}; ${r.tokensCut} tokens cut in all): ${shown.join(', ')}${more}; every one in summary.json (truncated)`;
}
