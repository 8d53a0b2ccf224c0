// SessionCache: at most `max` values, the least recently used idle one released first, busy ones
// never, and a release's synchronous part before the value that displaces it is created.
import { describe, expect, it } from 'vitest';
import { SessionCache } from '../src/session-cache.js';

describe('SessionCache', () => {
  it('releases the least recently used value before creating a new one beyond max', async () => {
    const events: string[] = [];
    const cache = new SessionCache<string>(2, (v, k) => void events.push(`release ${k}=${v}`));
    const create = (k: string) => (): string => {
      events.push(`create ${k}`);
      return k.toUpperCase();
    };
    expect(await cache.get('a', create('a'))).toBe('A');
    expect(await cache.get('b', create('b'))).toBe('B');
    expect(await cache.get('a', create('a'))).toBe('A'); // reused, now the most recent
    expect(await cache.get('c', create('c'))).toBe('C');
    expect(events).toEqual(['create a', 'create b', 'release b=B', 'create c']);
    expect(cache.keys()).toEqual(['a', 'c']);
    expect(cache.getNow('b', create('b'))).toBe('B');
    expect(events.slice(4)).toEqual(['release a=A', 'create b']);
    await cache.clear();
    expect(cache.size).toBe(0);
    expect(events.slice(6).sort()).toEqual(['release b=B', 'release c=C']);
  });

  it('never releases a value in use: busy values may exceed max until they are done', async () => {
    const released: string[] = [];
    const cache = new SessionCache<string>(1, (_, k) => void released.push(k));
    let finishA!: () => void;
    const a = cache.use('a', () => 'A', (v) => new Promise<string>((resolve) => (finishA = () => resolve(v))));
    await Promise.resolve();
    expect(await cache.use('b', () => 'B', async (v) => v)).toBe('B');
    // b was idle after its use and a was busy: b, the only idle one, went.
    expect(released).toEqual(['b']);
    expect(cache.keys()).toEqual(['a']);
    finishA();
    expect(await a).toBe('A');
    expect(cache.size).toBe(1);
    await expect(cache.use('c', () => 'C', async () => { throw new Error('run failed'); })).rejects.toThrow('run failed');
    expect(released).toEqual(['b', 'a']);
    expect(cache.keys()).toEqual(['c']);
    cache.forget('c');
    expect(cache.size).toBe(0);
    expect(released).toEqual(['b', 'a']);
  });

  it('refuses a limit below 1 or fractional, and takes Infinity', () => {
    expect(() => new SessionCache(0, () => {})).toThrow(/at most 0 sessions kept: it must be at least 1/);
    expect(() => new SessionCache(1.5, () => {}, 'ONNX decoder')).toThrow(/ONNX decoder: at most 1\.5 sessions kept: it must be a positive integer/);
    expect(new SessionCache(Infinity, () => {}).max).toBe(Infinity);
  });
  it('keeps the sessions within maxBytes by their sizes, least recently used released first, the newest kept even alone above it', async () => {
    const released: string[] = [];
    const cache = new SessionCache<string>(Infinity, (_, k) => void released.push(k), 'test', 100);
    await cache.use('a', () => 'A', async () => 0, 40);
    await cache.use('b', () => 'B', async () => 0, 50);
    expect(cache.bytes).toBe(90);
    await cache.use('a', () => 'A', async () => 0, 40); // a is now the most recent
    await cache.use('c', () => 'C', async () => 0, 30); // 40 + 50 + 30 > 100: b goes, before c is created
    expect(released).toEqual(['b']);
    expect(cache.keys()).toEqual(['a', 'c']);
    expect(cache.bytes).toBe(70);
    await cache.use('d', () => 'D', async () => 0, 250); // alone above the budget: every other goes, d stays
    expect(released).toEqual(['b', 'a', 'c']);
    expect(cache.keys()).toEqual(['d']);
    expect(cache.bytes).toBe(250);
    cache.forget('d');
    expect(cache.bytes).toBe(0);
    await cache.get('e', () => 'E', 10);
    await cache.clear();
    expect(cache.bytes).toBe(0);
    expect(() => new SessionCache<string>(2, () => undefined, 'test', 0)).toThrow(/must be positive/);
  });
});
