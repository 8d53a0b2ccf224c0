import { DdaError, type Debiaser, type Denoiser, type PluginOptions, type Registry, type Scorer } from '@dda/core';

/**
 * Outcome of one check: `pass`, `fail`, `opted-out` (the plugin declared that the check does not
 * apply to its method, with a reason; the check is still run and its outcome given in the message),
 * or `not-applicable` (the check has nothing to test for this method, e.g. a missing-need check for a
 * method that needs only what every input has).
 */
export type CheckStatus = 'pass' | 'fail' | 'opted-out' | 'not-applicable';

/** One check's result. */
export interface Finding {
  readonly check: string;
  readonly status: CheckStatus;
  /** What was found (for `fail`, what is wrong and what the contract asks; for `opted-out`, the reason). */
  readonly message: string;
}

/** Every check's result for one method. */
export interface ConformanceReport {
  readonly kind: 'scorer' | 'debiaser' | 'denoiser' | 'dataset' | 'engine' | 'metric';
  readonly id: string;
  /** The plugin the method came from (its registry entry's `plugin`), when known. */
  readonly plugin: string | undefined;
  readonly findings: readonly Finding[];
}

/**
 * The method under test: its id, its plugin (for messages) and a factory. The suite passes the
 * factory `{ ...options, seed }` (scorers) or `{ ...options, beta }` (debiasers).
 */
export interface Subject<T> {
  readonly id: string;
  readonly plugin?: string | undefined;
  readonly create: (options: PluginOptions) => T | Promise<T>;
}

/** Options of the checks. `C` is the union of the check names. */
export interface CheckOptions<C extends string> {
  /**
   * Checks that do not apply to the method, each with the reason (shown in the report). A documented
   * opt-out, not a skip: the check still runs and the report says what it found.
   */
  readonly optOut?: Partial<Record<C, string>>;
  /** Options passed to the factory besides the suite's own (`seed`, `beta`). */
  readonly options?: PluginOptions;
  /**
   * Relative tolerance of the comparisons that allow rounding (reordered inputs, streamed blocks):
   * |a − b| ≤ tolerance × max |score| (default 1e-6).
   */
  readonly tolerance?: number;
}

/** The subject for a registered id: its entry's factory and plugin. */
export function subjectFromRegistry<T>(registry: Registry<T, PluginOptions>, id: string): Subject<T> {
  const entry = registry.entry(id);
  return { id, plugin: entry.plugin, create: (o) => entry.create(o) };
}

/** Normalises the first argument of the check functions. */
export function toSubject<T extends Scorer | Debiaser | Denoiser>(subject: string | Subject<T>, registry: Registry<T, PluginOptions>): Subject<T> {
  return typeof subject === 'string' ? subjectFromRegistry(registry, subject) : subject;
}

/** Checks that every opt-out names a known check and gives a reason. */
export function validateOptOuts(kind: string, id: string, checks: readonly string[], optOut: Partial<Record<string, string>> = {}): void {
  for (const [check, reason] of Object.entries(optOut)) {
    if (!checks.includes(check)) throw new DdaError(`conformance of ${kind} '${id}': opt-out of unknown check '${check}'`, `the ${kind} checks are: ${checks.join(', ')}`);
    if (typeof reason !== 'string' || reason.trim().length < 10) {
      throw new DdaError(`conformance of ${kind} '${id}': the opt-out of '${check}' needs a reason (a sentence saying why the check does not apply)`);
    }
  }
}

/** Who is being checked, for messages: `plugin 'x', scorer 'y'`. */
export function subjectName(report: Pick<ConformanceReport, 'kind' | 'id' | 'plugin'>): string {
  return `${report.plugin ? `plugin '${report.plugin}', ` : ''}${report.kind} '${report.id}'`;
}

/** The report as text: one line per check with its status and message. */
export function formatReport(report: ConformanceReport): string {
  const lines = report.findings.map((f) => `  ${f.status.padEnd(14)} ${f.check}: ${f.message}`);
  return `conformance of ${subjectName(report)}:\n${lines.join('\n')}`;
}

/** Throws one DdaError naming the plugin, the method and every failed check; returns quietly when none failed. */
export function assertConformance(report: ConformanceReport): void {
  const failed = report.findings.filter((f) => f.status === 'fail');
  if (failed.length === 0) return;
  throw new DdaError(
    `${subjectName(report)} fails the conformance check${failed.length > 1 ? 's' : ''} ${failed.map((f) => `'${f.check}'`).join(', ')}:\n${failed.map((f) => `  - ${f.check}: ${f.message}`).join('\n')}`,
    'fix the method, or, if a check cannot apply to it, declare an opt-out with the reason',
  );
}

/** Runs the checks in order, each isolated (a throw is a failure of that check), applying opt-outs. */
export async function runChecks<C extends string>(
  checks: readonly C[],
  run: (check: C) => Promise<Omit<Finding, 'check'>>,
  optOut: Partial<Record<C, string>> = {},
): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const check of checks) {
    let f: Omit<Finding, 'check'>;
    try {
      f = await run(check);
    } catch (e) {
      f = { status: 'fail', message: errorText(e) };
    }
    const reason = optOut[check];
    out.push(reason ? { check, status: 'opted-out', message: `${reason} (run anyway: ${f.status}${f.status === 'pass' ? '' : `: ${f.message}`})` } : { check, ...f });
  }
  return out;
}

/** An error's first line, with its type when it is not a DdaError. */
export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return `threw ${String(e)}`;
  const first = e.message.split('\n')[0] ?? '';
  return e instanceof DdaError ? `threw: ${first}` : `threw ${e.name}: ${first}`;
}

export const pass = (message: string): Omit<Finding, 'check'> => ({ status: 'pass', message });
export const fail = (message: string): Omit<Finding, 'check'> => ({ status: 'fail', message });
export const notApplicable = (message: string): Omit<Finding, 'check'> => ({ status: 'not-applicable', message });
