/**
 * @dda/dataset-hallucination: the hallucination-tracing benchmark of METHOD.md as data.
 *
 * - {@link buildHallucinationDataset}: a deterministic synthetic data set (tiny vocabulary, short
 *   lowercase documents and summaries) with entity-swap canaries, a pretraining corpus for the
 *   base model, held-out documents for test-error collection, and true-source labels.
 * - {@link injectCanaries}, {@link trueSourceLabels} and {@link loadDocSummaryJsonl}: the same
 *   protocol on a user's own document/summary pairs.
 * - {@link SYSTEM_PROMPT} and {@link userPrompt}: the instruction format.
 * - {@link padSummary}: K extra summary sentences the document does not predict (option `summaryPadding`).
 */
export {
  type Canary,
  type DocSummary,
  type TrainSample,
  DEFAULT_CANARIES,
  makeCanary,
  validateCanaries,
  isEligible,
  trueSourceLabels,
  injectCanaries,
} from './canaries.js';
export { type HeldOutDoc, type HallucinationDataset, type BuildOptions, buildHallucinationDataset, vocabularyOf } from './build.js';
export { SYSTEM_PROMPT, userPrompt } from './prompt.js';
export { DocSummaryRecordSchema, loadDocSummaryCsv, loadDocSummaryJsonl } from './jsonl.js';
export { containsWholeWord, phraseRegExp, replaceWholeWord } from './words.js';
export { padSummary } from './padding.js';
export { PLACES, TOPICS } from './news.js';
export { type UserDataOptions, buildFromDocSummaries } from './user-data.js';
