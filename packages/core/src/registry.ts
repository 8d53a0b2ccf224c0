import { DdaError } from './errors.js';
import { didYouMean } from './suggestions.js';

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
  /**
   * The plugin the entry came from (a package name such as `@dda/scorer-grad-dot`, or the path a
   * plugin was loaded from). Set by the registry, not by the plugin: entries registered while
   * {@link loadPlugins} imports a plugin, or inside {@link registerAsPlugin}, carry that plugin's
   * name; entries registered outside both have none. Whatever an entry passed in is ignored.
   */
  readonly plugin?: string;
  /**
   * The options `create` reads (e.g. `['beta']`), when the entry declares them; `[]` declares that
   * it reads none. Undeclared (undefined): unknown, so a caller cannot refuse an option it ignores.
   */
  readonly options?: readonly string[];
}

/** One candidate's failure, as collected by {@link Registry.resolve}. */
export interface ResolveFailure {
  readonly id: string;
  readonly reason: string;
}

const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Plugins being loaded, innermost last: registrations are attributed to the last one. */
const pluginStack: string[] = [];

/** The plugin whose registrations are being recorded now (see {@link registerAsPlugin}), if any. */
export function currentPlugin(): string | undefined {
  return pluginStack[pluginStack.length - 1];
}

/**
 * Runs `register` with `plugin` as the current plugin, so every registry entry it adds records
 * `plugin` as its origin. Built-in plugins wrap their import-time registration in it, so their
 * entries know their package whichever module imported them first; nested calls attribute to the
 * innermost. Synchronous only: `register` must not await.
 */
export function registerAsPlugin(plugin: string, register: () => void): void {
  pluginStack.push(plugin);
  try {
    register();
  } finally {
    pluginStack.pop();
  }
}

/**
 * Runs `load` (e.g. a dynamic import) with `plugin` as the current plugin. For the plugin loader:
 * loads must not overlap, since the attribution is process-wide while `load` awaits.
 * @internal
 */
export async function withPluginContext<R>(plugin: string, load: () => Promise<R>): Promise<R> {
  pluginStack.push(plugin);
  try {
    return await load();
  } finally {
    const i = pluginStack.lastIndexOf(plugin);
    if (i >= 0) pluginStack.splice(i, 1);
  }
}

/** Every registry, so that the plugin loader can see what a plugin registered. */
const allRegistries = new Set<Registry<unknown, never>>();

/**
 * A registry of plugins of one kind (scorers, debiasers, denoisers, backends, metrics).
 * Plugins register themselves on import; the harness looks them up by id or resolves the
 * highest-priority one that initialises, collecting every failure into a single error.
 */
export class Registry<T, O = Record<string, unknown>> {
  /** By id: the entry as registered (for the same-entry check) and as stored (with its plugin). */
  private readonly entries = new Map<string, { readonly given: RegistryEntry<T, O>; readonly stored: RegistryEntry<T, O> }>();
  /** Fallbacks taken by the last {@link resolve} call, with reasons (for logs). */
  lastFailures: ResolveFailure[] = [];

  constructor(readonly kind: string) {
    allRegistries.add(this as unknown as Registry<unknown, never>);
  }

  /**
   * Adds an entry, attributed to the {@link currentPlugin}. Re-registering the same id replaces it
   * only when `replace` is true; registering the same entry object again is a no-op.
   *
   * @throws DdaError for an id that is not kebab-case, or an id already registered (naming the plugin that has it).
   */
  register(entry: RegistryEntry<T, O>, replace = false): void {
    if (!KEBAB.test(entry.id)) {
      throw new DdaError(`${this.kind} id '${entry.id}' is not kebab-case`, 'use lower-case words joined by "-", e.g. grad-dot');
    }
    const plugin = currentPlugin();
    const old = this.entries.get(entry.id);
    if (old && !replace) {
      if (old.given === entry) return;
      const by = old.stored.plugin;
      throw new DdaError(
        `${this.kind} '${entry.id}'${plugin ? ` of plugin '${plugin}'` : ''} is already registered${by ? ` by plugin '${by}'` : ''}`,
        by && plugin && by !== plugin ? `rename one of the two, or leave one of the plugins '${by}' and '${plugin}' out` : 'pick another id or pass replace=true',
      );
    }
    const { plugin: _ignored, ...rest } = entry;
    this.entries.set(entry.id, { given: entry, stored: plugin === undefined ? rest : { ...rest, plugin } });
  }

  /** Removes every entry attributed to `plugin` (used to undo a plugin that failed half-way); returns their ids. */
  removePlugin(plugin: string): string[] {
    const ids = [...this.entries.values()].filter((e) => e.stored.plugin === plugin).map((e) => e.stored.id);
    for (const id of ids) this.entries.delete(id);
    return ids;
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
    return [...this.entries.values()].map((e) => e.stored).sort((a, b) => b.priority - a.priority || a.id.localeCompare(b.id));
  }

  /** The entry for `id`, or a DdaError that suggests the closest registered ids and lists them all. */
  entry(id: string): RegistryEntry<T, O> {
    const e = this.entries.get(id);
    if (!e) {
      const known = this.ids();
      const close = didYouMean(id, known);
      throw new DdaError(
        `unknown ${this.kind} '${id}'`,
        known.length
          ? `${close ? `${close} ` : ''}choose one of: ${known.join(', ')}; a method from another package needs its plugin loaded (--plugin, DDA_PLUGINS or plugins: in the config)`
          : `no ${this.kind} is registered; load its plugin first (loadPlugins from @dda/core, or --plugin on the command line)`,
      );
    }
    return e.stored;
  }

  /**
   * Refuses an option key that the entry `id` does not declare (its {@link RegistryEntry.options}),
   * as a typo would otherwise be ignored and the default used. An entry that declares none
   * (undefined) accepts any key, as it cannot be checked.
   *
   * @param where - Starts the message, e.g. `--scorer-option` or `--metrics recall-at-k:kk=5`.
   * @throws DdaError naming the entry, the key, the closest declared key and every declared one.
   */
  refuseUnknownOptions(id: string, options: Readonly<Record<string, unknown>>, where: string): void {
    const declared = this.entry(id).options;
    if (declared === undefined) return;
    for (const key of Object.keys(options)) {
      if (declared.includes(key)) continue;
      const close = didYouMean(key, declared);
      throw new DdaError(
        `${where}: ${this.kind} '${id}' has no option '${key}'`,
        declared.length === 0 ? `${this.kind} '${id}' takes no options; drop it` : `${close ? `${close} ` : ''}the options of ${id} are ${declared.join(', ')} (dda methods describes them)`,
      );
    }
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

/** One registry entry with the kind of registry it is in (see {@link registeredEntries}). */
export interface RegisteredId {
  /** The registry's kind: `scorer`, `debiaser`, `denoiser`, `metric`, `backend`, ... */
  readonly kind: string;
  readonly id: string;
  readonly plugin: string | undefined;
}

/** Every entry of every registry, with its kind and plugin (for the plugin loader and `dda methods`). */
export function registeredEntries(): RegisteredId[] {
  return [...allRegistries].flatMap((r) => r.list().map((e) => ({ kind: r.kind, id: e.id, plugin: e.plugin })));
}

/** Removes every entry attributed to `plugin` from every registry; returns what was removed. */
export function removePluginEntries(plugin: string): RegisteredId[] {
  return [...allRegistries].flatMap((r) => r.removePlugin(plugin).map((id) => ({ kind: r.kind, id, plugin })));
}
