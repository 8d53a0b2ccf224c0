import { DdaError } from './errors.js';

/** One registered implementation: a stable kebab-case id, a priority and a factory. */
export interface RegistryEntry<T, O> {
  /** Stable kebab-case id, the same in configs, CSV columns, CLI flags and docs. */
  readonly id: string;
  /** One line for `--help` and error messages. */
  readonly description: string;
  /** Higher is tried first by {@link Registry.resolve}. */
  readonly priority: number;
  /** Builds (and for backends: initialises) the implementation. May throw to say it is unavailable. */
  readonly create: (options: O) => T | Promise<T>;
}

/** One candidate's failure, as collected by {@link Registry.resolve}. */
export interface ResolveFailure {
  readonly id: string;
  readonly reason: string;
}

const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/**
 * A registry of plugins of one kind (scorers, debiasers, denoisers, backends, metrics).
 * Plugins register themselves on import; the harness looks them up by id or resolves the
 * highest-priority one that initialises, collecting every failure into a single error.
 */
export class Registry<T, O = Record<string, unknown>> {
  private readonly entries = new Map<string, RegistryEntry<T, O>>();
  /** Fallbacks taken by the last {@link resolve} call, with reasons (for logs). */
  lastFailures: ResolveFailure[] = [];

  constructor(readonly kind: string) {}

  /** Adds an entry. Re-registering the same id replaces it only when `replace` is true. */
  register(entry: RegistryEntry<T, O>, replace = false): void {
    if (!KEBAB.test(entry.id)) {
      throw new DdaError(`${this.kind} id '${entry.id}' is not kebab-case`, 'use lower-case words joined by "-", e.g. grad-dot');
    }
    if (this.entries.has(entry.id) && !replace) {
      if (this.entries.get(entry.id) === entry) return;
      throw new DdaError(`${this.kind} '${entry.id}' is already registered`, 'pick another id or pass replace=true');
    }
    this.entries.set(entry.id, entry);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Registered ids, highest priority first (ties by id). */
  ids(): string[] {
    return this.list().map((e) => e.id);
  }

  /** Registered entries, highest priority first (ties by id). */
  list(): RegistryEntry<T, O>[] {
    return [...this.entries.values()].sort((a, b) => b.priority - a.priority || a.id.localeCompare(b.id));
  }

  /** The entry for `id`, or a DdaError that lists the registered ids. */
  entry(id: string): RegistryEntry<T, O> {
    const e = this.entries.get(id);
    if (!e) {
      const known = this.ids();
      throw new DdaError(
        `unknown ${this.kind} '${id}'`,
        known.length ? `choose one of: ${known.join(', ')}` : `no ${this.kind} is registered; import its plugin first`,
      );
    }
    return e;
  }

  /** Creates the implementation registered under `id`. */
  async create(id: string, options: O): Promise<T> {
    return await this.entry(id).create(options);
  }

  /**
   * Tries candidates in order (the given ids, or every entry by priority) and returns the first
   * that initialises. Failures are kept in {@link lastFailures}; if all fail, throws one DdaError
   * that lists every candidate with its reason.
   */
  async resolve(options: O, candidates?: readonly string[]): Promise<{ id: string; value: T; failures: ResolveFailure[] }> {
    const order = candidates ? candidates.map((id) => this.entry(id)) : this.list();
    const failures: ResolveFailure[] = [];
    for (const e of order) {
      try {
        const value = await e.create(options);
        this.lastFailures = failures;
        return { id: e.id, value, failures };
      } catch (err) {
        failures.push({ id: e.id, reason: err instanceof Error ? err.message : String(err) });
      }
    }
    this.lastFailures = failures;
    const lines = failures.map((f) => `  - ${f.id}: ${f.reason}`).join('\n');
    throw new DdaError(
      `no ${this.kind} could be initialised:\n${lines || `  (no ${this.kind} is registered)`}`,
      `install or fix one of the ${this.kind}s above`,
    );
  }
}
