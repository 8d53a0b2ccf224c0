import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArtifactStore, hashOf } from '@dda/harness';

describe('ArtifactStore', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const files = (s: string): Map<string, Uint8Array> => new Map([['a.bin', new TextEncoder().encode(s)]]);

  it('reuses a matching artifact and recomputes when the inputs change', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dda-art-'));
    const store = new ArtifactStore(dir);
    let calls = 0;
    const make = (): Map<string, Uint8Array> => (calls++, files('x'));
    expect((await store.getOrCompute('step', { lr: 1 }, make)).reused).toBe(false);
    expect((await store.getOrCompute('step', { lr: 1 }, make)).reused).toBe(true);
    expect((await store.getOrCompute('step', { lr: 2 }, make)).reused).toBe(false);
    expect(calls).toBe(2);
  });

  it('detects a corrupted or missing file and recomputes', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dda-art-'));
    const store = new ArtifactStore(dir);
    await store.getOrCompute('step', { k: 1 }, () => files('original'));
    writeFileSync(join(store.folder('step', { k: 1 }), 'a.bin'), 'tampered');
    const r = await store.getOrCompute('step', { k: 1 }, () => files('original'));
    expect(r.reused).toBe(false);
    expect(readFileSync(join(store.folder('step', { k: 1 }), 'a.bin'), 'utf8')).toBe('original');
    rmSync(join(store.folder('step', { k: 1 }), 'a.bin'));
    expect(store.load('step', { k: 1 })).toBeUndefined();
  });

  it('hashes are stable under key order and sensitive to values', () => {
    expect(hashOf({ a: 1, b: [1, 2] })).toBe(hashOf({ b: [1, 2], a: 1 }));
    expect(hashOf({ a: 1 })).not.toBe(hashOf({ a: 2 }));
    expect(hashOf(Float32Array.of(1, 2))).not.toBe(hashOf(Float32Array.of(1, 3)));
  });
});
