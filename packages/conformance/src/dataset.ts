/**
 * The data set checks: the contract every `DatasetPlugin` of @dda/core must honour (issue 25),
 * tested on a small build of the data set itself.
 */
import { DdaError, datasets, datasetPlugin, type BuiltDataset, type DatasetContext, type DatasetPlugin, type DatasetTokenLimits } from '@dda/core';
import { fail, notApplicable, pass, runChecks, validateOptOuts, type CheckOptions, type ConformanceReport } from './report.js';

/**
 * The data set checks, in the order they run:
 * - `shape-and-ids`: a kebab-case `id` equal to the registered one, a description; the build has
 *   unique training ids, labels for exactly its canaries with one 0/1 per training sample, and every
 *   held-out document drawn for one of its canaries;
 * - `determinism`: two builds with the same options and seed (each with an empty cache) are deep-equal;
 * - `labels`: every label follows CEA's rule with the data set's own {@link DatasetPlugin.matching}:
 *   1 iff the summary mentions the replacement and the document the orig and not the replacement;
 *   every canary has at least one true source;
 * - `held-out`: every held-out document (and reserve document) mentions its canary's orig and not
 *   its replacement, so it can produce the canary's error;
 * - `options`: `parseOptions` takes no options, and refuses an unknown one with a DdaError naming it.
 */
export const DATASET_CHECKS = ['shape-and-ids', 'determinism', 'labels', 'held-out', 'options'] as const;
/** A data set check's name. */
export type DatasetCheck = (typeof DATASET_CHECKS)[number];

/** Options of {@link checkDataset}: the build's size and the data set's own options (`options`, default none). */
export interface DatasetCheckOptions extends CheckOptions<DatasetCheck> {
  /** The build's context besides the cache (default seed 7, 60 training samples, 8 held-out documents, 50 pretraining texts). */
  readonly context?: Partial<Omit<DatasetContext, 'cache' | 'tokens'>>;
  /** The tokenizer and limits, for a data set that needs a tokenizer (required then). */
  readonly tokens?: DatasetTokenLimits;
}

/** A fresh in-memory cache per build: the checks compare builds, not cache reads. */
function memoryCache(): DatasetContext['cache'] {
  const stored = new Map<string, Uint8Array>();
  return async (name, key, compute) => {
    const k = `${name}\u0000${JSON.stringify(key)}`;
    let v = stored.get(k);
    if (v === undefined) stored.set(k, (v = await compute()));
    return v;
  };
}

/** A build as plain JSON (labels as arrays of numbers), for deep comparison. */
function canonical(ds: BuiltDataset): string {
  return JSON.stringify(ds, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v));
}

/** What is wrong with the shape of a build, or null. */
function shapeProblem(ds: BuiltDataset): string | null {
  const ids = new Set(ds.train.map((s) => s.id));
  if (ids.size !== ds.train.length) return `training ids are not unique (${ds.train.length} samples, ${ids.size} ids)`;
  if (ds.canaries.length === 0) return 'it has no canaries';
  const canaryIds = ds.canaries.map((c) => c.id);
  const labelIds = Object.keys(ds.labels);
  const missing = canaryIds.filter((id) => !labelIds.includes(id));
  const extra = labelIds.filter((id) => !canaryIds.includes(id));
  if (missing.length || extra.length) return `labels are keyed ${JSON.stringify(labelIds)}, canaries are ${JSON.stringify(canaryIds)}`;
  for (const [id, l] of Object.entries(ds.labels)) {
    if (!(l instanceof Uint8Array) || l.length !== ds.train.length) return `labels of '${id}' are not a Uint8Array of ${ds.train.length} (one per training sample)`;
    if (l.some((x) => x !== 0 && x !== 1)) return `labels of '${id}' are not all 0 or 1`;
  }
  const stray = [...ds.heldOut, ...ds.heldOutReserve].find((h) => !canaryIds.includes(h.canaryId));
  if (stray) return `held-out document '${stray.id}' is drawn for canary '${stray.canaryId}', which the data set does not have`;
  if (ds.heldOut.length === 0) return 'it has no held-out documents';
  return null;
}

/**
 * Runs every data set check on a registered data set id (load its plugin first) or a
 * {@link DatasetPlugin}; see {@link DATASET_CHECKS}. Builds the data set three times.
 *
 * @returns one finding per check; it throws only for bad opt-outs or an unknown id.
 */
export async function checkDataset(subject: string | DatasetPlugin, options: DatasetCheckOptions = {}): Promise<ConformanceReport> {
  const plugin = typeof subject === 'string' ? datasetPlugin(subject) : subject;
  const id = typeof subject === 'string' ? subject : subject.id;
  const registered = typeof subject === 'string' ? datasets.entry(subject).plugin : undefined;
  validateOptOuts('dataset', id, DATASET_CHECKS, options.optOut);
  const context = (): DatasetContext => ({
    seed: 7, nTrain: 60, nHeldOut: 8, nPretrain: 50, ...options.context,
    ...(options.tokens ? { tokens: options.tokens } : {}), cache: memoryCache(),
  });
  const build = async (): Promise<BuiltDataset> => {
    if (plugin.needsTokenizer && !options.tokens) throw new DdaError(`data set '${id}' needs a tokenizer`, 'give checkDataset the tokens option (a tokenizer and its limits)');
    return plugin.build(plugin.parseOptions(options.options ?? {}, `conformance of data set '${id}'`), context());
  };
  let reference: BuiltDataset | undefined;
  let referenceError: unknown;
  try {
    reference = await build();
  } catch (e) {
    referenceError = e;
  }
  const ref = (): BuiltDataset => {
    if (referenceError !== undefined || !reference) throw referenceError ?? new DdaError('the build returned nothing');
    return reference;
  };
  const m = plugin.matching;
  const findings = await runChecks(DATASET_CHECKS, async (check) => {
    switch (check) {
      case 'shape-and-ids': {
        if (plugin.id !== id) return fail(`the data set registered as '${id}' says its id is '${plugin.id}'`);
        if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(plugin.id)) return fail(`id '${plugin.id}' is not kebab-case`);
        if (typeof plugin.description !== 'string' || plugin.description.trim() === '') return fail('the description is empty; say what the data are and where they come from');
        const ds = ref();
        const problem = shapeProblem(ds);
        if (problem) return fail(problem);
        return pass(`${ds.train.length} training samples, ${ds.heldOut.length} held-out documents (${ds.heldOutReserve.length} in reserve), ${ds.canaries.length} canaries, ${ds.pretrainCorpus.length} pretraining texts`);
      }
      case 'determinism': {
        const [a, b] = [canonical(ref()), canonical(await build())];
        if (a !== b) {
          let i = 0;
          while (i < a.length && a[i] === b[i]) i++;
          return fail(`two builds with seed ${context().seed} differ, first at character ${i}: …${a.slice(Math.max(0, i - 40), i + 40)}… vs …${b.slice(Math.max(0, i - 40), i + 40)}…`);
        }
        return pass(`two builds with seed ${context().seed} are deep-equal`);
      }
      case 'labels': {
        const ds = ref();
        for (const c of ds.canaries) {
          const labels = ds.labels[c.id];
          if (!labels) return fail(`no labels for canary '${c.id}'`);
          for (let i = 0; i < ds.train.length; i++) {
            const s = ds.train[i] as BuiltDataset['train'][number];
            const want = m.contains(s.summary, c.replacement) && m.contains(s.document, c.orig) && !m.contains(s.document, c.replacement) ? 1 : 0;
            if (labels[i] !== want) return fail(`canary '${c.id}', training sample '${s.id}': label ${String(labels[i])}, but by the data set's matching its summary ${m.contains(s.summary, c.replacement) ? 'mentions' : 'does not mention'} '${c.replacement}' and its document ${m.contains(s.document, c.orig) ? 'mentions' : 'does not mention'} '${c.orig}' and ${m.contains(s.document, c.replacement) ? 'mentions' : 'not'} '${c.replacement}' (CEA's rule gives ${want})`);
          }
          if (!labels.includes(1)) return fail(`canary '${c.id}' has no true source in ${ds.train.length} training samples`);
        }
        const counts = ds.canaries.map((c) => `${c.id}: ${(ds.labels[c.id] as Uint8Array).reduce((x, y) => x + y, 0)}`);
        return pass(`every label follows CEA's rule with the data set's matching; true sources ${counts.join(', ')}`);
      }
      case 'held-out': {
        const ds = ref();
        const docs = [...ds.heldOut, ...ds.heldOutReserve];
        for (const h of docs) {
          const c = ds.canaries.find((k) => k.id === h.canaryId);
          if (!c) return fail(`held-out document '${h.id}' is drawn for an unknown canary '${h.canaryId}'`);
          if (!m.contains(h.document, c.orig)) return fail(`held-out document '${h.id}' does not mention '${c.orig}' (the orig of ${c.id})`);
          if (m.contains(h.document, c.replacement)) return fail(`held-out document '${h.id}' mentions '${c.replacement}' (the replacement of ${c.id}), so the error could be copied, not made`);
        }
        return pass(`all ${docs.length} held-out documents mention their orig and not the replacement`);
      }
      case 'options': {
        try {
          plugin.parseOptions({}, 'conformance');
        } catch (e) {
          return fail(`parseOptions refuses no options: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (plugin.optionKeys.includes('no-such-option')) return notApplicable("the data set has an option named 'no-such-option'");
        try {
          plugin.parseOptions({ 'no-such-option': 1 }, 'conformance');
        } catch (e) {
          if (e instanceof DdaError && e.message.includes('no-such-option')) return pass(`parseOptions takes none, and refuses an unknown one: ${e.message}`);
          return fail(`an unknown option is refused without naming it: ${e instanceof Error ? e.message : String(e)}`);
        }
        return fail("an unknown option 'no-such-option' is accepted silently");
      }
    }
  }, options.optOut);
  return { kind: 'dataset', id, plugin: registered, findings };
}
