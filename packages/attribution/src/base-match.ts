/**
 * Whether LoRA checkpoints were trained on the base model given with `--base`.
 *
 * PEFT writes the model an adapter was trained on into `adapter_config.json` as
 * `base_model_name_or_path`: a Hugging Face Hub id (`Qwen/Qwen2-0.5B-Instruct`) or the local folder
 * given to `from_pretrained`. An adapter loads on any base of the same shapes, so an adapter trained on
 * an Instruct model attributes without complaint on the pretrained model of the same size, and every
 * score is then of a model nobody trained. PEFT itself does not check this; we do, and refuse a
 * mismatch rather than print plausible numbers.
 */
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { DdaError } from '@dda/core';
import { ADAPTER_CONFIG_FILE, CONFIG_FILE } from '@dda/model';
import { hashFiles } from './hashing.js';

/** How the adapters' base was matched to `--base`, recorded in summary.json. */
export interface BaseMatch {
  /** `base_model_name_or_path` of the adapters (null: they name none, nothing to check). */
  readonly adapterBase: string | null;
  /**
   * - `same-folder`: it names the --base folder itself;
   * - `same-weights`: it names another local folder whose weight files are byte-identical to --base's;
   * - `name`: it is a Hub id whose last component equals a name of --base (folder name, Hub cache folder or config.json's `_name_or_path`);
   * - `path-name`: it is a path that is not on this machine (e.g. where training ran) whose last folder name equals a name of --base:
   *   weak evidence (folders are often called `base` or `model`), its weights cannot be compared (logged as a warning);
   * - `declared`: `--base-name` declares --base to be that model;
   * - `unnamed`: the adapters name no base.
   */
  readonly how: 'same-folder' | 'same-weights' | 'name' | 'path-name' | 'declared' | 'unnamed';
  /** The name of --base it was matched with (for `name` and `declared`), or the folder. */
  readonly matchedWith: string | null;
}

/** How a {@link BaseMatch} was decided, in words (for the log). */
export function describeBaseMatch(m: BaseMatch): string {
  switch (m.how) {
    case 'same-folder': return 'the --base folder itself';
    case 'same-weights': return `the folder ${m.matchedWith}, whose weight files are byte-identical to --base's`;
    case 'name': return `matched by name with --base ('${m.matchedWith}')`;
    case 'path-name': return `a folder not on this machine, matched with --base only by its last folder name ('${m.matchedWith}'): its weights could not be compared`;
    case 'declared': return `declared to be --base by --base-name '${m.matchedWith}'`;
    case 'unnamed': return 'no base model named, not checked';
  }
}

/** The warning a {@link BaseMatch} calls for, or null: a `path-name` match is weak evidence. */
export function baseMatchWarning(m: BaseMatch): string | null {
  if (m.how !== 'path-name') return null;
  return `warning: the adapters were trained on the folder ${m.adapterBase} of another machine, and --base matches it only by its last folder name ('${m.matchedWith}'), so its weights could not be compared: if --base is not that model, every score is of a model that was never fine-tuned (the loss checks below do not always tell). Check it, then give --base-name '${modelNameKey(m.adapterBase ?? '')}' to declare it`;
}

/** The model name at the end of a Hub id or a path, compared without case (`Qwen/Qwen2-0.5B` → `qwen2-0.5b`). */
export function modelNameKey(nameOrPath: string): string {
  const parts = nameOrPath.trim().replace(/[\\/]+$/, '').split(/[\\/]/);
  return (parts[parts.length - 1] ?? '').toLowerCase();
}

/**
 * The names a base model folder goes by: its folder name; `org/name` where it is a Hugging Face Hub
 * cache snapshot (`models--org--name/snapshots/<commit>`); and config.json's `_name_or_path`, which
 * older transformers versions write.
 */
export function baseFolderNames(dir: string): string[] {
  const real = realpathSync(dir);
  const names = [basename(real)];
  const parent = dirname(real);
  const cache = /^models--(.+)$/.exec(basename(dirname(parent)));
  if (basename(parent) === 'snapshots' && cache?.[1]) names.push(cache[1].replace(/--/g, '/'));
  const configPath = join(real, CONFIG_FILE);
  if (existsSync(configPath)) {
    try {
      const c = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      if (typeof c._name_or_path === 'string' && c._name_or_path.trim() !== '') names.push(c._name_or_path.trim());
    } catch {
      // An unreadable config.json is reported where the base model is loaded.
    }
  }
  return names;
}

const weightFilesOf = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();

/**
 * Checks that the adapter at `adapterDir`, whose adapter_config.json names `adapterBase`, was trained
 * on the model in `baseDir`.
 *
 * A local folder that exists is compared by content: the --base folder itself, or another folder with
 * byte-identical safetensors files, passes; another model is refused. A Hub id (or a path of another
 * machine) is compared by its last component with the names of --base ({@link baseFolderNames}), or
 * with `declaredName` (`--base-name`) when the user declares which model the folder holds.
 *
 * @param cwd where a relative `base_model_name_or_path` is resolved first (then beside the adapter).
 * @throws DdaError naming adapter_config.json, both models and what to pass, when they differ.
 */
export function checkAdapterBase(adapterDir: string, adapterBase: string | null, baseDir: string, declaredName?: string, cwd = process.cwd()): BaseMatch {
  const named = adapterBase?.trim() ?? '';
  if (named === '') return { adapterBase: null, how: 'unnamed', matchedWith: null };
  const where = join(adapterDir, ADAPTER_CONFIG_FILE);
  const base = realpathSync(baseDir);
  const local = (isAbsolute(named) ? [named] : [resolve(cwd, named), resolve(adapterDir, named)])
    .find((p) => existsSync(p) && statSync(p).isDirectory() && existsSync(join(p, CONFIG_FILE)));
  if (local !== undefined) {
    const real = realpathSync(local);
    if (real === base) return { adapterBase: named, how: 'same-folder', matchedWith: base };
    const [a, b] = [weightFilesOf(real), weightFilesOf(base)];
    const same = a.length > 0 && a.join() === b.join() && JSON.stringify(hashFiles(real, a)) === JSON.stringify(hashFiles(base, b));
    if (same) return { adapterBase: named, how: 'same-weights', matchedWith: real };
    throw new DdaError(
      `${where}: the adapter was trained on ${named} (base_model_name_or_path, the folder ${real}), but --base is ${base}, whose weights differ (${a.length === 0 ? `${real} has no safetensors files` : a.join() !== b.join() ? `files ${a.join(', ')} against ${b.join(', ') || 'none'}` : 'the same files with other contents'}); scores would be of a model that was never fine-tuned`,
      `pass --base ${real}, the model the adapter was trained on`,
    );
  }
  if (declaredName !== undefined && declaredName.trim() !== '') {
    if (modelNameKey(declaredName) === modelNameKey(named)) return { adapterBase: named, how: 'declared', matchedWith: declaredName.trim() };
    throw new DdaError(
      `${where}: the adapter was trained on '${named}' (base_model_name_or_path), but --base-name declares --base ${base} to be '${declaredName.trim()}'`,
      `pass --base with the folder of '${named}' (and --base-name '${named}' if its folder has another name)`,
    );
  }
  const names = baseFolderNames(base);
  const hit = names.find((n) => modelNameKey(n) === modelNameKey(named));
  // A path (absolute, ./, ../, ~/ or with backslashes) names a folder, not a model: its last component is weak evidence.
  const isPath = isAbsolute(named) || /^(\.{1,2}[\\/]|~[\\/]|[A-Za-z]:[\\/])/.test(named) || named.includes('\\') || named.split('/').length > 2;
  if (hit !== undefined) return { adapterBase: named, how: isPath ? 'path-name' : 'name', matchedWith: hit };
  // QLoRA: trained on a quantized copy (bitsandbytes, GPTQ, AWQ), which this tool does not run.
  const quantized = /bnb|[48]bit|gptq|awq/i.test(modelNameKey(named));
  throw new DdaError(
    `${where}: the adapter was trained on '${named}' (base_model_name_or_path), but --base ${base} goes by ${names.map((n) => `'${n}'`).join(', ')}; an adapter loads on any base of the same shapes (e.g. an Instruct model's adapter on the pretrained model), and the scores would be of a model that was never fine-tuned`,
    quantized
      ? `'${named}' is a quantized model (QLoRA): pass --base with the unquantized model it was made from, and declare it with --base-name '${named}'; the scores are then those of the adapter on unquantized weights, an approximation of the model that was trained`
      : `pass --base with the folder of '${named}'; if ${base} holds that model under another folder name, declare it with --base-name '${named}'`,
  );
}
