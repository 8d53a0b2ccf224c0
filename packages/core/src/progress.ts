/**
 * The progress contract of long steps (training epochs, per-example gradients, benchmark cells).
 * Library code reports through a {@link ProgressSink}; how progress is shown (a live bar, sparse log
 * lines, JSON events) is the caller's choice, e.g. the `dda` command's `--progress` option.
 */

/** Progress of a long step, with an ETA. */
export interface ProgressUpdate {
  /** What the step is, e.g. `gradients of 240 train samples at epoch-1`; stable for the step's lifetime. */
  readonly label: string;
  /** Units finished so far, 0 ≤ done ≤ total. */
  readonly done: number;
  readonly total: number;
  /** Seconds since the step started. */
  readonly elapsedSeconds: number;
  /** Linear extrapolation of the remaining time in seconds; null before the first unit is done. */
  readonly etaSeconds: number | null;
}

/** Where progress goes (the CLI draws a bar on stderr; library users may pass their own). */
export type ProgressSink = (update: ProgressUpdate) => void;

/**
 * Counts finished units of a step of `total` units and reports each update to `sink` (nothing when
 * `sink` is undefined). `clock` returns milliseconds (default `Date.now`).
 */
export function trackProgress(label: string, total: number, sink: ProgressSink | undefined, clock: () => number = Date.now): { tick(n?: number): void } {
  const start = clock();
  let done = 0;
  return {
    tick(n = 1): void {
      done = Math.min(total, done + n);
      if (!sink) return;
      const elapsedSeconds = (clock() - start) / 1000;
      const etaSeconds = done > 0 ? (elapsedSeconds / done) * (total - done) : null;
      sink({ label, done, total, elapsedSeconds, etaSeconds });
    },
  };
}

/** A duration in seconds as `1h02m`, `3m05s` or `42s` (rounded to the second; negative reads as 0s). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}
