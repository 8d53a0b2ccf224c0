/**
 * The shared implementation of the `scorer`, `debiaser`, `denoiser`, `metric`, `dataset` and `engine` generators: a plugin
 * package (package.json, tsconfig.json, a documented method in src/index.ts that registers itself with
 * @dda/core, or with @dda/model for an engine, a test running the @dda/conformance suite, a README) from the templates in
 * `files/<kind>/`.
 *
 * In the dda workspace (a tree with tsconfig.base.json and packages/core) the package goes to
 * `plugins/<kind>-<name>`, extends the workspace's TypeScript settings, references core and
 * conformance as projects, and joins tsconfig.build.json, so `npm run build` and `npm test` include
 * it. Anywhere else it is standalone: full compiler options, and @dda/core / @dda/conformance as npm
 * dependencies.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generateFiles, joinPathFragments, logger, names, offsetFromRoot, readJson, updateJson, type GeneratorCallback, type Tree } from '@nx/devkit';

/** The kinds of method a generator scaffolds. */
export type PluginKind = 'scorer' | 'debiaser' | 'denoiser' | 'metric' | 'dataset' | 'engine';

/** Options of the generators (see generators/<kind>/schema.json). */
export interface PluginGeneratorSchema {
  /** The method's id, kebab-case (`my-scorer`). */
  readonly name: string;
  /** Folder of the package, relative to the tree's root. */
  readonly directory?: string;
  /** npm name of the package. */
  readonly packageName?: string;
  /**
   * One line saying what the method is: the description it registers (shown by `dda methods`), in
   * its TSDoc, checked by its test, and in package.json and the README.
   */
  readonly description?: string;
  /**
   * `engine` only: the id of the engine the new engine delegates to until its methods are replaced
   * (default: none, i.e. every other registered engine by priority, the first that starts:
   * onnxruntime, else tfjs).
   */
  readonly delegate?: string;
}

/** What a generator made. */
export interface GeneratedPlugin {
  readonly kind: PluginKind;
  /** The method's id. */
  readonly id: string;
  /** Folder of the package, relative to the tree's root. */
  readonly directory: string;
  readonly packageName: string;
  /** Whether it was made inside the dda workspace (project references) or standalone (npm dependencies). */
  readonly inWorkspace: boolean;
}

const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** What the template method is, per kind (the package's default description). */
const DEFAULT_DESCRIPTION: Record<PluginKind, (id: string) => string> = {
  scorer: (id) => `${id}: a dda scorer plugin (gradient inner product with unit-length training gradients)`,
  debiaser: (id) => `${id}: a dda debiaser plugin (fine-tuned − β × base scores rescaled to the fine-tuned spread, per test output)`,
  denoiser: (id) => `${id}: a dda denoiser plugin (epoch-weighted mean over the checkpoints, later epochs weigh more)`,
  metric: (id) => `${id}: a dda metric plugin (precision at 10 of the training samples ranked by their scores)`,
  dataset: (id) => `${id}: a dda benchmark data set plugin (weather reports about towns with entity-swap canaries)`,
  engine: (id) => `${id}: a dda engine plugin (starts as a delegate to an engine already registered, to replace method by method)`,
};

/** What the template method is, per kind: the description it registers when no --description is given. */
const METHOD_DESCRIPTION: Record<PluginKind, string> = {
  scorer: 'gradient inner product with unit-length training gradients, ∇ℓ(train)·∇f(test)/‖∇ℓ(train)‖ (higher = more responsible; units nats per parameter unit)',
  debiaser: 'fine-tuned − β × base rescaled to the fine-tuned spread per test output (option beta, default 1)',
  denoiser: 'epoch-weighted mean over the epoch checkpoints, later epochs weigh more (w_i ∝ epoch_i)',
  metric: 'precision at 10: the fraction of the 10 top-scoring training samples that are true sources (0-1, higher = better; ties at the cutoff in expectation)',
  dataset: 'weather reports about towns (document, one-sentence summary) with entity-swap canaries labelled by CEA\'s rule; default canary paris → rome',
  engine: 'a delegate (for now): forwards every method of the engine contract to an engine already registered, under its own id; to replace method by method',
};

/** `s` as a single-quoted TypeScript string literal. */
const tsString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\r?\n/g, '\\n')}'`;

/** `s` as lines of a TSDoc comment, at most about 100 characters each, joined by ` * ` (a `*\/` in it would end the comment). */
function docLines(s: string): string {
  const lines: string[] = [];
  for (const word of s.replace(/\*\//g, '*\\/').split(/\s+/).filter((w) => w !== '')) {
    const last = lines[lines.length - 1];
    if (last !== undefined && last.length + 1 + word.length <= 97) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines.join('\n * ');
}

/** How to run the new method, per kind (for the README). */
const USAGE: Record<PluginKind, (id: string, path: string, inWorkspace: boolean) => string> = {
  scorer: (id, path, inWorkspace) =>
    inWorkspace
      ? `dda bench --plugin ${path} --scorers ${id} grad-dot --config benchmarks/configs/tiny.json --out tiny   # its rows in tiny/tiny.csv`
      : `dda bench --plugin ${path} --scorers ${id} grad-dot --seeds 0 --out bench   # its rows in bench/bench.csv`,
  debiaser: (id, path) => `dda demo --plugin ${path} --debias ${id}   # the debias and dda rows use it`,
  denoiser: (id, path) => `dda demo --plugin ${path} --denoise ${id}   # the denoise and dda rows use it`,
  metric: (id, path, inWorkspace) =>
    inWorkspace
      ? `dda bench --plugin ${path} --metrics auc recall ${id} --config benchmarks/configs/tiny.json --out tiny   # its column in tiny/tiny.csv`
      : `dda bench --plugin ${path} --metrics auc recall ${id} --seeds 0 --out bench   # its column in bench/bench.csv`,
  dataset: (id, path) => `dda bench --plugin ${path} --config bench.yaml --out bench   # bench.yaml: data: { generator: ${id} }`,
  engine: (id, path) => `dda bench --plugin ${path} --config bench.yaml --out bench   # bench.yaml: gradientEngine: ${id} (engine: ${id} for training and generation)`,
};

/** Where a benchmark configuration names the method, per kind (for the README). */
const CONFIG_HINT: Record<PluginKind, (id: string) => string> = {
  scorer: (id) => ` and the id under \`scorers:\` (\`scorers: [${id}]\`)`,
  debiaser: (id) => ` and a DDA variant that uses it (\`dda: [{ name: dda-${id}, debiaser: ${id}, denoiser: mean, beta: 1 }]\`, or \`ablation.debiasers\`)`,
  denoiser: (id) => ` and a DDA variant that uses it (\`dda: [{ name: dda-${id}, debiaser: raw, denoiser: ${id}, beta: 1 }]\`, or \`ablation.denoisers\`)`,
  metric: (id) => ` and the id under \`metrics:\` (\`metrics: [auc, recall, ${id}]\`)`,
  dataset: (id) => ` and the id as the data generator (\`data: { generator: ${id} }\`)`,
  engine: (id) => ` and the id as the engine of the gradients, losses and representations (\`gradientEngine: ${id}\`) and/or of training and generation (\`engine: ${id}\`); on the command line, \`--gradient-engine ${id}\` / \`--engine ${id}\` (\`dda attribute\`, \`dda demo\`)`,
};

/** This package's version: the version of @dda/core and @dda/conformance a standalone plugin depends on. */
function ownVersion(): string {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };
  return pkg.version;
}

/** Whether the tree is the dda workspace (its TypeScript base settings and @dda/core's sources are there). */
function isDdaWorkspace(tree: Tree): boolean {
  if (!tree.exists('tsconfig.base.json') || !tree.exists('packages/core/package.json')) return false;
  return readJson<{ name?: string }>(tree, 'packages/core/package.json').name === '@dda/core';
}

/**
 * Writes a plugin package of `kind` into `tree` (see the module doc).
 *
 * @throws Error for an id that is not kebab-case, a directory that already has files, or a `delegate` that is not
 *   kebab-case, is the engine itself, or is given to a generator other than `engine`.
 */
export function pluginGenerator(tree: Tree, kind: PluginKind, schema: PluginGeneratorSchema): GeneratedPlugin {
  const id = schema.name;
  if (!KEBAB.test(id)) throw new Error(`dda ${kind} id '${id}' is not kebab-case; use lower-case words joined by "-", e.g. my-${kind}`);
  const delegate = schema.delegate ?? null;
  if (delegate !== null) {
    if (kind !== 'engine') throw new Error(`--delegate is an option of the engine generator, not of the ${kind} generator`);
    if (!KEBAB.test(delegate)) throw new Error(`engine id '${delegate}' (--delegate) is not kebab-case; name a registered engine, e.g. onnxruntime or tfjs`);
    if (delegate === id) throw new Error(`the engine '${id}' cannot delegate to itself; name another engine (--delegate onnxruntime), or leave --delegate out`);
  }
  const inWorkspace = isDdaWorkspace(tree);
  const directory = (schema.directory ?? (inWorkspace ? `plugins/${kind}-${id}` : `dda-${kind}-${id}`)).replace(/\/+$/, '');
  const packageName = schema.packageName ?? (inWorkspace ? `@dda/${kind}-${id}` : `dda-${kind}-${id}`);
  if (tree.exists(directory) && tree.children(directory).length > 0) {
    throw new Error(`${directory} already exists and is not empty; choose another --directory or remove it`);
  }
  const offset = offsetFromRoot(directory);
  const version = inWorkspace ? readJson<{ version: string }>(tree, 'packages/core/package.json').version : ownVersion();
  const n = names(id);
  const pluginPath = `./${directory}`;
  const substitutions = {
    tmpl: '',
    kind,
    directory,
    pluginPath,
    usage: USAGE[kind](id, pluginPath, inWorkspace),
    configHint: CONFIG_HINT[kind](id),
    id,
    packageName,
    description: schema.description ?? DEFAULT_DESCRIPTION[kind](id),
    // What the method registers, says in its TSDoc and its test checks: the given description, else the template method's.
    descriptionLiteral: tsString(schema.description ?? METHOD_DESCRIPTION[kind]),
    docDescription: docLines(schema.description ?? METHOD_DESCRIPTION[kind]),
    className: n.className,
    // engine: the class names' stem, without a trailing `Engine` (`my-engine` → MyEngine, MyDecoder, startMyEngine).
    engineName: n.className.replace(/(.)Engine$/, '$1'),
    propertyName: n.propertyName,
    constantName: n.constantName,
    fileName: n.fileName,
    inWorkspace,
    offset,
    coreVersion: inWorkspace ? version : `^${version}`,
    // engine: the delegate's id as a TypeScript literal (null: every other registered engine by priority).
    delegateLiteral: delegate === null ? 'null' : tsString(delegate),
    delegate,
  };
  for (const folder of ['common', kind]) generateFiles(tree, fileURLToPath(new URL(`../../files/${folder}`, import.meta.url)), directory, substitutions);
  if (inWorkspace && tree.exists('tsconfig.build.json')) {
    updateJson<{ references?: { path: string }[] }>(tree, 'tsconfig.build.json', (json) => {
      const refs = json.references ?? [];
      if (!refs.some((r) => r.path === directory)) {
        // Before the harness and the CLI, after what the plugin depends on (tsc -b orders by references anyway).
        const at = refs.findIndex((r) => r.path === 'packages/harness');
        refs.splice(at < 0 ? refs.length : at, 0, { path: directory });
      }
      return { ...json, references: refs };
    });
  }
  return { kind, id, directory: joinPathFragments(directory), packageName, inWorkspace };
}

/** What to run after generating. */
export function nextSteps(made: GeneratedPlugin): string {
  const path = `./${made.directory}`;
  return made.inWorkspace
    ? `next: npm run build && npm test (runs the conformance suite), then ${USAGE[made.kind](made.id, path, true)}`
    : `next: cd ${made.directory} && npm install && npm run build && npm test, then from here: ${USAGE[made.kind](made.id, path, false)}`;
}

/** The nx generator of one kind: writes the package, then (after nx has written the files) prints the next steps. */
export function generatorFor(kind: PluginKind): (tree: Tree, schema: PluginGeneratorSchema) => GeneratorCallback {
  return (tree, schema) => {
    const made = pluginGenerator(tree, kind, schema);
    return () => logger.info(nextSteps(made));
  };
}
