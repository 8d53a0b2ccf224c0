import { DdaError, createScoreMatrix, registerAsPlugin, scorers, type RepresentationMatrix, type Scorer, type ScoringInput } from '@dda/core';

/**
 * `rep-sim`: representation similarity. score[i][j] = cos(h_train_i, h_test_j), where h is the mean
 * final hidden state over a sample's response tokens at the scoring checkpoint.
 * Sign: higher = the training sample's response is represented more like the erroneous output =
 * more responsible. Dimensionless, in [−1, 1]; a zero vector gives 0.
 */
export function repSimScores(train: RepresentationMatrix, test: RepresentationMatrix): Float64Array {
  if (train.dim !== test.dim) {
    throw new DdaError(`rep-sim: train representations have ${train.dim} dimensions, test ${test.dim}`, 'take both at the same checkpoint of the same model');
  }
  const norm = (r: Float32Array): number => {
    let s = 0;
    for (let k = 0; k < r.length; k++) s += (r[k] as number) * (r[k] as number);
    return Math.sqrt(s);
  };
  const tn = train.rows.map(norm);
  const en = test.rows.map(norm);
  const nTest = test.rows.length;
  const out = new Float64Array(train.rows.length * nTest);
  train.rows.forEach((a, i) => {
    test.rows.forEach((b, j) => {
      if (a.length !== train.dim || b.length !== test.dim) throw new DdaError(`rep-sim: a representation row has the wrong length (expected ${train.dim})`);
      const den = (tn[i] as number) * (en[j] as number);
      if (den === 0) return;
      let dot = 0;
      for (let k = 0; k < a.length; k++) dot += (a[k] as number) * (b[k] as number);
      out[i * nTest + j] = Math.max(-1, Math.min(1, dot / den));
    });
  });
  return out;
}

/** The `rep-sim` scorer; needs a harness that offers representations (ScoringInput.trainRepresentations). */
export const repSimScorer: Scorer = {
  id: 'rep-sim',
  description: 'cosine similarity of mean response hidden states (higher = more responsible, dimensionless in [-1, 1])',
  needs: ['representations'],
  async score(input: ScoringInput) {
    if (!input.trainRepresentations || !input.testRepresentations) {
      throw new DdaError("scorer 'rep-sim' needs hidden representations, but this harness offers none", 'run it through the model harness (runDda), or choose a gradient or text scorer');
    }
    const train = await input.trainRepresentations();
    const test = await input.testRepresentations();
    const same = (a: readonly string[], b: readonly { id: string }[]): boolean => a.length === b.length && a.every((id, k) => id === b[k]?.id);
    if (!same(train.ids, input.train) || !same(test.ids, input.test)) {
      throw new DdaError('rep-sim: representation ids do not match the training / test samples in order');
    }
    return createScoreMatrix(train.ids, test.ids, repSimScores(train, test), {
      method: 'rep-sim',
      computedOver: `cosine of mean final hidden states over response tokens at ${input.checkpoint} (dimensionless, higher = more responsible)`,
      units: 'dimensionless (cosine in [−1, 1])',
      checkpoints: [input.checkpoint],
      transforms: [],
    });
  },
};

let registered = false;
/** Registers `rep-sim` in the core `scorers` registry (idempotent; runs on import). */
export function registerRepSimScorer(): void {
  if (registered) return;
  registered = true;
  scorers.register({ id: 'rep-sim', description: repSimScorer.description, priority: 40, options: [], create: () => repSimScorer });
}
registerAsPlugin('@dda/scorer-rep-sim', registerRepSimScorer);
