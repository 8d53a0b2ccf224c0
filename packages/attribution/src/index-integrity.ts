/**
 * The integrity of an index's rows: `index.json` records the SHA-256 of `gradients.f16` as the
 * build (or the merge of its shards) wrote it, and every reader checks the file against it before
 * using a row, so a file altered, swapped or damaged after the build is refused instead of scored
 * (its size alone would let a same-size file through). Hashing reads the whole file (about 1 GB/s
 * of SHA-256 here), so a successful check leaves `verified.json` beside it: the hash with the
 * file's inode, size, modification and change times. A later reader whose `gradients.f16` still
 * has those skips the hashing; any write, copy over or rename into place changes the change time
 * (which no tool sets back), so the file is hashed again. A read-only folder gets no marker: its
 * file is hashed at every use. Readers check once more after reading rows
 * ({@link checkRowsUnchanged}) that the file is still the one checked, so a file rewritten while a
 * query reads it is refused too.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { DdaError } from '@dda/core';
import { writeFileAtomic } from './artifacts.js';

/** The marker of a verified rows file, in the index folder. */
export const VERIFIED_FILE = 'verified.json';

interface Verified {
  readonly sha256: string;
  readonly size: number;
  readonly ino: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

const stamp = (sha256: string, s: Stats): Verified => ({ sha256, size: s.size, ino: s.ino, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs });

/** Whether two stamps are the same file state (every field equal). */
const sameStamp = (a: Verified, b: Verified): boolean => (Object.keys(b) as (keyof Verified)[]).every((k) => a[k] === b[k]);

/**
 * The state of the rows file each index header vouches for, as it was when checked in this process
 * ({@link recordCheckedState}: by readIndexHeader after {@link verifyIndexRows}, by the build or
 * merge that wrote it), keyed by the header object the readers then hold.
 */
const checked = new WeakMap<object, Verified>();

/** SHA-256 (hex) of a file, read 16 MiB at a time. */
export function sha256OfFile(path: string): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(16 * 2 ** 20);
  const fd = openSync(path, 'r');
  try {
    for (let pos = 0; ;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Writes the marker of `rows` (in `dir`) verified against `sha256`, with `before`, the file's stat
 * taken before it was hashed: only when the file's stat now is still that one (a write while it was
 * being hashed changes its change time, and the marker would otherwise vouch for the changed file).
 * A folder that cannot be written gets none.
 */
export function markVerified(dir: string, rows: string, sha256: string, before: Stats, marker: string = VERIFIED_FILE): void {
  try {
    const then = stamp(sha256, before);
    if (!sameStamp(stamp(sha256, statSync(rows)), then)) return;
    writeFileAtomic(join(dir, marker), `${JSON.stringify(then)}\n`);
  } catch {
    // read-only: verified again at every use
  }
}

/** Which file of an index folder {@link verifyIndexRows} checks: its marker, the header that records its hash, and how to remake it. */
export interface VerifiedFileKind {
  readonly marker: string;
  readonly header: string;
  /** What wrote it, e.g. `index was built` (for "is not the file its index was built with"). */
  readonly writer: string;
  readonly remake: string;
}

/** The index's rows (`gradients.f16`, recorded in index.json). */
export const INDEX_ROWS_KIND: VerifiedFileKind = { marker: VERIFIED_FILE, header: 'index.json', writer: 'index was built', remake: 'restore the gradients.f16 of this build, or build the index again (delete the folder first)' };

/**
 * Checks the rows file `rows` of the index in `dir` against the SHA-256 its index.json records
 * (`recorded`; absent in indexes of earlier versions: nothing is checked and `log` says so), or
 * another file of the folder described by `kind` (the sketch of index-sketch.ts).
 *
 * @throws DdaError naming the file when its content is not what the build wrote.
 */
export function verifyIndexRows(dir: string, rows: string, recorded: string | undefined, log: (line: string) => void = () => {}, kind: VerifiedFileKind = INDEX_ROWS_KIND): Stats | undefined {
  if (recorded === undefined) {
    log(`note: ${join(dir, kind.header)} (an index of an earlier version) records no hash of its rows: ${rows} is used unchecked`);
    return undefined;
  }
  const s = statSync(rows);
  const markerPath = join(dir, kind.marker);
  if (existsSync(markerPath)) {
    try {
      if (sameStamp(JSON.parse(readFileSync(markerPath, 'utf8')) as Verified, stamp(recorded, s))) return s;
    } catch {
      // an unreadable marker: hash again
    }
  }
  const actual = sha256OfFile(rows); // s, the stat before hashing, goes into the marker
  if (actual !== recorded) {
    throw new DdaError(
      `${rows} is not the file its ${kind.writer} with: SHA-256 ${actual.slice(0, 16)}…, ${kind.header} records ${recorded.slice(0, 16)}… (it was changed, damaged or replaced after the build)`,
      kind.remake,
    );
  }
  markVerified(dir, rows, recorded, s, kind.marker);
  return s;
}

/** Records `state`, the rows file's stat when it was checked or written, as what `header` vouches for ({@link checkRowsUnchanged}). */
export function recordCheckedState(header: object, state: Stats): void {
  checked.set(header, stamp('', state));
}

/**
 * After rows were read through `fd` (opened on the rows file `rows` of the index whose `header`
 * the reader holds): checks that the file is still in the state recorded for that header
 * ({@link recordCheckedState}: when readIndexHeader checked it, or when the build or merge wrote
 * it), so rows of a file written, truncated or replaced since are not paired with that header's
 * training ids. No header, or one with no recorded state (an index of an earlier version, without
 * a hash), is not compared.
 *
 * @throws DdaError naming the file when it changed.
 */
export function checkRowsUnchanged(header: object | undefined, rows: string, fd: number): void {
  const then = header === undefined ? undefined : checked.get(header);
  if (then === undefined) return;
  if (!sameStamp(stamp('', fstatSync(fd)), then) || !sameStamp(stamp('', statSync(rows)), then)) {
    throw new DdaError(
      `${rows} changed after its check against index.json (written, truncated or replaced while it was being read, or since this index.json was read); the rows read are not used`,
      'make sure nothing writes into the index while it is queried, then run the command again (the file is checked again)',
    );
  }
}
