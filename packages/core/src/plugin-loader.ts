/**
 * The plugin loader: imports plugin modules by npm package name or file path, once each, and records
 * what every plugin registered. A plugin is any ES module that, when imported, registers scorers,
 * debiasers, denoisers, metrics, measurements, backends or data sets in the registries of @dda/core. Built-in plugins are
 * loaded the same way (the harness keeps their package names in a list).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve as resolveModule } from 'import-meta-resolve';
import { DdaError } from './errors.js';
import { currentPlugin, registeredEntries, removePluginEntries, withPluginContext, type RegisteredId } from './registry.js';

/** Name of the environment variable that lists plugins to load (comma-separated, see {@link parsePluginList}). */
export const PLUGINS_ENV = 'DDA_PLUGINS';

/** Where package names resolve when they are not found from the working directory. */
export interface PluginInstallation {
  /** A file URL inside the installation (e.g. the harness's `import.meta.url`); names resolve from its folder. */
  readonly url: string;
  /**
   * Imports a package by name from that installation, e.g. `(name) => import(name)` written in the
   * module at `url` (so bundlers and test runners that alias package names see a bare import).
   */
  readonly importer: (name: string) => Promise<unknown>;
}

/** Options of {@link loadPlugins}. */
export interface LoadPluginsOptions {
  /** Folder that relative paths and package names resolve from (default: `process.cwd()`). */
  readonly cwd?: string;
  /**
   * `cwd-then-installation` (default): a package name resolves from `cwd` first (a user's own package
   * in their project), then from {@link installation}. `installation`: from the installation only
   * (the built-in plugins, so they are the copies dda was built with).
   */
  readonly resolveFrom?: 'cwd-then-installation' | 'installation';
  /** The dda installation (default: where @dda/core is installed, imported with a plain `import()`). */
  readonly installation?: PluginInstallation;
  /** Where the list came from, for error messages (e.g. `--plugin`, `DDA_PLUGINS`, a config file). */
  readonly origin?: string;
  /**
   * Package names of the list that may be absent (an installation without one of the engines, whose
   * packages are optional peers): one that no node_modules holds is skipped and left out of the
   * result. A path, or a package that is installed but fails to load, is still an error.
   */
  readonly optional?: readonly string[];
}

/** A plugin that was loaded, and what it registered. */
export interface LoadedPlugin {
  /**
   * The plugin's name, recorded as the `plugin` of each entry it registered: the package name for a
   * package name or a folder with a package.json, else the file path (relative to the working
   * directory when inside it).
   */
  readonly name: string;
  /** The specifier as given. */
  readonly spec: string;
  /** The file URL of the module that was imported. */
  readonly url: string;
  /** Every registry entry attributed to the plugin. */
  readonly entries: readonly RegisteredId[];
  /**
   * The identity of the plugin's code as imported (see {@link PluginCode}); absent for plugins
   * loaded from the installation only (`resolveFrom: 'installation'`: dda's built-in plugins, whose
   * code changes with dda itself).
   */
  readonly code?: PluginCode;
}

/**
 * What a plugin's code was when it was imported, for the cache keys of everything it computes (so
 * that a changed plugin never has its old results reused): a content hash of its entry file, of the
 * files that file imports by relative path (followed transitively), and, for a package, of its
 * package.json (name, version, dependencies).
 */
export interface PluginCode {
  /** SHA-256 (first 16 hex characters) over every file in {@link files}, with their paths relative to the first. */
  readonly hash: string;
  /** The files hashed: the package.json of a package first, then the entry file and what it imports. */
  readonly files: readonly string[];
  /** The package's version, from its package.json (packages only). */
  readonly version?: string;
}

const DEFAULT_INSTALLATION: PluginInstallation = { url: import.meta.url, importer: (name) => import(name) };

/** Loaded (or loading) plugins by module URL, so that every module is imported once. */
const loaded = new Map<string, Promise<LoadedPlugin>>();
/** The code of each plugin loaded from a path or a package not of the installation, by plugin name (see {@link pluginCode}). */
const codeByName = new Map<string, PluginCode>();
/** Loads run one after another: registrations are attributed through a process-wide "current plugin". */
let queue: Promise<unknown> = Promise.resolve();

/**
 * Parses a plugin list such as the value of `DDA_PLUGINS`: entries separated by commas, whitespace
 * around them ignored, empty entries dropped. (Commas, not the path delimiter, so Windows paths
 * with a drive letter work.)
 */
export function parsePluginList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The package part of a bare specifier: `@scope/name` or `name` (without a subpath). */
function packageNameOf(spec: string): string {
  const parts = spec.split('/');
  return (spec.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

/** Whether a specifier is a file path (or file URL) rather than a package name. */
export function isPathSpecifier(spec: string): boolean {
  return spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('\\') || spec.startsWith('file:') || isAbsolute(spec);
}

/**
 * Loads plugins by package name or file path, in order, each module once (a second call with the same
 * plugin returns the first load's record). While a plugin's module is imported, every registry entry
 * it adds records the plugin's name (`RegistryEntry.plugin`).
 *
 * Package names resolve from `cwd` first (node_modules there and above), then from the dda
 * installation; file paths (starting with `.`, `/`, or absolute, or a `file:` URL) are relative to
 * `cwd`. A name that is no package but an existing path relative to `cwd` (`plugins/my-scorer`)
 * loads as that path. A folder with a package.json loads the package's entry (its `exports` or `main`).
 *
 * @returns One record per plugin loaded, in the order given (an absent {@link LoadPluginsOptions.optional} package has none).
 * @throws DdaError naming the plugin and the reason when: it cannot be found (saying where it was
 *   looked for), its module throws on import (with the error's message), it registers nothing, or it
 *   registers an id that another plugin has (naming both). Entries of a plugin that failed half-way
 *   are removed again.
 */
export function loadPlugins(specs: readonly string[], options: LoadPluginsOptions = {}): Promise<LoadedPlugin[]> {
  const run = async (): Promise<LoadedPlugin[]> => {
    const out: LoadedPlugin[] = [];
    for (const spec of specs) {
      if (options.optional?.includes(spec) && !isPathSpecifier(spec) && !isInstalled(spec, options)) continue;
      out.push(await loadOne(spec, options));
    }
    return out;
  };
  // A plugin that loads plugins while it is being imported runs at once (waiting would deadlock).
  if (currentPlugin() !== undefined) return run();
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}

/** Every plugin loaded so far in this process (by {@link loadPlugins}), in load order. */
export async function loadedPlugins(): Promise<LoadedPlugin[]> {
  const settled = await Promise.allSettled(loaded.values());
  return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
}

interface Target {
  readonly name: string;
  readonly url: string;
  /** The package.json of a package (absent for a loose file). */
  readonly packageJson?: string;
  /** How to import it: the installation's importer (by name) or a plain import of the URL. */
  readonly importer: () => Promise<unknown>;
  /** The package's folder, when it is installed but its entry file does not exist (not built). */
  readonly unbuilt?: string;
}

/** A package name resolved: its entry, or its folder when the entry is missing (not built). */
type Resolution = { readonly url: string; readonly unbuilt?: undefined } | { readonly url?: undefined; readonly unbuilt: string };

async function loadOne(spec: string, options: LoadPluginsOptions): Promise<LoadedPlugin> {
  if (spec.trim() === '') throw new DdaError(`${originOf(options)}an empty plugin name`, 'give an npm package name or a path to a plugin file or folder');
  const target = locate(spec, options);
  const existing = loaded.get(target.url);
  if (existing) return existing;
  const p = importPlugin(spec, target, options);
  loaded.set(target.url, p);
  p.catch(() => loaded.delete(target.url));
  return p;
}

async function importPlugin(spec: string, target: Target, options: LoadPluginsOptions): Promise<LoadedPlugin> {
  const { name } = target;
  const key = (e: RegisteredId): string => `${e.kind}\u0000${e.id}`;
  const before = new Set(registeredEntries().map(key));
  // Read before the import, so that the hash is of the code that runs.
  const code = options.resolveFrom === 'installation' || target.unbuilt ? undefined : codeOf(target);
  try {
    await withPluginContext(name, target.importer);
  } catch (e) {
    removePluginEntries(name);
    if (e instanceof DdaError && / is already registered/.test(e.message)) {
      throw new DdaError(`${originOf(options)}plugin '${name}' registers an id that is taken: ${e.message}`);
    }
    if (target.unbuilt) throw notBuilt(name, target.unbuilt, options);
    const msg = e instanceof Error ? e.message : String(e);
    const missing = /Cannot find (?:package|module) '([^']+)'/.exec(msg)?.[1];
    throw new DdaError(
      `${originOf(options)}plugin '${name}' failed to load: it threw on import: ${msg.split('\n')[0]}`,
      missing
        ? `the plugin imports '${missing}', which is not installed where the plugin is; install the plugin's dependencies (npm install in its folder${missing.startsWith('@dda/') ? `, or link ${missing} from your dda installation` : ''})`
        : `fix the error in ${fileURLToPath(target.url)}, or leave the plugin out`,
    );
  }
  const entries = registeredEntries().filter((e) => e.plugin === name);
  if (entries.length === 0) {
    const others = registeredEntries().filter((e) => !before.has(key(e)));
    throw new DdaError(
      `${originOf(options)}plugin '${name}' (${fileURLToPath(target.url)}) registered nothing`,
      others.length > 0
        ? `what it registered was attributed to ${[...new Set(others.map((e) => `'${e.plugin ?? '(none)'}'`))].join(', ')}; register at import time, outside registerAsPlugin of another name`
        : 'a plugin must register at least one scorer, debiaser, denoiser, metric, measurement, backend or data set through @dda/core when imported ' +
          "(e.g. scorers.register({ id, description, priority, create })); if it does, it may import another copy of @dda/core than dda's (check `npm ls @dda/core`)",
    );
  }
  if (code) codeByName.set(name, code);
  return { name, spec, url: target.url, entries, ...(code ? { code } : {}) };
}

/**
 * The code identity of the plugin `name` (a registry entry's `plugin`) as it was loaded in this
 * process, or undefined for a built-in plugin, one loaded from the installation only, or an entry
 * registered outside {@link loadPlugins}.
 */
export function pluginCode(name: string | undefined): PluginCode | undefined {
  return name === undefined ? undefined : codeByName.get(name);
}

/**
 * The field a cache key takes for what the plugin `name` computes: `{ pluginCode: <hash> }` for a
 * plugin with a {@link pluginCode}, else nothing (`{}`), so that the keys of built-in plugins stay
 * as they were.
 */
export function pluginCodeKey(name: string | undefined): { pluginCode?: string } {
  const code = pluginCode(name);
  return code ? { pluginCode: code.hash } : {};
}

/** Relative module specifiers in static imports, re-exports and dynamic imports of a string. */
const RELATIVE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)(['"])(\.{1,2}\/[^'"\n]+)\1/g;

/** Most files followed from one entry (a plugin that imports more is hashed over the first ones, in order). */
const MAX_CODE_FILES = 500;

/** The code identity of a target: its package.json, its entry file and the files it imports by relative path, transitively. */
function codeOf(target: Target): PluginCode {
  const entry = fileURLToPath(target.url);
  const files: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file) || seen.size >= MAX_CODE_FILES) return;
    seen.add(file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return;
    }
    files.push(file);
    for (const m of text.matchAll(RELATIVE_IMPORT)) {
      const abs = resolvePath(dirname(file), (m[2] as string).split(/[?#]/)[0] as string);
      for (const candidate of [abs, `${abs}.js`, `${abs}.mjs`, `${abs}.cjs`, join(abs, 'index.js')]) {
        if (existsSync(candidate) && statSync(candidate).isFile()) {
          visit(candidate);
          break;
        }
      }
    }
  };
  visit(entry);
  let version: string | undefined;
  if (target.packageJson && existsSync(target.packageJson)) {
    files.unshift(target.packageJson);
    try {
      const v = (JSON.parse(readFileSync(target.packageJson, 'utf8')) as { version?: unknown }).version;
      if (typeof v === 'string') version = v;
    } catch {
      // An unreadable package.json is hashed as it is.
    }
  }
  const h = createHash('sha256');
  const root = dirname(files[0] ?? entry);
  for (const f of files) {
    h.update(relative(root, f)).update('\u0000');
    h.update(readFileSync(f)).update('\u0000');
  }
  return { hash: h.digest('hex').slice(0, 16), files, ...(version !== undefined ? { version } : {}) };
}

function originOf(options: LoadPluginsOptions): string {
  return options.origin ? `${options.origin}: ` : '';
}

/** Finds the module of a plugin specifier (see {@link loadPlugins}). */
function locate(spec: string, options: LoadPluginsOptions): Target {
  const cwd = options.cwd ?? process.cwd();
  return isPathSpecifier(spec) ? locatePath(spec, cwd, options) : locatePackage(spec, cwd, options);
}

function locatePath(spec: string, cwd: string, options: LoadPluginsOptions): Target {
  const abs = spec.startsWith('file:') ? fileURLToPath(spec) : resolvePath(cwd, spec);
  if (!existsSync(abs)) {
    throw new DdaError(
      `${originOf(options)}plugin '${spec}': no file or folder at ${abs}`,
      `plugin paths are relative to ${options.origin && options.origin !== '--plugin' && options.origin !== 'DDA_PLUGINS' ? 'the folder of the file that lists them' : `the current directory (${cwd})`}; check the path, or give an npm package name without ./`,
    );
  }
  if (!statSync(abs).isDirectory()) return plainImport(displayPath(abs, cwd), abs);
  const pkgFile = join(abs, 'package.json');
  if (!existsSync(pkgFile)) {
    throw new DdaError(`${originOf(options)}plugin '${spec}': the folder ${abs} has no package.json`, 'give the path of the plugin package folder (with its package.json) or of its entry file');
  }
  let pkg: { name?: unknown; main?: unknown; exports?: unknown };
  try {
    pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as typeof pkg;
  } catch (e) {
    throw new DdaError(`${originOf(options)}plugin '${spec}': cannot read ${pkgFile}: ${(e as Error).message}`, 'fix the package.json');
  }
  const name = typeof pkg.name === 'string' && pkg.name.length > 0 ? pkg.name : displayPath(abs, cwd);
  let file: string;
  if (pkg.exports !== undefined && typeof pkg.name === 'string') {
    // The package's own entry as Node resolves it (self-reference through its "exports").
    try {
      file = fileURLToPath(resolveModule(pkg.name, pathToFileURL(pkgFile).href));
    } catch (e) {
      throw new DdaError(`${originOf(options)}plugin '${name}': the "exports" of ${pkgFile} give no entry for import: ${(e as Error).message.split('\n')[0]}`, 'export "." with an "import" or "default" condition');
    }
  } else {
    file = join(abs, typeof pkg.main === 'string' ? pkg.main : 'index.js');
  }
  if (!existsSync(file)) {
    throw new DdaError(`${originOf(options)}plugin '${name}': its entry file ${file} does not exist`, `build the plugin first (npm run build in ${abs})`);
  }
  return plainImport(name, file, pkgFile);
}

function locatePackage(spec: string, cwd: string, options: LoadPluginsOptions): Target {
  const installation = options.installation ?? DEFAULT_INSTALLATION;
  const tried: string[] = [];
  if ((options.resolveFrom ?? 'cwd-then-installation') === 'cwd-then-installation') {
    const fromCwd = tryResolve(spec, pathToFileURL(join(cwd, 'package.json')).href, options);
    if (fromCwd?.unbuilt) throw notBuilt(spec, fromCwd.unbuilt, options);
    if (fromCwd?.url) {
      const file = fileURLToPath(fromCwd.url);
      return { ...plainImport(spec, file, packageJsonOf(file, packageNameOf(spec))), name: spec };
    }
    tried.push(`${cwd} (its node_modules and those of its parent folders)`);
  }
  const fromInstallation = tryResolve(spec, installation.url, options);
  // Imported by name through the installation's importer, where a test runner may alias it to its
  // sources, so an entry that is not built is reported only when the import fails.
  if (fromInstallation?.url) {
    const url = canonicalUrl(fromInstallation.url);
    const pkg = url.startsWith('file:') ? packageJsonOf(fileURLToPath(url), packageNameOf(spec)) : undefined;
    return { name: spec, url, importer: () => installation.importer(spec), ...(pkg ? { packageJson: pkg } : {}) };
  }
  if (fromInstallation?.unbuilt) {
    const { unbuilt } = fromInstallation;
    return { name: spec, url: canonicalUrl(pathToFileURL(join(unbuilt, 'package.json')).href), importer: () => installation.importer(spec), unbuilt };
  }
  tried.push(`the dda installation (${dirname(fileURLToPath(installation.url))})`);
  // Not a package anywhere: a path written without ./ (e.g. plugins/my-scorer) when it exists.
  if (existsSync(resolvePath(cwd, spec))) return locatePath(spec, cwd, options);
  throw new DdaError(
    `${originOf(options)}plugin '${spec}': cannot find the package '${spec}'; looked from ${tried.join(' and from ')}`,
    `install it where you run dda (npm install ${spec}), check the spelling, or give a path to the plugin's file or folder (starting with ./ or /)`,
  );
}

/** Whether package `spec` is in a node_modules seen from where {@link loadPlugins} would look for it (built or not). */
function isInstalled(spec: string, options: LoadPluginsOptions): boolean {
  const from = (options.resolveFrom ?? 'cwd-then-installation') === 'cwd-then-installation' ? [pathToFileURL(join(options.cwd ?? process.cwd(), 'package.json')).href] : [];
  return [...from, (options.installation ?? DEFAULT_INSTALLATION).url].some((parent) => installedFolder(packageNameOf(spec), dirname(fileURLToPath(parent))) !== undefined);
}

/**
 * What a package name resolves to from `parent` (a file URL): its entry, its folder when installed
 * but not built, or undefined when no node_modules from there up holds it.
 */
function tryResolve(spec: string, parent: string, options: LoadPluginsOptions): Resolution | undefined {
  try {
    return { url: resolveModule(spec, parent) };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND') {
      const folder = installedFolder(packageNameOf(spec), dirname(fileURLToPath(parent)));
      return folder === undefined ? undefined : { unbuilt: folder };
    }
    throw new DdaError(`${originOf(options)}plugin '${spec}': the package cannot be resolved: ${(e as Error).message.split('\n')[0]}`, 'check the package name and its package.json "exports"');
  }
}

/** The folder of package `name` in the node_modules of `from` or of its parents, if any. */
function installedFolder(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

function notBuilt(name: string, folder: string, options: LoadPluginsOptions): DdaError {
  return new DdaError(`${originOf(options)}plugin '${name}': the package is installed (${folder}) but its entry file does not exist`, 'build the plugin first (npm run build)');
}

function plainImport(name: string, file: string, packageJson?: string): Target {
  const url = canonicalUrl(pathToFileURL(file).href);
  return { name, url, importer: () => import(url), ...(packageJson ? { packageJson } : {}) };
}

/**
 * The package.json of the package `name` whose entry is `file`: the nearest one above it with that
 * name (a loose file is hashed without the package.json of the project it happens to lie in).
 */
function packageJsonOf(file: string, name: string): string | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        if ((JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown }).name === name) return candidate;
      } catch {
        // not this one
      }
    }
    if (dirname(dir) === dir || basename(dir) === 'node_modules') return undefined;
  }
}

/** The URL of the real file (symbolic links resolved, as Node's loader does), so each module has one key. */
function canonicalUrl(url: string): string {
  try {
    return pathToFileURL(realpathSync(fileURLToPath(url))).href;
  } catch {
    return url;
  }
}

function displayPath(abs: string, cwd: string): string {
  const r = relative(cwd, abs);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r) ? `.${sep}${r}` : abs;
}
