import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError } from '@dda/core';
import type { DecoderConfig } from './config.js';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from './files.js';
import { type ModelFamily, inferFamily, parseHfConfig, toHfConfig } from './hf-config.js';
import { CHAT_TEMPLATE_FILE, HfTokenizer, configChatTemplate, tokenContent } from './hf-tokenizer.js';
import { checkTokenizerFits } from './engine-inputs.js';
import type { SafetensorsDtype } from './safetensors.js';
import { writeSafetensorsFolder } from './safetensors-folder.js';
import { type RawTensor, SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, SafetensorsReader, type TensorInfo, type WidenEvent } from './safetensors-reader.js';
import { findWeightFiles } from './weight-files.js';
import { type Tokenizer, WordTokenizer } from './tokenizer.js';
import { type NamedTensor, type TensorMap, decoderWeightSpecs } from './weights.js';

export const CONFIG_FILE = 'config.json';
export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

/** A model folder: Hugging Face config.json, safetensors weights and (optionally) a tokenizer. */
export interface ModelFolder {
  readonly dir: string;
  readonly family: ModelFamily;
  readonly config: DecoderConfig;
  /** Base weights in {@link decoderWeightSpecs} order, float32. */
  readonly weights: TensorMap;
  /** The folder's tokenizer, or null when it has no tokenizer.json. */
  readonly tokenizer: Tokenizer | null;
}

/** A model folder opened lazily ({@link openModelFolder}): config and tokenizer read, weights on demand. */
export interface LazyModelFolder extends Omit<ModelFolder, 'weights'> {
  readonly weights: LazyModelWeights;
}

/** Non-parameter buffers some checkpoints carry (old LLaMA exports): skipped on load. */
const BUFFER_PATTERN = /\.rotary_emb\.inv_freq$/;

/**
 * The checks of {@link checkBaseWeights} over names and shapes: returns the spec names in
 * {@link decoderWeightSpecs} order. `lmHeadIsEmbedding` is asked only for a tied config whose
 * checkpoint also has an `lm_head.weight`.
 */
function checkWeightNames(
  c: DecoderConfig, names: readonly string[], shapeOf: (name: string) => readonly number[] | undefined, lmHeadIsEmbedding: () => boolean, source: string,
): string[] {
  const specs = decoderWeightSpecs(c);
  for (const { name, shape } of specs) {
    const s = shapeOf(name);
    if (!s) throw new DdaError(`${source}: missing tensor '${name}'`, 'the weights do not fit config.json (another family, layer count or bias/tie setting)');
    if (s.join(',') !== shape.join(',')) {
      throw new DdaError(`${source}: tensor '${name}' has shape [${s.join(', ')}], config.json needs [${shape.join(', ')}]`, 'the weights and config.json describe different model sizes');
    }
  }
  const wanted = new Set(specs.map((s) => s.name));
  const extra: string[] = [];
  for (const name of names) {
    if (wanted.has(name) || BUFFER_PATTERN.test(name)) continue;
    if (name === 'lm_head.weight' && c.tieWordEmbeddings && lmHeadIsEmbedding()) continue;
    extra.push(name);
  }
  if (extra.length) {
    throw new DdaError(
      `${source}: tensor${extra.length > 1 ? 's' : ''} not used by this config: ${extra.slice(0, 4).map((k) => `'${k}'`).join(', ')}${extra.length > 4 ? ` and ${extra.length - 4} more` : ''}`,
      extra.includes('lm_head.weight') ? 'config.json ties the embeddings but the checkpoint has its own lm_head: set tie_word_embeddings false' : 'the weights belong to another architecture or configuration',
    );
  }
  return specs.map((s) => s.name);
}

/**
 * Checks base weights against a config and returns them in {@link decoderWeightSpecs} order:
 * every tensor present with its shape, none unknown. RoPE `inv_freq` buffers are dropped, and so
 * is an `lm_head.weight` of a tied model when it equals the embedding (some exports write both).
 */
export function checkBaseWeights(c: DecoderConfig, weights: TensorMap, source = 'weights'): TensorMap {
  const order = checkWeightNames(c, [...weights.keys()], (n) => weights.get(n)?.shape,
    () => sameValues(weights.get('lm_head.weight') as NamedTensor, weights.get('model.embed_tokens.weight') as NamedTensor), source);
  return new Map(order.map((n) => [n, weights.get(n) as NamedTensor]));
}

function sameValues(a: NamedTensor, b: NamedTensor): boolean {
  if (a.data.length !== b.data.length) return false;
  for (let k = 0; k < a.data.length; k++) if (a.data[k] !== b.data[k]) return false;
  return true;
}

/**
 * The base weights of a model folder, checked against its config from the safetensors headers
 * alone ({@link checkBaseWeights}' rules) and read on demand, one tensor at a time. `names` are
 * the tensors the config needs, in {@link decoderWeightSpecs} order (extra buffers and a duplicate
 * tied `lm_head` are left out). Use {@link readRaw} to hand stored F16/BF16 bytes to an engine that
 * takes them, {@link readFloat32} for float32 (widened here, reported to `onWiden`), and
 * {@link toTensorMap} for the whole model as float32 (the eager form).
 */
export class LazyModelWeights {
  /** Base tensor names the config needs, in decoderWeightSpecs order. */
  readonly names: readonly string[];

  constructor(readonly config: DecoderConfig, readonly reader: SafetensorsReader, source: string) {
    this.names = checkWeightNames(config, reader.names, (n) => (reader.has(n) ? reader.info(n).shape : undefined), () => {
      const a = reader.readFloat32('lm_head.weight').data;
      return sameValues({ shape: [], data: a }, reader.readFloat32('model.embed_tokens.weight'));
    }, source);
  }

  /** Stored dtype, shape and location of a base tensor. */
  info(name: string): TensorInfo {
    return this.reader.info(name);
  }

  /** The stored bytes and dtype of a base tensor (no widening). */
  readRaw(name: string): RawTensor {
    return this.reader.readRaw(name);
  }

  /** A base tensor as float32 (F16/BF16 widened exactly). */
  readFloat32(name: string): NamedTensor {
    return this.reader.readFloat32(name);
  }

  /** Stored dtypes of the base tensors (usually one). */
  get dtypes(): SafetensorsDtype[] {
    return [...new Set(this.names.map((n) => this.reader.info(n).dtype))];
  }

  /** Bytes of the base tensors as stored. */
  get storedBytes(): number {
    return this.names.reduce((s, n) => s + this.reader.info(n).byteLength, 0);
  }

  /** Every base tensor as float32, in {@link names} order, read one at a time. */
  toTensorMap(): TensorMap {
    return this.reader.readAllFloat32(this.names);
  }
}

/**
 * The tokenizer of a folder: `tokenizer.json` in the project's word-level format
 * ({"type":"word-level",...}) gives a {@link WordTokenizer}; a Hugging Face tokenizer.json (with
 * tokenizer_config.json if present) gives an {@link HfTokenizer}, whose chat template is
 * `chat_template.jinja` where the folder has one (transformers ≥ 4.47 saves it there and prefers it to
 * tokenizer_config.json's `chat_template`). Null when there is no tokenizer.json.
 */
export function loadTokenizerFolder(dir: string, family?: ModelFamily): Tokenizer | null {
  if (!existsSync(join(dir, TOKENIZER_FILE))) return null;
  const tj = readJsonFile(dir, TOKENIZER_FILE);
  if ((tj as { type?: unknown } | null)?.type === 'word-level') return WordTokenizer.fromJSON(tj, join(dir, TOKENIZER_FILE));
  const tc = existsSync(join(dir, TOKENIZER_CONFIG_FILE)) ? readJsonFile(dir, TOKENIZER_CONFIG_FILE) : null;
  const jinja = join(dir, CHAT_TEMPLATE_FILE);
  return HfTokenizer.fromJSON(tj, tc, { ...(family ? { family } : {}), source: join(dir, TOKENIZER_FILE), ...(existsSync(jinja) ? { chatTemplateJinja: readFileSync(jinja, 'utf8') } : {}) });
}

/**
 * The chat template and end-of-sequence token a folder's tokenizer files set without a
 * tokenizer.json (a checkpoint whose trainer saved a slow tokenizer, or only the template):
 * `chat_template.jinja` where there is one, else tokenizer_config.json's `chat_template`; the EOS
 * from tokenizer_config.json. Null when the folder has neither file.
 */
export function savedTokenizerSettings(dir: string): { readonly files: string[]; readonly chatTemplate: { readonly source: string; readonly text: string } | null; readonly eos: string | null } | null {
  const jinja = join(dir, CHAT_TEMPLATE_FILE);
  const [hasConfig, hasJinja] = [existsSync(join(dir, TOKENIZER_CONFIG_FILE)), existsSync(jinja)];
  if (!hasJinja && !hasConfig) return null;
  const tc = hasConfig ? (readJsonFile(dir, TOKENIZER_CONFIG_FILE) as Record<string, unknown>) : {};
  const fromConfig = configChatTemplate(tc);
  const chatTemplate = hasJinja ? { source: CHAT_TEMPLATE_FILE, text: readFileSync(jinja, 'utf8') } : fromConfig !== null ? { source: TOKENIZER_CONFIG_FILE, text: fromConfig } : null;
  return { files: [...(hasConfig ? [TOKENIZER_CONFIG_FILE] : []), ...(hasJinja ? [CHAT_TEMPLATE_FILE] : [])], chatTemplate, eos: tokenContent(tc.eos_token) };
}

/** Whether `dir` holds safetensors weights (single file or index). */
export function hasWeights(dir: string): boolean {
  return existsSync(join(dir, SAFETENSORS_FILE)) || existsSync(join(dir, SAFETENSORS_INDEX_FILE));
}

/** Options of {@link loadModelFolder} and {@link openModelFolder}. */
export interface LoadModelOptions {
  /**
   * Accept a folder without any weight files: `weights` is then null and the caller initialises
   * the model from a seed. Default false: such a folder throws. Weights in a format this package
   * cannot read throw either way ({@link findWeightFiles}).
   */
  readonly randomInit?: boolean;
  /** Return the weights as a {@link LazyModelWeights} handle instead of reading them (loadModelFolder only; openModelFolder always does). */
  readonly lazy?: boolean;
  /** Called each time stored F16/BF16 weights are widened to float32. */
  readonly onWiden?: (e: WidenEvent) => void;
  /** Read the folder's tokenizer (default true); false when another folder's is used (`tokenizer` is then null and the folder's is not checked). */
  readonly tokenizer?: boolean;
}

/** Throws the errors of a folder whose weights cannot be loaded; true when it has safetensors, false when it has none and `randomInit` allows that. */
function folderHasWeights(dir: string, randomInit: boolean): boolean {
  if (findWeightFiles(dir) === 'safetensors') return true;
  if (randomInit) return false;
  throw new DdaError(
    `${dir}: no weights (no ${SAFETENSORS_FILE} and no ${SAFETENSORS_INDEX_FILE}; found: ${readdirSync(dir).join(', ') || 'nothing'})`,
    'copy the model\'s safetensors weights into the folder, or ask for random initialisation from a seed explicitly: dda demo --random-init, randomInit: true in a benchmark config, loadModelFolder(dir, { randomInit: true })',
  );
}

/**
 * Opens a Hugging Face model folder lazily: config.json ({@link parseHfConfig}), the safetensors
 * headers (single or sharded, checked against the config with {@link checkBaseWeights}' rules, no
 * tensor data read) and the tokenizer if there is one, checked against the config's vocab_size.
 * Memory: the headers and the tokenizer; each tensor is read when asked for.
 *
 * @throws DdaError for a malformed config.json or weights that do not fit it; for weights in a
 *   format this package cannot read (PyTorch `.bin`/`.pt`/`.pth`, GGUF, `.h5`, `.msgpack`, a Git LFS
 *   pointer: {@link findWeightFiles}), with how to convert them; and for a folder without weights
 *   unless `o.randomInit` (then `weights` is null).
 */
export function openModelFolder(dir: string, o?: LoadModelOptions & { randomInit?: false }): LazyModelFolder;
export function openModelFolder(dir: string, o: LoadModelOptions): Omit<LazyModelFolder, 'weights'> & { weights: LazyModelWeights | null };
export function openModelFolder(dir: string, o: LoadModelOptions = {}): Omit<LazyModelFolder, 'weights'> & { weights: LazyModelWeights | null } {
  const { family, config } = parseHfConfig(readJsonFile(dir, CONFIG_FILE), join(dir, CONFIG_FILE));
  const weights = folderHasWeights(dir, o.randomInit ?? false)
    ? new LazyModelWeights(config, SafetensorsReader.openFolder(dir, o.onWiden ? { onWiden: o.onWiden } : {}), dir)
    : null;
  const loaded = o.tokenizer === false ? null : loadTokenizerFolder(dir, family);
  // A Hugging Face tokenizer may list special tokens beyond the embeddings (Gemma-3's <image_soft_token> beside gemma-3-1b): they are refused when encoded.
  const tokenizer = loaded instanceof HfTokenizer ? loaded.limitedTo(config.vocabSize) : loaded;
  if (tokenizer) checkTokenizerFits(tokenizer, config);
  return { dir, family, config, weights, tokenizer };
}

/**
 * Loads a Hugging Face model folder ({@link openModelFolder}) and reads its base weights as
 * float32, one tensor at a time (peak memory: the float32 model plus one stored tensor). With
 * `lazy: true` it returns the lazy handle instead (the same as openModelFolder).
 *
 * @throws DdaError as {@link openModelFolder}: unreadable or missing weights (unless
 *   `randomInit`), weights that do not fit config.json, a tokenizer that does not fit.
 */
export function loadModelFolder(dir: string, o?: LoadModelOptions & { lazy?: false; randomInit?: false }): ModelFolder;
export function loadModelFolder(dir: string, o: LoadModelOptions & { lazy?: false }): Omit<ModelFolder, 'weights'> & { weights: TensorMap | null };
export function loadModelFolder(dir: string, o: LoadModelOptions & { lazy: true; randomInit?: false }): LazyModelFolder;
export function loadModelFolder(dir: string, o: LoadModelOptions & { lazy: true }): Omit<LazyModelFolder, 'weights'> & { weights: LazyModelWeights | null };
export function loadModelFolder(dir: string, o: LoadModelOptions = {}): Omit<ModelFolder, 'weights'> & { weights: TensorMap | LazyModelWeights | null } {
  const lazy = openModelFolder(dir, o);
  if (o.lazy) return lazy;
  return { ...lazy, weights: lazy.weights ? lazy.weights.toTensorMap() : null };
}

/** What {@link saveModelFolder} writes. */
export interface SaveModelOptions {
  readonly config: DecoderConfig;
  readonly weights: TensorMap;
  /** Written as tokenizer.json (word-level) or tokenizer.json + tokenizer_config.json (Hugging Face). */
  readonly tokenizer?: Tokenizer;
  /** Default: {@link inferFamily}. */
  readonly family?: ModelFamily;
  /** Shard the weights above this many bytes ({@link writeSafetensorsFolder}). */
  readonly maxShardBytes?: number;
  /** Stored dtype of the weights (default F32; F16/BF16 round to nearest even); config.json's torch_dtype says the same. */
  readonly dtype?: SafetensorsDtype;
}

/** torch_dtype of config.json for each stored dtype. */
export const TORCH_DTYPES: Readonly<Record<SafetensorsDtype, string>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/**
 * Writes a tokenizer into a model folder: tokenizer.json (word-level), or tokenizer.json +
 * tokenizer_config.json (Hugging Face), each atomically.
 */
export function writeTokenizerFolder(dir: string, tokenizer: Tokenizer): void {
  if (tokenizer instanceof WordTokenizer) writeJsonAtomic(join(dir, TOKENIZER_FILE), tokenizer.toJSON());
  else if (tokenizer instanceof HfTokenizer) {
    writeJsonAtomic(join(dir, TOKENIZER_FILE), tokenizer.files.tokenizerJson);
    if (tokenizer.files.tokenizerConfig) writeJsonAtomic(join(dir, TOKENIZER_CONFIG_FILE), tokenizer.files.tokenizerConfig);
    if (tokenizer.chatTemplate.source === CHAT_TEMPLATE_FILE) writeFileAtomic(join(dir, CHAT_TEMPLATE_FILE), tokenizer.chatTemplate.text);
  } else throw new DdaError('cannot save this tokenizer', 'pass a WordTokenizer or an HfTokenizer');
}

/**
 * Writes a model folder that {@link loadModelFolder} (and transformers) can read: weights first,
 * then the tokenizer, then config.json; each file atomically (temporary file, then rename).
 * F32 weights load back bit-identically.
 */
export function saveModelFolder(dir: string, o: SaveModelOptions): void {
  const weights = checkBaseWeights(o.config, o.weights, 'saveModelFolder');
  const hf = toHfConfig(o.config, {
    ...(o.family ? { family: o.family } : {}),
    ...(o.tokenizer?.bosId != null ? { bosTokenId: o.tokenizer.bosId } : {}),
    ...(o.tokenizer ? { eosTokenId: o.tokenizer.eosId } : {}),
    torchDtype: TORCH_DTYPES[o.dtype ?? 'F32'],
  });
  if (o.tokenizer) checkTokenizerFits(o.tokenizer instanceof HfTokenizer ? o.tokenizer.limitedTo(o.config.vocabSize) : o.tokenizer, o.config);
  writeSafetensorsFolder(dir, weights, { ...(o.maxShardBytes !== undefined ? { maxShardBytes: o.maxShardBytes } : {}), ...(o.dtype ? { dtype: o.dtype } : {}) });
  if (o.tokenizer) writeTokenizerFolder(dir, o.tokenizer);
  writeJsonAtomic(join(dir, CONFIG_FILE), hf);
}
