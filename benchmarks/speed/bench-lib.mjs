// Helpers shared by the speed benchmarks: command-line options, running one engine in a child
// process (so that its peak RSS is its own) with the load average before and after, `uptime`.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';

/** The value after `--name` on the command line, or `dflt`. */
export const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

/** The median of a non-empty list of numbers. */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The machine's `uptime` line (time and load averages). */
export const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();

/**
 * Runs `cmd args` and returns the JSON of its last stdout line with the 1-minute load average
 * before and after, or `{ engine: label, error }` with the last lines of its stderr. Each result
 * is also written to stderr as progress.
 */
export function run(cmd, args, label) {
  const load = loadavg()[0];
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const out = r.status === 0
    ? { ...JSON.parse(r.stdout.trim().split('\n').pop()), load_before: load, load_after: loadavg()[0] }
    : { engine: label, error: (r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' | '), load_before: load };
  process.stderr.write(`${JSON.stringify(out)}\n`);
  return out;
}
