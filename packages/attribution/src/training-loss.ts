/**
 * Whether the training data are rendered as the model was trained on them: the final checkpoint's
 * mean response-token loss on a seeded sample of `--train`, against the training loss the run's
 * trainer logged in trainer_state.json. Samples rendered otherwise than in training (another chat
 * template or none, the Alpaca layout instead of the run's, a missing system prompt) are new inputs
 * to the model, with a clearly higher loss; their attribution explains another input. The queries'
 * side: their outputs' loss at the same checkpoint against the training samples' ({@link checkQueryLoss}).
 */
import { SeededRandom, type TextSample } from '@dda/core';
import type { Checkpoint, TrainerState } from './checkpoints.js';
import { epochEnd, stepsPerEpoch } from './checkpoints.js';
import type { Log } from './engine.js';
import { type AttributionRun, isModelFree } from './run.js';

/** Training samples whose loss is measured (a seeded sample of the training set when it is larger). */
export const TRAINING_LOSS_SAMPLES = 64;
/**
 * A measured loss above this multiple of the logged one is a warning. The logged loss is a running
 * mean over the last epoch's training batches, taken while the model still improved (and with
 * dropout on), so the final checkpoint's loss on the same rendered data is normally at or below it
 * (0.93 of it on the demo's exported run); the mean over 64 samples varies by a few per cent. A
 * rendering that differs from training gave 1.39 (raw prompt, no chat template) and 1.59 (Alpaca
 * layout, another instruction, no system prompt) there.
 */
export const TRAINING_LOSS_RATIO = 1.25;
/**
 * The query outputs' mean loss above this multiple of the training samples' (same checkpoint) is a
 * warning (see {@link checkQueryLoss}). Queries may be erroneous outputs, a little less likely than
 * the training responses, but rendered as in training they stay close: on the demo's exported run
 * (`npm run demo`, dda-out/experiment, final checkpoint-45) its 29 queries, each with an injected
 * error, measured 1.19× (0.398 against 0.336 nats/token); the same queries rendered otherwise gave
 * 1.86× (the document as one user turn of the chat template, without the system prompt and the
 * instruction) and 3.05× (`Summarize: ` + the document as a raw prompt, no template). 1.5 leaves a
 * quarter above the faithful ratio, which already counts the injected errors; a model's own,
 * unaltered generations sit lower still.
 */
export const QUERY_LOSS_RATIO = 1.5;
/** ... and above it by at least this many nats/token (near-zero losses differ by large ratios for nothing). */
export const TRAINING_LOSS_MIN_GAP = 0.05;

/** The training loss a trainer_state.json logged, and where it comes from. */
export interface LoggedLoss {
  /** nats/token (the trainer's mean token cross-entropy). */
  readonly value: number;
  readonly from: string;
}

/**
 * The training loss logged up to `step` (all of the log when null): the mean of the `loss` entries
 * logged over the last epoch before it (entries after epoch E − 1, E the epoch of the last one, an
 * integer where it lies within half a step of an epoch's end ({@link epochEnd}: 2.992 is the end of
 * epoch 3, and the entry at 1.9947 the end of epoch 2, outside the window); the last entry alone
 * without epochs), else the run's `train_loss` (its mean over the whole run), else null.
 */
export function loggedTrainingLoss(state: TrainerState, step: number | null): LoggedLoss | null {
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const upTo = state.history.filter((e) => step === null || (num(e.step) ?? Number.POSITIVE_INFINITY) <= step);
  const losses = upTo.filter((e) => num(e.loss) !== null);
  const last = losses[losses.length - 1];
  if (last) {
    const e = num(last.epoch);
    const perEpoch = stepsPerEpoch(state);
    // The last epoch begins after the one before ends: entries within half a step of that end belong to it.
    const start = e === null ? 0 : (epochEnd(e, perEpoch) ?? e) - 1 + (perEpoch === null ? 0 : 0.5 / perEpoch);
    const window = e === null ? [last] : losses.filter((x) => (num(x.epoch) ?? Number.NEGATIVE_INFINITY) > start);
    const value = window.reduce((a, x) => a + (x.loss as number), 0) / window.length;
    const steps = window.map((x) => num(x.step)).filter((x): x is number => x !== null);
    const span = steps.length > 1 ? `steps ${steps[0]}–${steps[steps.length - 1]}` : `step ${steps[0] ?? '?'}`;
    return { value, from: `${window.length > 1 ? `mean of the ${window.length} 'loss' entries` : "the 'loss' entry"} of the last epoch logged (${span}) in ${state.path}` };
  }
  const total = [...upTo].reverse().find((x) => num(x.train_loss) !== null);
  return total ? { value: total.train_loss as number, from: `'train_loss' (the mean over the whole run) in ${state.path}` } : null;
}

/** The comparison, as recorded in summary.json. */
export interface TrainingLossCheck {
  /** The final checkpoint's id. */
  readonly checkpoint: string;
  /** Training samples measured (seeded sample). */
  readonly samples: number;
  /** Their mean response-token loss at the final checkpoint, nats/token. */
  readonly measured: number;
  /** The training loss logged, nats/token, and where it comes from. */
  readonly logged: number;
  readonly loggedFrom: string;
  /** measured / logged. */
  readonly ratio: number;
  /** The warning printed, or null when the two agree. */
  readonly warning: string | null;
}

/** The queries' side, as recorded in summary.json beside {@link TrainingLossCheck}. */
export interface QueryLossCheck {
  /** The final checkpoint's id. */
  readonly checkpoint: string;
  /** Queries measured (seeded sample of at most {@link TRAINING_LOSS_SAMPLES}). */
  readonly queries: number;
  /** Their outputs' mean token loss at the final checkpoint, nats/token. */
  readonly measured: number;
  /** The same checkpoint's mean response-token loss on the training samples of the training loss check, nats/token. */
  readonly training: number;
  /** measured / training. */
  readonly ratio: number;
  /** The warning printed, or null when the queries' loss is not much higher. */
  readonly warning: string | null;
}

/**
 * The indices of a seeded sample of `n` items (all of them when n ≤ the sample size), in order: the
 * training samples {@link measureTrainingLoss} measures, and the queries of the query loss check.
 */
export function sampleIndices(n: number): number[] {
  if (n <= TRAINING_LOSS_SAMPLES) return Array.from({ length: n }, (_, i) => i);
  return new SeededRandom(0).shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, TRAINING_LOSS_SAMPLES).sort((a, b) => a - b);
}

/** Each sample's mean response-token loss at `cp` (nats/token): an attribution's stored artifact (`which` names it), or a model's losses. */
export type SampleLosses = (cp: Checkpoint, samples: readonly TextSample[], which: 'train-sample' | 'query-sample') => Promise<Float64Array>;

/** The final checkpoint's mean response-token loss on a seeded sample of the training samples. */
export interface MeasuredTrainingLoss {
  /** The final checkpoint's id. */
  readonly checkpoint: string;
  /** Training samples measured (seeded sample of at most {@link TRAINING_LOSS_SAMPLES}). */
  readonly samples: number;
  /** Their mean response-token loss, nats/token. */
  readonly measured: number;
}

/** The mean loss at `final` of the seeded sample ({@link TRAINING_LOSS_SAMPLES}) of the training samples `all`. */
export async function measureTrainingLoss(final: Checkpoint, all: readonly TextSample[], losses: SampleLosses): Promise<MeasuredTrainingLoss> {
  return measureSampledTrainingLoss(final, sampleIndices(all.length).map((i) => all[i] as TextSample), losses);
}

/** {@link measureTrainingLoss} of the samples at {@link sampleIndices}, given alone (by a reader that does not hold every sample). */
export async function measureSampledTrainingLoss(final: Checkpoint, sampled: readonly TextSample[], losses: SampleLosses): Promise<MeasuredTrainingLoss> {
  const l = await losses(final, sampled, 'train-sample');
  return { checkpoint: final.id, samples: l.length, measured: l.reduce((a, b) => a + b, 0) / l.length };
}

/**
 * Compares the final checkpoint's measured loss on the training data ({@link measureTrainingLoss})
 * with the training loss of its trainer_state.json ({@link loggedTrainingLoss}), and warns through
 * `log`, with both numbers, when the measured loss is more than {@link TRAINING_LOSS_RATIO} times and
 * {@link TRAINING_LOSS_MIN_GAP} nats/token above the logged one.
 *
 * @returns The comparison, or `{ skipped }` with the reason (logged) when there is nothing to compare.
 */
export function compareTrainingLoss(final: Checkpoint, m: MeasuredTrainingLoss, log: Log = () => {}): TrainingLossCheck | { readonly skipped: string } {
  const skip = (why: string): { skipped: string } => {
    log(`training loss check skipped: ${why}`);
    return { skipped: why };
  };
  if (!final.trainerState) return skip(`no trainer_state.json with ${final.id}, so no logged training loss to compare the data's loss with`);
  const logged = loggedTrainingLoss(final.trainerState, final.step);
  if (!logged) return skip(`${final.trainerState.path} logs no 'loss' or 'train_loss' up to ${final.id}`);
  const { measured } = m;
  const ratio = measured / logged.value;
  const numbers = `${measured.toFixed(3)} nats/token on ${m.samples} training samples at ${final.id}, against ${logged.value.toFixed(3)} logged in training (${logged.from})`;
  const large = ratio > TRAINING_LOSS_RATIO && measured - logged.value > TRAINING_LOSS_MIN_GAP;
  const warning = large
    ? `warning: the final checkpoint's loss on --train is ${ratio.toFixed(2)}× the training loss its trainer logged: ${numbers}. The data are likely rendered differently from training (chat template, Alpaca layout, system prompt: check the records' fields, --fields and --prompt-format) or are not the training data, or --base is not the model the run was trained on (see the base_model_name_or_path line above); attribution then explains inputs the model was not trained on. (Or the trainer's loss covered other tokens than the responses, e.g. the prompts too.)`
    : null;
  log(warning ?? `training loss check: ${numbers}; ratio ${ratio.toFixed(2)}, within ${TRAINING_LOSS_RATIO}×: the data look rendered as in training`);
  return { checkpoint: final.id, samples: m.samples, measured, logged: logged.value, loggedFrom: logged.from, ratio, warning };
}

/** An attribution run's stored losses (see {@link AttributionRun.sampleLosses}). */
const storedLosses = (run: AttributionRun): SampleLosses => (cp, samples, which) => run.sampleLosses(cp, samples, which);

/**
 * The training loss check of an attribution run: the final checkpoint's mean response-token loss on
 * a seeded sample of the training data (stored as an artifact) against the training loss of its
 * trainer_state.json ({@link compareTrainingLoss}).
 *
 * @returns The comparison, or `{ skipped }` with the reason (logged) when there is nothing to compare.
 */
export async function checkTrainingLoss(run: AttributionRun, scorerId: string, log: Log = () => {}): Promise<TrainingLossCheck | { readonly skipped: string }> {
  if (isModelFree(await run.scorer(scorerId))) return { skipped: `scorer '${scorerId}' does not run the model` };
  const cps = run.task.checkpoints;
  const final = cps[cps.length - 1];
  if (!final) {
    log('training loss check skipped: no checkpoint');
    return { skipped: 'no checkpoint' };
  }
  // Measured even when there is no logged loss: the query loss check compares with the same stored losses.
  return compareTrainingLoss(final, await measureTrainingLoss(final, run.task.train.samples, storedLosses(run)), log);
}

/**
 * The queries' side of {@link compareTrainingLoss}: the final checkpoint's mean loss of the query
 * outputs (a seeded sample of at most {@link TRAINING_LOSS_SAMPLES} queries) against its loss on the
 * training samples ({@link measureTrainingLoss}; a gradient index records it at build time). Queries
 * are usually the model's own generations for prompts rendered as in training, so their loss is not
 * much higher than the training data's; a query rendered otherwise (another template, none, another
 * instruction) is an input the model was not trained on. Warns through `log`, with both numbers,
 * when the ratio is above {@link QUERY_LOSS_RATIO} and the gap above {@link TRAINING_LOSS_MIN_GAP}.
 */
export async function compareQueryLoss(final: Checkpoint, training: MeasuredTrainingLoss, queries: readonly TextSample[], losses: SampleLosses, log: Log = () => {}): Promise<QueryLossCheck> {
  const q = await losses(final, sampleIndices(queries.length).map((i) => queries[i] as TextSample), 'query-sample');
  const measured = q.reduce((a, b) => a + b, 0) / q.length;
  const ratio = measured / training.measured;
  const numbers = `${measured.toFixed(3)} nats/token on the outputs of ${q.length} queries at ${final.id}, against ${training.measured.toFixed(3)} on ${training.samples} training samples`;
  const warning = ratio > QUERY_LOSS_RATIO && measured - training.measured > TRAINING_LOSS_MIN_GAP
    ? `warning: the final checkpoint's loss on the query outputs is ${ratio.toFixed(2)}× its loss on --train: ${numbers}. The queries are likely rendered differently from the training data (chat template, instruction, system prompt: check the queries' fields, --query-fields and --prompt-format) or are not outputs of this model; attribution then explains inputs the model was not trained on.`
    : null;
  log(warning ?? `query loss check: ${numbers}; ratio ${ratio.toFixed(2)}, within ${QUERY_LOSS_RATIO}×`);
  return { checkpoint: final.id, queries: q.length, measured, training: training.measured, ratio, warning };
}

/**
 * The query loss check of an attribution run ({@link compareQueryLoss}), the losses stored as artifacts.
 *
 * @returns The comparison, or `{ skipped }` with the reason (logged) when there is nothing to compare.
 */
export async function checkQueryLoss(run: AttributionRun, scorerId: string, log: Log = () => {}): Promise<QueryLossCheck | { readonly skipped: string }> {
  if (isModelFree(await run.scorer(scorerId))) return { skipped: `scorer '${scorerId}' does not run the model` };
  const final = run.task.checkpoints[run.task.checkpoints.length - 1];
  if (!final) {
    log('query loss check skipped: no checkpoint');
    return { skipped: 'no checkpoint' };
  }
  const losses = storedLosses(run);
  return compareQueryLoss(final, await measureTrainingLoss(final, run.task.train.samples, losses), run.task.queries.map((q) => q.sample), losses, log);
}
