import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArtifactStore, hashOf } from '@dda/attribution';

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

  it('removes one artifact (its folder), leaving others of the same name, and removing a missing one does nothing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dda-art-'));
    const store = new ArtifactStore(dir);
    store.save('step', { k: 1 }, files('one'));
    store.save('step', { k: 2 }, files('two'));
    store.remove('step', { k: 1 });
    expect(store.locate('step', { k: 1 })).toBeUndefined();
    expect(existsSync(store.folder('step', { k: 1 }))).toBe(false);
    expect(new TextDecoder().decode(store.load('step', { k: 2 })?.get('a.bin'))).toBe('two');
    store.remove('step', { k: 3 });
  });

  it('records the compute seconds in the manifest and returns them when the artifact is reused', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dda-art-'));
    const store = new ArtifactStore(dir);
    const slow = async (): Promise<Map<string, Uint8Array>> => {
      await new Promise((r) => setTimeout(r, 60));
      return files('x');
    };
    const first = await store.getOrCompute('step', { s: 1 }, slow);
    expect(first.reused).toBe(false);
    expect(first.seconds).toBeGreaterThanOrEqual(0.05);
    const manifest = JSON.parse(readFileSync(join(store.folder('step', { s: 1 }), 'manifest.json'), 'utf8')) as { seconds: number };
    expect(manifest.seconds).toBe(first.seconds);
    const again = await store.getOrCompute('step', { s: 1 }, () => files('x'));
    expect(again).toMatchObject({ reused: true, seconds: first.seconds });
    // getOrProduce (large artifacts written file by file) does the same.
    const produced = await store.getOrProduce('big', { s: 2 }, async (put) => {
      await new Promise((r) => setTimeout(r, 60));
      put('a.bin', new Uint8Array([1]));
    });
    expect(produced.seconds).toBeGreaterThanOrEqual(0.05);
    expect((await store.getOrProduce('big', { s: 2 }, async () => {})).seconds).toBe(produced.seconds);
    // A manifest written before the field existed is still reused; its seconds are unknown.
    const m = join(store.folder('step', { s: 1 }), 'manifest.json');
    const { seconds: _dropped, ...old } = JSON.parse(readFileSync(m, 'utf8')) as Record<string, unknown>;
    writeFileSync(m, JSON.stringify(old));
    expect(await store.getOrCompute('step', { s: 1 }, () => files('x'))).toMatchObject({ reused: true, seconds: undefined });
  });

  it('hashes are stable under key order and sensitive to values', () => {
    expect(hashOf({ a: 1, b: [1, 2] })).toBe(hashOf({ b: [1, 2], a: 1 }));
    expect(hashOf({ a: 1 })).not.toBe(hashOf({ a: 2 }));
    expect(hashOf(Float32Array.of(1, 2))).not.toBe(hashOf(Float32Array.of(1, 3)));
  });
});
