/**
 * A scorer's options (`dda attribute --scorer-option key=value`, a benchmark config's
 * `scorerOptions`, {@link RunOptions.scorerOptions}) checked against what the scorer reads: a key
 * the scorer's registry entry does not declare is refused (a typo would otherwise be ignored and the
 * default used), then the scorer is created with them, so its own option reader refuses a bad value.
 */
import { DdaError, scorers } from '@dda/core';
import { ensurePlugins } from './plugins.js';

/**
 * @throws DdaError for a key that scorer `id` does not declare (its registry entry's `options`; a
 *   scorer that declares none accepts any key, as it cannot be checked), naming the scorer's options
 *   and the closest one. `where` (e.g. `--scorer-option`) starts the message.
 */
export function refuseUnknownScorerOptions(id: string, options: Readonly<Record<string, unknown>>, where = 'scorer options'): void {
  scorers.refuseUnknownOptions(id, options, where);
}

/**
 * Checks every scorer's options before any work: each scorer is registered, takes the keys given
 * ({@link refuseUnknownScorerOptions}) and accepts their values (it is created with them).
 *
 * @throws DdaError naming the scorer, the option and why.
 */
export async function checkScorerOptions(options: Readonly<Record<string, Readonly<Record<string, unknown>>>>, where = 'scorer options'): Promise<void> {
  await ensurePlugins();
  for (const [id, o] of Object.entries(options)) {
    refuseUnknownScorerOptions(id, o, where);
    try {
      await scorers.create(id, o);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new DdaError(`${where}: scorer '${id}': ${msg}`);
    }
  }
}

/**
 * `key=value` entries (`dda attribute --scorer-option`) as an options object: a value that reads
 * as a finite number is that number, `true` / `false` booleans, anything else the string.
 *
 * @throws DdaError for an entry without `key=`, or a key given twice.
 */
export function parseScorerOptions(entries: readonly string[], where = '--scorer-option'): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of entries) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new DdaError(`${where} ${kv}: not key=value`, 'e.g. --scorer-option damping=0.01 (repeat the flag for more options)');
    const key = kv.slice(0, eq).trim();
    const v = kv.slice(eq + 1).trim();
    if (key in out) throw new DdaError(`${where}: option '${key}' is given twice`, 'give each option once');
    out[key] = v !== '' && Number.isFinite(Number(v)) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v;
  }
  return out;
}
