/**
 * @dda/scorer-cea: the `cea` scorer (contrastive error attribution), registered in the `scorers`
 * registry of @dda/core on import. It needs a harness that offers model access and the corrected
 * test outputs (`ScoringInput.model`, `ScoringInput.testCorrections`).
 * Sign convention: higher = training sample more responsible for the test output.
 */
import { DdaError, numberOption, registerAsPlugin, scorers, type PluginOptions, type RegistryEntry, type Scorer } from '@dda/core';
import { DEFAULT_CEA_LEARNING_RATE, DEFAULT_CEA_STEPS, ceaScores, resolveCeaOptions, type CeaOptions } from './cea.js';

// `cea`
export {
  DEFAULT_CEA_STEPS, DEFAULT_CEA_LEARNING_RATE, type CeaOptions, ceaScores,
} from './cea.js';

/** Reads `cea` options: steps (default 3), learningRate (default 3e-3), optimizer (`adam` | `sgd`, default `adam`). */
export function readCeaOptions(options: PluginOptions): CeaOptions {
  const optimizer = options['optimizer'] ?? 'adam';
  if (optimizer !== 'adam' && optimizer !== 'sgd') throw new DdaError(`cea: option 'optimizer' must be 'adam' or 'sgd', got ${JSON.stringify(optimizer)}`);
  const o: CeaOptions = {
    steps: numberOption(options, 'steps', DEFAULT_CEA_STEPS),
    learningRate: numberOption(options, 'learningRate', DEFAULT_CEA_LEARNING_RATE),
    optimizer,
  };
  resolveCeaOptions(o);
  return o;
}

/**
 * The `cea` scorer: ℓ(z_t, θ_corr) − ℓ(z_t, θ_err) after a few optimizer steps from the checkpoint
 * on each test error and on its correction; nats/token; higher = more responsible.
 */
export function ceaScorer(options: CeaOptions = {}): Scorer {
  resolveCeaOptions(options);
  return {
    id: 'cea',
    description: 'contrastive error attribution: training loss after a few optimizer steps on the corrected output minus after steps on the erroneous output (nats/token; higher = more responsible)',
    needs: ['model', 'corrections'],
    score: (input) => ceaScores(input, options),
  };
}

/** Registry entry `cea`; options as in {@link readCeaOptions}. */
export const ceaEntry: RegistryEntry<Scorer, PluginOptions> = {
  id: 'cea',
  description: 'contrastive error attribution, loss after steps on the correction − after steps on the error (options steps = 3, learningRate = 3e-3, optimizer = adam)',
  priority: 45,
  options: ['steps', 'learningRate', 'optimizer'],
  create: (o) => ceaScorer(readCeaOptions(o)),
};

/** Adds `cea` to the `scorers` registry of @dda/core. Idempotent. Called when this package is imported. */
export function registerCeaScorer(): void {
  if (!scorers.has(ceaEntry.id)) scorers.register(ceaEntry);
}

registerAsPlugin('@dda/scorer-cea', registerCeaScorer);
