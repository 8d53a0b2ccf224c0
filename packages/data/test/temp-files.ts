import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** A temporary folder removed after the test file, and writers of numbered data files in it. */
export function tempFiles(prefix: string): { dir: string; file: (ext: string, text: string) => string; jsonl: (rows: unknown[]) => string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const file = (ext: string, text: string): string => {
    const p = join(dir, `f${n++}.${ext}`);
    writeFileSync(p, text);
    return p;
  };
  return { dir, file, jsonl: (rows) => file('jsonl', rows.map((r) => JSON.stringify(r)).join('\n')) };
}
