/** The progress contract lives in @dda/core; re-exported here for existing imports. */
export { type ProgressUpdate, type ProgressSink, trackProgress, formatDuration, formatProgressBar } from '@dda/core';
