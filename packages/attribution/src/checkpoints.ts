/**
 * The checkpoints of a fine-tuning run, as users have them on disk: PEFT LoRA adapter folders
 * (`adapter_config.json` + `adapter_model.safetensors`), full model folders (`config.json` +
 * safetensors), or a trainer output folder holding `checkpoint-<step>/` subfolders (Hugging Face
 * Trainer, TRL, LLaMA-Factory, axolotl), ordered by step. The learning rate in effect at each
 * checkpoint is read from `trainer_state.json` (its `log_history`) where it is there.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { DdaError, type CheckpointInfo } from '@dda/core';
import {
  ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, CONFIG_FILE, PEFT_MODULE_NAMES, checkLoraFits, hasWeights, loadModelFolder, readPeftAdapter,
  type DecoderConfig, type LoraConfig, type TensorMap,
} from '@dda/model';
import { hashFiles } from './hashing.js';

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
  /** Epoch (from trainer_state.json, else the 1-based position) and the learning rate in effect (NaN if unknown). */
  readonly info: CheckpointInfo;
  /** Global step from the folder name or trainer_state.json, or null. */
  readonly step: number | null;
  /** Content hashes of the files that define it. */
  readonly hash: Readonly<Record<string, string>>;
}

/** What one `--checkpoints` path turned out to be, before loading. */
interface FoundCheckpoint {
  readonly dir: string;
  readonly kind: 'lora' | 'full';
  readonly step: number | null;
  /** trainer_state.json to read the learning rate from (the checkpoint's own, else its run's). */
  readonly state: string | null;
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/** Files a folder has that look like weights the loader cannot read, for the error message. */
function otherWeightFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.(bin|pt|pth|gguf|h5|msgpack|ckpt)$/i.test(f));
}

/** Expands one path into checkpoint folders. @throws DdaError naming the path when it is none of the known layouts. */
function findCheckpoints(path: string): FoundCheckpoint[] {
  const dir = resolve(path);
  if (!isDir(dir)) throw new DdaError(`--checkpoints: '${path}' is not a folder`, 'give PEFT adapter folders, model folders, or a trainer output folder holding checkpoint-<step>/ subfolders');
  const own = join(dir, TRAINER_STATE_FILE);
  const state = existsSync(own) ? own : null;
  const step = CHECKPOINT_DIR.exec(basename(dir));
  const stepOf = step ? Number(step[1]) : null;
  if (existsSync(join(dir, ADAPTER_CONFIG_FILE))) return [{ dir, kind: 'lora', step: stepOf, state }];
  if (existsSync(join(dir, CONFIG_FILE)) && hasWeights(dir)) return [{ dir, kind: 'full', step: stepOf, state }];
  const subs = readdirSync(dir).filter((f) => CHECKPOINT_DIR.test(f) && isDir(join(dir, f)));
  if (subs.length > 0) {
    subs.sort((a, b) => Number(CHECKPOINT_DIR.exec(a)?.[1]) - Number(CHECKPOINT_DIR.exec(b)?.[1]));
    return subs.flatMap((s) => {
      const found = findCheckpoints(join(dir, s));
      // A checkpoint folder without its own trainer_state.json reads the run's.
      return found.map((f) => (f.state === null && state !== null ? { ...f, state } : f));
    });
  }
  const other = otherWeightFiles(dir);
  if (other.length > 0) {
    throw new DdaError(
      `--checkpoints: '${path}' holds ${other.join(', ')}, weights in a format this tool does not read`,
      'convert them to safetensors, e.g. in Python: from safetensors.torch import save_file; save_file(torch.load(path, map_location="cpu"), "adapter_model.safetensors") (for a full model: model.save_pretrained(dir, safe_serialization=True))',
    );
  }
  throw new DdaError(
    `--checkpoints: '${path}' is neither a PEFT adapter folder (${ADAPTER_CONFIG_FILE}), a model folder (${CONFIG_FILE} with safetensors weights) nor a trainer output folder (checkpoint-<step>/ subfolders)`,
    'give the folders your fine-tuning run saved, in order',
  );
}

/** A parsed trainer_state.json: the steps' learning rates and epochs. */
interface TrainerLog {
  readonly entries: readonly { readonly step: number; readonly epoch: number | null; readonly learningRate: number | null }[];
  readonly globalStep: number | null;
  readonly epoch: number | null;
}

function readTrainerState(path: string): TrainerLog {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DdaError(`${path}: not valid JSON (${(e as Error).message})`, 'fix the file or remove it (learning rates are then unknown)');
  }
  const s = j as { log_history?: unknown; global_step?: unknown; epoch?: unknown } | null;
  if (s === null || typeof s !== 'object') throw new DdaError(`${path}: not a trainer state object`, 'expected the trainer_state.json that Hugging Face Trainer writes');
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const entries = Array.isArray(s.log_history)
    ? s.log_history.flatMap((e: unknown) => {
      const x = e as { step?: unknown; epoch?: unknown; learning_rate?: unknown } | null;
      const step = num(x?.step);
      return step === null ? [] : [{ step, epoch: num(x?.epoch), learningRate: num(x?.learning_rate) }];
    })
    : [];
  return { entries, globalStep: num(s.global_step), epoch: num(s.epoch) };
}

/**
 * The learning rate in effect at `step`: that of the last `log_history` entry with a learning rate
 * at or before the step (Trainer logs the rate of the step it logs), NaN when there is none.
 */
export function learningRateAt(log: TrainerLog, step: number): number {
  let lr = Number.NaN;
  for (const e of log.entries) if (e.step <= step && e.learningRate !== null) lr = e.learningRate;
  return lr;
}

/** Options of {@link loadCheckpoints}. */
export interface LoadCheckpointsOptions {
  /** The base model's config: every checkpoint must fit it. */
  readonly base: DecoderConfig;
  /** Learning rates to use instead of trainer_state.json's, one per checkpoint in order. */
  readonly learningRates?: readonly number[];
}

/**
 * Resolves and loads the checkpoints of a fine-tuning run, in order: each path is a PEFT adapter
 * folder, a full model folder, or a trainer output folder whose `checkpoint-<step>/` subfolders
 * are taken in step order.
 *
 * @throws DdaError naming the path when a folder is none of these, holds weights in a format that
 *   is not read, when the checkpoints mix adapters and full models, when adapters differ in rank,
 *   alpha or target modules or name different base models (they come from different runs), when
 *   an adapter or a full model does not fit the base, or when `learningRates` has the wrong length.
 */
export function loadCheckpoints(paths: readonly string[], o: LoadCheckpointsOptions): Checkpoint[] {
  if (paths.length === 0) throw new DdaError('no checkpoints given', 'pass --checkpoints with the fine-tuning run\'s checkpoint folders, in order, or its output folder');
  const found = paths.flatMap(findCheckpoints);
  const kinds = new Set(found.map((f) => f.kind));
  if (kinds.size > 1) {
    throw new DdaError(
      `--checkpoints mixes LoRA adapters and full models (${found.map((f) => `${basename(f.dir)}: ${f.kind}`).join(', ')})`,
      'give the checkpoints of one fine-tuning run',
    );
  }
  if (o.learningRates && o.learningRates.length !== found.length) {
    throw new DdaError(`--learning-rates gives ${o.learningRates.length} rates for ${found.length} checkpoints`, 'give one learning rate per checkpoint, in order');
  }
  const ids = new Map<string, number>();
  const out: Checkpoint[] = [];
  let first: { lora: LoraConfig | null; baseName: string | null; dir: string } | null = null;
  found.forEach((f, i) => {
    const name = basename(f.dir);
    const n = (ids.get(name) ?? 0) + 1;
    ids.set(name, n);
    const id = name === 'base' ? 'checkpoint-base' : n > 1 ? `${name}-${n}` : name;
    const log = f.state ? readTrainerState(f.state) : null;
    const step = f.step ?? log?.globalStep ?? null;
    const lr = o.learningRates?.[i] ?? (log && step !== null ? learningRateAt(log, step) : Number.NaN);
    const epoch = (log && step !== null ? [...log.entries].reverse().find((e) => e.step <= step && e.epoch !== null)?.epoch : null) ?? i + 1;
    if (f.kind === 'lora') {
      const adapter = readPeftAdapter(f.dir);
      checkLoraFits(o.base, adapter.config, adapter.weights, join(f.dir, ADAPTER_WEIGHTS_FILE));
      if (first) {
        const a = first.lora as LoraConfig;
        const b = adapter.config;
        const same = a.rank === b.rank && a.alpha === b.alpha && a.targets.join() === b.targets.join();
        if (!same) {
          const desc = (l: LoraConfig): string => `r=${l.rank}, alpha=${l.alpha}, modules ${l.targets.map((t) => PEFT_MODULE_NAMES[t]).join('/')}`;
          throw new DdaError(`checkpoints come from different runs: ${first.dir} has ${desc(a)}, ${f.dir} has ${desc(b)}`, 'give the checkpoints of one fine-tuning run');
        }
        if (first.baseName !== null && adapter.baseModelNameOrPath !== null && first.baseName !== adapter.baseModelNameOrPath) {
          throw new DdaError(`checkpoints come from different runs: ${first.dir} adapts '${first.baseName}', ${f.dir} adapts '${adapter.baseModelNameOrPath}'`, 'give the checkpoints of one fine-tuning run');
        }
      } else {
        first = { lora: adapter.config, baseName: adapter.baseModelNameOrPath, dir: f.dir };
      }
      out.push({
        id, dir: f.dir, kind: 'lora', weights: adapter.weights, lora: adapter.config, step,
        info: { id, epoch, learningRate: lr },
        hash: hashFiles(f.dir, [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]),
      });
    } else {
      const m = loadModelFolder(f.dir);
      const diff = (Object.keys(o.base) as (keyof DecoderConfig)[]).filter((k) => k !== 'maxSeqLen' && JSON.stringify(o.base[k]) !== JSON.stringify(m.config[k]));
      if (diff.length > 0) {
        throw new DdaError(`checkpoint ${f.dir} does not fit the base model: ${diff.map((k) => `${k} ${JSON.stringify(m.config[k])} vs ${JSON.stringify(o.base[k])}`).join(', ')}`, 'give checkpoints fine-tuned from this base model');
      }
      out.push({
        id, dir: f.dir, kind: 'full', weights: m.weights, lora: null, step,
        info: { id, epoch, learningRate: lr },
        hash: hashFiles(f.dir, readdirSync(f.dir).filter((x) => x === CONFIG_FILE || x.endsWith('.safetensors') || x.endsWith('.safetensors.index.json')).sort()),
      });
    }
  });
  return out;
}
