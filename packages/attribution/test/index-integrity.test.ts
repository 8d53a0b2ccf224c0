import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VERIFIED_FILE, markVerified, sha256OfFile, verifyIndexRows } from '../src/index-integrity.js';

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
});
