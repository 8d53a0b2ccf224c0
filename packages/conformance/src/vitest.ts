/**
 * The conformance checks as vitest suites, one line per method in a plugin's test file:
 *
 * ```ts
 * import { scorerConformance } from '@dda/conformance/vitest';
 * import '../src/index.js'; // registers the scorer
 * scorerConformance('my-scorer');
 * ```
 *
 * Each check is one test; a check the plugin opted out of is a skipped test whose title gives the reason.
 */
import { DdaError, datasets, debiasers, denoisers, metrics, scorers, type DatasetPlugin, type Debiaser, type Denoiser, type Metric, type PluginOptions, type Registry, type Scorer } from '@dda/core';
import { beforeAll, describe, it } from 'vitest';
import { subjectName, type CheckOptions, type ConformanceReport, type Subject } from './report.js';
import { DATASET_CHECKS, checkDataset, type DatasetCheckOptions } from './dataset.js';
import { ENGINE_CHECKS, checkEngine, checkEngineReferences, type EngineCheckOptions, type EngineReference } from './engine.js';
import { METRIC_CHECKS, checkMetric, type MetricCheckOptions } from './metric.js';
import { engines, type DecoderEngine, type EngineStartOptions } from '@dda/model';
import { SCORER_CHECKS, checkScorer, type ScorerCheck } from './scorer.js';
import { DEBIASER_CHECKS, DENOISER_CHECKS, checkDebiaser, checkDenoiser, type DebiaserCheck, type DenoiserCheck } from './transforms.js';

function suite<C extends string>(
  kind: ConformanceReport['kind'],
  registry: Pick<Registry<unknown, PluginOptions>, 'has' | 'entry'>,
  checks: readonly C[],
  run: () => Promise<ConformanceReport>,
  subject: string | { readonly id: string; readonly plugin?: string | undefined },
  options: CheckOptions<C>,
): void {
  const id = typeof subject === 'string' ? subject : subject.id;
  const plugin = typeof subject === 'string' ? (registry.has(id) ? registry.entry(id).plugin : undefined) : subject.plugin;
  describe(`conformance: ${subjectName({ kind, id, plugin })}`, () => {
    let report: ConformanceReport | undefined;
    let error: unknown;
    beforeAll(async () => {
      try {
        report = await run();
      } catch (e) {
        error = e;
      }
    }, 120_000);
    for (const check of checks) {
      const reason = options.optOut?.[check];
      if (reason) {
        it.skip(`${check} (opted out: ${reason})`, () => {});
        continue;
      }
      it(check, () => {
        if (error !== undefined || !report) throw error ?? new DdaError('the conformance suite produced no report');
        const f = report.findings.find((x) => x.check === check);
        if (f?.status === 'fail') throw new DdaError(`${subjectName(report)} fails the conformance check '${check}': ${f.message}`);
      });
    }
  });
}

/**
 * Defines a vitest suite with one test per scorer check (see `SCORER_CHECKS`) for a registered scorer
 * id (import the plugin first) or `{ id, plugin, create }`.
 */
export function scorerConformance(subject: string | Subject<Scorer>, options: CheckOptions<ScorerCheck> = {}): void {
  suite('scorer', scorers, SCORER_CHECKS, () => checkScorer(subject, options), subject, options);
}

/** The same for a debiaser (see `DEBIASER_CHECKS`). */
export function debiaserConformance(subject: string | Subject<Debiaser>, options: CheckOptions<DebiaserCheck> = {}): void {
  suite('debiaser', debiasers, DEBIASER_CHECKS, () => checkDebiaser(subject, options), subject, options);
}

/** The same for a denoiser (see `DENOISER_CHECKS`). */
export function denoiserConformance(subject: string | Subject<Denoiser>, options: CheckOptions<DenoiserCheck> = {}): void {
  suite('denoiser', denoisers, DENOISER_CHECKS, () => checkDenoiser(subject, options), subject, options);
}

/**
 * The same for a data set (see `DATASET_CHECKS`): a registered data set id (import its plugin
 * first) or a `DatasetPlugin`; `options.context` sizes the build, `options.tokens` gives a tokenizer.
 */
export function datasetConformance(subject: string | DatasetPlugin, options: DatasetCheckOptions = {}): void {
  suite('dataset', datasets, DATASET_CHECKS, () => checkDataset(subject, options), subject, options);
}

/**
 * The same for an engine (see `ENGINE_CHECKS`): a registered engine id (import its plugin first) or
 * a started `DecoderEngine`; `options.presets` chooses the tiny families, `options.references` adds
 * independent references (e.g. a PyTorch fixture).
 */
export function engineConformance(subject: string | DecoderEngine, options: EngineCheckOptions = {}): void {
  suite('engine', engines as unknown as Pick<Registry<unknown, PluginOptions>, 'has' | 'entry'>, ENGINE_CHECKS, () => checkEngine(subject, options), subject, options);
}

/**
 * The `reference` engine check alone (`checkEngineReferences`), one test per reference, for
 * references too large to run beside every check (e.g. `realWidthReferences()`): a registered engine
 * id (import its plugin first) or a started `DecoderEngine`; `options.start` as the engine's start
 * options, `options.timeoutMs` each test's time limit (default 120 s).
 */
export function engineReferenceConformance(subject: string | DecoderEngine, references: readonly EngineReference[], options: { readonly start?: EngineStartOptions; readonly timeoutMs?: number } = {}): void {
  const id = typeof subject === 'string' ? subject : subject.id;
  describe(`conformance: ${subjectName({ kind: 'engine', id, plugin: typeof subject === 'string' && engines.has(id) ? engines.entry(id).plugin : undefined })}, reference check`, () => {
    for (const ref of references) {
      it(ref.name, async () => {
        const report = await checkEngineReferences(subject, [ref], options.start);
        const f = report.findings.find((x) => x.check === 'reference');
        if (f?.status !== 'pass') throw new DdaError(`${subjectName(report)} fails the conformance check 'reference': ${f?.message ?? 'no finding'}`);
      }, options.timeoutMs ?? 120_000);
    }
  });
}

/**
 * The same for a metric (see `METRIC_CHECKS`): a registered metric id (import its plugin first) or
 * `{ id, plugin, create }`; `options.options` are the factory's (e.g. `{ k: 50 }`).
 */
export function metricConformance(subject: string | Subject<Metric>, options: MetricCheckOptions = {}): void {
  suite('metric', metrics, METRIC_CHECKS, () => checkMetric(subject, options), subject, options);
}
