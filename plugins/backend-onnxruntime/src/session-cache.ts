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
  /** Memory the entry is estimated to hold at most (bytes; 0 when not given). */
  readonly bytes: number;
  /** Callers inside {@link SessionCache.use} now: a busy entry is never released. */
  busy: number;
  /** Logical time of the last use (higher = more recent). */
  used: number;
}

/**
 * Keyed values kept at most {@link max} at once and, when entries give their size, at most
 * {@link maxBytes} in all (busy ones may exceed either until they are done; the newest entry is
 * kept even when it alone is larger).
 */
export class SessionCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private clock = 0;

  /**
   * @param max - Entries kept at most, at least 1.
   * @param release - Frees a value leaving the cache. Its synchronous part runs before the value
   *   that displaces it is created (a worker is told to drop a session before it builds the next).
   * @param what - Named in errors.
   * @param maxBytes - Most bytes held in all, summed over the sizes the entries were created with
   *   (default: no limit). An onnxruntime session keeps its largest run's activations in its memory
   *   arena, so a count alone does not bound memory when shapes differ (sequence lengths of real text).
   * @throws DdaError when `max` is not a positive integer or `maxBytes` is not positive.
   */
  constructor(readonly max: number, private readonly release: (value: V, key: string) => void | Promise<void>, what = 'session cache', readonly maxBytes = Infinity) {
    if (!Number.isInteger(max) && max !== Infinity) throw new DdaError(`${what}: at most ${max} sessions kept: it must be a positive integer`, 'pass e.g. 4');
    if (!(max >= 1)) throw new DdaError(`${what}: at most ${max} sessions kept: it must be at least 1`, 'pass e.g. 4');
    if (!(maxBytes > 0)) throw new DdaError(`${what}: at most ${maxBytes} bytes of sessions kept: it must be positive`, 'pass e.g. 4 GiB');
  }

  /** Bytes the entries held now were created with (their sum). */
  get bytes(): number {
    let sum = 0;
    for (const e of this.entries.values()) sum += e.bytes;
    return sum;
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
  async get(key: string, create: () => V, bytes = 0): Promise<V> {
    const { entry, released } = this.admit(key, create, bytes);
    entry.used = ++this.clock;
    await released;
    return entry.value;
  }

  /**
   * {@link get} without waiting, for a cache whose `release` is synchronous (a worker told to drop a
   * session): the releases have run when it returns. A release that fails is an unhandled rejection.
   */
  getNow(key: string, create: () => V, bytes = 0): V {
    const { entry, released } = this.admit(key, create, bytes);
    entry.used = ++this.clock;
    void released;
    return entry.value;
  }

  /**
   * Runs `f` with the value of `key` (created as in {@link get}, `bytes` its size); the value is not
   * released while `f` runs, and idle entries beyond `max` or `maxBytes` are released afterwards,
   * least recently used first.
   */
  async use<R>(key: string, create: () => V, f: (value: V) => Promise<R>, bytes = 0): Promise<R> {
    const { entry, released } = this.admit(key, create, bytes);
    entry.busy++;
    try {
      await released;
      return await f(entry.value);
    } finally {
      entry.busy--;
      entry.used = ++this.clock;
      await this.releaseAll(this.victims(this.max, 0, key));
    }
  }

  /** Forgets `key` without releasing its value (e.g. a session that failed to build). */
  forget(key: string): void {
    this.entries.delete(key);
  }

  /** Releases every entry, busy or not (when the owner is done). */
  async clear(): Promise<void> {
    const all = [...this.entries];
    await this.releaseAll(all);
  }

  private admit(key: string, create: () => V, bytes: number): { entry: Entry<V>; released: Promise<void> } {
    const found = this.entries.get(key);
    if (found !== undefined) return { entry: found, released: Promise.resolve() };
    const released = this.releaseAll(this.victims(this.max - 1, bytes));
    const entry: Entry<V> = { value: create(), bytes, busy: 0, used: ++this.clock };
    this.entries.set(key, entry);
    return { entry, released };
  }

  /**
   * The least recently used idle entries to release so that at most `limit` remain and the bytes
   * held plus `incoming` stay within maxBytes (fewer go when the others are busy); `keep` (the entry
   * just used) goes only to bring the count within `limit`, never for the bytes alone.
   */
  private victims(limit: number, incoming: number, keep?: string): [string, Entry<V>][] {
    let count = this.entries.size;
    let bytes = this.bytes + incoming;
    if (count <= limit && bytes <= this.maxBytes) return [];
    const out: [string, Entry<V>][] = [];
    for (const victim of [...this.entries].filter(([, e]) => e.busy === 0).sort((a, b) => a[1].used - b[1].used)) {
      if (count <= limit && bytes <= this.maxBytes) break;
      if (victim[0] === keep && count <= limit) continue;
      out.push(victim);
      count--;
      bytes -= victim[1].bytes;
    }
    return out;
  }

  /** Removes `victims` from the cache at once, starts every release (synchronous parts in order), then awaits them. */
  private async releaseAll(victims: readonly [string, Entry<V>][]): Promise<void> {
    for (const [k] of victims) this.entries.delete(k);
    await Promise.all(victims.map(([k, e]) => this.release(e.value, k)));
  }
}
