/**
 * `cea`: contrastive error attribution (after Ladhak et al. 2023, "Contrastive Error Attribution
 * for Finetuned Language Models"). For each test error z_e with its corrected version z_c (the same
 * prompt, the erroneous output with the error fixed), starting from the scoring checkpoint θ:
 *
 *     θ_err  = θ after `steps` optimizer steps on ℓ(z_e)   (that one test error alone)
 *     θ_corr = θ after `steps` optimizer steps on ℓ(z_c)   (its correction alone)
 *     score[t][e] = ℓ(z_t, θ_corr) − ℓ(z_t, θ_err)
 *
 * ℓ is the mean response-token cross-entropy (nats/token), so the score is in nats/token. Sign:
 * higher = training on the error lowered the training sample's loss more than training on the
 * correction did, i.e. the training sample "agrees" with the error rather than with its
 * correction = more responsible. The steps are taken over the checkpoint's trainable parameters
 * (the LoRA adapters in the dda pipeline) with Adam (fresh moments; the fine-tuning optimizer) by
 * default, or plain SGD; the model is restored after each step set.
 *
 * One step set per test error and version (not one per batch of errors), so every column is the
 * attribution of one output. Cost per checkpoint: 2 × nTest × (`steps` forward/backward passes on
 * one sample + one forward pass over the nTrain training samples), i.e. about 2·nTest·nTrain
 * forward passes; keep `steps` small (default 3: it changes the cost little, the evaluation
 * dominates).
 */
import { DdaError, createScoreMatrix, trackProgress, type ModelStepOptions, type ScoreMatrix, type ScoringInput, type TextSample, yieldToEventLoop } from '@dda/core';

/** Default number of optimizer steps per test error and version. */
export const DEFAULT_CEA_STEPS = 3;
/** Default learning rate (the demo's fine-tuning rate with Adam). */
export const DEFAULT_CEA_LEARNING_RATE = 3e-3;

/** Options of {@link ceaScores} and the `cea` scorer. */
export interface CeaOptions {
  /** Optimizer steps per test error and per version (positive integer, default 3). */
  readonly steps?: number;
  /** Learning rate (positive, default 3e-3). */
  readonly learningRate?: number;
  /** `adam` (default, fresh moments) or `sgd`. */
  readonly optimizer?: 'adam' | 'sgd';
}

/** The options with defaults, checked. */
export function resolveCeaOptions(o: CeaOptions): ModelStepOptions {
  const steps = o.steps ?? DEFAULT_CEA_STEPS;
  const learningRate = o.learningRate ?? DEFAULT_CEA_LEARNING_RATE;
  const optimizer = o.optimizer ?? 'adam';
  if (!Number.isInteger(steps) || steps < 1) throw new DdaError(`cea: option 'steps' must be a positive integer, got ${steps}`, `pass e.g. steps = ${DEFAULT_CEA_STEPS}`);
  if (!(learningRate > 0) || !Number.isFinite(learningRate)) {
    throw new DdaError(`cea: option 'learningRate' must be a positive number, got ${learningRate}`, `pass e.g. learningRate = ${DEFAULT_CEA_LEARNING_RATE}`);
  }
  if (optimizer !== 'adam' && optimizer !== 'sgd') throw new DdaError(`cea: option 'optimizer' must be 'adam' or 'sgd', got ${JSON.stringify(optimizer)}`);
  return { steps, learningRate, optimizer };
}

/** The corrections of the input, checked to line up with its test outputs. */
function corrections(input: ScoringInput): readonly TextSample[] {
  const c = input.testCorrections;
  if (!c) {
    throw new DdaError(
      "scorer 'cea' needs the corrected version of every test output (ScoringInput.testCorrections), but this harness offers none",
      'run it through a harness that knows the corrections (the dda pipeline swaps the canary replacement back), or choose another scorer',
    );
  }
  if (c.length !== input.test.length || c.some((s, j) => s.id !== input.test[j]?.id)) {
    throw new DdaError(
      `cea: the ${c.length} corrections do not match the ${input.test.length} test outputs (same ids, same order)`,
      'give one correction per test output, with the test output\'s id, in the same order',
    );
  }
  return c;
}

/**
 * CEA scores [nTrain × nTest] at the input's checkpoint (see the module doc for the formula, sign,
 * units and cost).
 *
 * @throws DdaError when the input offers no model access or no (matching) corrections, or the
 *   options are invalid.
 */
export async function ceaScores(input: ScoringInput, options: CeaOptions = {}): Promise<ScoreMatrix> {
  const o = resolveCeaOptions(options);
  const fixes = corrections(input);
  const model = input.model;
  if (!model) {
    throw new DdaError(
      "scorer 'cea' needs to take optimizer steps on the model (ScoringInput.model), but this harness offers no model access",
      'run it through the model harness (runDda), or choose a gradient or text scorer',
    );
  }
  const nTrain = input.train.length;
  const nTest = input.test.length;
  const values = new Float64Array(nTrain * nTest);
  const bar = trackProgress(`cea at ${input.checkpoint}: ${o.steps} steps on each of ${nTest} queries and its correction, then ${nTrain} training losses each`, nTest, input.progress);
  for (let j = 0; j < nTest; j++) {
    const afterError = await model.lossesAfterSteps([input.test[j] as TextSample], input.train, o);
    const afterCorrection = await model.lossesAfterSteps([fixes[j] as TextSample], input.train, o);
    if (afterError.length !== nTrain || afterCorrection.length !== nTrain) {
      throw new DdaError(`cea: the model returned ${afterError.length} / ${afterCorrection.length} losses for ${nTrain} training samples`);
    }
    for (let i = 0; i < nTrain; i++) values[i * nTest + j] = (afterCorrection[i] as number) - (afterError[i] as number);
    bar.tick();
    await yieldToEventLoop();
  }
  return createScoreMatrix(input.train.map((s) => s.id), input.test.map((s) => s.id), values, {
    method: 'cea',
    computedOver: `ℓ(train, θ_corr) − ℓ(train, θ_err) at ${input.checkpoint}, θ_err / θ_corr = ${o.steps} ${o.optimizer} step(s) (lr ${o.learningRate}) from the checkpoint on the erroneous / corrected test output alone, ℓ = mean response-token cross-entropy; nats/token; higher = more responsible`,
    units: 'nats/token',
    checkpoints: [input.checkpoint],
    transforms: [],
  });
}
