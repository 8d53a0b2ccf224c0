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
/** Fields whose value changes the function: accepted only at their no-op value. */
const NO_OP_VALUES: Readonly<Record<string, unknown>> = {
  bias: 'none', fan_in_fan_out: false, use_rslora: false, use_dora: false, modules_to_save: null, layers_to_transform: null,
  layers_pattern: null, rank_pattern: {}, alpha_pattern: {}, megatron_config: null, megatron_core: 'megatron.core', exclude_modules: null,
};

const isEmptyValue = (v: unknown): boolean =>
  v === null || v === false || v === 'none' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

/**
 * Parses a PEFT `adapter_config.json` (already JSON-parsed) into a LoraConfig. Only LoRA with
 * plain scaling (alpha / r) on the q, k, v, o, gate, up, down projections of every layer is
 * supported; anything else (rsLoRA, DoRA, biases, per-module ranks, other modules) throws a
 * DdaError naming the field and value. Unknown fields with an empty value (null, false, {}, [])
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
    if (k in NO_OP_VALUES) {
      if (!isEmptyValue(v) && JSON.stringify(v) !== JSON.stringify(NO_OP_VALUES[k])) {
        fail(`${k} ${JSON.stringify(v)} is not supported`, `this implementation computes plain LoRA only: ${k} must be ${JSON.stringify(NO_OP_VALUES[k])}`);
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
