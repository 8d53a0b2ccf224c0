import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError } from '@dda/core';
import type { DecoderConfig } from './config.js';
import { readJsonFile, writeJsonAtomic } from './files.js';
import { type ModelFamily, inferFamily, parseHfConfig, toHfConfig } from './hf-config.js';
import { HfTokenizer } from './hf-tokenizer.js';
import { checkTokenizerFits } from './model.js';
import { SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, readSafetensorsFolder, writeSafetensorsFolder } from './safetensors-folder.js';
import { type Tokenizer, WordTokenizer } from './tokenizer.js';
import { type NamedTensor, type TensorMap, assertFiniteTensors, decoderWeightSpecs } from './weights.js';

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

/** Non-parameter buffers some checkpoints carry (old LLaMA exports): skipped on load. */
const BUFFER_PATTERN = /\.rotary_emb\.inv_freq$/;

/**
 * Checks base weights against a config and returns them in {@link decoderWeightSpecs} order:
 * every tensor present with its shape, none unknown. RoPE `inv_freq` buffers are dropped, and so
 * is an `lm_head.weight` of a tied model when it equals the embedding (some exports write both).
 */
export function checkBaseWeights(c: DecoderConfig, weights: TensorMap, source = 'weights'): TensorMap {
  const out: TensorMap = new Map();
  for (const { name, shape } of decoderWeightSpecs(c)) {
    const t = weights.get(name);
    if (!t) throw new DdaError(`${source}: missing tensor '${name}'`, 'the weights do not fit config.json (another family, layer count or bias/tie setting)');
    if (t.shape.join(',') !== shape.join(',')) {
      throw new DdaError(`${source}: tensor '${name}' has shape [${t.shape.join(', ')}], config.json needs [${shape.join(', ')}]`, 'the weights and config.json describe different model sizes');
    }
    out.set(name, t);
  }
  const extra: string[] = [];
  for (const [name, t] of weights) {
    if (out.has(name) || BUFFER_PATTERN.test(name)) continue;
    if (name === 'lm_head.weight' && c.tieWordEmbeddings && sameValues(t, out.get('model.embed_tokens.weight') as NamedTensor)) continue;
    extra.push(name);
  }
  if (extra.length) {
    throw new DdaError(
      `${source}: tensor${extra.length > 1 ? 's' : ''} not used by this config: ${extra.slice(0, 4).map((k) => `'${k}'`).join(', ')}${extra.length > 4 ? ` and ${extra.length - 4} more` : ''}`,
      extra.includes('lm_head.weight') ? 'config.json ties the embeddings but the checkpoint has its own lm_head: set tie_word_embeddings false' : 'the weights belong to another architecture or configuration',
    );
  }
  return out;
}

function sameValues(a: NamedTensor, b: NamedTensor): boolean {
  if (a.data.length !== b.data.length) return false;
  for (let k = 0; k < a.data.length; k++) if (a.data[k] !== b.data[k]) return false;
  return true;
}

/**
 * The tokenizer of a folder: `tokenizer.json` in the project's word-level format
 * ({"type":"word-level",...}) gives a {@link WordTokenizer}; a Hugging Face tokenizer.json (with
 * tokenizer_config.json if present) gives an {@link HfTokenizer}. Null when there is no tokenizer.json.
 */
export function loadTokenizerFolder(dir: string, family?: ModelFamily): Tokenizer | null {
  if (!existsSync(join(dir, TOKENIZER_FILE))) return null;
  const tj = readJsonFile(dir, TOKENIZER_FILE);
  if ((tj as { type?: unknown } | null)?.type === 'word-level') return WordTokenizer.fromJSON(tj, join(dir, TOKENIZER_FILE));
  const tc = existsSync(join(dir, TOKENIZER_CONFIG_FILE)) ? readJsonFile(dir, TOKENIZER_CONFIG_FILE) : null;
  return HfTokenizer.fromJSON(tj, tc, { ...(family ? { family } : {}), source: join(dir, TOKENIZER_FILE) });
}

/** Whether `dir` holds safetensors weights (single file or index). */
export function hasWeights(dir: string): boolean {
  return existsSync(join(dir, SAFETENSORS_FILE)) || existsSync(join(dir, SAFETENSORS_INDEX_FILE));
}

/**
 * Loads a Hugging Face model folder: config.json ({@link parseHfConfig}), the safetensors weights
 * (single or sharded, checked with {@link checkBaseWeights}) and the tokenizer if there is one,
 * checked against the config's vocab_size. A folder without weights throws, unless
 * `weightsOptional` (then `weights` is null).
 */
export function loadModelFolder(dir: string): ModelFolder;
export function loadModelFolder(dir: string, o: { weightsOptional: true }): Omit<ModelFolder, 'weights'> & { weights: TensorMap | null };
export function loadModelFolder(dir: string, o: { weightsOptional?: boolean } = {}): Omit<ModelFolder, 'weights'> & { weights: TensorMap | null } {
  const { family, config } = parseHfConfig(readJsonFile(dir, CONFIG_FILE), join(dir, CONFIG_FILE));
  const weights = o.weightsOptional && !hasWeights(dir) ? null : checkBaseWeights(config, readSafetensorsFolder(dir), dir);
  const tokenizer = loadTokenizerFolder(dir, family);
  if (tokenizer) checkTokenizerFits(tokenizer, config);
  return { dir, family, config, weights, tokenizer };
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
  });
  if (o.tokenizer) checkTokenizerFits(o.tokenizer, o.config);
  writeSafetensorsFolder(dir, weights, o.maxShardBytes !== undefined ? { maxShardBytes: o.maxShardBytes } : {});
  if (o.tokenizer instanceof WordTokenizer) writeJsonAtomic(join(dir, TOKENIZER_FILE), o.tokenizer.toJSON());
  else if (o.tokenizer instanceof HfTokenizer) {
    writeJsonAtomic(join(dir, TOKENIZER_FILE), o.tokenizer.files.tokenizerJson);
    if (o.tokenizer.files.tokenizerConfig) writeJsonAtomic(join(dir, TOKENIZER_CONFIG_FILE), o.tokenizer.files.tokenizerConfig);
  } else if (o.tokenizer) throw new DdaError('saveModelFolder: cannot save this tokenizer', 'pass a WordTokenizer or an HfTokenizer');
  writeJsonAtomic(join(dir, CONFIG_FILE), hf);
}
