import { describe, expect, it } from 'vitest';
import { scorers } from '@dda/core';
import { checkScorerOptions, ensurePlugins, parseScorerOptions, refuseUnknownScorerOptions } from '@dda/attribution';

// The options `dda methods` advertises, one or two per built-in scorer: each accepted by its scorer.
const ADVERTISED: Record<string, Record<string, unknown>> = {
  'grad-dot': { blockRows: 64, engine: 'js' }, 'grad-cos': { blockRows: 64 }, 'tracin-cp': { blockRows: 64 },
  datainf: { damping: 0.01 }, 'if-exact': { dampingRatio: 0.2, solver: 'dual', maxSystemSize: 100 }, 'if-lissa': { depth: 10, streamAboveBytes: 1024, solver: 'primal' },
  'if-ekfac': { maxFactorSize: 64 }, 'grad-dot-pc': { k: 3, basis: 'query' }, trackstar: { mix: 0.3 }, trak: { projectionDim: 32, seed: 1 },
  bm25: { k1: 1.2, b: 0.5, documents: 'response' }, random: { seed: 3, perCheckpoint: true }, cea: { steps: 2, learningRate: 0.001, optimizer: 'sgd' },
};

describe('scorer options', () => {
  it('every built-in scorer declares the options it reads, and takes the advertised ones', async () => {
    await ensurePlugins();
    for (const e of scorers.list().filter((x) => x.plugin?.startsWith('@dda/'))) expect(e.options, e.id).toBeDefined();
    await checkScorerOptions(ADVERTISED, 'test');
    expect((await scorers.create('grad-dot-pc', { k: 3, basis: 'query' })).rowSeparable).toBe(true);
  });

  it('refuses a typo (a key the scorer does not read), naming the closest option; a bad value through the scorer\'s own reader', async () => {
    await ensurePlugins();
    expect(() => refuseUnknownScorerOptions('datainf', { dampnig: 0.01 }, '--scorer-option')).toThrow("--scorer-option: scorer 'datainf' has no option 'dampnig' (did you mean 'damping'? the options of datainf are damping, dampingRatio");
    expect(() => refuseUnknownScorerOptions('trak', { projectiondim: 8 })).toThrow(/has no option 'projectiondim' \(did you mean 'projectionDim'\?/);
    expect(() => refuseUnknownScorerOptions('rep-sim', { k: 1 })).toThrow(/scorer 'rep-sim' takes no options/);
    await expect(checkScorerOptions({ cea: { stpes: 2 } }, 'scorerOptions')).rejects.toThrow(/scorerOptions: scorer 'cea' has no option 'stpes' \(did you mean 'steps'\?/);
    await expect(checkScorerOptions({ 'grad-dot-pc': { basis: 'tests' } }, '--scorer-option')).rejects.toThrow(/--scorer-option: scorer 'grad-dot-pc': grad-dot-pc: option 'basis' must be 'train' or 'query'/);
    await expect(checkScorerOptions({ datainf: { damping: 'lots' } }, '--scorer-option')).rejects.toThrow(/--scorer-option: scorer 'datainf': option 'damping' must be a finite number/);
    await expect(checkScorerOptions({ 'no-such-scorer': {} })).rejects.toThrow(/unknown scorer 'no-such-scorer'/);
    // A scorer that declares no options (a plugin's, say) cannot be checked: its options pass.
    scorers.register({ id: 'undeclared-options-fixture', description: 'fixture', priority: 0, create: () => ({ id: 'undeclared-options-fixture', description: 'fixture', needs: [], score: () => { throw new Error('fixture'); } }) });
    expect(() => refuseUnknownScorerOptions('undeclared-options-fixture', { anything: 1 })).not.toThrow();
  });

  it('parses key=value entries: numbers, booleans, strings; refuses a malformed or repeated entry', () => {
    expect(parseScorerOptions(['damping=0.01', 'depth=20', 'solver=dual', 'perCheckpoint=true', 'seed=-3', 'engine=js'])).toEqual({ damping: 0.01, depth: 20, solver: 'dual', perCheckpoint: true, seed: -3, engine: 'js' });
    expect(() => parseScorerOptions(['damping'])).toThrow('--scorer-option damping: not key=value');
    expect(() => parseScorerOptions(['=1'])).toThrow('not key=value');
    expect(() => parseScorerOptions(['k=1', 'k=2'])).toThrow("option 'k' is given twice");
  });
});
