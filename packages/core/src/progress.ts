/** Progress of a long step (training epochs, per-example gradients, benchmark cells), with an ETA. */
export interface ProgressUpdate {
  readonly label: string;
  readonly done: number;
  readonly total: number;
  readonly elapsedSeconds: number;
  /** Linear extrapolation of the remaining time; null before the first unit is done. */
  readonly etaSeconds: number | null;
}

/** Where progress goes (the CLI draws a bar on stderr; library users may pass their own). */
export type ProgressSink = (update: ProgressUpdate) => void;

/** Counts finished units of a step of `total` units and reports each update to `sink`. */
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

/** `1h02m`, `3m05s`, `42s`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** One line: `[#########...........]  45% 12/27 ETA 1m20s  gradients of 240 train samples at epoch-1`. */
export function formatProgressBar(p: ProgressUpdate, width = 20): string {
  const frac = p.total > 0 ? p.done / p.total : 1;
  const filled = Math.round(frac * width);
  const eta = p.done >= p.total ? `done in ${formatDuration(p.elapsedSeconds)}` : p.etaSeconds === null ? 'ETA ?' : `ETA ${formatDuration(p.etaSeconds)}`;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(frac * 100)).padStart(3)}% ${p.done}/${p.total} ${eta}  ${p.label}`;
}
