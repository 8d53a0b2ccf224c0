/**
 * What `dda demo` prints around its table: a header that says whether the results were computed now
 * or reused from an earlier run (from which folder, and how long they took to compute), and the
 * next step, `dda attribute` on the experiment the demo exported.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DdaRunResult } from '@dda/harness';
import { quote } from './slurm.js';

/**
 * Seconds the demo's results took to compute: this run's total when it computed anything, else
 * (every step reused) the `computedSeconds` of the earlier summary.json `prior` when it was made
 * with the same options; undefined when that is not known.
 */
export function computedSeconds(r: Pick<DdaRunResult, 'computed' | 'seconds' | 'options'>, prior: unknown): number | undefined {
  if (r.computed.length > 0) return r.seconds.total;
  if (typeof prior !== 'object' || prior === null) return undefined;
  const p = prior as { options?: unknown; computedSeconds?: unknown };
  const same = JSON.stringify(p.options) === JSON.stringify(r.options);
  return same && typeof p.computedSeconds === 'number' && Number.isFinite(p.computedSeconds) ? p.computedSeconds : undefined;
}

/** The parsed summary.json at `path`, or undefined when there is none or it does not parse. */
export function readSummary(path: string): unknown {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The demo's first line: `DDA demo (seed 0, onnxruntime-cpu, 29 test errors, 23 s)` for a run that
 * computed, or, when every step came from an earlier run, `... 29 test errors): results reused from
 * dda-out/artifacts (computed in 23 s by an earlier run)`.
 */
export function demoHeader(r: Pick<DdaRunResult, 'computed' | 'seconds' | 'options' | 'backend' | 'errors'>, computed: number | undefined): string {
  const what = `DDA demo (seed ${r.options.seed}, ${r.backend}, ${r.errors.length} test errors`;
  if (r.computed.length > 0) return `${what}, ${(r.seconds.total ?? 0).toFixed(0)} s)`;
  const earlier = computed === undefined ? 'computed by an earlier run' : `computed in ${computed.toFixed(0)} s by an earlier run`;
  return `${what}): results reused from ${join(r.options.outDir, 'artifacts')} (${earlier})`;
}

/**
 * The demo's last lines: the `dda attribute` command that attributes the experiment the demo
 * exported to `<out>/experiment/`, as a user attributes their own run (with the demo's scorer and
 * measurement where they are not the defaults), into `<out>/attribution`. Written as
 * `npm run -s dda -- attribute ...` when the demo itself runs from an npm script (`npm run demo` in
 * the repository, where no `dda` is on the PATH), else as `dda attribute ...`.
 */
export function demoNextStep(o: Pick<DdaRunResult['options'], 'outDir' | 'scorer' | 'measurement'>, viaNpm: boolean = process.env.npm_lifecycle_event !== undefined): string[] {
  const e = (f: string): string => quote(join(o.outDir, 'experiment', f));
  const method = [...(o.scorer !== 'grad-dot' ? ['--scorer', quote(o.scorer)] : []), ...(o.measurement && o.measurement !== 'loss' ? ['--measurement', quote(o.measurement)] : [])];
  const args = ['--base', e('base'), '--checkpoints', e('run'), '--train', e('train.jsonl'), '--queries', e('queries.jsonl'), '--labels', e('labels.json'), ...method, '--out', quote(join(o.outDir, 'attribution'))];
  return ['next: attribute the exported experiment as you would your own fine-tuning run (top training samples per query, report.html):', `  ${viaNpm ? 'npm run -s dda --' : 'dda'} attribute ${args.join(' ')}`];
}
