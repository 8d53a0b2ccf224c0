/**
 * The PyTorch float64 fixtures of make-decoder-fixtures.py as references of the engine conformance
 * suite: they ship with @dda/conformance (`packages/conformance/fixtures/decoder-fixtures.json`), so
 * an engine outside this workspace tests against the same ones.
 */
export { decoderFixtureReferences } from '@dda/conformance';
