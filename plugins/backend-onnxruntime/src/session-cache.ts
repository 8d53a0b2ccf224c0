/**
 * At most `max` keyed resources at once (onnxruntime sessions, one per graph shape), the least
 * recently used idle one released first. Each session holds the memory of its largest run, so
 * sessions kept per batch shape without a bound grew past 22 GB when training at 512 tokens × 32k
 * vocabulary. One cache serves the decoder's and the trainer's main-thread sessions and each
 * worker's sessions of the pool.
 */
import { DdaError } from '@dda/core';

interface Entry<V> {
  readonly value: V;
  /** Callers inside {@link SessionCache.use} now: a busy entry is never released. */
  busy: number;
  /** Logical time of the last use (higher = more recent). */
  used: number;
}

/** Keyed values kept at most {@link max} at once (busy ones may exceed it until they are done). */
export class SessionCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private clock = 0;

  /**
   * @param max - Entries kept at most, at least 1.
   * @param release - Frees a value leaving the cache. Its synchronous part runs before the value
   *   that displaces it is created (a worker is told to drop a session before it builds the next).
   * @param what - Named in errors.
   * @throws DdaError when `max` is not a positive integer.
   */
  constructor(readonly max: number, private readonly release: (value: V, key: string) => void | Promise<void>, what = 'session cache') {
    if (!Number.isInteger(max) && max !== Infinity) throw new DdaError(`${what}: at most ${max} sessions kept: it must be a positive integer`, 'pass e.g. 4');
    if (!(max >= 1)) throw new DdaError(`${what}: at most ${max} sessions kept: it must be at least 1`, 'pass e.g. 4');
  }

  /** Entries held now. */
  get size(): number {
    return this.entries.size;
  }

  /** Keys held now, least recently used first. */
  keys(): string[] {
    return [...this.entries].sort((a, b) => a[1].used - b[1].used).map(([k]) => k);
  }

  /**
   * The value of `key`, marked as just used. An absent key is created by `create()` after the least
   * recently used idle entries beyond `max - 1` have been released.
   */
  async get(key: string, create: () => V): Promise<V> {
    const { entry, released } = this.admit(key, create);
    entry.used = ++this.clock;
    await released;
    return entry.value;
  }

  /**
   * {@link get} without waiting, for a cache whose `release` is synchronous (a worker told to drop a
   * session): the releases have run when it returns. A release that fails is an unhandled rejection.
   */
  getNow(key: string, create: () => V): V {
    const { entry, released } = this.admit(key, create);
    entry.used = ++this.clock;
    void released;
    return entry.value;
  }

  /**
   * Runs `f` with the value of `key` (created as in {@link get}); the value is not released while
   * `f` runs, and idle entries beyond `max` are released afterwards, least recently used first.
   */
  async use<R>(key: string, create: () => V, f: (value: V) => Promise<R>): Promise<R> {
    const { entry, released } = this.admit(key, create);
    entry.busy++;
    try {
      await released;
      return await f(entry.value);
    } finally {
      entry.busy--;
      entry.used = ++this.clock;
      await this.releaseAll(this.victims(this.max));
    }
  }

  /** Forgets `key` without releasing its value (e.g. a session that failed to build). */
  forget(key: string): void {
    this.entries.delete(key);
  }

  /** Releases every entry, busy or not (when the owner is done). */
  async clear(): Promise<void> {
    const all = [...this.entries];
    this.entries.clear();
    await this.releaseAll(all);
  }

  private admit(key: string, create: () => V): { entry: Entry<V>; released: Promise<void> } {
    const found = this.entries.get(key);
    if (found !== undefined) return { entry: found, released: Promise.resolve() };
    const released = this.releaseAll(this.victims(this.max - 1));
    const entry: Entry<V> = { value: create(), busy: 0, used: ++this.clock };
    this.entries.set(key, entry);
    return { entry, released };
  }

  /** The least recently used idle entries to release so that at most `limit` remain (fewer go when the others are busy). */
  private victims(limit: number): [string, Entry<V>][] {
    const excess = this.entries.size - limit;
    if (excess <= 0) return [];
    return [...this.entries].filter(([, e]) => e.busy === 0).sort((a, b) => a[1].used - b[1].used).slice(0, excess);
  }

  /** Removes `victims` from the cache at once, starts every release (synchronous parts in order), then awaits them. */
  private async releaseAll(victims: readonly [string, Entry<V>][]): Promise<void> {
    for (const [k] of victims) this.entries.delete(k);
    await Promise.all(victims.map(([k, e]) => this.release(e.value, k)));
  }
}
