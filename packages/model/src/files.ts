import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DdaError } from '@dda/core';
import { GIT_LFS_SIGNATURE, gitLfsPointerError } from './weight-files.js';

/** Writes a file atomically: a temporary file in the same folder, then a rename over the target. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Writes pretty-printed JSON atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Reads and parses a JSON file of a model folder; a missing or malformed file, or a Git LFS pointer in its place, gets a DdaError naming it. */
export function readJsonFile(dir: string, name: string): unknown {
  const path = join(dir, name);
  if (!existsSync(path)) throw new DdaError(`${path}: file not found`, `a model folder needs ${name}`);
  const text = readFileSync(path, 'utf8');
  if (text.startsWith(GIT_LFS_SIGNATURE)) throw gitLfsPointerError(path);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DdaError(`${path}: not valid JSON (${(e as Error).message})`, 're-export the file, or check that the copy was not truncated');
  }
}
