/**
 * The checkpoints of a fine-tuning run, as users have them on disk: PEFT LoRA adapter folders
 * (`adapter_config.json` + `adapter_model.safetensors`), full model folders (`config.json` +
 * safetensors), or a trainer output folder holding `checkpoint-<step>/` subfolders (Hugging Face
 * Trainer, TRL, LLaMA-Factory, axolotl), ordered by step. The learning rate in effect at each
 * checkpoint is read from `trainer_state.json` (its `log_history`) where it is there.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DdaError, type CheckpointInfo } from '@dda/core';
import {
  ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, CONFIG_FILE, PEFT_MODULE_NAMES, float32ToBf16Bits, hasWeights, loadModelFolder, readPeftAdapter, tensorsEqual,
  type DecoderConfig, type LoraConfig, type SavedModules, type TensorMap,
} from '@dda/model';
import { hashFiles } from './hashing.js';

/**
 * What is done with an adapter's modules_to_save, for the log and summary.json: applied in the forward
 * pass at each checkpoint (its own copies; θ0 has the base model's modules), not differentiated.
 */
export function describeSavedModules(s: SavedModules): string {
  const what = [
    ...(s.entries.length ? [`modules_to_save [${s.entries.join(', ')}] (${s.modules.filter((m) => !s.embeddingLayers.includes(m)).join(', ')})`] : []),
    ...(s.embeddingLayers.length ? [`the embedding layers saved beside the LoRA tensors (${s.embeddingLayers.join(', ')}; PEFT's save_embedding_layers)`] : []),
  ].join(' and ');
  return `${what} applied in the forward pass, each checkpoint with its own trained copies (θ0 with the base model's modules); gradients over LoRA parameters only`;
}

/** The trainer state file of Hugging Face's Trainer. */
export const TRAINER_STATE_FILE = 'trainer_state.json';
const CHECKPOINT_DIR = /^checkpoint-(\d+)$/;

/** One checkpoint of the run, loaded. */
export interface Checkpoint {
  /** Id used in artifacts and outputs: the folder name (`checkpoint-500`), made unique. */
  readonly id: string;
  readonly dir: string;
  /** `lora`: a PEFT adapter over the base model; `full`: every weight of the model. */
  readonly kind: 'lora' | 'full';
  /** The adapter tensors (PEFT names) or the full weights. */
  readonly weights: TensorMap;
  /** The adapter's LoRA config (null for a full checkpoint). */
  readonly lora: LoraConfig | null;
  /**
   * The adapter's `modules_to_save`: trained copies that replace the base model's modules in the
   * forward pass at this checkpoint (not differentiated: gradients stay over the LoRA tensors). Absent without.
   */
  readonly saved?: SavedModules;
  /** The adapter's `base_model_name_or_path` (the model it was trained on, checked against --base when a task is loaded, see base-match.ts); absent for a full checkpoint or an adapter that names none. */
  readonly adapterBase?: string;
  /**
   * Epoch (from trainer_state.json, an integer where it lies within half a step of an epoch's end,
   * {@link epochEnd}; else the 1-based position) and the learning rate in effect (NaN if unknown).
   */
  readonly info: CheckpointInfo;
  /** Global step from the folder name or trainer_state.json, or null. */
  readonly step: number | null;
  /** The trainer_state.json read for it (its own, else its run's), if any. */
  readonly trainerState?: TrainerState;
  /** Where the learning rate came from when trainer_state.json gave it (not --learning-rates): the steps `from` + 1 … `to` of the log at `path`. */
  readonly learningRateFrom?: IntervalRate & { readonly from: number; readonly to: number; readonly path: string };
  /** Content hashes of the files that define it. */
  readonly hash: Readonly<Record<string, string>>;
}

/** What one checkpoint folder turned out to be, before loading. */
interface FoundCheckpoint {
  readonly dir: string;
  /** The path as the user can write it (for messages). */
  readonly shown: string;
  readonly kind: 'lora' | 'full';
  /** Step from the folder name (`checkpoint-<step>`, or its parent's for an adapter PEFT saved under its name there), or null. */
  readonly step: number | null;
  /** Its name in ids and messages: the folder's, or `checkpoint-<step>-<adapter>` for an adapter PEFT saved under its name in `checkpoint-<step>/`. */
  readonly name: string;
  /** trainer_state.json to read (the checkpoint's own, else its run's), or null. */
  readonly state: string | null;
  /** Whether `state` was written with this checkpoint (its own), not by its run at the end. */
  readonly ownState: boolean;
}

/**
 * One `--checkpoints` path: its checkpoints in order and, for a trainer output folder that also
 * holds weights at its top (what `trainer.save_model(output_dir)` leaves), that top-level model.
 */
interface FoundPath {
  readonly path: string;
  readonly checkpoints: readonly FoundCheckpoint[];
  readonly top: FoundCheckpoint | null;
  /** The subfolder every `checkpoint-<step>/` holds its adapter in (PEFT's adapter saved under its name), if so. */
  readonly innerAdapter?: string;
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/**
 * What Trainer saves beside the weights of a checkpoint (transformers' trainer.py: the optimizer,
 * scheduler and AMP scaler states, the RNG states, the training arguments): not weights.
 */
const TRAINER_STATE_FILES = /^(optimizer\.(pt|bin)|scheduler\.pt|scaler\.pt|rng_state(_\d+)?\.pth|training_args\.bin)$/;

/** Files a folder has that look like weights the loader cannot read, for the error message (Trainer's own state files are not weights). */
function otherWeightFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.(bin|pt|pth|gguf|h5|msgpack|ckpt)$/i.test(f) && !TRAINER_STATE_FILES.test(f));
}

/** `lora` for a PEFT adapter folder, `full` for a model folder with safetensors weights, else null. */
function kindOf(dir: string): 'lora' | 'full' | null {
  if (existsSync(join(dir, ADAPTER_CONFIG_FILE))) return 'lora';
  if (existsSync(join(dir, CONFIG_FILE)) && hasWeights(dir)) return 'full';
  return null;
}

/** The subfolders of `dir` that hold an adapter or a model ({@link kindOf}), sorted: where PEFT saves an adapter under its name. */
function innerCheckpointFolders(dir: string): string[] {
  return readdirSync(dir).filter((f) => isDir(join(dir, f)) && kindOf(join(dir, f)) !== null).sort();
}

/** `a PEFT adapter`, `PEFT adapters`, `a model`, ... : what the subfolders `inner` of `dir` hold. */
function innerKinds(dir: string, inner: readonly string[]): string {
  const kinds = inner.map((f) => kindOf(join(dir, f)));
  if (kinds.every((k) => k === kinds[0])) return inner.length > 1 ? (kinds[0] === 'lora' ? 'PEFT adapters' : 'models') : kinds[0] === 'lora' ? 'a PEFT adapter' : 'a model';
  return kinds.map((k) => (k === 'lora' ? 'a PEFT adapter' : 'a model')).join(', ');
}

/**
 * Expands one path into checkpoint folders. A folder with `checkpoint-<step>/` subfolders is a
 * trainer output folder: its checkpoints are the subfolders in step order, and weights at its top
 * are returned apart (`top`), to be placed by {@link resolveTop}.
 *
 * @throws DdaError naming the path when it is none of the known layouts.
 */
function findCheckpoints(path: string): FoundPath {
  const dir = resolve(path);
  if (!isDir(dir)) throw new DdaError(`--checkpoints: '${path}' is not a folder`, 'give PEFT adapter folders, model folders, or a trainer output folder holding checkpoint-<step>/ subfolders');
  const kind = kindOf(dir);
  // PEFT saves an adapter not named 'default' in checkpoint-<step>/<name>/; given that subfolder,
  // its step and trainer_state.json are those of the checkpoint folder around it.
  const parent = dirname(dir);
  const inCheckpoint = kind && !CHECKPOINT_DIR.test(basename(dir)) && CHECKPOINT_DIR.test(basename(parent)) ? parent : null;
  const at = inCheckpoint ?? dir;
  const own = join(at, TRAINER_STATE_FILE);
  const state = existsSync(own) ? own : null;
  const named = CHECKPOINT_DIR.exec(basename(at));
  const name = inCheckpoint ? `${basename(inCheckpoint)}-${basename(dir)}` : basename(dir);
  const here: FoundCheckpoint | null = kind ? { dir, shown: path, kind, step: named ? Number(named[1]) : null, name, state, ownState: state !== null } : null;
  const subs = readdirSync(dir).filter((f) => CHECKPOINT_DIR.test(f) && isDir(join(dir, f)));
  if (subs.length > 0) {
    // A subfolder that holds weights under another name (checkpoint-45-final, checkpoint-30.bak, a
    // renamed copy) would be skipped, and a renamed last checkpoint would leave an earlier one as
    // the final model without a word: refused, naming it.
    const stray = readdirSync(dir).filter((f) => !CHECKPOINT_DIR.test(f) && isDir(join(dir, f)) && kindOf(join(dir, f)) !== null).sort();
    if (stray.length > 0) {
      throw new DdaError(
        `--checkpoints: the trainer output folder '${path}' holds checkpoint-<step>/ subfolders (${subs.length}) and also ${stray.length > 1 ? 'the subfolders' : 'the subfolder'} ${stray.map((f) => `'${f}'`).join(', ')} with ${innerKinds(dir, stray)} under another name, which would be skipped (a renamed last checkpoint would leave an earlier one as the final model)`,
        `rename ${stray.length > 1 ? 'each' : 'it'} checkpoint-<step> if it is one of this run's checkpoints, move it out of '${path}' otherwise, or give the checkpoint folders one by one in training order (--checkpoints ${join(path, subs[0] as string)} ...)`,
      );
    }
    subs.sort((a, b) => Number(CHECKPOINT_DIR.exec(a)?.[1]) - Number(CHECKPOINT_DIR.exec(b)?.[1]));
    // PEFT saves an adapter not named 'default' in checkpoint-<step>/<name>/: where every checkpoint
    // holds nothing at its top and exactly one such subfolder, of the same name, that is the run's adapter.
    const innerOf = subs.map((s) => (kindOf(join(dir, s)) ? [] : innerCheckpointFolders(join(dir, s))));
    const adapter = innerOf.every((inner) => inner.length === 1 && inner[0] === innerOf[0]?.[0]) ? innerOf[0]?.[0] : undefined;
    const checkpoints = subs.flatMap((s) => findCheckpoints(adapter ? join(path, s, adapter) : join(path, s)).checkpoints.map((f) => (
      // A checkpoint folder without its own trainer_state.json reads the run's.
      f.state === null && state !== null ? { ...f, state, ownState: false } : f
    )));
    return { path, checkpoints, top: here, ...(adapter ? { innerAdapter: adapter } : {}) };
  }
  if (here) return { path, checkpoints: [here], top: null };
  const other = otherWeightFiles(dir);
  if (other.length > 0) {
    throw new DdaError(
      `--checkpoints: '${path}' holds ${other.join(', ')}, weights in a format this tool does not read`,
      'convert them to safetensors, e.g. in Python: from safetensors.torch import save_file; save_file(torch.load(path, map_location="cpu"), "adapter_model.safetensors") (for a full model: model.save_pretrained(dir, safe_serialization=True))',
    );
  }
  // PEFT's save_pretrained writes an adapter not named 'default' into a subfolder of its name (checkpoint-15/<name>/adapter_config.json).
  const inner = innerCheckpointFolders(dir);
  if (inner.length > 0) {
    const shown = inner.map((f) => `'${join(path, f)}'`).join(', ');
    throw new DdaError(
      `--checkpoints: '${path}' has no ${ADAPTER_CONFIG_FILE} or model weights at its top, but ${inner.length > 1 ? 'its subfolders' : 'its subfolder'} ${shown} ${inner.length > 1 ? 'hold' : 'holds'} ${innerKinds(dir, inner)} (PEFT saves an adapter not named 'default' in a subfolder of its name)`,
      inner.length > 1
        ? `give the subfolder of the adapter that was trained, e.g. --checkpoints ${join(path, inner[0] as string)}, and the same subfolder of every checkpoint in step order`
        : `give that subfolder, --checkpoints ${join(path, inner[0] as string)}, and the same subfolder of every checkpoint in step order`,
    );
  }
  throw new DdaError(
    `--checkpoints: '${path}' is neither a PEFT adapter folder (${ADAPTER_CONFIG_FILE}), a model folder (${CONFIG_FILE} with safetensors weights) nor a trainer output folder (checkpoint-<step>/ subfolders)`,
    'give the folders your fine-tuning run saved, in order',
  );
}

/** A parsed trainer_state.json: the steps' learning rates and epochs. */
export interface TrainerLog {
  readonly entries: readonly { readonly step: number; readonly epoch: number | null; readonly learningRate: number | null }[];
  readonly globalStep: number | null;
  readonly epoch: number | null;
}

/** A trainer_state.json as read: {@link TrainerLog}, the run's sizes it records, and its whole `log_history`. */
export interface TrainerState extends TrainerLog {
  readonly path: string;
  /** `log_history` as written (one object per logged step: loss, learning_rate, epoch, step, eval metrics...). */
  readonly history: readonly Readonly<Record<string, unknown>>[];
  /** `best_model_checkpoint` (the folder Trainer tracks under load_best_model_at_end / metric_for_best_model), or null. */
  readonly bestModelCheckpoint: string | null;
  /** `train_batch_size`: the records of one forward pass on one device (Trainer's per_device_train_batch_size), or null. */
  readonly trainBatchSize: number | null;
  /** `logging_steps`, or null. */
  readonly loggingSteps: number | null;
  /** `gradient_accumulation_steps` and `world_size`: Trainer's trainer_state.json records neither (other trainers may); null when absent. */
  readonly gradientAccumulationSteps: number | null;
  readonly worldSize: number | null;
  /** The settings Trainer records once per run and never changes within it ({@link RUN_SETTINGS}), those present. */
  readonly runSettings: Readonly<Record<string, unknown>>;
}

/** trainer_state.json fields fixed for a whole run (TrainerState's max_steps, num_train_epochs, batch size, logging/eval/save intervals). */
export const RUN_SETTINGS = ['max_steps', 'num_train_epochs', 'train_batch_size', 'logging_steps', 'eval_steps', 'save_steps'] as const;

/**
 * Reads a Hugging Face Trainer's trainer_state.json. Python's json module writes NaN and Infinity
 * for non-finite floats (a `grad_norm` of an overflowing fp16 step); they are read as null.
 *
 * @throws DdaError naming the file when it is not JSON or not an object.
 */
export function readTrainerState(path: string): TrainerState {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8').replace(/(?<=[:,[]\s*)(?:-?Infinity|NaN)(?=\s*[,}\]])/g, 'null'));
  } catch (e) {
    throw new DdaError(`${path}: not valid JSON (${(e as Error).message})`, 'fix the file or remove it (learning rates are then unknown)');
  }
  const s = j as Record<string, unknown> | null;
  if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new DdaError(`${path}: not a trainer state object`, 'expected the trainer_state.json that Hugging Face Trainer writes');
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const count = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);
  const history = Array.isArray(s.log_history) ? s.log_history.filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && !Array.isArray(e)) : [];
  const entries = history.flatMap((x) => {
    const step = num(x.step);
    return step === null ? [] : [{ step, epoch: num(x.epoch), learningRate: num(x.learning_rate) }];
  });
  return {
    path, history, entries, globalStep: num(s.global_step), epoch: num(s.epoch), bestModelCheckpoint: typeof s.best_model_checkpoint === 'string' ? s.best_model_checkpoint : null,
    trainBatchSize: count(s.train_batch_size), loggingSteps: count(s.logging_steps), gradientAccumulationSteps: count(s.gradient_accumulation_steps), worldSize: count(s.world_size),
    runSettings: Object.fromEntries(RUN_SETTINGS.filter((k) => s[k] !== undefined && s[k] !== null).map((k) => [k, s[k]])),
  };
}

/**
 * Optimizer steps per epoch as a trainer_state.json implies them: `global_step` / `epoch` (Trainer's
 * epoch counts the batches done, so the ratio holds mid-epoch too), or null when either is missing
 * or not positive. Fractional where the batches do not divide an epoch evenly (15 steps at epoch 0.9973).
 */
export function stepsPerEpoch(log: TrainerLog): number | null {
  return log.globalStep !== null && log.epoch !== null && log.globalStep > 0 && log.epoch > 0 ? log.globalStep / log.epoch : null;
}

/**
 * The epoch whose end `epoch` is: an integer ≥ 1 it lies less than half an optimizer step from
 * (`perEpoch` steps per epoch, {@link stepsPerEpoch}), else null. Trainers write epochs such as
 * 0.9973 and 2.992 at an epoch's last step when the dataloader's length does not divide evenly;
 * half a step apart from an integer, the nearest step to the epoch's end is this one. Without a
 * known `perEpoch`, only an integer (up to float rounding) is an epoch's end.
 */
export function epochEnd(epoch: number, perEpoch: number | null): number | null {
  const n = Math.round(epoch);
  const tolerance = perEpoch === null ? 1e-9 : 0.5 / perEpoch;
  return n >= 1 && Math.abs(epoch - n) < tolerance ? n : null;
}

/**
 * The learning rate of the last `log_history` entry with a learning rate at or before `step`, NaN
 * when there is none: the rate as logged, which is the rate of step `step` + 1 ({@link loggedStepRates}).
 */
export function learningRateAt(log: TrainerLog, step: number): number {
  let lr = Number.NaN;
  for (const e of log.entries) if (e.step <= step && e.learningRate !== null) lr = e.learningRate;
  return lr;
}

/**
 * The optimizer steps whose learning rate a trainer_state.json logged, in step order. Trainer logs
 * at global step s `_get_learning_rate()` from `_maybe_log_save_evaluate`, which runs after
 * `lr_scheduler.step()`: the scheduler's rate after its s-th step, the rate step s + 1 uses; so the
 * entry at step s gives step s + 1's rate, and step 1's rate (the schedule's start, 0 under a
 * warm-up) is never logged. transformers 4.51 (PR #36973, March 2025) passes the rate read before
 * the scheduler's step, so newer runs log step s's own rate; trainer_state.json does not record the
 * version, so the older convention is assumed, one step's change of the rate apart.
 */
function loggedStepRates(log: TrainerLog): { readonly step: number; readonly rate: number }[] {
  const byStep = new Map<number, number>();
  for (const e of log.entries) if (e.learningRate !== null) byStep.set(e.step + 1, e.learningRate);
  return [...byStep].map(([step, rate]) => ({ step, rate })).sort((a, b) => a.step - b.step);
}

/**
 * Step `k`'s rate from the logged ones (`points`, in step order, at least one): the logged rate
 * where there is one; between two logged steps, the straight line between their rates; before the
 * first or after the last, the line through the two nearest, not below 0 (one logged rate: that rate).
 */
function rateOfStep(points: readonly { readonly step: number; readonly rate: number }[], k: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((points[mid] as { step: number }).step < k) lo = mid + 1;
    else hi = mid;
  }
  const at = points[lo];
  if (at && at.step === k) return at.rate;
  if (points.length === 1) return (points[0] as { rate: number }).rate;
  const i = Math.min(Math.max(lo, 1), points.length - 1);
  const [a, b] = [points[i - 1] as { step: number; rate: number }, points[i] as { step: number; rate: number }];
  return Math.max(0, a.rate + ((b.rate - a.rate) * (k - a.step)) / (b.step - a.step));
}

/** The mean learning rate of a checkpoint's steps, and how far the log gives it ({@link learningRateOver}). */
export interface IntervalRate {
  /** The mean rate of steps `from` + 1 … `to`; NaN when the log has no rate. */
  readonly rate: number;
  /**
   * - `logged`: every step's rate is in the log: their mean, exact.
   * - `constant`: the log's rates (two or more) are all equal, a constant schedule: that rate.
   * - `estimated`: the rates vary and some steps of the interval have none logged: the mean of
   *   the logged ones and of the others read off the lines between logged rates ({@link rateOfStep}),
   *   exact where the schedule is linear between the logged steps (and before the first), not
   *   across a warm-up's end or along a cosine; the caller warns where the rate is used.
   * - `none`: the log has no rate.
   */
  readonly how: 'logged' | 'constant' | 'estimated' | 'none';
  /** How many of the interval's steps have their own rate in the log. */
  readonly logged: number;
  /** The interval's steps (`to` − `from`). */
  readonly steps: number;
}

/**
 * The learning rate of the optimizer steps since the previous checkpoint (`from` + 1 … `to`), for
 * TracIn-CP's η_i (Pruthi et al. 2020, eq. 3) and the lr-weighted denoiser: their mean, each step's
 * rate as {@link loggedStepRates} reads the log (the entry at step s is step s + 1's rate), the
 * steps not logged estimated linearly between logged rates. A linear schedule that ends at 0 thus
 * gives the last checkpoint the mean of its interval, not the 0 logged at its own step, and a
 * linear schedule logged every 15 steps gives each 15-step interval its exact mean (it is still an
 * estimate, since nothing says the schedule is linear: `how` says so).
 */
export function learningRateOver(log: TrainerLog, from: number, to: number): IntervalRate {
  const steps = Math.max(0, to - from);
  const points = loggedStepRates(log);
  if (points.length === 0 || steps === 0) return { rate: Number.NaN, how: 'none', logged: 0, steps };
  const logged = points.filter((p) => p.step > from && p.step <= to).length;
  const first = (points[0] as { rate: number }).rate;
  // One rate for every logged step: a constant schedule where two or more say so; one alone says nothing of the others.
  if (logged < steps && points.every((p) => p.rate === first)) return { rate: first, how: points.length >= 2 ? 'constant' : 'estimated', logged, steps };
  let sum = 0;
  for (let k = from + 1; k <= to; k++) sum += rateOfStep(points, k);
  return { rate: sum / steps, how: logged === steps ? 'logged' : 'estimated', logged, steps };
}

/** A rate for printing: 6 significant digits, without float noise (0.0020000000000000005 → 0.002). */
const round = (x: number): number => Number(x.toPrecision(6));

/** What {@link learningRateOver} did for the steps `from` + 1 … `to`, for the log. */
function describeIntervalRate(r: IntervalRate & { readonly from: number; readonly to: number }): string {
  const steps = r.steps === 1 ? `step ${r.to}` : `steps ${r.from + 1}–${r.to}`;
  if (r.how === 'logged') return r.steps === 1 ? `the rate logged for ${steps}` : `the mean of the ${r.steps} rates logged for ${steps}`;
  if (r.how === 'constant') return 'the rate of every entry of the log, a constant schedule';
  return `estimated: ${r.logged} of the ${r.steps} rates of ${steps} logged`;
}

/**
 * The warning for checkpoints whose learning rate is an estimate ({@link IntervalRate}'s
 * `estimated`), for a method that weights the checkpoints by it (`by`, e.g. `--scorer tracin-cp`),
 * or null when every rate is exact, given, or not from a log.
 */
export function learningRateEstimateWarning(checkpoints: readonly Checkpoint[], by: string): string | null {
  const estimated = checkpoints.flatMap((c) => (c.learningRateFrom?.how === 'estimated' ? [{ id: c.id, r: c.learningRateFrom }] : []));
  const first = estimated[0];
  if (!first) return null;
  const every = checkpoints.map((c) => c.trainerState?.loggingSteps ?? null).find((x) => x !== null) ?? null;
  return `warning: ${by} weights each checkpoint by the mean learning rate of its steps, and the rate varies during the run while ${first.r.path} logs it at only some steps${every === null ? '' : ` (logging_steps ${every})`}, so ${estimated.length} of ${checkpoints.length} checkpoint rates are estimates, not exact: ${estimated.map(({ id, r }) => `${id} ${round(r.rate)} (steps ${r.from + 1}–${r.to}: ${r.logged} of ${r.steps} rates logged)`).join(', ')}. Each unlogged step's rate is read off the straight line between the logged rates around it (before the first logged step, the line through the first two): exact for a linear schedule, an estimate across a warm-up's end or along a cosine. Pass --learning-rates with each checkpoint's mean rate over its steps, ${checkpoints.length} value(s) in order (${checkpoints.map((c) => c.id).join(', ')}), e.g. computed from your scheduler; logging every step (logging_steps=1) leaves only step 1's rate estimated, which Trainer does not log`;
}

/**
 * Whether `records` training records fit the run's trainer_state.json (the last checkpoint's): an
 * epoch is `steps per epoch` ({@link stepsPerEpoch}) optimizer steps, each of `train_batch_size` ×
 * gradient accumulation × devices records, the last batch possibly partial. Trainer does not
 * record the accumulation and the devices, which only raise the count, so without them only too
 * few records are told; with both recorded, too many too.
 *
 * @returns The warning, or null when the records fit or the state lacks the fields to tell.
 */
export function trainingSetSizeWarning(checkpoints: readonly Checkpoint[], records: number, file: string): string | null {
  const s = [...checkpoints].reverse().find((c) => c.trainerState)?.trainerState;
  const perEpoch = s ? stepsPerEpoch(s) : null;
  const batch = s?.trainBatchSize ?? null;
  if (!s || perEpoch === null || batch === null) return null;
  const [accumulation, devices] = [s.gradientAccumulationSteps, s.worldSize];
  const perStep = batch * (accumulation ?? 1) * (devices ?? 1);
  // An epoch of S steps takes more than S − 1 full steps of records (a partial last batch, or a partial accumulation at the epoch's end).
  const least = Math.floor((perEpoch - 1) * perStep + 1e-6) + 1;
  const most = accumulation !== null && devices !== null ? (Math.ceil(perEpoch * accumulation - 1e-6) + 1) * batch * devices : null;
  const sizes = `${round(perEpoch)} optimizer steps per epoch (global_step ${s.globalStep} at epoch ${s.epoch}) × train_batch_size ${batch}${accumulation !== null ? ` × gradient_accumulation_steps ${accumulation}` : ''}${devices !== null ? ` × world_size ${devices}` : ''}`;
  const unrecorded = [accumulation === null ? 'gradient accumulation' : '', devices === null ? 'several devices' : ''].filter(Boolean).join(' or ');
  if (records < least) {
    return `warning: --train ${file} has ${records} record(s), but ${s.path} says the run took ${sizes}: an epoch of at least ${least} records${unrecorded ? ` (more with ${unrecorded}, which it does not record)` : ''}. The run trained on records that --train does not have, and they get no scores; pass the file the run trained on as --train (if ${file} is a part of it on purpose, the scores rank that part only)`;
  }
  if (most !== null && records > most) {
    return `warning: --train ${file} has ${records} record(s), but ${s.path} says the run took ${sizes}: an epoch of at most ${most} records. --train holds records the run did not train on (an evaluation split, or records the trainer filtered out?), and they are scored as if it had; pass the records the run trained on as --train`;
  }
  return null;
}

/** Options of {@link loadCheckpoints}. */
export interface LoadCheckpointsOptions {
  /** The base model's config: every checkpoint must fit it. */
  readonly base: DecoderConfig;
  /** Learning rates to use instead of trainer_state.json's, one per checkpoint in order. */
  readonly learningRates?: readonly number[];
  /** Where to say what was decided about the run's folders (a final model not counted twice, checks skipped). */
  readonly log?: (line: string) => void;
}

/** A found checkpoint with its weights loaded and checked against the base. */
interface Loaded extends FoundCheckpoint {
  readonly weights: TensorMap;
  readonly lora: LoraConfig | null;
  readonly saved: SavedModules | null;
  readonly baseName: string | null;
  readonly hash: Readonly<Record<string, string>>;
}

function load(f: FoundCheckpoint, base: DecoderConfig): Loaded {
  if (f.kind === 'lora') {
    const adapter = readPeftAdapter(f.dir, base);
    return { ...f, weights: adapter.weights, lora: adapter.config, saved: adapter.savedModules, baseName: adapter.baseModelNameOrPath, hash: hashFiles(f.dir, [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]) };
  }
  const m = loadModelFolder(f.dir);
  const diff = (Object.keys(base) as (keyof DecoderConfig)[]).filter((k) => k !== 'maxSeqLen' && JSON.stringify(base[k]) !== JSON.stringify(m.config[k]));
  if (diff.length > 0) {
    throw new DdaError(`checkpoint ${f.dir} does not fit the base model: ${diff.map((k) => `${k} ${JSON.stringify(m.config[k])} vs ${JSON.stringify(base[k])}`).join(', ')}`, 'give checkpoints fine-tuned from this base model');
  }
  const files = readdirSync(f.dir).filter((x) => x === CONFIG_FILE || x.endsWith('.safetensors') || x.endsWith('.safetensors.index.json')).sort();
  return { ...f, weights: m.weights, lora: null, saved: null, baseName: null, hash: hashFiles(f.dir, files) };
}

/** Whether `rounded` is `x` rounded to bfloat16 (round to nearest even, as torch's cast): every value on the bfloat16 grid and equal to its counterpart rounded. */
function bf16Of(x: Float32Array, rounded: Float32Array): boolean {
  const bits = new Uint32Array(rounded.buffer, rounded.byteOffset, rounded.length);
  for (let k = 0; k < x.length; k++) {
    const b = bits[k] as number;
    if ((b & 0xffff) !== 0 || float32ToBf16Bits(x[k] as number) !== b >>> 16) return false;
  }
  return true;
}

/** Whether `top`'s tensors (adapter and saved modules) are `sub`'s rounded to bfloat16, with the same names and shapes. */
function sameAtBf16(sub: Loaded, top: Loaded): boolean {
  return tensorsEqual(sub.weights, top.weights, bf16Of) && tensorsEqual(sub.saved?.weights ?? new Map(), top.saved?.weights ?? new Map(), bf16Of);
}

/** Whether two loaded checkpoints hold the same tensors: LoRA or full weights, and the saved modules (modules_to_save). */
function sameTensors(a: Loaded, b: Loaded): boolean {
  return tensorsEqual(a.weights, b.weights) && tensorsEqual(a.saved?.weights ?? new Map(), b.saved?.weights ?? new Map());
}

/**
 * Where the model at the top of a trainer output folder belongs among its `checkpoint-<step>/`
 * subfolders. Hugging Face Trainer (transformers/trainer.py) writes each checkpoint in
 * `_save_checkpoint`: `save_model(<output_dir>/checkpoint-<global_step>)` and, beside it,
 * `trainer_state.json` (`state.save_to_json`). `trainer.save_model()` without a folder writes the
 * model (a PEFT adapter: adapter_config.json + adapter_model.safetensors) to `args.output_dir`
 * itself, with no trainer_state.json; `trainer.save_state()` writes the run's trainer_state.json
 * there, whose log_history also ends with the `train_loss` entry logged after the loop. With
 * `load_best_model_at_end`, `train()` loads the best checkpoint back (`_load_best_model`) before
 * logging `train_loss` and returning, so the top then holds the best checkpoint's weights;
 * otherwise the final weights, which recent versions also save as the last checkpoint
 * (`DefaultFlowCallback.on_step_end` sets `should_save` at `max_steps` with save_strategy
 * "steps"; epoch saving ends on the last step anyway) and older ones leave only at the top. TRL's
 * SFTTrainer and the PEFT examples subclass or call this Trainer, so their folders are the same.
 *
 * @returns null when the top holds the same tensors as a subfolder (not counted twice); the top,
 *   with the step of its trainer_state.json, when it differs from all and comes after the last.
 * @throws DdaError when it differs from all and its step is unknown or not after the last's.
 */
function resolveTop(path: string, subs: readonly Loaded[], top: Loaded, stateOf: (p: string) => TrainerState, log: (line: string) => void): Loaded | null {
  const what = `the ${top.kind === 'lora' ? 'adapter' : 'model'} at the top of ${path}`;
  const last = subs[subs.length - 1] as Loaded;
  const exact = subs.find((s) => sameTensors(s, top));
  // A final model saved in bfloat16 beside float32 checkpoints: the same tensors, rounded.
  const rounded = exact ? undefined : subs.find((s) => sameAtBf16(s, top));
  const same = exact ?? rounded;
  const how = rounded ? ' rounded to bfloat16 (saved at a lower precision than the checkpoints)' : '';
  const state = top.state ? stateOf(top.state) : null;
  if (same === last) {
    log(`checkpoints: ${what} holds the same tensors as ${basename(last.dir)}${how} (the last checkpoint, which trainer.save_model(output_dir) saves again at the end of training): not counted twice`);
    return null;
  }
  if (same) {
    // The run's saved model is an earlier checkpoint (load_best_model_at_end): the model whose
    // outputs are explained is either that one or the last, and the files cannot say which.
    const upTo = subs.slice(0, subs.indexOf(same) + 1);
    const best = state?.bestModelCheckpoint ? `its ${TRAINER_STATE_FILE} names best_model_checkpoint ${state.bestModelCheckpoint}` : `its ${TRAINER_STATE_FILE} names no best_model_checkpoint`;
    throw new DdaError(
      `--checkpoints: ${what} holds the same tensors as ${basename(same.dir)}${how}, not the last checkpoint ${basename(last.dir)} (${best}): the run's saved model is an earlier checkpoint, as load_best_model_at_end leaves it, so which model the queries came from is ambiguous`,
      `if the queries were generated by the saved model at the top, pass the checkpoints up to it: --checkpoints ${upTo.map((s) => s.shown).join(' ')}; to attribute the last checkpoint, pass every checkpoint folder: --checkpoints ${subs.map((s) => s.shown).join(' ')}`,
    );
  }
  const lastStep = last.step ?? (last.ownState && last.state ? stateOf(last.state).globalStep : null);
  const step = state?.globalStep ?? null;
  if (step !== null && lastStep !== null && step > lastStep) {
    log(`checkpoints: ${what} differs from every checkpoint-<step>/ subfolder and its ${TRAINER_STATE_FILE} says global_step ${step}, after ${basename(last.dir)}: taken as the run's end state, the last checkpoint`);
    return { ...top, step };
  }
  const why = state === null
    ? `there is no ${TRAINER_STATE_FILE} beside it to tell its step`
    : step === null ? `its ${TRAINER_STATE_FILE} has no global_step` : `its ${TRAINER_STATE_FILE} says global_step ${step}, not after ${basename(last.dir)}${lastStep === null ? ' (whose step is unknown)' : ` (step ${lastStep})`}`;
  throw new DdaError(
    `--checkpoints: ${what} differs from every checkpoint-<step>/ subfolder (${subs.map((s) => basename(s.dir)).join(', ')}) and ${why}, so where it belongs in the run is unknown`,
    `pass the checkpoint folders themselves in step order (--checkpoints ${subs.map((s) => s.shown).join(' ')}); if the top-level ${top.kind === 'lora' ? 'adapter' : 'model'} is the run's final state, copy its files into a folder of their own and pass that folder last`,
  );
}

/** The first entry where `earlier`'s log_history is not the beginning of `later`'s, or null when it is. */
function firstLogDifference(earlier: TrainerState, later: TrainerState): { index: number; a: unknown; b: unknown } | null {
  const same = (a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): boolean => {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k]));
  };
  for (let k = 0; k < earlier.history.length; k++) {
    const a = earlier.history[k] as Readonly<Record<string, unknown>>;
    const b = later.history[k];
    if (b === undefined || !same(a, b)) return { index: k, a, b };
  }
  return null;
}

/**
 * Checks that the checkpoints are one run's, in step order, each once: no two hold the same tensors;
 * steps (from the folder names or their own trainer_state.json) increase; the log_history of each
 * checkpoint's own trainer_state.json begins with that of the one before (Trainer appends to one
 * log_history over a run, resumed runs included). Checks that need a step or a trainer_state.json
 * are skipped for checkpoints without one, with a log line.
 */
function checkOneRun(items: readonly Loaded[], stateOf: (p: string) => TrainerState, log: (line: string) => void): void {
  const give = 'give the checkpoints of one fine-tuning run, in order, each once';
  for (let i = 0; i < items.length; i++) {
    for (let j = i + 1; j < items.length; j++) {
      const [a, b] = [items[i] as Loaded, items[j] as Loaded];
      if (resolve(a.dir) === resolve(b.dir)) {
        throw new DdaError(`--checkpoints names ${a.shown} twice (given itself and inside a trainer output folder given too, or given twice)`, give);
      }
      if (sameTensors(a, b)) {
        throw new DdaError(
          `--checkpoints gives the same checkpoint twice: ${a.shown} and ${b.shown} hold identical tensors`,
          `give each checkpoint once; trainer.save_model(output_dir) saves the final ${a.kind === 'lora' ? 'adapter' : 'model'} again at the top of the output folder, and the checkpoint-<step>/ folders alone are the run`,
        );
      }
    }
  }
  if (items.length < 2) return;
  const stepOf = (x: Loaded): number | null => x.step ?? (x.ownState && x.state ? stateOf(x.state).globalStep : null);
  const steps = items.map(stepOf);
  for (let i = 1; i < items.length; i++) {
    const [s0, s1] = [steps[i - 1], steps[i]];
    if (s0 === null || s0 === undefined || s1 === null || s1 === undefined || s1 > s0) continue;
    const known = steps.every((s) => s !== null);
    const order = known ? items.map((x, k) => ({ x, s: steps[k] as number })).sort((p, q) => p.s - q.s).map((p) => p.x.shown).join(' ') : null;
    throw new DdaError(
      `--checkpoints are not in step order: ${items[i - 1]?.shown} (step ${s0}) comes before ${items[i]?.shown} (step ${s1})`,
      s0 === s1 ? `two checkpoints at the same step come from different runs; ${give}` : `give them in training order${order ? `: --checkpoints ${order}` : ''}`,
    );
  }
  const unordered = items.filter((_, k) => steps[k] === null);
  // Folders named with a number but no step (epoch_1 ... epoch_10): a shell glob sorts them as text.
  const numbers = unordered.map((x) => /(\d+)\D*$/.exec(basename(x.dir))?.[1]).map((n) => (n === undefined ? null : Number(n)));
  if (unordered.length > 1 && numbers.every((n) => n !== null)) {
    const i = numbers.findIndex((n, k) => k > 0 && (n as number) <= (numbers[k - 1] as number));
    if (i > 0) {
      const order = unordered.map((x, k) => ({ x, n: numbers[k] as number })).sort((p, q) => p.n - q.n).map((p) => p.x.shown).join(' ');
      throw new DdaError(
        `--checkpoints: their names are numbered but not in increasing order (${unordered[i - 1]?.shown} before ${unordered[i]?.shown}; a shell glob sorts names as text, so epoch_10 comes before epoch_2), and no step is known to order them by`,
        `give them in training order: --checkpoints ${order} (or rename them if the numbers are not their order)`,
      );
    }
  }
  if (unordered.length > 0) log(`checkpoints: no step known for ${unordered.map((x) => x.shown).join(', ')} (no checkpoint-<step> name, no ${TRAINER_STATE_FILE} of its own): their order is taken as given, not checked`);
  const withLog = items.filter((x) => x.ownState && x.state);
  const without = items.filter((x) => !(x.ownState && x.state));
  if (without.length > 0) log(`checkpoints: no ${TRAINER_STATE_FILE} of their own in ${without.map((x) => x.shown).join(', ')}: whether they come from the same run as the others (their log_history) is not checked`);
  const emptyLogs: string[] = [];
  for (let i = 1; i < withLog.length; i++) {
    const [a, b] = [withLog[i - 1] as Loaded, withLog[i] as Loaded];
    const [sa, sb] = [stateOf(a.state as string), stateOf(b.state as string)];
    // An empty log is the beginning of every log: it proves nothing (Trainer logs every logging_steps,
    // 500 by default, more than a short run's steps). The run's settings are then what is compared
    // (not otherwise: a run resumed with more epochs changes them, and its log shows it is one run).
    if (sa.history.length === 0) {
      emptyLogs.push(a.shown);
      const setting = Object.keys(sa.runSettings).find((k) => k in sb.runSettings && JSON.stringify(sa.runSettings[k]) !== JSON.stringify(sb.runSettings[k]));
      if (setting !== undefined) {
        throw new DdaError(
          `checkpoints come from different runs: ${setting} is ${JSON.stringify(sa.runSettings[setting])} in ${a.state} and ${JSON.stringify(sb.runSettings[setting])} in ${b.state}, and the earlier one has logged nothing to show they are one run`,
          give,
        );
      }
    }
    const d = firstLogDifference(sa, sb);
    if (!d) continue;
    const show = (e: unknown): string => (e === undefined ? 'absent' : JSON.stringify(e));
    throw new DdaError(
      `checkpoints come from different runs: the training logs of ${a.shown} and ${b.shown} differ at entry ${d.index + 1} of log_history (${show(d.a)} in ${a.state}, ${show(d.b)} in ${b.state})`,
      `${give}: within one run an earlier checkpoint's log_history is the beginning of a later one's`,
    );
  }
  if (emptyLogs.length > 0) log(`checkpoints: the log_history of ${emptyLogs.join(', ')} is empty (nothing logged yet: Trainer logs every logging_steps steps, 500 by default), so whether the checkpoints after ${emptyLogs.length > 1 ? 'them' : 'it'} come from the same run is checked only on the run's settings (${RUN_SETTINGS.join(', ')}), not on the training log (a run with another learning rate or data passes); set logging_steps below the steps between checkpoints to have it checked`);
}

/**
 * Resolves and loads the checkpoints of a fine-tuning run, in order: each path is a PEFT adapter
 * folder, a full model folder, or a trainer output folder whose `checkpoint-<step>/` subfolders
 * are taken in step order. Weights at the top of a trainer output folder (`trainer.save_model`)
 * are compared by tensor content with its subfolders: the same as one of them, not counted twice;
 * different from all and saved after the last (by the global_step of the folder's
 * trainer_state.json), the run's last checkpoint; each decision is logged.
 *
 * @throws DdaError naming the path when a folder is none of these, holds weights in a format that
 *   is not read, when the checkpoints mix adapters and full models, when adapters differ in rank,
 *   alpha or target modules or name different base models, when two checkpoints hold the same
 *   tensors, when their steps decrease, when their trainer_state.json logs are not one run's
 *   (they come from different runs), when a trainer output folder's top-level model cannot be
 *   placed, when an adapter or a full model does not fit the base, or when `learningRates` has the
 *   wrong length.
 */
export function loadCheckpoints(paths: readonly string[], o: LoadCheckpointsOptions): Checkpoint[] {
  if (paths.length === 0) throw new DdaError('no checkpoints given', 'pass --checkpoints with the fine-tuning run\'s checkpoint folders, in order, or its output folder');
  const log = o.log ?? (() => {});
  const found = paths.map(findCheckpoints);
  for (const p of found) {
    if (p.innerAdapter) log(`checkpoints: every checkpoint-<step>/ of ${p.path} holds one adapter, in the subfolder '${p.innerAdapter}' (PEFT saves an adapter not named 'default' under its name): taken as the run's checkpoints`);
    const sub = p.checkpoints[0];
    if (p.top && sub && p.top.kind !== sub.kind) {
      throw new DdaError(
        `--checkpoints: the top of ${p.path} holds a ${p.top.kind === 'full' ? 'full model (a merged adapter?)' : 'LoRA adapter'} while its checkpoint-<step>/ subfolders hold ${sub.kind === 'full' ? 'full models' : 'LoRA adapters'}`,
        `pass the checkpoint folders themselves in step order (--checkpoints ${p.checkpoints.map((c) => c.shown).join(' ')})`,
      );
    }
  }
  const all = found.flatMap((p) => [...p.checkpoints, ...(p.top ? [p.top] : [])]);
  if (new Set(all.map((f) => f.kind)).size > 1) {
    throw new DdaError(
      `--checkpoints mixes LoRA adapters and full models (${all.map((f) => `${f.shown}: ${f.kind}`).join(', ')})`,
      'give the checkpoints of one fine-tuning run',
    );
  }
  const states = new Map<string, TrainerState>();
  const stateOf = (p: string): TrainerState => {
    let s = states.get(p);
    if (!s) states.set(p, (s = readTrainerState(p)));
    return s;
  };
  const items = found.flatMap((p) => {
    const subs = p.checkpoints.map((f) => load(f, o.base));
    const top = p.top ? resolveTop(p.path, subs, load(p.top, o.base), stateOf, log) : null;
    return top ? [...subs, top] : subs;
  });
  const first = items[0] as Loaded;
  for (const x of items.slice(1)) {
    if (x.kind !== 'lora') continue;
    const [a, b] = [first.lora as LoraConfig, x.lora as LoraConfig];
    if (a.rank !== b.rank || a.alpha !== b.alpha || a.targets.join() !== b.targets.join() || JSON.stringify(a.modules ?? null) !== JSON.stringify(b.modules ?? null)) {
      const desc = (l: LoraConfig): string => `r=${l.rank}, alpha=${l.alpha}, modules ${l.targets.map((t) => PEFT_MODULE_NAMES[t]).join('/')}${l.modules ? ` (${l.modules.length} with their own rank and scale)` : ''}`;
      throw new DdaError(`checkpoints come from different runs: ${first.dir} has ${desc(a)}, ${x.dir} has ${desc(b)}`, 'give the checkpoints of one fine-tuning run');
    }
    const savedOf = (l: Loaded): string => (l.saved ? `modules_to_save ${l.saved.modules.join(', ')}` : 'no modules_to_save');
    if (savedOf(first) !== savedOf(x)) throw new DdaError(`checkpoints come from different runs: ${first.dir} has ${savedOf(first)}, ${x.dir} has ${savedOf(x)}`, 'give the checkpoints of one fine-tuning run');
    if (first.baseName !== null && x.baseName !== null && first.baseName !== x.baseName) {
      throw new DdaError(`checkpoints come from different runs: ${first.dir} adapts '${first.baseName}', ${x.dir} adapts '${x.baseName}'`, 'give the checkpoints of one fine-tuning run');
    }
  }
  checkOneRun(items, stateOf, log);
  if (first.saved) log(`checkpoints: ${describeSavedModules(first.saved)}`);
  if (o.learningRates && o.learningRates.length !== items.length) {
    throw new DdaError(`--learning-rates gives ${o.learningRates.length} rates for ${items.length} checkpoints (${items.map((f) => f.shown).join(', ')})`, 'give one learning rate per checkpoint, in order');
  }
  const ids = new Map<string, number>();
  const overridden: string[] = [];
  const rates: string[] = [];
  const atEpochEnd: { id: string; epoch: number; end: number; perEpoch: number }[] = [];
  // The longest log: within one run each checkpoint's log_history begins the next one's (checkOneRun),
  // and rates logged after a checkpoint's step bound its interval's last steps.
  const runLog = items.map((f) => (f.state ? stateOf(f.state) : null)).reduce<TrainerState | null>((a, s) => (s && (!a || s.entries.length > a.entries.length) ? s : a), null);
  let previousStep = 0;
  const out = items.map((f, i) => {
    const name = f.name;
    const n = (ids.get(name) ?? 0) + 1;
    ids.set(name, n);
    const id = name === 'base' ? 'checkpoint-base' : n > 1 ? `${name}-${n}` : name;
    const state = f.state ? stateOf(f.state) : undefined;
    const step = f.step ?? (f.ownState ? state?.globalStep ?? null : null);
    const over = runLog && state && step !== null ? { ...learningRateOver(runLog, previousStep, step), from: previousStep, to: step, path: runLog.path } : null;
    if (over && over.how !== 'none') rates.push(`${id} ${round(over.rate)} (${describeIntervalRate(over)})`);
    if (step !== null) previousStep = step;
    const logged = over?.rate ?? Number.NaN;
    const given = o.learningRates?.[i];
    if (given !== undefined && !Number.isNaN(logged) && given !== logged) overridden.push(`${id}: ${given} given, ${round(logged)} from the log`);
    const lr = given ?? logged;
    // The checkpoint's own trainer_state.json says its epoch; else the last logged epoch up to its step; else its position.
    const ownEpoch = f.ownState ? state?.epoch ?? null : null;
    const rawEpoch = ownEpoch ?? (state && step !== null ? [...state.entries].reverse().find((e) => e.step <= step && e.epoch !== null)?.epoch : null) ?? i + 1;
    const perEpoch = state ? stepsPerEpoch(state) : null;
    const end = epochEnd(rawEpoch, perEpoch);
    if (end !== null && end !== rawEpoch && perEpoch !== null) atEpochEnd.push({ id, epoch: rawEpoch, end, perEpoch });
    return {
      id, dir: f.dir, kind: f.kind, weights: f.weights, lora: f.lora, step, ...(f.saved ? { saved: f.saved } : {}), ...(f.baseName ? { adapterBase: f.baseName } : {}),
      ...(state ? { trainerState: state } : {}),
      ...(over && given === undefined && over.how !== 'none' ? { learningRateFrom: over } : {}),
      info: { id, epoch: end ?? rawEpoch, learningRate: lr },
      hash: f.hash,
    };
  });
  if (rates.length > 0 && o.learningRates === undefined) log(`checkpoints: learning rates from ${TRAINER_STATE_FILE}, read as Trainer before transformers 4.51 logs them (at step s the rate of step s + 1; from 4.51 the rate of step s, one step's change apart: pass --learning-rates where that matters): ${rates.join('; ')}`);
  if (atEpochEnd.length > 0) {
    log(`checkpoints: ${atEpochEnd.map((c) => `${c.id} (epoch ${c.epoch}, ${round(c.perEpoch)} steps per epoch)`).join(', ')} within half an optimizer step of an epoch's end (the epochs a trainer writes when the batches do not divide an epoch evenly; steps per epoch = global_step / epoch of ${TRAINER_STATE_FILE}): taken as the end of epoch ${atEpochEnd.map((c) => c.end).join(', ')}`);
  }
  // Checkpoints evenly spaced but starting later than that spacing: the earlier ones were most
  // likely deleted (Trainer's save_total_limit keeps only the last few), and denoising averages fewer epochs.
  const steps = out.map((c) => c.step);
  if (steps.length >= 2 && steps.every((x): x is number => x !== null)) {
    const gaps = steps.slice(1).map((x, i) => x - (steps[i] as number));
    const g = gaps[0] as number;
    if (g > 0 && gaps.every((x) => x === g) && (steps[0] as number) >= 2 * g) {
      log(`warning: the checkpoints are ${g} steps apart, but the first is at step ${steps[0]}: the ${Math.floor((steps[0] as number) / g) - 1} earlier one(s) (steps ${Array.from({ length: Math.floor((steps[0] as number) / g) - 1 }, (_, k) => (k + 1) * g).join(', ')}) are missing, most likely deleted by save_total_limit; denoising averages the ${steps.length} found, and the first one's learning rate covers steps 1–${steps[0]} (pass the folders you mean, or --learning-rates)`);
    }
  }
  if (overridden.length > 0) log(`--learning-rates differs from the learning rate ${TRAINER_STATE_FILE} logged at ${overridden.length} checkpoint(s) (${overridden.join('; ')}): the given rates are used`);
  // load_best_model_at_end: the run ends on its best checkpoint, which may not be the last one given.
  const last = out[out.length - 1];
  const best = last?.trainerState?.bestModelCheckpoint;
  if (last && best && basename(best) !== basename(last.dir)) {
    log(`warning: ${last.trainerState?.path} names best_model_checkpoint ${best}, not the last checkpoint ${last.id}: if the run used load_best_model_at_end, the model it ended with (and deployed) is that one, while the plain and debiased scores here are of ${last.id}; pass the checkpoints up to ${basename(best)} if that is the model to explain`);
  }
  return out;
}
