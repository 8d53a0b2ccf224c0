/**
 * LLaMA-Factory's dataset descriptions: `--train data/dataset_info.json#name` reads the dataset
 * `name` of that `dataset_info.json` as LLaMA-Factory does (DatasetAttr and get_dataset_list in
 * src/llamafactory/data/parser.py of hiyouga/LLaMA-Factory, read at commit ff6d4d1, 2026-08-18):
 * its `file_name` relative to the dataset_info.json's folder, its `formatting` (`alpaca`, the
 * default, or `sharegpt`), its `columns` and, for ShareGPT, its `tags`. As in LLaMA-Factory, an
 * Alpaca dataset's `system` and `history` columns are read only when `columns` names them, a
 * ShareGPT dataset's `system` column likewise.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DdaError } from '@dda/core';

/**
 * LLaMA-Factory's ShareGPT tags (the keys of a turn and the role names): DatasetAttr's defaults
 * are `from`/`value` and human, gpt, observation, function_call, system.
 */
export interface ShareGptTags {
  readonly role_tag: string;
  readonly content_tag: string;
  readonly user_tag: string;
  readonly assistant_tag: string;
  readonly observation_tag: string;
  readonly function_tag: string;
  readonly system_tag: string;
}

/** DatasetAttr's default ShareGPT tags. */
export const SHAREGPT_TAGS: ShareGptTags = {
  role_tag: 'from', content_tag: 'value', user_tag: 'human', assistant_tag: 'gpt', observation_tag: 'observation', function_tag: 'function_call', system_tag: 'system',
};

/** A dataset of a dataset_info.json, resolved: the data file and how to read it. */
export interface LlamaFactoryDataset {
  /** The dataset_info.json read. */
  readonly info: string;
  /** The dataset's name in it. */
  readonly name: string;
  /** The data file or save_to_disk folder, resolved against the dataset_info.json's folder. */
  readonly file: string;
  readonly formatting: 'alpaca' | 'sharegpt';
  /** Ours → the file's column, for the columns that differ from our names. */
  readonly fields: Readonly<Record<string, string>>;
  /** Our fields LLaMA-Factory does not read for this dataset (`system`, `history` unless mapped). */
  readonly unread: readonly string[];
  readonly tags: ShareGptTags;
}

/** `path/to/dataset_info.json#name` → the file and the name, or null for any other path. */
export function parseDatasetSpec(spec: string): { info: string; name: string } | null {
  const m = /^(.*\.json)#([^#]+)$/.exec(spec);
  return m ? { info: m[1] as string, name: m[2] as string } : null;
}

/** LLaMA-Factory's column names (DatasetAttr) → our fields, per formatting; their defaults. */
const COLUMNS: Record<'alpaca' | 'sharegpt', Record<string, { ours: string; default: string | null }>> = {
  alpaca: { prompt: { ours: 'instruction', default: 'instruction' }, query: { ours: 'input', default: 'input' }, response: { ours: 'output', default: 'output' }, history: { ours: 'history', default: null }, system: { ours: 'system', default: null } },
  sharegpt: { messages: { ours: 'conversations', default: 'conversations' }, system: { ours: 'system', default: null } },
};

/** Keys of a dataset entry that name where a non-local dataset is. */
const REMOTE = ['hf_hub_url', 'ms_hub_url', 'om_hub_url', 'script_url', 'cloud_file_name'];

/**
 * Resolves `info#name` from a LLaMA-Factory dataset_info.json.
 *
 * @param flag - The flag named in errors (`--train`, `--queries`).
 * @throws DdaError naming the file, the dataset and the field: a missing or malformed file, an
 *   unknown name, a dataset that is not a local file (`hf_hub_url`, `ms_hub_url`, `om_hub_url`,
 *   `script_url`, `cloud_file_name`), a formatting other than alpaca/sharegpt, `ranking`,
 *   `num_samples`, a split other than train, `subset`/`folder`, a column that cannot be rendered
 *   (tools, images, videos, audios, chosen, rejected, kto_tag), and any other key.
 */
export function readDatasetInfo(info: string, name: string, flag: string): LlamaFactoryDataset {
  const at = `${flag} ${info}#${name}`;
  if (!existsSync(info)) throw new DdaError(`${at}: file '${info}' not found`, 'give the path of LLaMA-Factory\'s dataset_info.json, then # and the dataset\'s name');
  let all: unknown;
  try {
    all = JSON.parse(readFileSync(info, 'utf8'));
  } catch (e) {
    throw new DdaError(`${at}: ${info} is not valid JSON (${(e as Error).message})`);
  }
  if (all === null || typeof all !== 'object' || Array.isArray(all)) throw new DdaError(`${at}: ${info} must hold a JSON object of datasets by name`);
  const entry = (all as Record<string, unknown>)[name];
  if (entry === undefined) throw new DdaError(`${at}: no dataset '${name}' in ${info}`, `its datasets: ${Object.keys(all).join(', ') || 'none'}`);
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new DdaError(`${at}: the dataset's entry must be a JSON object`);
  const e = entry as Record<string, unknown>;
  const bad = (key: string, why: string, hint?: string): DdaError => new DdaError(`${at}: '${key}' ${why}`, hint);
  for (const key of REMOTE) if (key in e) throw bad(key, 'names a dataset that is not a local file', 'download it and give it by file_name (a JSON Lines, JSON, CSV or Parquet file, or a save_to_disk folder, relative to the dataset_info.json)');
  if (typeof e.file_name !== 'string' || e.file_name === '') throw bad('file_name', `must be a file name, got ${JSON.stringify(e.file_name)}`);
  const formatting = e.formatting ?? 'alpaca';
  if (formatting !== 'alpaca' && formatting !== 'sharegpt') throw bad('formatting', `is ${JSON.stringify(formatting)}; alpaca and sharegpt are read`, 'for OpenAI-style data, give the file itself: records with "messages" of {role, content} are read directly');
  if (e.ranking !== undefined && e.ranking !== false) throw bad('ranking', 'marks preference (chosen/rejected) data, which is not a supervised training set');
  if (e.num_samples !== undefined) throw bad('num_samples', 'samples a subset of the file, so the records read would not be the ones trained on', 'give the records trained on as their own file');
  if (e.split !== undefined && e.split !== 'train') throw bad('split', `is ${JSON.stringify(e.split)}; a local file has only the train split`);
  for (const key of ['subset', 'folder']) if (e[key] !== undefined) throw bad(key, 'applies to hub datasets only');
  const known = new Set(['file_name', 'formatting', 'ranking', 'num_samples', 'split', 'subset', 'folder', 'columns', 'tags']);
  for (const key of Object.keys(e)) if (!known.has(key)) throw bad(key, 'is not a key of a LLaMA-Factory dataset that dda reads', `dda reads: ${[...known].join(', ')}`);

  const fields: Record<string, string> = {};
  const unread: string[] = [];
  const columns = objectOf(e.columns, 'columns', at);
  const ours = COLUMNS[formatting];
  for (const [key, value] of Object.entries(columns)) {
    if (value === null) continue;
    if (!(key in ours)) throw bad(`columns.${key}`, `is not read for ${formatting} data${['tools', 'images', 'videos', 'audios'].includes(key) ? ': the chat templates dda renders have no place for tools or media' : ''}`, `${formatting} columns read: ${Object.keys(ours).join(', ')}`);
    if (typeof value !== 'string' || value === '') throw bad(`columns.${key}`, `must be a column name, got ${JSON.stringify(value)}`);
  }
  for (const [key, { ours: field, default: d }] of Object.entries(ours)) {
    const column = key in columns ? (columns[key] as string | null) : d;
    if (column === null) unread.push(field);
    else if (column !== field) fields[field] = column;
  }
  const tagsIn = objectOf(e.tags, 'tags', at);
  if (formatting === 'alpaca' && Object.keys(tagsIn).length > 0) throw bad('tags', 'apply to sharegpt data only');
  const tags: Record<string, string> = { ...SHAREGPT_TAGS };
  for (const [key, value] of Object.entries(tagsIn)) {
    if (!(key in SHAREGPT_TAGS)) throw bad(`tags.${key}`, 'is not a ShareGPT tag', `tags: ${Object.keys(SHAREGPT_TAGS).join(', ')}`);
    if (typeof value !== 'string' || value === '') throw bad(`tags.${key}`, `must be a string, got ${JSON.stringify(value)}`);
    tags[key] = value;
  }
  return { info, name, file: join(dirname(info), e.file_name), formatting, fields, unread, tags: tags as unknown as ShareGptTags };
}

function objectOf(x: unknown, key: string, at: string): Record<string, unknown> {
  if (x === undefined) return {};
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw new DdaError(`${at}: '${key}' must be a JSON object`);
  return x as Record<string, unknown>;
}
