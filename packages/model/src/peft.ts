import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError } from '@dda/core';
import { ALL_LORA_TARGETS, type DecoderConfig, type LoraConfig, type LoraTarget, validateLoraConfig } from './config.js';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from './files.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { type TensorMap, assertFiniteTensors, loraWeightSpecs, targetModule } from './weights.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** PEFT module name (`target_modules` entry) of each LoRA target. */
export const PEFT_MODULE_NAMES: Readonly<Record<LoraTarget, string>> = {
  q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj',
};

/** A PEFT LoRA adapter: its config, weights (PEFT names) and the base model it was trained on, if recorded. */
export interface PeftAdapter {
  readonly config: LoraConfig;
  readonly weights: TensorMap;
  readonly baseModelNameOrPath: string | null;
}

/** adapter_config.json fields read or checked here. */
const READ_FIELDS = new Set(['peft_type', 'r', 'lora_alpha', 'target_modules', 'base_model_name_or_path']);
/** Fields that do not change the adapted model's function (bookkeeping, dropout, init): ignored whatever their value. */
const IGNORED_FIELDS = new Set(['task_type', 'lora_dropout', 'inference_mode', 'init_lora_weights', 'revision', 'auto_mapping', 'peft_version', 'runtime_config']);
/**
 * What a user can do with an adapter this implementation does not compute: merge it into the base
 * model and attribute the merged models as full checkpoints (every parameter's gradient).
 */
const MERGE_INSTEAD =
  'merge every checkpoint into the base model in Python (PeftModel.from_pretrained(base, checkpoint).merge_and_unload().save_pretrained(out, safe_serialization=True)) ' +
  'and pass the merged folders to --checkpoints as full-model checkpoints (gradients then over every parameter of the model: slower and larger, but the model you trained)';

/** A field whose value changes the adapted model's function: accepted only at `noOp`; otherwise refused with why. */
interface VariantField {
  readonly noOp: unknown;
  /** What the adapter with value `v` computes (config `j` for the numbers). */
  readonly uses: (v: unknown, j: Readonly<Record<string, unknown>>) => string;
  /** Why it cannot be computed correctly here. */
  readonly why: string;
  /** What the user can do instead. */
  readonly instead: (j: Readonly<Record<string, unknown>>) => string;
}

const fmt = (x: number): string => String(Number(x.toPrecision(6)));

/** Fields whose value changes the function, with their no-op value and why another value is refused. */
const VARIANT_FIELDS: Readonly<Record<string, VariantField>> = {
  use_rslora: {
    noOp: false,
    uses: (_, j) => {
      const [r, a] = [Number(j.r), Number(j.lora_alpha ?? 8)];
      return `rank-stabilised LoRA (use_rslora true): its update B·A is scaled by lora_alpha/√r = ${a}/√${r} = ${fmt(a / Math.sqrt(r))}, not by lora_alpha/r = ${fmt(a / r)}`;
    },
    why: 'this implementation computes plain LoRA only (scale lora_alpha/r); setting use_rslora to false alone would attribute a model whose LoRA updates have another size than the one you trained, so the scores would be wrong',
    instead: (j) => {
      const [r, a] = [Number(j.r), Number(j.lora_alpha ?? 8)];
      return `the same model as plain LoRA has lora_alpha = lora_alpha·√r = ${fmt(a * Math.sqrt(r))}: in a copy of every checkpoint, set both use_rslora false and lora_alpha ${fmt(a * Math.sqrt(r))} (scale ${fmt(a / Math.sqrt(r))} unchanged); or ${MERGE_INSTEAD}`;
    },
  },
  use_dora: {
    noOp: false,
    uses: () => 'weight-decomposed LoRA (DoRA, use_dora true): each adapted weight W + s·B·A is rescaled column by column to a learned magnitude (the lora_magnitude_vector tensors)',
    why: 'this implementation computes plain LoRA only (W + s·B·A, no magnitudes); setting use_dora to false would drop the learned magnitudes and attribute another model than the one you trained, so the scores would be wrong',
    instead: () => MERGE_INSTEAD,
  },
  rank_pattern: {
    noOp: {},
    uses: (v, j) => `ranks of its own for some modules (rank_pattern ${JSON.stringify(v)}), other than r = ${JSON.stringify(j.r)}, each with its own scale lora_alpha/rank`,
    why: 'this implementation computes one rank and one scale for every adapted module; removing rank_pattern would read those modules with the wrong rank and scale (or fail on their tensor shapes), so the scores would be wrong',
    instead: () => MERGE_INSTEAD,
  },
  alpha_pattern: {
    noOp: {},
    uses: (v, j) => `an alpha of its own for some modules (alpha_pattern ${JSON.stringify(v)}), other than lora_alpha = ${JSON.stringify(j.lora_alpha ?? 8)}, so those modules have another scale`,
    why: 'this implementation computes one scale lora_alpha/r for every adapted module; removing alpha_pattern would read those modules with the wrong scale, so the scores would be wrong',
    instead: () => MERGE_INSTEAD,
  },
  bias: {
    noOp: 'none',
    uses: (v) => `trained bias vectors (bias ${JSON.stringify(v)})`,
    why: 'this implementation adapts weight matrices only; setting bias to "none" would drop the trained biases and attribute another model, so the scores would be wrong',
    instead: () => MERGE_INSTEAD,
  },
  modules_to_save: {
    noOp: null,
    uses: (v) => `fully trained copies of modules outside LoRA (modules_to_save ${JSON.stringify(v)})`,
    why: 'this implementation trains and reads LoRA tensors only; removing modules_to_save would use the base model\'s modules instead of the trained ones, so the scores would be wrong',
    instead: () => MERGE_INSTEAD,
  },
  layers_to_transform: {
    noOp: null,
    uses: (v) => `LoRA on some layers only (layers_to_transform ${JSON.stringify(v)})`,
    why: 'this implementation adapts every layer; removing layers_to_transform would not match the adapter\'s tensors',
    instead: () => MERGE_INSTEAD,
  },
  layers_pattern: {
    noOp: null,
    uses: (v) => `LoRA on the layers of a pattern only (layers_pattern ${JSON.stringify(v)})`,
    why: 'this implementation adapts every layer; removing layers_pattern would not match the adapter\'s tensors',
    instead: () => MERGE_INSTEAD,
  },
  exclude_modules: {
    noOp: null,
    uses: (v) => `LoRA on some matching modules only (exclude_modules ${JSON.stringify(v)})`,
    why: 'this implementation adapts every target module of every layer; removing exclude_modules would not match the adapter\'s tensors',
    instead: () => MERGE_INSTEAD,
  },
  fan_in_fan_out: {
    noOp: false,
    uses: () => 'weights stored transposed (fan_in_fan_out true, the Conv1D layout of GPT-2-style models)',
    why: 'this implementation reads LLaMA, Qwen2 and Mistral linear layers, stored [out, in]; setting fan_in_fan_out to false would read the tensors transposed wrongly',
    instead: () => 'attribute an adapter of a LLaMA, Qwen2 or Mistral model',
  },
  megatron_config: {
    noOp: null,
    uses: (v) => `Megatron tensor-parallel layers (megatron_config ${JSON.stringify(v)})`,
    why: 'this implementation computes plain LoRA on ordinary linear layers',
    instead: () => MERGE_INSTEAD,
  },
  megatron_core: {
    noOp: 'megatron.core',
    uses: (v) => `Megatron layers from ${JSON.stringify(v)}`,
    why: 'this implementation computes plain LoRA on ordinary linear layers',
    instead: () => MERGE_INSTEAD,
  },
};

const isEmptyValue = (v: unknown): boolean =>
  v === null || v === false || v === 'none' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

/**
 * Parses a PEFT `adapter_config.json` (already JSON-parsed) into a LoraConfig. Only LoRA with
 * plain scaling (alpha / r) on the q, k, v, o, gate, up, down projections of every layer is
 * supported; anything else (rsLoRA, DoRA, biases, per-module ranks, other modules) throws a
 * DdaError naming the field and value, what the adapter computes with it, why that cannot be
 * computed here (editing the field would attribute another model) and what to do instead. Unknown fields with an empty value (null, false, {}, [])
 * are ignored, others rejected.
 */
export function parseAdapterConfig(json: unknown, fileName = ADAPTER_CONFIG_FILE): { config: LoraConfig; baseModelNameOrPath: string | null } {
  const fail = (what: string, hint: string): never => {
    throw new DdaError(`${fileName}: ${what}`, hint);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('not a JSON object', 'a PEFT adapter_config.json is a JSON object');
  const j = json as Record<string, unknown>;
  if (j.peft_type !== 'LORA') fail(`peft_type ${JSON.stringify(j.peft_type)} is not supported`, "only LoRA adapters (peft_type 'LORA') are read");
  for (const [k, v] of Object.entries(j)) {
    if (READ_FIELDS.has(k) || IGNORED_FIELDS.has(k)) continue;
    const variant = VARIANT_FIELDS[k];
    if (variant) {
      if (!isEmptyValue(v) && JSON.stringify(v) !== JSON.stringify(variant.noOp)) {
        fail(`the adapter uses ${variant.uses(v, j)}, which is not supported: ${variant.why}`, variant.instead(j));
      }
    } else if (!isEmptyValue(v)) {
      fail(`unsupported field '${k}' = ${JSON.stringify(v)}`, 'remove it if it does not change the adapter, or use a plain LoRA adapter');
    }
  }
  const r = j.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r <= 0) fail(`'r' must be a positive integer, got ${JSON.stringify(r)}`, 'fix the rank');
  const alpha = j.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0)) fail(`'lora_alpha' must be a positive number, got ${JSON.stringify(alpha)}`, 'fix the value');
  const tm = j.target_modules;
  let targets: LoraTarget[];
  if (tm === 'all-linear') {
    targets = [...ALL_LORA_TARGETS];
  } else {
    if (!Array.isArray(tm) || tm.length === 0 || !tm.every((m) => typeof m === 'string')) {
      fail(`'target_modules' must be a non-empty list of module names or 'all-linear', got ${JSON.stringify(tm)}`, `use names from ${Object.values(PEFT_MODULE_NAMES).join(', ')}`);
    }
    const byName = new Map(Object.entries(PEFT_MODULE_NAMES).map(([t, n]) => [n, t as LoraTarget]));
    const unknown = (tm as string[]).filter((m) => !byName.has(m));
    if (unknown.length) fail(`unsupported target module${unknown.length > 1 ? 's' : ''} ${unknown.map((m) => `'${m}'`).join(', ')}`, `LoRA is supported on ${Object.values(PEFT_MODULE_NAMES).join(', ')}`);
    // Stable order: the order of ALL_LORA_TARGETS, whatever the file's order.
    const set = new Set((tm as string[]).map((m) => byName.get(m) as LoraTarget));
    targets = ALL_LORA_TARGETS.filter((t) => set.has(t));
  }
  const base = j.base_model_name_or_path;
  if (base !== undefined && base !== null && typeof base !== 'string') fail(`'base_model_name_or_path' must be a string`, 'fix the value');
  const config: LoraConfig = { rank: r as number, alpha: alpha as number, targets };
  validateLoraConfig(config);
  return { config, baseModelNameOrPath: (base as string | null | undefined) ?? null };
}

/** adapter_config.json contents of a LoRA config, in PEFT's field names. */
export function toAdapterConfig(l: LoraConfig, baseModelNameOrPath: string | null = null): Record<string, unknown> {
  validateLoraConfig(l);
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModelNameOrPath,
    r: l.rank,
    lora_alpha: l.alpha,
    lora_dropout: 0,
    target_modules: l.targets.map((t) => PEFT_MODULE_NAMES[t]),
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
    inference_mode: true,
  };
}

/**
 * Throws a DdaError unless `weights` are exactly the LoRA tensors that `lora` needs on a model of
 * shape `model`: every tensor present with its [r, in] / [out, r] shape, none extra. The message
 * names the tensor and says whether the rank, the model size or the targets differ.
 */
export function checkLoraFits(model: DecoderConfig, lora: LoraConfig, weights: TensorMap, source = 'LoRA adapter'): void {
  const specs = loraWeightSpecs(model, lora);
  const expected = new Set(specs.map((s) => s.name));
  for (const { name, shape, part } of specs) {
    const got = weights.get(name);
    if (!got) throw new DdaError(`${source} is missing '${name}'`, 'the adapter does not fit this model (different number of layers or target modules)');
    if (got.shape.join(',') !== shape.join(',')) {
      const rankAxis = part === 'A' ? 0 : 1;
      const why = got.shape.length === 2 && got.shape[rankAxis] !== lora.rank && got.shape[1 - rankAxis] === shape[1 - rankAxis]
        ? `its rank is ${got.shape[rankAxis]}, the adapter config says r = ${lora.rank}`
        : 'the adapter was trained for a model of another size';
      throw new DdaError(`${source}: tensor '${name}' has shape [${got.shape.join(', ')}], this model needs [${shape.join(', ')}]`, why);
    }
  }
  const extra = [...weights.keys()].filter((k) => !expected.has(k));
  if (extra.length) {
    const layerOf = (k: string): number => Number(/\.layers\.(\d+)\./.exec(k)?.[1] ?? -1);
    const beyond = extra.find((k) => layerOf(k) >= model.numLayers);
    throw new DdaError(
      `${source} has tensor${extra.length > 1 ? 's' : ''} this model and adapter config do not use: ${extra.slice(0, 4).map((k) => `'${k}'`).join(', ')}${extra.length > 4 ? ` and ${extra.length - 4} more` : ''}`,
      beyond ? `the adapter has layers beyond this model's ${model.numLayers}` : `its target_modules (${lora.targets.map((t) => PEFT_MODULE_NAMES[t]).join(', ')}) must list every adapted module; modules of layer 0 are named like '${targetModule(0, 'q')}'`,
    );
  }
  assertFiniteTensors(weights, source);
}

/**
 * Reads a PEFT adapter folder (`adapter_config.json`, `adapter_model.safetensors`). With `model`,
 * also checks that the adapter fits it ({@link checkLoraFits}).
 */
export function readPeftAdapter(dir: string, model?: DecoderConfig): PeftAdapter {
  const { config, baseModelNameOrPath } = parseAdapterConfig(readJsonFile(dir, ADAPTER_CONFIG_FILE), join(dir, ADAPTER_CONFIG_FILE));
  const path = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(path)) throw new DdaError(`${path}: file not found`, `a PEFT adapter folder needs ${ADAPTER_WEIGHTS_FILE} (adapter_model.bin pickles are not read)`);
  const weights = readSafetensors(readFileSync(path), path).tensors;
  if (model) checkLoraFits(model, config, weights, path);
  return { config, weights, baseModelNameOrPath };
}

/** Writes a PEFT adapter folder atomically (each file: temporary file, then rename). */
export function writePeftAdapter(dir: string, config: LoraConfig, weights: TensorMap, baseModelNameOrPath: string | null = null): void {
  writeFileAtomic(join(dir, ADAPTER_WEIGHTS_FILE), writeSafetensors(weights, { format: 'pt' }));
  writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), toAdapterConfig(config, baseModelNameOrPath));
}
