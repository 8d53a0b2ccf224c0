/**
 * How the `dda` command shows progress and log lines on stderr (`--progress`, `--quiet`):
 *
 * - `bar` (default on a terminal): live bars drawn by cli-progress, one per running step, with log
 *   lines printed above them and a final line per finished step;
 * - `log` (default when stderr is not a terminal, e.g. a log file): sparse lines, at most one per
 *   step every `logEverySeconds` (15 s) plus the step's final line;
 * - `json`: one JSON object per line, for tools that drive the command: `{"event":"progress",...}`
 *   (at most one per step every `jsonEverySeconds` (1 s), plus the step's first and final updates),
 *   `{"event":"log",...}`, for a failure `{"event":"error",...}`, and when the process is stopped by
 *   a signal `{"event":"interrupted",...}`: every line on stderr is one event;
 * - `none`: log lines only; `--quiet`: neither progress nor log lines (errors still go to stderr).
 *
 * Results go to stdout in every mode.
 */
import cliProgress from 'cli-progress';
import { formatDuration, type ProgressSink, type ProgressUpdate } from '@dda/core';

/** The values of `--progress`. */
export const PROGRESS_MODES = ['auto', 'bar', 'log', 'json', 'none'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/** A terminal stream for live bars (stderr when it is a TTY). */
export interface Terminal {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(chunk: string): boolean;
}

/** Where the reporter writes: `err` takes one line (no newline), `terminal` is used for live bars only. */
export interface ReporterIo {
  err: (line: string) => void;
  terminal?: Terminal | undefined;
}

/** Progress and log lines of one command run; `close()` before printing anything else to stderr. */
export interface Reporter {
  /** The resolved mode (`auto` becomes `bar` or `log`; `--quiet` makes it `quiet`). */
  readonly mode: Exclude<ProgressMode, 'auto'> | 'quiet';
  readonly progress: ProgressSink;
  log(message: string): void;
  /** A failure: `dda: message` (continuation lines indented), or a JSON error event. */
  error(message: string): void;
  /** Stops live bars (flushing pending log lines); idempotent. */
  close(): void;
}

/** Options of {@link createReporter}. */
export interface ReporterOptions {
  readonly mode: ProgressMode;
  readonly quiet?: boolean;
  /** Milliseconds, for elapsed times and the pace of sparse lines (default `Date.now`). */
  readonly clock?: () => number;
  /** In `log` mode, the least seconds between two lines of one step (default 15). */
  readonly logEverySeconds?: number;
  /** In `json` mode, the least seconds between two progress events of one step, besides its first and final ones (default 1). */
  readonly jsonEverySeconds?: number;
}

/**
 * The `--progress` mode asked for on a command line, before yargs parses it (for the messages
 * printed before the reporter exists or outside it: a usage error, an interrupt).
 */
export function progressModeOf(argv: readonly string[]): 'json' | 'auto' {
  return argv.some((x, i) => x === '--progress=json' || (x === '--progress' && argv[i + 1] === 'json')) ? 'json' : 'auto';
}

/**
 * What the `dda` process prints on stderr when a signal stops it: a JSON `interrupted` event in
 * `json` mode (so that every line stays an event), else a line of text after a line break (to
 * leave a live bar's line).
 */
export function interruptMessage(signal: string, mode: 'json' | 'auto'): string {
  const message = `interrupted (${signal}); finished steps are kept, run the same command again to resume`;
  return mode === 'json' ? `${JSON.stringify({ event: 'interrupted', signal, message })}\n` : `\ndda: ${message}\n`;
}

/** One line: `[#########...........]  45% 12/27 ETA 1m20s  gradients of 240 train samples at epoch-1`. */
export function formatProgressLine(p: ProgressUpdate, width = 20): string {
  const frac = p.total > 0 ? p.done / p.total : 1;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(frac * 100)).padStart(3)}% ${p.done}/${p.total} ${etaText(p)}  ${p.label}`;
}

function etaText(p: ProgressUpdate): string {
  if (p.done >= p.total) return `done in ${formatDuration(p.elapsedSeconds)}`;
  return p.etaSeconds === null ? 'ETA ?' : `ETA ${formatDuration(p.etaSeconds)}`;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** The reporter of a `dda` run for `--progress <mode>` and `--quiet`. */
export function createReporter(io: ReporterIo, o: ReporterOptions): Reporter {
  const clock = o.clock ?? Date.now;
  const start = clock();
  const elapsed = (): number => (clock() - start) / 1000;
  const textLine = (message: string): string => `[${elapsed().toFixed(1).padStart(7)}s] ${message}`;
  const textError = (message: string): void => io.err(`dda: ${message.split('\n').join('\n  ')}`);
  if (o.quiet) return { mode: 'quiet', progress: () => {}, log: () => {}, error: textError, close: () => {} };
  const mode = o.mode === 'auto' ? (io.terminal?.isTTY ? 'bar' : 'log') : o.mode === 'bar' && !io.terminal?.isTTY ? 'log' : o.mode;
  switch (mode) {
    case 'json': {
      const emit = (event: Record<string, unknown>): void => io.err(JSON.stringify(event));
      const paced = paceBySteps(clock, (o.jsonEverySeconds ?? 1) * 1000);
      return {
        mode,
        progress: (p) => {
          if (paced(p)) emit({ event: 'progress', label: p.label, done: p.done, total: p.total, elapsedSeconds: round3(p.elapsedSeconds), etaSeconds: p.etaSeconds === null ? null : round3(p.etaSeconds) });
        },
        // A warning (a log line the run starts with `warning:`) is marked, so a tool can tell it from information.
        log: (message) => emit({ event: 'log', elapsedSeconds: round3(elapsed()), ...(message.startsWith('warning:') ? { level: 'warning' } : {}), message }),
        error: (message) => emit({ event: 'error', message }),
        close: () => {},
      };
    }
    case 'none':
      return { mode, progress: () => {}, log: (m) => io.err(textLine(m)), error: textError, close: () => {} };
    case 'log':
      return { mode, progress: sparseLines(io, clock, o.logEverySeconds ?? 15), log: (m) => io.err(textLine(m)), error: textError, close: () => {} };
    case 'bar':
      return liveBars(io.terminal as Terminal, io, textLine, textError);
  }
}

/**
 * Whether to show a step's update: its first, then at most one every `everyMs` (by `clock`), and its
 * final one (done = total), which forgets the step.
 */
function paceBySteps(clock: () => number, everyMs: number): (p: ProgressUpdate) => boolean {
  const last = new Map<string, number>();
  return (p) => {
    const now = clock();
    if (p.done >= p.total) {
      last.delete(p.label);
      return true;
    }
    const previous = last.get(p.label);
    if (previous !== undefined && now - previous < everyMs) return false;
    last.set(p.label, now);
    return true;
  };
}

/**
 * At most one line per step every `everySeconds` (counted from the step's first update, which is not
 * printed), plus the step's final line: a step shorter than `everySeconds` prints its final line only.
 */
function sparseLines(io: ReporterIo, clock: () => number, everySeconds: number): ProgressSink {
  const last = new Map<string, number>();
  return (p) => {
    if (p.total <= 1) return; // a one-unit step says nothing a log line does not
    const now = clock();
    const finished = p.done >= p.total;
    const previous = last.get(p.label);
    if (finished) {
      last.delete(p.label);
      io.err(formatProgressLine(p));
    } else if (previous === undefined) {
      last.set(p.label, now);
    } else if (now - previous >= everySeconds * 1000) {
      last.set(p.label, now);
      io.err(formatProgressLine(p));
    }
  };
}

/** Live bars on a terminal through cli-progress's MultiBar; log lines are printed above the bars. */
function liveBars(terminal: Terminal, io: ReporterIo, textLine: (m: string) => string, textError: (m: string) => void): Reporter {
  let multi: cliProgress.MultiBar | undefined;
  const bars = new Map<string, cliProgress.SingleBar>();
  const stop = (): void => {
    if (!multi) return;
    multi.update(); // flush log lines still buffered
    multi.stop();
    multi = undefined;
    bars.clear();
  };
  const progress: ProgressSink = (p) => {
    const finished = p.done >= p.total;
    let bar = bars.get(p.label);
    if (!bar) {
      if (finished && p.total <= 1) return;
      multi ??= new cliProgress.MultiBar({
        stream: terminal as unknown as NodeJS.WritableStream,
        format: '[{bar}] {percentage}% {value}/{total} {etaText}  {label}',
        barsize: 20, barCompleteChar: '#', barIncompleteChar: '.', clearOnComplete: true, hideCursor: false, autopadding: true, gracefulExit: false, linewrap: false,
      });
      bar = multi.create(p.total, p.done, { label: p.label, etaText: etaText(p) });
      bars.set(p.label, bar);
    }
    bar.update(p.done, { etaText: etaText(p) });
    if (finished) {
      bars.delete(p.label);
      multi?.remove(bar);
      if (p.total > 1) multi?.log(`${formatProgressLine(p)}\n`);
      if (bars.size === 0) stop();
    }
  };
  return {
    mode: 'bar',
    progress,
    log: (m) => (multi ? multi.log(`${textLine(m)}\n`) : io.err(textLine(m))),
    error: (m) => {
      stop();
      textError(m);
    },
    close: stop,
  };
}
