import { describe, expect, it } from 'vitest';
import { checkEngine, decoderFixtureReferences } from '@dda/conformance';
import { engineConformance } from '@dda/conformance/vitest';
import { engines, type DecoderEngine, type EngineDecoder } from '@dda/model';
import '@dda/backend-tfjs';

// The tfjs engine against the engine contract, on the six tiny families and the PyTorch fixtures.
engineConformance('tfjs', { start: { backends: ['tfjs-wasm'] }, references: decoderFixtureReferences() });

/** The tfjs engine with one method of its decoders replaced. */
async function broken(change: (d: EngineDecoder) => Partial<EngineDecoder>): Promise<DecoderEngine> {
  const e = (await engines.resolve({ backends: ['tfjs-wasm'] }, ['tfjs'])).value;
  return { ...e, open: async (...args) => { const d = await e.open(...args); return Object.assign(Object.create(d) as EngineDecoder, change(d)); } };
}

describe('the engine checks catch a broken engine', () => {
  it.each([
    ['gradient', (d: EngineDecoder): Partial<EngineDecoder> => ({ forEachGradientRow: (enc, onRow) => d.forEachGradientRow(enc, (i, row) => onRow(i, row.map((x) => 2 * x))) })],
    ['loss-from-logits', (d: EngineDecoder): Partial<EngineDecoder> => ({ loss: async (e) => (await d.loss(e)) * 1.01 })],
    ['generation', (d: EngineDecoder): Partial<EngineDecoder> => ({ generate: async (ids, o) => [...(await d.generate(ids, o)), o.eosId] })],
    ['restore', (d: EngineDecoder): Partial<EngineDecoder> => ({ setWeights: async () => {} })],
  ] as const)('%s', async (check, change) => {
    const report = await checkEngine(await broken(change), { presets: ['llama2-tiny'] });
    const f = report.findings.find((x) => x.check === check)!;
    expect(f.status, f.message).toBe('fail');
    expect(report.findings.find((x) => x.check === 'hidden-states')!.status).toBe('pass');
  });
});
