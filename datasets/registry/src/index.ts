/**
 * @dda/dataset-registry: the second synthetic hallucination-tracing benchmark (METHOD.md's
 * protocol), on company-register filings instead of news about places.
 *
 * - {@link buildRegistryDataset}: a deterministic data set of the same shape as
 *   `@dda/dataset-hallucination`'s (`HallucinationDataset`), with canaries of three kinds (a
 *   person's name, a bank, a percentage), distractors that name the replacement legitimately in
 *   the same contexts, few sources per canary, and a pretraining corpus that ties each replacement
 *   to its original's contexts (knowledge bias).
 * - {@link entityKind}, {@link PERSONS}, {@link BANKS}, {@link PERCENTS}, {@link COMPANIES}: the
 *   entities a canary may swap.
 */
export { type RegistryOptions, DEFAULT_REGISTRY_CANARIES, buildRegistryDataset, registryAnchors } from './build.js';
export { type EntityKind, type Filing, type Template, BANKS, COMPANIES, PERCENTS, PERSONS, TEMPLATES, entityKind } from './filings.js';
