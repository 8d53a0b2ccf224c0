import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILD_LOCK, checkBuildLock, lockBuildFolder, takeOverStaleLock } from '../src/build-lock.js';
import { VERIFIED_FILE, checkRowsUnchanged, markVerified, recordCheckedState, sha256OfFile, verifyIndexRows } from '../src/index-integrity.js';

// The rows' check of an index folder (index-integrity.ts) on small files.
const dir = mkdtempSync(join(tmpdir(), 'dda-index-integrity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the integrity of an index\'s rows', () => {
  it('hashes a file as SHA-256 of its bytes, across the 16 MiB reads', () => {
    const path = join(dir, 'big.bin');
    const bytes = Buffer.alloc(17 * 2 ** 20 + 3, 0);
    for (let i = 0; i < bytes.length; i += 4099) bytes[i] = i % 251;
    writeFileSync(path, bytes);
    expect(sha256OfFile(path)).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('verifies against the recorded hash, marks the file, and refuses a changed one; a marker is never written for a file changed while it was hashed', () => {
    const rows = join(dir, 'gradients.f16');
    writeFileSync(rows, Buffer.from([1, 2, 3, 4]));
    const sha = sha256OfFile(rows);
    verifyIndexRows(dir, rows, sha);
    const marker = JSON.parse(readFileSync(join(dir, VERIFIED_FILE), 'utf8'));
    expect(marker).toMatchObject({ sha256: sha, size: 4, ino: statSync(rows).ino });
    writeFileSync(rows, Buffer.from([1, 2, 3, 5]));
    expect(() => verifyIndexRows(dir, rows, sha)).toThrow(/gradients\.f16 is not the file its index was built with: SHA-256 [0-9a-f]{16}…, index\.json records [0-9a-f]{16}…/);
    // The stat taken before hashing no longer matches the file: no marker vouches for it.
    rmSync(join(dir, VERIFIED_FILE));
    const before = statSync(rows);
    writeFileSync(rows, Buffer.from([9, 9, 9, 9]));
    markVerified(dir, rows, sha, before);
    expect(existsSync(join(dir, VERIFIED_FILE))).toBe(false);
    // No recorded hash (an index of an earlier version): used unchecked, said in the log.
    const lines: string[] = [];
    verifyIndexRows(dir, rows, undefined, (l) => lines.push(l));
    expect(lines.join('\n')).toMatch(/records no hash of its rows: .*gradients\.f16 is used unchecked/);
  });

  it('refuses rows read from a file that changed after its check (rewritten in place with the same size), and never compares a header it has no state for', () => {
    const d = join(dir, 'during');
    mkdirSync(d);
    const rows = join(d, 'gradients.f16');
    writeFileSync(rows, Buffer.from([1, 2, 3, 4]));
    const header = {};
    recordCheckedState(header, verifyIndexRows(d, rows, sha256OfFile(rows)) as Stats);
    let fd = openSync(rows, 'r');
    checkRowsUnchanged(header, rows, fd); // unchanged: nothing thrown
    writeFileSync(rows, Buffer.from([1, 2, 3, 5])); // same size, same inode, during the "read"
    expect(() => checkRowsUnchanged(header, rows, fd)).toThrow(/gradients\.f16 changed after its check against index\.json .*the rows read are not used/);
    expect(() => checkRowsUnchanged(header, rows, fd)).toThrow(/changed after its check/); // refused again, not forgotten
    checkRowsUnchanged({}, rows, fd); // a header with no recorded state: not compared
    closeSync(fd);
    // Another header read after the change vouches for the file as it is now.
    const later = {};
    recordCheckedState(later, statSync(rows));
    fd = openSync(rows, 'r');
    checkRowsUnchanged(later, rows, fd);
    closeSync(fd);
  });
});

describe('one build per index folder (build.lock)', () => {
  it('takes a folder, refuses a second taker while held, releases only its own lock', () => {
    const d = join(dir, 'lock-a');
    const release = lockBuildFolder(d, () => {});
    checkBuildLock(d);
    expect(() => lockBuildFolder(d, () => {})).toThrow(/another dda index build \(process \d+, started .*\) is writing into this folder/);
    // Another build's lock in its place: the check refuses, and the release leaves that lock alone.
    const other = JSON.stringify({ pid: process.pid, host: hostname(), started: 'other', token: 'x' });
    writeFileSync(join(d, BUILD_LOCK), other);
    expect(() => checkBuildLock(d)).toThrow(/build\.lock was replaced by another build's while it was writing; stopped before recording more rows/);
    release();
    expect(readFileSync(join(d, BUILD_LOCK), 'utf8')).toBe(other);
    rmSync(join(d, BUILD_LOCK));
    expect(() => checkBuildLock(d)).toThrow(/internal: rows written into .* without its build lock/);
    const again = lockBuildFolder(d, () => {});
    rmSync(join(d, BUILD_LOCK));
    expect(() => checkBuildLock(d)).toThrow(/build\.lock was deleted while it was writing/);
    again();
  });

  it('a stale lock is taken over only if it is still the one judged stale: a live lock renamed by mistake is put back and the taker refused', () => {
    const d = join(dir, 'lock-b');
    mkdirSync(d);
    const path = join(d, BUILD_LOCK);
    // Judged stale, still there: removed.
    writeFileSync(path, 'stale');
    expect(takeOverStaleLock(path, 'stale')).toBe(true);
    expect(existsSync(path)).toBe(false);
    // Gone already (another taker removed it): nothing to do.
    expect(takeOverStaleLock(path, 'stale')).toBe(false);
    // Between the judgement and the rename, another build took the folder over: its lock goes back.
    const live = JSON.stringify({ pid: 4242, host: hostname(), started: 'now' });
    writeFileSync(path, live);
    expect(() => takeOverStaleLock(path, 'stale')).toThrow(/another dda index build \(process 4242\) took this folder over at the same moment as this one/);
    expect(readFileSync(path, 'utf8')).toBe(live);
    expect(readdirSync(d)).toEqual([BUILD_LOCK]);
  });
});
