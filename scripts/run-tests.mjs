#!/usr/bin/env node
// Runs the vitest suite and ends with one plain line "Tests: N passed, N failed, N skipped",
// keeping vitest's exit code. Extra arguments are passed to vitest.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const report = '.vitest-report.json';
rmSync(report, { force: true });
const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)], { stdio: 'inherit' });
let line = 'Tests: 0 passed, 0 failed';
try {
  const j = JSON.parse(readFileSync(report, 'utf8'));
  const skipped = (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0);
  line = `Tests: ${j.numPassedTests} passed, ${j.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`;
} catch {
  line = 'Tests: 0 passed, 1 failed';
}
console.log(line);
process.exit(r.status ?? 1);
