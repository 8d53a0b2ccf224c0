#!/usr/bin/env node
import { runCli } from './cli.js';
import { interruptMessage, progressModeOf } from './progress.js';

// Artifacts are written atomically (temp file, then rename; manifest last), so stopping at any
// point loses at most the step in progress; the same command resumes from what finished.
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    process.stderr.write(interruptMessage(signal, progressModeOf(process.argv.slice(2))));
    process.exit(code);
  });
}
process.exitCode = await runCli(process.argv.slice(2));
