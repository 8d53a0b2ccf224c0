/**
 * Content hashes of inputs: every artifact of an attribution is keyed by the hashes of the inputs
 * that shape it, so a changed training record, checkpoint tensor, tokenizer or query recomputes
 * exactly what depends on it.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { dataFilesOf } from '@dda/data';

/** SHA-256 of a file's bytes, hex, first 16 characters; read in 8 MiB chunks (memory stays flat for multi-GB weights). */
export function hashFile(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(8 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Hash of the data a `--train` or `--queries` argument reads ({@link dataFilesOf}): a single file's
 * {@link hashFile}; for several files, SHA-256 over their names and hashes, first 16 hex characters.
 */
export function hashData(spec: string, flag: string): string {
  const files = dataFilesOf(spec, flag);
  if (files.length === 1) return hashFile(files[0] as string);
  return createHash('sha256').update(files.map((f) => `${basename(f)}:${hashFile(f)}`).join('\n')).digest('hex').slice(0, 16);
}

/** Hashes of the named files of a folder that exist (name → hash), in the given order. */
export function hashFiles(dir: string, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const p = join(dir, n);
    if (existsSync(p) && statSync(p).isFile()) out[n] = hashFile(p);
  }
  return out;
}
