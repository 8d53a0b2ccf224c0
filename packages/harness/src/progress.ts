/**
 * The progress contract moved to @dda/core (`ProgressUpdate`, `ProgressSink`, `trackProgress`,
 * `formatDuration`); re-exported here so that existing imports from @dda/harness keep working.
 * Drawing progress (bars, log lines, JSON events) is the CLI's job (packages/cli/src/progress.ts).
 */
export { type ProgressUpdate, type ProgressSink, trackProgress, formatDuration } from '@dda/core';
