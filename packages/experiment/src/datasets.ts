/**
 * The built-in data sets, registered in @dda/core's `datasets` registry on import (issue 25):
 * `news` (@dda/dataset-hallucination: news about places, place swaps), `registry`
 * (@dda/dataset-registry: company-register filings with person, organisation and number swaps,
 * distractors and knowledge bias of θ0) and `realtext` (@dda/dataset-realtext: XSum-style pairs
 * from the State of the Union addresses, entity swaps labelled by CEA's rule, its own pretraining
 * corpus; issue 28).
 */
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import { DdaError, checkDatasetOptions, datasets, evenlySpaced, registerAsPlugin, registerDataset, yieldToEventLoop, type BuiltDataset, type DatasetContext, type DatasetPlugin, type EntityMatching, type CheckedDatasetOptions, type DatasetOptionKind } from '@dda/core';
import { buildHallucinationDataset, containsWholeWord, makeCanary, phraseRegExp, replaceWholeWord } from '@dda/dataset-hallucination';
import { buildRegistryDataset, type RegistryOptions } from '@dda/dataset-registry';
import { buildRealTextDataset, loadSotuAddresses, mentions, parseRealTextOptions, replaceEntity, splitSentences, windowAt, type RealTextDataset, type RealTextOptionsInput } from '@dda/dataset-realtext';
import { hashFiles, hashOf } from '@dda/attribution';

/** The options of the `registry` generator that the other generators do not have. */
export type RegistryGeneratorOptions = Pick<RegistryOptions, 'origPerCanary' | 'distractorRate' | 'handoverRate' | 'mentionRate' | 'anchorsPerCanary'>;
/**
 * The options of the `realtext` data set that the others do not have (see @dda/dataset-realtext's
 * `RealTextOptionsSchema`). Its `seed`, `canaries`, `swapRate` and `nTrain` are the experiment's;
 * held-out documents per canary are `nHeldOut` / canaries (rounded up).
 */
export type RealTextGeneratorOptions = Pick<RealTextOptionsInput, 'minLegitPerSource' | 'reservePerCanary' | 'heldOutSummaryNamesOrig' | 'windowSentences' | 'maxDocumentWords' | 'minDocumentWords' | 'minSummaryWords' | 'maxSummaryWords' | 'pretrainChunkWords' | 'nPretrainPairs'>;

/** Whole words of a phrase; case-sensitive (NFC) or any case and any whitespace. */
function spansOf(anyCase: boolean): EntityMatching['spans'] {
  return (text, entity) => {
    if (entity.trim().length === 0) return [];
    const re = new RegExp(phraseRegExp(anyCase ? entity : entity.normalize('NFC'), { ignoreCase: anyCase, anySpace: anyCase }));
    return [...text.matchAll(re)].map((m) => [m.index, m.index + m[0].length]);
  };
}

/** Whole words, case-sensitive: the synthetic generators' and a user's data file's matching. */
export const SYNTHETIC_MATCHING: EntityMatching = { contains: containsWholeWord, replace: replaceWholeWord, spans: spansOf(false) };
/** Whole words, any case, any whitespace: real text writes `Mexico` and `MEXICO` (realtext's matching). */
export const REAL_TEXT_MATCHING: EntityMatching = { contains: mentions, replace: replaceEntity, spans: spansOf(true) };

/** The experiment's options every synthetic generator takes. */
function syntheticInputs(c: DatasetContext): { seed: number; nTrain: number; nHeldOut: number; nPretrain: number; canaries?: ReturnType<typeof makeCanary>[]; swapRate?: number; biasRate?: number; summaryPadding?: number } {
  return {
    seed: c.seed, nTrain: c.nTrain, nHeldOut: c.nHeldOut, nPretrain: c.nPretrain,
    ...(c.canaries ? { canaries: c.canaries.map((k) => makeCanary(k.orig, k.replacement)) } : {}), ...(c.swapRate !== undefined ? { swapRate: c.swapRate } : {}),
    ...(c.biasRate !== undefined ? { biasRate: c.biasRate } : {}), ...(c.summaryPadding !== undefined ? { summaryPadding: c.summaryPadding } : {}),
  };
}

/** The option keys and check of a data set whose options are numbers and booleans of the given kinds (see checkDatasetOptions). */
function checkedOptions<S extends Readonly<Record<string, DatasetOptionKind>>>(shape: S): Pick<DatasetPlugin<CheckedDatasetOptions<S>>, 'optionKeys' | 'parseOptions'> {
  return { optionKeys: Object.keys(shape), parseOptions: (raw, where) => checkDatasetOptions(raw, shape, where) };
}

/** `news`: synthetic news about places, place swaps; no options of its own. */
export const newsDataset: DatasetPlugin<Record<string, never>> = {
  id: 'news',
  description: 'synthetic news about places with place swaps (England → China, Wales → Scotland by default); @dda/dataset-hallucination',
  ...(checkedOptions({}) as Pick<DatasetPlugin<Record<string, never>>, 'optionKeys' | 'parseOptions'>),
  matching: SYNTHETIC_MATCHING,
  needsTokenizer: false,
  build: (_options, c) => Promise.resolve(buildHallucinationDataset(syntheticInputs(c))),
};

const REGISTRY_SHAPE = { origPerCanary: 'integer', distractorRate: 'fraction', handoverRate: 'fraction', mentionRate: 'fraction', anchorsPerCanary: 'integer' } as const;

/** `registry`: company-register filings with person, organisation and number swaps. */
export const registryDataset: DatasetPlugin<RegistryGeneratorOptions> = {
  id: 'registry',
  description: 'synthetic company-register filings with person, organisation and number swaps, distractors and knowledge bias of θ0; @dda/dataset-registry',
  ...checkedOptions(REGISTRY_SHAPE),
  matching: SYNTHETIC_MATCHING,
  needsTokenizer: false,
  build: (options, c) => Promise.resolve(buildRegistryDataset({ ...syntheticInputs(c), ...options })),
};

const REAL_TEXT_SHAPE = {
  minLegitPerSource: 'number', reservePerCanary: 'integer', heldOutSummaryNamesOrig: 'boolean', windowSentences: 'integer', maxDocumentWords: 'integer', minDocumentWords: 'integer',
  minSummaryWords: 'integer', maxSummaryWords: 'integer', pretrainChunkWords: 'integer', nPretrainPairs: 'integer',
} as const;

/** Token counts of texts per tokenizer, shared by the realtext builds of one process (other seeds count the same windows). */
const tokenCounts = new Map<string, Map<string, number>>();

const json = (v: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);

/**
 * `realtext`: built for the model's tokenizer: windows within `maxPairTokens`, pretraining texts
 * within `maxTextTokens`; at most `nPretrain` pretraining texts, evenly spaced. θ0's pretraining
 * seed is 0 (its pretraining side does not depend on the seed, so θ0 is shared by every seed).
 */
export const realTextDataset: DatasetPlugin<RealTextGeneratorOptions> = {
  id: 'realtext',
  description: 'XSum-style pairs from the State of the Union addresses, entity swaps labelled by CEA\'s rule, its own pretraining corpus; needs a real tokenizer; @dda/dataset-realtext',
  ...checkedOptions(REAL_TEXT_SHAPE),
  matching: REAL_TEXT_MATCHING,
  needsTokenizer: true,
  pretrainSeed: 0,
  async build(realtext, c): Promise<BuiltDataset> {
    if ((c.summaryPadding ?? 0) !== 0) throw new DdaError(`summaryPadding ${String(c.summaryPadding)} is an option of the synthetic generators, not of realtext`, 'remove summaryPadding');
    if (c.biasRate !== undefined) throw new DdaError(`biasRate ${c.biasRate} is an option of the synthetic generators; realtext's knowledge bias is its pretraining text`, 'remove biasRate');
    const t = c.tokens;
    if (t === undefined) throw new DdaError('the realtext data set is built for a tokenizer, and none was given', 'give the context its tokens (DatasetContext.tokens)');
    const nCanaries = c.canaries?.length ?? 2;
    const options = {
      seed: c.seed, nTrain: c.nTrain, heldOutPerCanary: Math.ceil(c.nHeldOut / nCanaries),
      ...(c.canaries ? { canaries: c.canaries.map((k) => ({ orig: k.orig, replacement: k.replacement })) } : {}),
      ...(c.swapRate !== undefined ? { swapRate: c.swapRate } : {}), ...realtext,
    };
    const limits = { maxPairTokens: t.maxPairTokens, maxTextTokens: t.maxTextTokens };
    // Counting the tokens of every window takes about a minute on 2 cores: the data set is an artifact,
    // keyed by its options, the tokenizer, the limits and the builder's own compiled code.
    const builder = dirname(createRequire(import.meta.url).resolve('@dda/dataset-realtext'));
    const code = hashFiles(builder, readdirSync(builder).filter((f) => f.endsWith('.js')).sort());
    const addresses = loadSotuAddresses();
    const key = { step: 'data', generator: 'realtext', options, limits, tokenizer: t.tokenizerId, code, addresses: hashOf(addresses) };
    const bytes = await c.cache('data/realtext', key, async () => {
      let memo = tokenCounts.get(key.tokenizer);
      if (memo === undefined) tokenCounts.set(key.tokenizer, (memo = new Map()));
      const counts = memo;
      const count = (s: string): number => {
        let n = counts.get(s);
        if (n === undefined) counts.set(s, (n = t.tokenizer.encode(s).length));
        return n;
      };
      // The windows' token counts first, address by address, yielding between them: the build
      // below is synchronous, and a minute without a turn of the event loop stops progress lines,
      // signals and test runners' heartbeats. The builder then finds every window's count memoised.
      const o = parseRealTextOptions(options);
      const t0 = Date.now();
      c.log?.(`realtext data: counting the tokens of every window of ${addresses.length} addresses (about a minute on 2 cores; cached after)`);
      for (const [i, a] of addresses.entries()) {
        const sentences = splitSentences(a.text);
        for (let k = 0; k < sentences.length; k++) {
          const w = windowAt(sentences, k, o);
          if (w) {
            count(w.summary);
            count(w.document);
          }
        }
        await yieldToEventLoop();
        if ((i + 1) % 60 === 0) c.log?.(`realtext data: ${i + 1} of ${addresses.length} addresses counted (${Math.round((Date.now() - t0) / 1000)} s)`);
      }
      const built = buildRealTextDataset(addresses, options, { count, ...limits });
      return json({ ...built, labels: Object.fromEntries(Object.entries(built.labels).map(([k, v]) => [k, [...v]])) });
    });
    const ds = JSON.parse(new TextDecoder().decode(bytes)) as Omit<RealTextDataset, 'labels'> & { labels: Record<string, number[]> };
    return { ...ds, labels: Object.fromEntries(Object.entries(ds.labels).map(([k, v]) => [k, Uint8Array.from(v)])), pretrainCorpus: evenlySpaced(ds.pretrainCorpus, c.nPretrain) };
  },
};

/** The built-in data sets, in the order `dda methods` lists them. */
export const BUILT_IN_DATASETS: readonly DatasetPlugin[] = [newsDataset as DatasetPlugin, registryDataset as DatasetPlugin, realTextDataset as DatasetPlugin];

/** Adds `news`, `registry` and `realtext` to the `datasets` registry (idempotent). */
export function registerBuiltInDatasets(): void {
  for (const d of BUILT_IN_DATASETS) if (!datasets.has(d.id)) registerDataset(d);
}

registerAsPlugin('@dda/experiment', registerBuiltInDatasets);
