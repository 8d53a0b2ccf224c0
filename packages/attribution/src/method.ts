/**
 * The attribution method of a run: a scorer, optionally debiased against θ0 and denoised over the
 * checkpoints (DDA, Wu et al. 2024, arXiv 2410.01285, eq. for IS_DDA in METHOD.md):
 *
 *     IS_DDA = debias( denoise(IS_θ1..IS_θN), IS_θ0 )      e.g. (1/N) Σ_i IS_θi − β·IS_θ0
 *
 * and the variants a report compares it with: plain (the scorer's own answer for the fine-tuned
 * model), debias only, denoise only, both.
 */
import { DdaError, type CheckpointInfo, type Measurement, type ScoreMatrix, type Scorer, debiasers, denoisers, scoreForFineTuned, scoreUnits } from '@dda/core';
import { learningRateEstimateWarning } from './checkpoints.js';
import { type CheckpointScores, isModelFree } from './run.js';
import { ensurePlugins } from './plugins.js';
import type { AttributionTask } from './task.js';

/** A DDA method over a scorer. `debias`/`denoise` null = that strategy off. */
export interface MethodSpec {
  readonly scorer: string;
  /** Debiaser id (`raw` = the paper's IS_θ' − β·IS_θ0, `fitted-beta`, `zscore`, ...), or null. */
  readonly debias: string | null;
  /** Denoiser id (`mean` = the paper's average over the epoch checkpoints, `zscore-mean`, ...), or null. */
  readonly denoise: string | null;
  /** β of the debias term (default 1). */
  readonly beta: number;
  /**
   * β was asked for explicitly (`--beta`), not left at its default: then a debiaser that declares
   * it takes no `beta` (e.g. `fitted-beta`), or no debiaser, is refused rather than ignoring it.
   */
  readonly betaGiven?: boolean;
  /**
   * The denoiser was asked for explicitly (`--denoise`), not left at its default: then a scorer that
   * combines its own checkpoints (TracIn-CP) refuses any other denoiser ({@link methodFor}); a
   * default one gives way to the scorer's own.
   */
  readonly denoiseGiven?: boolean;
}

/**
 * The method as it runs with `scorer`. A scorer that combines its checkpoint terms itself
 * (`Scorer.combine`, TracIn-CP's Σ η_i·term_i / Σ η_i with denoiser `lr-weighted`, Pruthi et al. 2020,
 * eq. 3) keeps that combination: another denoiser would replace it, and TracIn-CP's terms
 * combined by, e.g., `zscore-mean` are grad-dot's scores under TracIn-CP's name. A default denoiser
 * gives way (said in the log); one asked for explicitly is refused.
 *
 * @throws DdaError when `m.denoiseGiven` and `m.denoise` is neither off nor the scorer's own denoiser.
 */
export function methodFor(m: MethodSpec, scorer: Scorer, log: (line: string) => void = () => {}): MethodSpec {
  const own = scorer.combine?.denoiser;
  if (own === undefined || m.denoise === null || m.denoise === own) return m;
  if (m.denoiseGiven) {
    throw new DdaError(
      `--scorer ${scorer.id} combines its checkpoint terms with denoiser '${own}' (Σ η_i·term_i / Σ η_i); --denoise ${m.denoise} would replace that combination, and the scores would be another method's under the name ${scorer.id} (its terms combined by '${m.denoise}' are grad-dot's)`,
      `drop --denoise (or pass --denoise ${own}), or use --scorer grad-dot --denoise ${m.denoise}`,
    );
  }
  log(`--scorer ${scorer.id}: its checkpoint terms are combined by its own denoiser '${own}' (Σ η_i·term_i / Σ η_i), not by the default --denoise ${m.denoise}`);
  return { ...m, denoise: own };
}

/**
 * The recommended DDA (issue 14): the least-squares β per test output (`fitted-beta`) over z-scored
 * checkpoint averaging (`zscore-mean`), chosen on the validation seeds of the six fitting-error
 * conditions (benchmarks/results/conditions.md). The default of `dda attribute`; the paper's formula
 * is `raw` over `mean`.
 */
export const RECOMMENDED_DDA = { debias: 'fitted-beta', denoise: 'zscore-mean', beta: 1 } as const;

/** A named score matrix: one variant of the attribution. */
export interface Variant {
  /** `plain`, `debias`, `denoise`, `dda`, or a name given by the caller. */
  readonly variant: string;
  /** What the scores are: {@link describeScores} of `matrix` (the one source of every variant's description). */
  readonly description: string;
  readonly matrix: ScoreMatrix;
}

/** A variant named `variant` of `matrix`, described by {@link describeScores} (with the checkpoints' `infos` where known). */
export function variantOf(variant: string, matrix: ScoreMatrix, infos?: readonly CheckpointInfo[]): Variant {
  return { variant, description: describeScores(matrix, infos), matrix };
}

/** One transform label (`denoise:<id>`, `debias:<id>(<args>)`) as words. */
function describeTransform(t: string, epochCheckpoints: boolean): string {
  const m = /^(denoise|debias):([^()]+)(?:\((.*)\))?$/.exec(t);
  if (!m) return t;
  const [, kind, id, args] = m as unknown as [string, string, string, string | undefined];
  const beta = args?.replace(/^beta=/, 'β = ');
  return kind === 'denoise' ? `denoiser '${id}' over the ${epochCheckpoints ? 'epoch ' : ''}checkpoints` : `debiaser '${id}' against the base model θ0${beta ? ` (${beta})` : ''}`;
}

/**
 * What a score matrix is, in one line, read from its provenance: the scorer, each transform in
 * order with its parameters (a fitted β as fitted, with its range over the test columns; a set β
 * with its value), the checkpoints it was computed from (none for a model-free scorer, whose
 * scores do not depend on the model), and its units ({@link scoreUnits}). The one source of the
 * description of every variant in `metrics.csv`, `summary.json`, `scores.json`, the page, the
 * demo's `results.csv` and the benchmarks.
 *
 * A denoiser is said to run `over the epoch checkpoints` unless `infos` gives one of the matrix's
 * checkpoints an epoch that is not an integer (step checkpoints: `over the checkpoints`).
 *
 * Example: `grad-dot; denoiser 'zscore-mean' over the epoch checkpoints, then debiaser
 * 'fitted-beta' against the base model θ0 (β fitted per test column: 0.1210 to 0.5310); from
 * checkpoints epoch-1, epoch-2, base; units: dimensionless (mean of standard deviations)`.
 */
export function describeScores(m: ScoreMatrix, infos?: readonly CheckpointInfo[]): string {
  const p = m.provenance;
  const epochs = new Map((infos ?? []).map((c) => [c.id, c.epoch]));
  const epochCheckpoints = p.checkpoints.every((id) => Number.isInteger(epochs.get(id) ?? 1));
  const steps = p.transforms.map((t) => describeTransform(t, epochCheckpoints));
  const from = p.checkpoints.length > 0 ? `from checkpoint${p.checkpoints.length > 1 ? 's' : ''} ${p.checkpoints.join(', ')}` : 'model-free: no checkpoint';
  return `${p.method}${steps.length ? `; ${steps.join(', then ')}` : ''}; ${from}; units: ${scoreUnits(m)}`;
}

/**
 * The variants with a note on each whose scores are those of an earlier one (the same scorer,
 * checkpoints and transforms, e.g. the demo's `dda` when its debiaser and denoiser are the
 * recommended ones): its description ends with `; the same scores as '<earlier variant>'`, so a
 * repeated row is never silent. Order and names are kept.
 */
export function noteSameScores(variants: readonly Variant[]): Variant[] {
  const key = (v: Variant): string => JSON.stringify([v.matrix.provenance.method, v.matrix.provenance.checkpoints, v.matrix.provenance.transforms]);
  const first = new Map<string, string>();
  return variants.map((v) => {
    const earlier = first.get(key(v));
    if (earlier === undefined) {
      first.set(key(v), v.variant);
      return v;
    }
    return { ...v, description: `${v.description}; the same scores as '${earlier}'` };
  });
}

/**
 * The β of a matrix's debias step as its provenance records it: the number set (`debias:raw(beta=1)`),
 * the fitted range (`β fitted per test column: <min> to <max>`), or null when no debiaser was applied
 * or it records no β.
 */
export function debiasBeta(m: ScoreMatrix): number | string | null {
  const t = m.provenance.transforms.find((x) => x.startsWith('debias:'));
  const args = t ? /\((.*)\)$/.exec(t)?.[1] : undefined;
  if (args === undefined) return null;
  const set = /^beta=(.+)$/.exec(args);
  return set ? Number(set[1]) : args;
}

/**
 * Checks the method's plugin ids and β before any work.
 * @throws DdaError for unknown ids, a non-finite β, or a β asked for ({@link MethodSpec.betaGiven})
 *   that the method would ignore (no debiaser, or one that declares it takes no `beta`).
 */
export async function checkMethod(m: MethodSpec): Promise<void> {
  if (!Number.isFinite(m.beta)) throw new DdaError(`β must be a finite number, got ${m.beta}`);
  await ensurePlugins();
  if (m.betaGiven) {
    const fixedBeta = debiasers.list().filter((e) => e.options?.includes('beta')).map((e) => e.id);
    const instead = `drop --beta, or choose a debiaser with a fixed β: ${fixedBeta.join(', ')} (raw: the paper's)`;
    if (m.debias === null) throw new DdaError(`--beta ${m.beta} has no effect without a debiaser (--debias none)`, instead);
    const options = debiasers.entry(m.debias).options;
    if (options !== undefined && !options.includes('beta')) {
      throw new DdaError(`--beta ${m.beta} has no effect with --debias ${m.debias}, which takes no β option (${debiasers.entry(m.debias).description})`, instead);
    }
  }
  if (m.debias !== null) await debiasers.create(m.debias, { beta: m.beta });
  if (m.denoise !== null) await denoisers.create(m.denoise, {});
}

/** One thing the chosen method needs from the task, and the option that asks for it (for messages). */
export interface MethodRequirement {
  readonly need: 'learning-rates' | 'corrections' | 'lora';
  /** The option the user chose, e.g. `--denoise lr-weighted`. */
  readonly by: string;
  /** What else the user could choose, e.g. `or choose another --denoise (mean: the paper's)`. */
  readonly otherwise: string;
}

/**
 * What the method needs from the task, from what its plugins declare: the denoisers' `needs`
 * (the chosen `--denoise`, and the denoiser a scorer combines its checkpoints with, e.g.
 * tracin-cp's `lr-weighted`), the scorer's `needs` (corrections; `model`: optimizer steps, offered
 * on LoRA checkpoints) and, for a gradient scorer, the measurement's (corrections).
 */
export async function methodRequirements(m: MethodSpec, scorer: Scorer, measurement: Measurement): Promise<MethodRequirement[]> {
  await ensurePlugins();
  const out: MethodRequirement[] = [];
  const denoiserNeeds = async (id: string, by: string, otherwise: string): Promise<void> => {
    for (const need of (await denoisers.create(id, {})).needs ?? []) out.push({ need, by, otherwise });
  };
  if (!isModelFree(scorer)) {
    if (scorer.combine) await denoiserNeeds(scorer.combine.denoiser, `--scorer ${scorer.id} (it combines its scores over the checkpoints with denoiser '${scorer.combine.denoiser}')`, 'or choose another --scorer (e.g. grad-dot)');
    if (m.denoise !== null) await denoiserNeeds(m.denoise, `--denoise ${m.denoise}`, "or choose another --denoise (e.g. zscore-mean, or mean: the paper's)");
  }
  if (scorer.needs.includes('corrections')) out.push({ need: 'corrections', by: `--scorer ${scorer.id}`, otherwise: 'or choose a scorer that needs no corrections (e.g. grad-dot)' });
  if (scorer.needs.includes('model')) out.push({ need: 'lora', by: `--scorer ${scorer.id} (it takes optimizer steps on the LoRA adapter)`, otherwise: 'or choose a gradient scorer (e.g. grad-dot)' });
  if (scorer.needs.includes('gradients') && measurement.needs.includes('corrections')) out.push({ need: 'corrections', by: `--measurement ${measurement.id}`, otherwise: 'or use --measurement loss' });
  return out;
}

/**
 * Checks, before any model work, that the task gives what the method needs
 * ({@link methodRequirements}), and says in the log what a choice does not do on this task (a
 * denoiser over one checkpoint).
 *
 * @throws DdaError naming the option that needs it and what to pass: a learning rate unknown or
 *   not usable at some checkpoint (`--learning-rates`), queries without a corrected output,
 *   full-model checkpoints for a scorer that steps a LoRA adapter.
 */
export async function checkRequirements(m: MethodSpec, task: AttributionTask, scorer: Scorer, measurement: Measurement, log: (line: string) => void = () => {}): Promise<void> {
  const cps = task.checkpoints;
  let ratesWarned = false;
  for (const r of await methodRequirements(m, scorer, measurement)) {
    if (r.need === 'learning-rates') {
      const unknown = cps.filter((c) => Number.isNaN(c.info.learningRate));
      const bad = cps.filter((c) => !Number.isNaN(c.info.learningRate) && !(Number.isFinite(c.info.learningRate) && c.info.learningRate >= 0));
      const pass = `pass --learning-rates with the learning rate in effect at each checkpoint, ${cps.length} value${cps.length > 1 ? 's' : ''} in order (${cps.map((c) => c.id).join(', ')})`;
      if (unknown.length > 0) {
        throw new DdaError(
          `${r.by} needs the learning rate at every checkpoint, and it is unknown at ${unknown.map((c) => `'${c.id}'`).join(', ')} (no trainer_state.json whose log_history has a learning_rate at its step)`,
          `${pass}, or give the checkpoints with their run's trainer_state.json, ${r.otherwise}`,
        );
      }
      if (bad.length > 0) throw new DdaError(`${r.by} needs learning rates that are finite and ≥ 0; ${bad.map((c) => `'${c.id}' has ${c.info.learningRate}`).join(', ')}`, `${pass}, ${r.otherwise}`);
      if (cps.every((c) => c.info.learningRate === 0)) throw new DdaError(`${r.by} weights the checkpoints by their learning rate, and every one is 0`, `${pass}, ${r.otherwise}`);
      const estimated = ratesWarned ? null : learningRateEstimateWarning(cps, r.by);
      if (estimated !== null) log(estimated);
      ratesWarned = true; // once, for the first option that weights by the rates (tracin-cp's lr-weighted is also its --denoise)
    } else if (r.need === 'corrections') {
      const missing = task.queries.filter((q) => q.correction === null);
      if (missing.length > 0) {
        throw new DdaError(
          `${r.by} needs the corrected output of every query; ${missing.length} of ${task.queries.length} have none (first: ${missing[0]?.record.where}, query '${missing[0]?.record.id}')`,
          `add a "corrected" field to every query, ${r.otherwise}`,
        );
      }
    } else if (cps.some((c) => c.kind !== 'lora')) {
      throw new DdaError(`${r.by} needs LoRA adapter checkpoints; these are full-model checkpoints`, `give the run's PEFT adapters, ${r.otherwise}`);
    }
  }
  if (isModelFree(scorer) && (m.debias !== null || m.denoise !== null)) {
    log(`--scorer ${scorer.id} is model-free: its scores do not depend on the checkpoints or θ0, so ${[m.debias !== null ? `--debias ${m.debias}` : '', m.denoise !== null ? `--denoise ${m.denoise}` : ''].filter(Boolean).join(' and ')} do not apply; the method is its plain scores`);
  }
  // Epochs within half a step of an epoch's end are already integers (loadCheckpoints, epochEnd).
  const offEpoch = cps.filter((c) => !Number.isInteger(c.info.epoch));
  if (m.denoise !== null && cps.length > 1 && offEpoch.length > 0 && !isModelFree(scorer)) {
    log(`--denoise ${m.denoise}: ${offEpoch.length} of ${cps.length} checkpoints are not at an epoch's end (${offEpoch.map((c) => `${c.id}: epoch ${c.info.epoch}`).join(', ')}, from trainer_state.json); the paper averages one checkpoint per epoch, so this average is over the checkpoints given, not over epochs`);
  }
  if (m.denoise !== null && cps.length === 1 && !isModelFree(scorer)) {
    log(`--denoise ${m.denoise}: with 1 checkpoint there is nothing to combine over (denoising needs the run's checkpoints: pass its trainer output folder, or every checkpoint folder in order)`);
  }
}

/**
 * The `plain` variant: the scorer's answer for the fine-tuned model (its final checkpoint, or its
 * own combination over the checkpoints, e.g. tracin-cp). A model-free scorer's (bm25, random)
 * matrix lists no checkpoint: its scores do not depend on the model.
 */
export async function plainVariant(s: CheckpointScores, infos: readonly CheckpointInfo[]): Promise<Variant> {
  await ensurePlugins();
  const matrix = await scoreForFineTuned(s.scorer, s.epochs, infos);
  return variantOf('plain', isModelFree(s.scorer) ? { ...matrix, provenance: { ...matrix.provenance, checkpoints: [] } } : matrix, infos);
}

/**
 * DDA = debias(denoise(the last `lastN` checkpoints' scores), base), either strategy optional.
 *
 * @param base - The θ0 term (the scorer at θ0, or the cross reading's matrix).
 */
export async function ddaMatrix(
  s: CheckpointScores,
  infos: readonly CheckpointInfo[],
  o: { readonly debias: string | null; readonly denoise: string | null; readonly beta: number; readonly lastN?: number; readonly base?: ScoreMatrix },
): Promise<ScoreMatrix> {
  await ensurePlugins();
  const n = o.lastN ?? s.epochs.length;
  const from = s.epochs.length - n;
  const combined = o.denoise === null
    ? (await plainVariant({ ...s, epochs: s.epochs.slice(from) }, infos.slice(from))).matrix
    : (await denoisers.create(o.denoise, {})).denoise(s.epochs.slice(from), infos.slice(from));
  if (o.debias === null) return combined;
  return (await debiasers.create(o.debias, { beta: o.beta })).debias(combined, o.base ?? s.base);
}

/**
 * The method's matrix and the variants to compare it with: `plain`, `debias` (the method's
 * debiaser on the final answer), `denoise` (its denoiser), `dda` (both). A strategy that is off
 * gives no variant; model-free scorers (bm25, random) give `plain` only, since their scores do not
 * change with the checkpoint.
 *
 * @returns `method`: the variant the method as specified is (the same object as one of
 *   `variants`, so it is listed and evaluated once: `dda` for debias and denoise, `debias`,
 *   `denoise`, or `plain`); `variants`: the comparison rows.
 */
export async function methodVariants(s: CheckpointScores, infos: readonly CheckpointInfo[], m: MethodSpec): Promise<{ method: Variant; variants: Variant[] }> {
  const plain = await plainVariant(s, infos);
  if (isModelFree(s.scorer)) return { method: plain, variants: [plain] };
  const variants: Variant[] = [plain];
  if (m.debias !== null) variants.push(variantOf('debias', await ddaMatrix(s, infos, { debias: m.debias, denoise: null, beta: m.beta }), infos));
  if (m.denoise !== null) variants.push(variantOf('denoise', await ddaMatrix(s, infos, { debias: null, denoise: m.denoise, beta: m.beta }), infos));
  if (m.debias !== null && m.denoise !== null) variants.push(variantOf('dda', await ddaMatrix(s, infos, { debias: m.debias, denoise: m.denoise, beta: m.beta }), infos));
  const chosen = m.debias !== null && m.denoise !== null ? 'dda' : m.debias !== null ? 'debias' : m.denoise !== null ? 'denoise' : 'plain';
  return { method: variants.find((v) => v.variant === chosen) as Variant, variants };
}
