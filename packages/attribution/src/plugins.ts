/**
 * The plugins dda loads: the built-in ones (a list of package names, loaded through the same
 * `loadPlugins` of @dda/core as a user's; no module imports them by name) and a user's own (by
 * package name or path).
 */
import { loadPlugins, type LoadPluginsOptions, type LoadedPlugin, type PluginInstallation } from '@dda/core';

/**
 * The built-in plugins, by package name, in load order (a package before the ones that import it).
 * Adding a built-in method is adding its package here (and to this package's dependencies).
 * The engine plugins ({@link BUILTIN_ENGINE_PLUGINS}) are loaded where installed.
 */
export const BUILTIN_PLUGINS: readonly string[] = [
  '@dda/backend-tfjs',
  '@dda/backend-onnxruntime',
  '@dda/backend-tfjs-node',
  '@dda/scorer-grad-dot',
  '@dda/scorer-influence',
  '@dda/scorer-trak',
  '@dda/scorer-bm25',
  '@dda/scorer-random',
  '@dda/scorer-rep-sim',
  '@dda/scorer-cea',
  '@dda/plugin-dda',
  '@dda/measurements',
];

/**
 * The built-in engine plugins: optional peers of this package, not dependencies, so that the
 * attribution does not bring tfjs or onnxruntime with it; the `dda` command (@dda/cli) installs
 * them. Those installed are loaded; with none, resolving an engine says which to install.
 */
export const BUILTIN_ENGINE_PLUGINS: readonly string[] = ['@dda/backend-tfjs', '@dda/backend-onnxruntime', '@dda/backend-tfjs-node'];

/** The dda installation as seen from this package: package names not found elsewhere resolve from here. */
const INSTALLATION: PluginInstallation = { url: import.meta.url, importer: (name) => import(name) };

let builtins: Promise<LoadedPlugin[]> | undefined;

/**
 * Loads the built-in plugins (once per process; later calls return the same promise). Every function
 * of @dda/attribution and @dda/harness that looks up a scorer, measurement, debiaser or denoiser
 * awaits it first, so their callers need not; code that uses the core registries directly must await
 * it (or `loadPlugins`) itself.
 *
 * @throws DdaError naming a built-in plugin that cannot be loaded (a package missing from the installation,
 *   except an engine plugin, which is skipped where it is not installed).
 */
export function ensurePlugins(): Promise<LoadedPlugin[]> {
  builtins ??= loadPlugins(BUILTIN_PLUGINS, { resolveFrom: 'installation', installation: INSTALLATION, origin: 'built-in plugins', optional: BUILTIN_ENGINE_PLUGINS });
  builtins.catch(() => {
    builtins = undefined;
  });
  return builtins;
}

/**
 * Loads the built-in plugins, then a user's plugins by npm package name (resolved from `cwd`, then
 * from the dda installation) or file path (relative to `cwd`), each once.
 *
 * @param specs - Package names or paths, in load order.
 * @param options - `cwd` (default `process.cwd()`), `origin` (where the list came from, for errors:
 *   `--plugin`, `DDA_PLUGINS`, a config file).
 * @throws DdaError naming the plugin and the reason (see `loadPlugins` in @dda/core).
 */
export async function loadUserPlugins(specs: readonly string[], options: Pick<LoadPluginsOptions, 'cwd' | 'origin'> = {}): Promise<LoadedPlugin[]> {
  await ensurePlugins();
  return loadPlugins(specs, { ...options, installation: INSTALLATION });
}
