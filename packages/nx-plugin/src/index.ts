/**
 * @dda/nx-plugin: nx generators that scaffold dda plugin packages (`nx g @dda/nx-plugin:scorer
 * my-scorer`, `:debiaser`, `:denoiser`, `:metric`, `:dataset`, `:engine`), and {@link generatePluginInto} to run one without an nx
 * workspace.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createTree } from '@nx/devkit/testing';
import { pluginGenerator, type GeneratedPlugin, type PluginGeneratorSchema, type PluginKind } from './generators/plugin.js';

export { generatorFor, nextSteps, pluginGenerator, type GeneratedPlugin, type PluginGeneratorSchema, type PluginKind } from './generators/plugin.js';
export { scorerGenerator } from './generators/scorer.js';
export { debiaserGenerator } from './generators/debiaser.js';
export { denoiserGenerator } from './generators/denoiser.js';
export { metricGenerator } from './generators/metric.js';
export { datasetGenerator } from './generators/dataset.js';
export { engineGenerator } from './generators/engine.js';

/**
 * Runs a generator outside any nx workspace: on an in-memory devkit tree, then writes the package's
 * files under `folder` (the package lands in `folder/<directory>`, default `dda-<kind>-<name>`,
 * standalone: @dda/core and @dda/conformance as npm dependencies).
 *
 * @returns What was made, with `path`, the package's absolute folder.
 */
export function generatePluginInto(folder: string, kind: PluginKind, schema: PluginGeneratorSchema): GeneratedPlugin & { readonly path: string } {
  const tree = createTree();
  const before = new Set(tree.listChanges().map((c) => c.path));
  const made = pluginGenerator(tree, kind, schema);
  for (const change of tree.listChanges()) {
    if (before.has(change.path)) continue; // the in-memory tree's own settings (.prettierrc)
    const target = join(folder, change.path);
    if (change.type === 'DELETE') {
      rmSync(target, { force: true, recursive: true });
      continue;
    }
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, change.content ?? '');
  }
  return { ...made, path: join(folder, made.directory) };
}
