import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError } from '@dda/core';
import { ALL_LORA_TARGETS, type DecoderConfig, type LoraConfig, type LoraModule, type LoraTarget, loraModuleList, validateLoraConfig } from './config.js';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from './files.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { type TensorMap, assertFiniteTensors, decoderWeightSpecs, loraWeightSpecs, targetModule, tensorsEqual } from './weights.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** PEFT module name (`target_modules` entry) of each LoRA target. */
export const PEFT_MODULE_NAMES: Readonly<Record<LoraTarget, string>> = {
  q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj',
};

/**
 * The modules a PEFT adapter trained fully and saved beside its LoRA tensors (`modules_to_save`):
 * PEFT's ModulesToSaveWrapper runs the trained copy instead of the base model's module, so the
 * adapted model is the base model with these tensors replaced.
 */
export interface SavedModules {
  /** `modules_to_save` as adapter_config.json gives it. */
  readonly entries: readonly string[];
  /** The base model's modules they select (PEFT's suffix match), e.g. `lm_head`, `model.embed_tokens`. */
  readonly modules: readonly string[];
  /** The trained copies' tensors, named as the base model's (e.g. `lm_head.weight`; the file names them `base_model.model.lm_head.weight`). */
  readonly weights: TensorMap;
  /**
   * Of `modules`, the embedding layers the file holds without modules_to_save naming them: PEFT's
   * get_peft_model_state_dict saves them (save_embedding_layers) and set_peft_model_state_dict
   * loads them over the base model's, so they replace the base model's as saved modules do.
   */
  readonly embeddingLayers: readonly string[];
}

/** A PEFT LoRA adapter: its config, LoRA weights (PEFT names), saved modules and the base model it was trained on, if recorded. */
export interface PeftAdapter {
  readonly config: LoraConfig;
  /** The LoRA tensors only (PEFT names). */
  readonly weights: TensorMap;
  readonly baseModelNameOrPath: string | null;
  /** `modules_to_save`: the trained modules that replace the base model's in the forward pass, or null. */
  readonly savedModules: SavedModules | null;
}

/** adapter_config.json fields read or checked here. */
const READ_FIELDS = new Set([
  'peft_type', 'r', 'lora_alpha', 'target_modules', 'base_model_name_or_path',
  'use_rslora', 'rank_pattern', 'alpha_pattern', 'layers_to_transform', 'layers_pattern', 'exclude_modules', 'modules_to_save',
]);
/**
 * Fields that do not change the adapted model's function whatever their value: bookkeeping, dropout,
 * runtime options, the settings of initialisations (whether an initialisation changed the base model
 * is read from init_lora_weights), the group size of QALoRA (refused by use_qalora), the tying of
 * saved embeddings (ensure_weight_tying: it acts on models with tied embeddings only, where
 * modules_to_save of embed_tokens or lm_head is refused) and the Megatron module to import (used only with
 * megatron_config, refused).
 */
const IGNORED_FIELDS = new Set([
  'task_type', 'lora_dropout', 'inference_mode', 'revision', 'auto_mapping', 'peft_version', 'runtime_config',
  'loftq_config', 'eva_config', 'corda_config', 'lora_ga_config', 'qalora_group_size', 'ensure_weight_tying', 'megatron_core',
]);
/** init_lora_weights values that leave the base weights as they are (B = 0 or random A, B): the adapter adds to the unmodified base. */
const BASE_PRESERVING_INITS: readonly unknown[] = [true, false, 'gaussian', 'eva'];
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
  use_dora: {
    noOp: false,
    uses: () => 'weight-decomposed LoRA (DoRA, use_dora true): each adapted weight W + s·B·A is rescaled column by column to a learned magnitude (the lora_magnitude_vector tensors)',
    why: 'this implementation computes plain LoRA only (W + s·B·A, no magnitudes); setting use_dora to false would drop the learned magnitudes and attribute another model than the one you trained, so the scores would be wrong',
    instead: () => `${MERGE_INSTEAD}; or retrain with use_dora false (plain LoRA), whose checkpoints are attributed as adapters`,
  },
  bias: {
    noOp: 'none',
    uses: (v) => `trained bias vectors (bias ${JSON.stringify(v)})`,
    why: 'this implementation adapts weight matrices only; setting bias to "none" would drop the trained biases and attribute another model, so the scores would be wrong',
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
  init_lora_weights: {
    noOp: true,
    uses: (v) => `an initialisation that changes the base model's weights (init_lora_weights ${JSON.stringify(v)}: PiSSA, OLoRA, CorDA, LoftQ and LoRA-GA subtract their initial update from, or quantise, the base weights; MiCA freezes B), so the adapter applies to a modified base model`,
    why: 'this implementation adds the adapter to the unmodified base model you give it, which is not the model you trained',
    instead: () => `save the adapter converted to plain LoRA (PEFT: save_pretrained(out, path_initial_model_for_weight_conversion=<the initial adapter>), which writes init_lora_weights true), or ${MERGE_INSTEAD}`,
  },
  lora_bias: {
    noOp: false,
    uses: () => 'a trained bias on each lora_B (lora_bias true)',
    why: 'this implementation computes s·B·A without a bias; dropping it would attribute another model',
    instead: () => MERGE_INSTEAD,
  },
  layer_replication: {
    noOp: null,
    uses: (v) => `layers replicated from the base model (layer_replication ${JSON.stringify(v)}), so the adapted model has more layers than the base`,
    why: 'this implementation adapts the base model\'s own layers',
    instead: () => MERGE_INSTEAD,
  },
  target_parameters: {
    noOp: null,
    uses: (v) => `LoRA on raw parameters rather than linear modules (target_parameters ${JSON.stringify(v)}, e.g. mixture-of-experts weights)`,
    why: 'this implementation adapts the q, k, v, o, gate, up and down linear maps only',
    instead: () => MERGE_INSTEAD,
  },
  trainable_token_indices: {
    noOp: null,
    uses: (v) => `trained embedding rows of some tokens (trainable_token_indices ${JSON.stringify(v)})`,
    why: 'this implementation reads LoRA tensors only; the trained rows would be replaced by the base embeddings',
    instead: () => MERGE_INSTEAD,
  },
  use_qalora: {
    noOp: false,
    uses: () => 'QALoRA (use_qalora true): the input of each LoRA update is pooled in groups of qalora_group_size features',
    why: 'this implementation computes plain LoRA (s·B·A·x) only',
    instead: () => MERGE_INSTEAD,
  },
  use_bdlora: {
    noOp: null,
    uses: (v) => `block-diagonal LoRA factors (use_bdlora ${JSON.stringify(v)})`,
    why: 'this implementation computes plain LoRA with full A and B only',
    instead: () => MERGE_INSTEAD,
  },
  velora_config: {
    noOp: null,
    uses: (v) => `VeLoRA (velora_config ${JSON.stringify(v)}), which changes how LoRA's input is kept and its gradient`,
    why: 'this implementation computes the exact gradients of plain LoRA',
    instead: () => MERGE_INSTEAD,
  },
  alora_invocation_tokens: {
    noOp: null,
    uses: (v) => `activated LoRA (alora_invocation_tokens ${JSON.stringify(v)}): the adapter acts only from its invocation tokens on`,
    why: 'this implementation applies the adapter to every token',
    instead: () => MERGE_INSTEAD,
  },
  monteclora_config: {
    noOp: null,
    uses: (v) => `MonteCLoRA (monteclora_config ${JSON.stringify(v)}): a sampled mixture of LoRA updates`,
    why: 'this implementation computes one deterministic plain LoRA update',
    instead: () => MERGE_INSTEAD,
  },
  arrow_config: {
    noOp: null,
    uses: (v) => `Arrow routing over several LoRA experts (arrow_config ${JSON.stringify(v)})`,
    why: 'this implementation computes one plain LoRA adapter',
    instead: () => MERGE_INSTEAD,
  },
  kasa_config: {
    noOp: null,
    uses: (v) => `KaSA (kasa_config ${JSON.stringify(v)}): singular-value-adapted LoRA with a truncated base weight`,
    why: 'this implementation computes plain LoRA on the unmodified base weights',
    instead: () => MERGE_INSTEAD,
  },
};

const isEmptyValue = (v: unknown): boolean =>
  v === null || v === false || v === 'none' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

/**
 * Parses a PEFT `adapter_config.json` (already JSON-parsed) into a LoraConfig: LoRA on the q, k, v,
 * o, gate, up, down projections, with PEFT's per-module rules (use_rslora, rank_pattern,
 * alpha_pattern, a regular-expression target_modules, exclude_modules, layers_to_transform /
 * layers_pattern) resolved against `model` into `modules` (each module's rank and scale, see
 * resolveModules); without `model`, a config that uses them throws. `modules_to_save` is returned as
 * given (the module names; {@link resolveSavedModules} places them). Any other variant (DoRA, biases,
 * base-modifying initialisations, ...) throws a DdaError naming the field and value,
 * what the adapter computes with it, why that cannot be computed here (editing the field would
 * attribute another model) and what to do instead. Unknown fields with an empty value (null, false,
 * {}, []) are ignored, others rejected.
 * @param model - the base model's config, needed to resolve per-module rules.
 * @throws DdaError as above, or when a rule selects a module that cannot be adapted here or no module at all.
 */
export function parseAdapterConfig(json: unknown, fileName = ADAPTER_CONFIG_FILE, model?: DecoderConfig): { config: LoraConfig; baseModelNameOrPath: string | null; modulesToSave: readonly string[] | null } {
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
      const noOp = k === 'init_lora_weights' ? BASE_PRESERVING_INITS.includes(v) : isEmptyValue(v) || JSON.stringify(v) === JSON.stringify(variant.noOp);
      if (!noOp) {
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
  const namesList = `use names from ${Object.values(PEFT_MODULE_NAMES).join(', ')}, 'all-linear', or a regular expression`;
  let targets: LoraTarget[];
  let targetRegex: { readonly re: RegExp; readonly text: string } | null = null;
  let layerEntries: ModuleRules['layerEntries'] = null;
  let allLayerTargets: ReadonlySet<LoraTarget> | null = null;
  if (tm === 'all-linear') {
    targets = [...ALL_LORA_TARGETS];
  } else if (typeof tm === 'string') {
    targetRegex = { re: pythonFullMatch(tm, 'target_modules', fail), text: tm };
    targets = [...ALL_LORA_TARGETS];
  } else {
    if (!Array.isArray(tm) || tm.length === 0 || !tm.every((m) => typeof m === 'string')) {
      fail(`'target_modules' must be a non-empty list of module names, 'all-linear' or a regular expression, got ${JSON.stringify(tm)}`, namesList);
    }
    const entries = (tm as string[]).map((m) => ({ m, c: classifyListEntry(m) }));
    const unsupported = entries.filter((e) => e.c.kind === 'other').map((e) => e.m);
    if (unsupported.length) fail(`unsupported target module${unsupported.length > 1 ? 's' : ''} ${unsupported.map((m) => `'${m}'`).join(', ')}`, `LoRA is supported on ${Object.values(PEFT_MODULE_NAMES).join(', ')} (or their suffixes such as 'self_attn.q_proj', 'mlp.down_proj')`);
    const unmatched = entries.filter((e) => e.c.kind === 'none').map((e) => e.m);
    if (unmatched.length) {
      fail(
        `target module${unmatched.length > 1 ? 's' : ''} ${unmatched.map((m) => `'${m}'`).join(', ')} match${unmatched.length > 1 ? '' : 'es'} no module of the model: PEFT selects a module whose full name equals an entry or ends with '.' + the entry`,
        `the model's modules are named ${MODULE_NAMES_TEXT}; LoRA is supported on ${Object.values(PEFT_MODULE_NAMES).join(', ')}: use those names, or suffixes of the full names such as 'self_attn.q_proj'`,
      );
    }
    // Stable order: the order of ALL_LORA_TARGETS, whatever the file's order.
    const set = new Set(entries.flatMap((e) => (e.c.kind === 'all' || e.c.kind === 'layer' ? [e.c.target] : [])));
    targets = ALL_LORA_TARGETS.filter((t) => set.has(t));
    allLayerTargets = new Set(entries.flatMap((e) => (e.c.kind === 'all' ? [e.c.target] : [])));
    const perLayer = entries.flatMap((e) => (e.c.kind === 'layer' ? [{ entry: e.m, target: e.c.target, layer: e.c.layer, exact: e.c.exact }] : []));
    if (perLayer.length) layerEntries = perLayer;
  }
  const base = j.base_model_name_or_path;
  if (base !== undefined && base !== null && typeof base !== 'string') fail(`'base_model_name_or_path' must be a string`, 'fix the value');
  // A sequence-classification (or other non-causal) adapter belongs to a model with another head and loss.
  const task = j.task_type;
  if (task !== undefined && task !== null && task !== 'CAUSAL_LM') fail(`'task_type' is ${JSON.stringify(task)}: this adapter was trained for another task than causal language modelling, with another head and loss than the next-token loss attributed here`, "attribute an adapter of a causal language model (task_type CAUSAL_LM, or none)");
  const mts = j.modules_to_save;
  let modulesToSave: string[] | null = null;
  if (mts !== undefined && mts !== null && !(Array.isArray(mts) && mts.length === 0)) {
    if (!Array.isArray(mts) || !mts.every((m) => typeof m === 'string' && m.length > 0)) fail(`'modules_to_save' must be a list of module names, got ${JSON.stringify(mts)}`, 'fix the value, e.g. ["lm_head", "embed_tokens"]');
    modulesToSave = mts as string[];
  }
  const plain: LoraConfig = { rank: r as number, alpha: alpha as number, targets };
  validateLoraConfig(plain);
  const rules = moduleRules(j, targetRegex, layerEntries, allLayerTargets, fail);
  const baseModelNameOrPath = (base as string | null | undefined) ?? null;
  if (!rules) return { config: plain, baseModelNameOrPath, modulesToSave };
  if (!model) fail('the adapter selects modules or ranks per module (use_rslora, rank_pattern, alpha_pattern, layers_to_transform, exclude_modules, a regular-expression target_modules or target_modules entries naming single layers)', 'read it with the base model\'s config (readPeftAdapter(dir, model)), which these rules are resolved against');
  const config = resolveModules(model as DecoderConfig, plain, rules, fail);
  validateLoraConfig(config);
  return { config, baseModelNameOrPath, modulesToSave };
}

/** PEFT's per-module rules of an adapter_config.json (see {@link resolveModules}). */
interface ModuleRules {
  readonly targetRegex: { readonly re: RegExp; readonly text: string } | null;
  /** List target_modules entries that select one layer's module (e.g. 'layers.3.self_attn.q_proj'); `exact`: the entry is the module's full name, which PEFT selects before layers_to_transform is applied. */
  readonly layerEntries: readonly { readonly entry: string; readonly target: LoraTarget; readonly layer: number; readonly exact: boolean }[] | null;
  /** With layerEntries: the targets a list entry selects in every layer (e.g. 'q_proj', 'self_attn.q_proj'). */
  readonly allLayerTargets: ReadonlySet<LoraTarget> | null;
  readonly exclude: RegExp | readonly string[] | null;
  readonly layers: readonly number[] | null;
  readonly layersPattern: readonly RegExp[] | null;
  readonly rankPattern: readonly [RegExp, number][];
  readonly alphaPattern: readonly [RegExp, number][];
  readonly rslora: boolean;
}

/**
 * A Python regular expression as a JavaScript RegExp anchored at both ends (Python's re.fullmatch, as PEFT
 * matches a string target_modules or exclude_modules), or at the end after an optional dotted prefix
 * (`suffixOf`: PEFT's get_pattern_key, `(.*\.)?(key)$` with re.match). Refuses Python-only syntax that
 * JavaScript would read otherwise (\A, \Z, (?P…), inline flags).
 */
function pythonFullMatch(pattern: string, field: string, fail: (what: string, hint: string) => never, suffixOf = false): RegExp {
  // Constructs that Python and JavaScript (without the u flag) read differently, or that only Python reads.
  const pythonOnly = /\\[AZzGQEpPNhHKRVX]|\(\?[^:=!<]|\(\?<[^=!]|\{,|\[\^?\]/.exec(pattern);
  if (pythonOnly) fail(`${field} pattern ${JSON.stringify(pattern)} uses '${pythonOnly[0]}', Python regular-expression syntax this implementation does not read the same way`, 'write the pattern with plain groups, classes, alternatives and quantifiers (no named groups, inline flags, \\A/\\Z anchors, {,n} or a class starting with ])');
  try {
    return new RegExp(suffixOf ? `^(.*\\.)?(${pattern})$` : `^(?:${pattern})$`);
  } catch (e) {
    return fail(`${field} pattern ${JSON.stringify(pattern)} is not a valid regular expression (${(e as Error).message})`, 'fix the pattern');
  }
}

/** Reads PEFT's per-module fields; null when none is active (every layer's targets, one rank and scale alpha/r). */
function moduleRules(
  j: Readonly<Record<string, unknown>>, targetRegex: ModuleRules['targetRegex'], layerEntries: ModuleRules['layerEntries'], allLayerTargets: ModuleRules['allLayerTargets'],
  fail: (what: string, hint: string) => never,
): ModuleRules | null {
  const stringList = (k: string): readonly string[] | null => {
    const v = j[k];
    if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) return null;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && x.length > 0)) fail(`'${k}' must be a string or a list of strings, got ${JSON.stringify(v)}`, 'fix the value');
    return list as string[];
  };
  const pattern = (k: 'rank_pattern' | 'alpha_pattern'): [RegExp, number][] => {
    const v = j[k] ?? {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(`'${k}' must be an object of module pattern → number, got ${JSON.stringify(v)}`, 'fix the value');
    return Object.entries(v).map(([key, n]) => {
      const ok = typeof n === 'number' && n > 0 && (k === 'alpha_pattern' || Number.isInteger(n));
      if (!ok) fail(`${k} '${key}' must be a positive ${k === 'rank_pattern' ? 'integer' : 'number'}, got ${JSON.stringify(n)}`, 'fix the value');
      return [pythonFullMatch(key, k, fail, true), n as number];
    });
  };
  const rslora = j.use_rslora ?? false;
  if (typeof rslora !== 'boolean') fail(`'use_rslora' must be true or false, got ${JSON.stringify(rslora)}`, 'fix the value');
  const ex = j.exclude_modules;
  const exclude = typeof ex === 'string' && ex.length > 0 ? pythonFullMatch(ex, 'exclude_modules', fail) : stringList('exclude_modules');
  const lt = j.layers_to_transform;
  let layers: number[] | null = null;
  if (lt !== undefined && lt !== null && !(Array.isArray(lt) && lt.length === 0)) {
    layers = typeof lt === 'number' ? [lt] : (lt as number[]);
    if (!Array.isArray(layers) || !layers.every((x) => Number.isInteger(x) && x >= 0)) fail(`'layers_to_transform' must be a layer index or a list of them, got ${JSON.stringify(lt)}`, 'fix the value');
  }
  const lp = stringList('layers_pattern');
  if (targetRegex && (layers || lp)) fail('layers_to_transform / layers_pattern are set with a regular-expression target_modules', 'PEFT refuses this combination too: put the layers into the regular expression');
  if (lp && !layers) fail('layers_pattern is set without layers_to_transform', 'PEFT refuses this too: set layers_to_transform');
  const rules: ModuleRules = {
    targetRegex, layerEntries, allLayerTargets: layerEntries ? allLayerTargets : null, exclude, layers, layersPattern: lp ? lp.map((p) => new RegExp(`^.*?\\.${p}\\.(\\d+)\\.`)) : null,
    rankPattern: pattern('rank_pattern'), alphaPattern: pattern('alpha_pattern'), rslora: rslora as boolean,
  };
  const active = rules.targetRegex || rules.layerEntries || rules.exclude || rules.layers || rules.rankPattern.length || rules.alphaPattern.length || rules.rslora;
  return active ? rules : null;
}

/** How the modules of a LLaMA / Qwen2 / Mistral causal LM are named (PEFT's named_modules of the base model). */
const MODULE_NAMES_TEXT =
  "model.embed_tokens, model.layers.<i>.self_attn.{q,k,v,o}_proj, model.layers.<i>.mlp.{gate,up,down}_proj, model.layers.<i>.mlp.act_fn, model.layers.<i>.input_layernorm, model.layers.<i>.post_attention_layernorm, model.norm, model.rotary_emb and lm_head (i = 0, 1, …)";

/** PEFT's match of a list target_modules entry (check_target_module_exists): the module's full name equals it or ends with '.' + it. */
const listEntryMatches = (key: string, entry: string): boolean => key === entry || key.endsWith(`.${entry}`);

/**
 * What a list target_modules entry selects, by PEFT's list match, among the modules of a model with
 * more layers than the entry's largest number: `all` a LoRA target in every layer ('q_proj',
 * 'self_attn.q_proj'); `layer` one layer's module ('layers.3.self_attn.q_proj', or its full name:
 * `exact`); `other` a module LoRA cannot adapt here (with or without LoRA targets); `none` no module.
 */
function classifyListEntry(e: string): { kind: 'all'; target: LoraTarget } | { kind: 'layer'; target: LoraTarget; layer: number; exact: boolean } | { kind: 'other' | 'none' } {
  const numbers = (e.match(/\d+/g) ?? []).map(Number);
  // At least two layers beyond the largest number, so that an entry naming one layer is told from one selecting every layer.
  const n = Math.min(4096, Math.max(0, ...numbers) + 2);
  const c = { numLayers: n } as DecoderConfig;
  if (otherModuleNames(c).some((k) => listEntryMatches(k, e))) return { kind: 'other' };
  const hits: { layer: number; target: LoraTarget; key: string }[] = [];
  for (let layer = 0; layer < n; layer++) {
    for (const target of ALL_LORA_TARGETS) {
      const key = targetModule(layer, target);
      if (listEntryMatches(key, e)) hits.push({ layer, target, key });
    }
  }
  const first = hits[0];
  if (!first) return { kind: 'none' };
  if (hits.length === n && hits.every((h) => h.target === first.target)) return { kind: 'all', target: first.target };
  return { kind: 'layer', target: first.target, layer: first.layer, exact: first.key === e };
}

/** Names of the modules of a LLaMA / Qwen2 / Mistral causal LM that LoRA cannot adapt here (PEFT's named_modules of the base model). */
function otherModuleNames(c: DecoderConfig): string[] {
  const names = ['', 'model', 'model.embed_tokens', 'model.layers', 'model.norm', 'model.rotary_emb', 'lm_head'];
  for (let i = 0; i < c.numLayers; i++) {
    const l = `model.layers.${i}`;
    names.push(l, `${l}.self_attn`, `${l}.mlp`, `${l}.mlp.act_fn`, `${l}.input_layernorm`, `${l}.post_attention_layernorm`);
  }
  return names;
}

/**
 * The adapted modules of an adapter on model `c`, as PEFT selects them (check_target_module_exists:
 * exclude_modules first; a regular-expression target_modules full-matches the module name, a list
 * entry equals it or a suffix after a dot ('q_proj', 'self_attn.q_proj', 'layers.1.self_attn.q_proj'),
 * then, unless an entry is the full name, layers_to_transform against the first numbered segment, or the
 * one after layers_pattern) with each module's rank and alpha from rank_pattern / alpha_pattern (the
 * first key, in file order, matching the end of the module name after a dot: get_pattern_key) and
 * scale alpha/rank (rsLoRA: alpha/√rank). Throws when a regular expression selects a module other than
 * the q, k, v, o, gate, up, down projections, or when no module is selected.
 */
function resolveModules(c: DecoderConfig, plain: LoraConfig, rules: ModuleRules, fail: (what: string, hint: string) => never): LoraConfig {
  const excluded = (key: string): boolean => {
    const ex = rules.exclude;
    if (!ex) return false;
    return ex instanceof RegExp ? ex.test(key) : ex.some((e) => key === e || key.endsWith(`.${e}`));
  };
  if (rules.targetRegex) {
    const re = rules.targetRegex.re;
    const other = otherModuleNames(c).find((n) => !excluded(n) && re.test(n));
    if (other !== undefined) fail(`target_modules ${JSON.stringify(rules.targetRegex.text)} also selects module '${other}', which this implementation cannot adapt`, `LoRA is supported on the ${Object.values(PEFT_MODULE_NAMES).join(', ')} linear maps of each layer: narrow the expression, or ${MERGE_INSTEAD}`);
  }
  const beyond = (rules.layerEntries ?? []).filter((e) => e.layer >= c.numLayers).map((e) => `'${e.entry}'`);
  if (beyond.length) fail(`target_modules ${beyond.join(', ')} match${beyond.length > 1 ? '' : 'es'} no module of this model, which has ${c.numLayers} layers (0 to ${c.numLayers - 1})`, `the model's modules are named ${MODULE_NAMES_TEXT}`);
  const patternValue = (p: readonly [RegExp, number][], key: string, dflt: number): number => p.find(([re]) => re.test(key))?.[1] ?? dflt;
  const modules: LoraModule[] = [];
  for (let layer = 0; layer < c.numLayers; layer++) {
    for (const target of plain.targets) {
      const key = targetModule(layer, target);
      if (excluded(key)) continue;
      if (rules.targetRegex && !rules.targetRegex.re.test(key)) continue;
      // PEFT: a module whose full name is in the list is selected as is; one selected by a suffix is then filtered by layers_to_transform.
      let exact = false;
      if (rules.layerEntries) {
        const own = rules.layerEntries.filter((e) => e.layer === layer && e.target === target);
        exact = own.some((e) => e.exact);
        if (!own.length && !rules.allLayerTargets?.has(target)) continue;
      }
      if (rules.layers && !exact) {
        const m = rules.layersPattern ? rules.layersPattern.map((re) => re.exec(key)).find((x) => x) : /^.*?\.[^.]*\.(\d+)\./.exec(key);
        if (!m || !rules.layers.includes(Number(m[1]))) continue;
      }
      const rank = patternValue(rules.rankPattern, key, plain.rank);
      const alpha = patternValue(rules.alphaPattern, key, plain.alpha);
      modules.push({ layer, target, rank, scale: rules.rslora ? alpha / Math.sqrt(rank) : alpha / rank });
    }
  }
  if (modules.length === 0) fail('target_modules, exclude_modules and layers_to_transform select no module of this model', `PEFT refuses such an adapter too; LoRA modules of layer 0 are named like '${targetModule(0, 'q')}'`);
  const targets = ALL_LORA_TARGETS.filter((t) => modules.some((m) => m.target === t));
  return { ...plain, targets, modules };
}

/**
 * adapter_config.json contents of a LoRA config, in PEFT's field names. A config with per-module
 * `modules` is written as PEFT reads it back to the same modules, ranks and scales: target_modules a
 * regular expression of the adapted module names, rank_pattern / alpha_pattern by module name
 * (alpha = scale·rank, use_rslora false).
 */
export function toAdapterConfig(l: LoraConfig, baseModelNameOrPath: string | null = null): Record<string, unknown> {
  validateLoraConfig(l);
  const perModule = l.modules
    ? (() => {
      const names = l.modules.map((m) => targetModule(m.layer, m.target).replace(/\./g, '\\.'));
      return {
        target_modules: names.join('|'),
        rank_pattern: Object.fromEntries(l.modules.map((m, k) => [names[k], m.rank])),
        alpha_pattern: Object.fromEntries(l.modules.map((m, k) => [names[k], m.scale * m.rank])),
      };
    })()
    : null;
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
    ...perModule,
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
  for (const { name, shape, part, rank } of specs) {
    const got = weights.get(name);
    if (!got) {
      // PEFT's in-memory names keep the adapter's name (lora_A.default.weight); save_pretrained strips it.
      const named = [...weights.keys()].find((k) => k.startsWith(name.replace(/\.weight$/, '.')) && k.endsWith('.weight'));
      if (named !== undefined) {
        throw new DdaError(
          `${source} is missing '${name}' but holds '${named}': its tensor names keep PEFT's adapter name ('${named.slice(name.length - 'weight'.length, -'.weight'.length)}'), as a model's state_dict does before save_pretrained strips it`,
          `save the adapter with PeftModel.save_pretrained(dir), or rename every key without the adapter name (e.g. '${named}' → '${name}') and save it again with safetensors`,
        );
      }
      throw new DdaError(`${source} is missing '${name}'`, 'the adapter does not fit this model (different number of layers or target modules)');
    }
    if (got.shape.join(',') !== shape.join(',')) {
      const rankAxis = part === 'A' ? 0 : 1;
      const empty = got.shape.some((d) => d === 0);
      const why = empty
        ? 'the tensor is empty: the adapter was saved under DeepSpeed ZeRO-3 without gathering its partitioned weights (set stage3_gather_16bit_weights_on_model_save: true in the DeepSpeed config and save again, or convert the checkpoint with zero_to_fp32.py)'
        : got.shape.length === 2 && got.shape[rankAxis] !== rank && got.shape[1 - rankAxis] === shape[1 - rankAxis]
        ? `its rank is ${got.shape[rankAxis]}, the adapter config says ${rank === lora.rank ? `r = ${rank}` : `rank ${rank} for this module (rank_pattern)`}`
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
      beyond ? `the adapter has layers beyond this model's ${model.numLayers}` : `its target_modules (${lora.targets.map((t) => PEFT_MODULE_NAMES[t]).join(', ')}), exclude_modules and layers_to_transform must select every adapted module; modules of layer 0 are named like '${targetModule(0, 'q')}'`,
    );
  }
  assertFiniteTensors(weights, source);
}

/** Every module name of a LLaMA / Qwen2 / Mistral / Qwen3 causal LM of config `c` (transformers' named_modules, without LoRA's). */
function baseModuleNames(c: DecoderConfig): string[] {
  const names = new Set(otherModuleNames(c));
  for (const { name } of decoderWeightSpecs(c)) {
    const parts = name.split('.');
    for (let k = 1; k < parts.length; k++) names.add(parts.slice(0, k).join('.'));
  }
  return [...names];
}

/**
 * Places an adapter's `modules_to_save` on the base model `c`, as PEFT does: every module whose name
 * ends with an entry (utils/other.py `_set_trainable`: `key.endswith(target_key)`, a plain string
 * suffix, so `norm` selects every norm) is replaced in the forward pass by its trained copy
 * (ModulesToSaveWrapper), whose tensors get_peft_model_state_dict saves as
 * `base_model.model.<module>.<parameter>` (e.g. `base_model.model.lm_head.weight`,
 * `base_model.model.model.embed_tokens.weight`). Embedding layers the file holds without an entry
 * (save_embedding_layers, which PEFT loads over the base model's) are placed the same way. Returns
 * the copies under the base model's tensor names (`lm_head.weight`), taken out of `tensors`; the
 * rest of `tensors` is left for the LoRA checks.
 *
 * @param file - the adapter_model.safetensors path, for messages.
 * @throws DdaError naming the file and the entry or tensor: an entry that selects no module of this
 *   model; a module that LoRA also adapts, or one inside another selected module; embed_tokens or
 *   lm_head of a model with tied embeddings (PEFT's copy unties them) unless both are saved with the
 *   same tensor (ensure_weight_tying), which is then the tied embedding; a saved tensor missing, or of
 *   another shape than the base model's (e.g. an embedding resized during fine-tuning).
 */
export function resolveSavedModules(c: DecoderConfig, lora: LoraConfig, entries: readonly string[], tensors: TensorMap, file: string): SavedModules {
  const all = baseModuleNames(c);
  const adapted = loraModuleList(c.numLayers, lora).map((m) => targetModule(m.layer, m.target));
  // Embedding layers in the file that no entry selects (save_embedding_layers).
  const embeddingLayers = ['model.embed_tokens', 'lm_head'].filter((m) => tensors.has(`base_model.model.${m}.weight`) && !entries.some((e) => m.endsWith(e)));
  const modules: string[] = [...embeddingLayers];
  for (const e of entries) {
    const hits = all.filter((m) => m.endsWith(e));
    if (hits.length === 0) {
      throw new DdaError(
        `${file}: modules_to_save entry '${e}' names no module of this model`,
        `PEFT saves the modules whose name ends with an entry; this model's are named like 'lm_head', 'model.embed_tokens', 'model.norm', 'model.layers.0.input_layernorm': fix modules_to_save, or check that --base is the model the adapter was trained on`,
      );
    }
    for (const m of hits) if (!modules.includes(m)) modules.push(m);
  }
  // In the model's order (transformers' named_modules: embeddings, layers, final norm, head).
  const order = decoderWeightSpecs(c).map((w) => w.name);
  const rank = (m: string): number => {
    const k = order.findIndex((w) => w.startsWith(`${m}.`));
    return k < 0 ? order.length : k;
  };
  modules.sort((a, b) => rank(a) - rank(b));
  const within = (inner: string, outer: string): boolean => outer === '' || inner === outer || inner.startsWith(`${outer}.`);
  for (const m of modules) {
    const lo = adapted.find((a) => within(a, m) || within(m, a));
    if (lo !== undefined) throw new DdaError(`${file}: modules_to_save selects '${m}', which ${lo === m ? 'LoRA also adapts' : `holds or lies in '${lo}', which LoRA adapts`}: a trained copy of a LoRA-adapted module is not computed here`, MERGE_INSTEAD);
    const outer = modules.find((o) => o !== m && within(m, o));
    if (outer !== undefined) throw new DdaError(`${file}: modules_to_save selects both '${outer}' and '${m}' inside it`, `name modules that do not contain one another, or ${MERGE_INSTEAD}`);
  }
  if (c.tieWordEmbeddings && modules.some((m) => within('lm_head', m) || within('model.embed_tokens', m))) {
    // Tied embeddings stay one tensor only where the adapter saved the same trained copy for both
    // (PEFT's ensure_weight_tying: the head's copy shares the embedding copy's weight).
    const [embed, head] = [tensors.get('base_model.model.model.embed_tokens.weight'), tensors.get('base_model.model.lm_head.weight')];
    const same = modules.includes('model.embed_tokens') && modules.includes('lm_head') && embed !== undefined && head !== undefined
      && tensorsEqual(new Map([['w', embed]]), new Map([['w', head]]));
    if (!same) {
      throw new DdaError(
        `${file}: modules_to_save selects ${modules.filter((m) => within('lm_head', m) || within('model.embed_tokens', m)).map((m) => `'${m}'`).join(' and ')} on a model with tied embeddings (tie_word_embeddings): PEFT trains separate copies, which untie the input embedding from the output head, and this implementation computes tied embeddings as one tensor`,
        `an adapter saved with ensure_weight_tying true (the same trained tensor for embed_tokens and lm_head) is computed; otherwise ${MERGE_INSTEAD}`,
      );
    }
    tensors.delete('base_model.model.lm_head.weight'); // the head is the embedding copy, placed below
  }
  const specs = decoderWeightSpecs(c).filter((w) => modules.some((m) => within(w.name, m)));
  const weights: TensorMap = new Map();
  for (const { name, shape } of specs) {
    const key = `base_model.model.${name}`;
    const t = tensors.get(key);
    if (!t) {
      const other = [...tensors.keys()].find((k) => k.startsWith(`base_model.model.${name.replace(/\.[^.]+$/, '')}.`) && !/\.lora_[AB]\./.test(k));
      throw new DdaError(
        `${file}: modules_to_save selects '${name.replace(/\.[^.]+$/, '')}', but the file has no '${key}'${other ? ` (it has '${other}')` : ''}`,
        'PEFT saves a trained module\'s tensors as base_model.model.<module>.<parameter>: save the adapter with PEFT\'s save_pretrained, or fix modules_to_save',
      );
    }
    if (t.shape.join(',') !== shape.join(',')) {
      const resized = name.endsWith('embed_tokens.weight') || name === 'lm_head.weight';
      throw new DdaError(
        `${file}: saved module tensor '${key}' has shape [${t.shape.join(', ')}], the base model's '${name}' has [${shape.join(', ')}]`,
        resized ? 'the vocabulary was resized during fine-tuning (tokens added): attribute with the resized model as --base (its config.json, tokenizer and embeddings), or ' + MERGE_INSTEAD : 'the adapter was trained on a model of another size: give the base model it was trained on',
      );
    }
    weights.set(name, t);
    tensors.delete(key);
  }
  assertFiniteTensors(weights, file);
  return { entries, modules, weights, embeddingLayers };
}

/**
 * Reads a PEFT adapter folder (`adapter_config.json`, `adapter_model.safetensors`). With `model`,
 * resolves PEFT's per-module rules against it ({@link parseAdapterConfig}), places the
 * `modules_to_save` copies ({@link resolveSavedModules}) and checks that the LoRA tensors fit it
 * ({@link checkLoraFits}); without it, an adapter with modules_to_save throws.
 */
export function readPeftAdapter(dir: string, model?: DecoderConfig): PeftAdapter {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const { config, baseModelNameOrPath, modulesToSave } = parseAdapterConfig(readJsonFile(dir, ADAPTER_CONFIG_FILE), configPath, model);
  const path = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(path)) {
    const bin = join(dir, 'adapter_model.bin');
    if (existsSync(bin)) {
      throw new DdaError(
        `${bin}: the adapter's weights are a PyTorch pickle (adapter_model.bin), which this tool does not read (unpickling runs code)`,
        `convert it beside it, in Python: import torch; from safetensors.torch import save_file; save_file({k: v.contiguous() for k, v in torch.load('${bin}', map_location='cpu').items()}, '${path}') (or load the adapter with PEFT and save_pretrained(dir, safe_serialization=True))`,
      );
    }
    throw new DdaError(`${path}: file not found`, `a PEFT adapter folder needs ${ADAPTER_WEIGHTS_FILE} beside ${ADAPTER_CONFIG_FILE}`);
  }
  const weights = new Map(readSafetensors(readFileSync(path), path).tensors);
  let savedModules: SavedModules | null = null;
  const embeddings = ['model.embed_tokens', 'lm_head'].some((m) => weights.has(`base_model.model.${m}.weight`));
  if (modulesToSave || embeddings) {
    if (!model) throw new DdaError(`${configPath}: the adapter has ${modulesToSave ? `modules_to_save ${JSON.stringify(modulesToSave)}` : 'embedding layers saved beside its LoRA tensors'}`, 'read it with the base model\'s config (readPeftAdapter(dir, model)), which the saved modules are placed on');
    savedModules = resolveSavedModules(model, config, modulesToSave ?? [], weights, path);
  }
  if (model) checkLoraFits(model, config, weights, path);
  return { config, weights, baseModelNameOrPath, savedModules };
}

/**
 * Writes a PEFT adapter folder atomically (each file: temporary file, then rename), with the saved
 * modules' tensors (base model names, e.g. `lm_head.weight`) as PEFT writes them
 * (`base_model.model.lm_head.weight`) and their entries in modules_to_save.
 */
export function writePeftAdapter(dir: string, config: LoraConfig, weights: TensorMap, baseModelNameOrPath: string | null = null, saved: Pick<SavedModules, 'entries' | 'weights'> | null = null): void {
  const all: TensorMap = new Map([...weights, ...[...(saved?.weights ?? [])].map(([n, t]) => [`base_model.model.${n}`, t] as const)]);
  writeFileAtomic(join(dir, ADAPTER_WEIGHTS_FILE), writeSafetensors(all, { format: 'pt' }));
  writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), { ...toAdapterConfig(config, baseModelNameOrPath), modules_to_save: saved ? [...saved.entries] : null });
}
