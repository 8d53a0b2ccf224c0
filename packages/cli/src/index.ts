/** @dda/cli: the `dda` command. */
// the `dda` command
export {
  type CliIo, runCli,
} from './cli.js';
// how the `dda` command shows progress and log lines on stderr (`--progress`, `--quiet`)
export {
  PROGRESS_MODES, type ProgressMode, type Terminal, type ReporterIo, type Reporter,
  type ReporterOptions, progressModeOf, interruptMessage, formatProgressLine, createReporter,
} from './progress.js';
// what `dda demo` prints around its table
export {
  computedSeconds, demoHeader, demoNextStep,
} from './demo-output.js';
