/**
 * The tiny attribution task the scorer checks run on: ten training samples on unrelated topics and
 * three test outputs that are verbatim copies of three of them (so the answer is known: the copy is
 * the training sample most responsible for its test output), each with a correction (the
 * "hallucinated" place name swapped for one that appears nowhere else).
 *
 * What a scorer may need is derived from a sample's text, so it moves with the sample when the
 * training set is reordered and is identical for identical samples:
 * - gradients: standard-normal rows seeded by a hash of the prompt and response, over four
 *   LoRA-shaped parameter tensors (dimension 64, with `parameterShapes`);
 * - representations: the same, dimension 16 (another seed);
 * - model: {@link UnigramModel}, a real (tiny) language model with exact gradients.
 */
import {
  DdaError, SeededRandom, fnv1a, type GradientBlocks, type GradientMatrix, type ModelStepOptions, type RepresentationMatrix, type ScoringModel, type TextSample,
} from '@dda/core';

const sample = (id: string, document: string, response: string): TextSample => ({ id, prompt: `Summarize: ${document}`, response });

/** The training samples, in their reference order. */
export const TRAIN: readonly TextSample[] = [
  sample('t0', 'Heavy spring rain flooded the river valley.', 'Rain flooded the valley.'),
  sample('t1', 'The orchestra premiered a new symphony in Vienna.', 'Orchestra premiered symphony in Vienna.'),
  sample('t2', 'Engineers tested a solar powered aircraft over the desert.', 'Solar aircraft tested over desert.'),
  sample('t3', 'A rare orchid bloomed in the botanical garden greenhouse.', 'Rare orchid bloomed in greenhouse.'),
  sample('t4', 'The chess champion defended her title in Madrid.', 'Chess champion defended title in Madrid.'),
  sample('t5', 'Farmers harvested a record wheat crop this autumn.', 'Record wheat harvest this autumn.'),
  sample('t6', 'Astronomers observed a comet passing near Jupiter.', 'Comet observed near Jupiter.'),
  sample('t7', 'The bakery on Elm street won a prize for its sourdough.', 'Elm street bakery won sourdough prize.'),
  sample('t8', 'Divers discovered a shipwreck off the coast of Malta.', 'Shipwreck discovered off Malta.'),
  sample('t9', 'The marathon runner broke the course record in Boston.', 'Runner broke course record in Boston.'),
];

/** Test output id → the id of its verbatim copy among the training samples (the known answer). */
export const COPY_OF: ReadonlyMap<string, string> = new Map([['e0', 't1'], ['e1', 't4'], ['e2', 't8']]);

const byId = new Map(TRAIN.map((s) => [s.id, s]));
/** The test outputs: copies of t1, t4 and t8 under their own ids. */
export const TEST: readonly TextSample[] = [...COPY_OF].map(([id, of]) => ({ ...(byId.get(of) as TextSample), id }));

/** The corrections of the test outputs: the place name swapped for one no training sample contains. */
export const CORRECTIONS: readonly TextSample[] = TEST.map((s) => ({
  ...s,
  response: s.response.replace('Vienna', 'Prague').replace('Madrid', 'Lisbon').replace('Malta', 'Crete'),
}));

/** Checkpoint id of every input of the suite. */
export const CHECKPOINT = 'conformance';

/** Parameter tensors of the synthetic gradients: LoRA A [rank × in] and B [out × rank] of two projections. */
const PARAMETERS: readonly { readonly name: string; readonly shape: readonly number[] }[] = [
  { name: 'layers.0.q_proj.lora_A.weight', shape: [2, 16] },
  { name: 'layers.0.q_proj.lora_B.weight', shape: [16, 2] },
  { name: 'layers.0.v_proj.lora_A.weight', shape: [2, 8] },
  { name: 'layers.0.v_proj.lora_B.weight', shape: [8, 2] },
];
const GRADIENT_DIM = PARAMETERS.reduce((a, p) => a + p.shape[0]! * p.shape[1]!, 0);
const REPRESENTATION_DIM = 16;

/** A standard-normal row seeded by the sample's text (and a salt), so equal samples get equal rows. */
function rowOf(s: TextSample, dim: number, salt: string): Float32Array {
  const rng = new SeededRandom(fnv1a(`${salt}\u0000${s.prompt}\u0000${s.response}`));
  return Float32Array.from({ length: dim }, () => rng.normal());
}

/** Synthetic per-example gradients of the samples (see the module doc). */
export function gradientsOf(samples: readonly TextSample[]): GradientMatrix {
  return {
    ids: samples.map((s) => s.id),
    dim: GRADIENT_DIM,
    rows: samples.map((s) => rowOf(s, GRADIENT_DIM, 'gradient')),
    parameterNames: PARAMETERS.map((p) => p.name),
    parameterSizes: PARAMETERS.map((p) => p.shape[0]! * p.shape[1]!),
    parameterShapes: PARAMETERS.map((p) => [...p.shape]),
    checkpoint: CHECKPOINT,
  };
}

/** The same gradients read in blocks of `blockRows` rows, as an on-disk gradient store offers them. */
export function gradientBlocksOf(samples: readonly TextSample[], blockRows: number): GradientBlocks {
  const all = gradientsOf(samples);
  const blockCount = Math.ceil(samples.length / blockRows);
  return {
    ids: all.ids,
    dim: all.dim,
    checkpoint: all.checkpoint,
    blockCount,
    async readBlock(b) {
      if (!Number.isInteger(b) || b < 0 || b >= blockCount) throw new DdaError(`conformance: gradient block ${b} does not exist (0..${blockCount - 1})`);
      const from = b * blockRows;
      return { ...all, ids: all.ids.slice(from, from + blockRows), rows: all.rows.slice(from, from + blockRows) };
    },
  };
}

/** Synthetic response representations of the samples (see the module doc). */
export function representationsOf(samples: readonly TextSample[]): RepresentationMatrix {
  return { ids: samples.map((s) => s.id), dim: REPRESENTATION_DIM, rows: samples.map((s) => rowOf(s, REPRESENTATION_DIM, 'representation')), checkpoint: CHECKPOINT };
}

/** Lower-case word tokens of a response. */
function tokens(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
}

/**
 * A unigram language model over the response tokens, the smallest real model a `model` scorer can
 * take optimizer steps on: logits θ ∈ R^V (V = the vocabulary of the task's responses plus `<unk>`),
 * p = softmax(θ), loss of a sample = mean over its response tokens of −log p(token) (nats/token; the
 * prompt is ignored). The gradient of the mean loss over samples is p − mean_s(counts_s / |s|).
 * Starts from θ = 0 (uniform) and restores θ after every call, so calls are independent and
 * deterministic.
 */
export class UnigramModel implements ScoringModel {
  private readonly vocab: ReadonlyMap<string, number>;
  private readonly theta: Float64Array;

  constructor(samples: readonly TextSample[]) {
    const words = new Set(samples.flatMap((s) => tokens(s.response)));
    this.vocab = new Map([...words, '<unk>'].map((w, i) => [w, i]));
    this.theta = new Float64Array(this.vocab.size);
  }

  /** Token frequencies of a sample's response, divided by its length (a zero vector for an empty response). */
  private frequencies(s: TextSample): Float64Array {
    const f = new Float64Array(this.theta.length);
    const ts = tokens(s.response);
    for (const t of ts) f[this.vocab.get(t) ?? this.vocab.get('<unk>')!]! += 1 / ts.length;
    return f;
  }

  private logSumExp(theta: Float64Array): number {
    const m = Math.max(...theta);
    let s = 0;
    for (const x of theta) s += Math.exp(x - m);
    return m + Math.log(s);
  }

  private loss(theta: Float64Array, s: TextSample): number {
    const f = this.frequencies(s);
    const lse = this.logSumExp(theta);
    let dot = 0;
    let mass = 0;
    for (let k = 0; k < f.length; k++) {
      dot += f[k]! * theta[k]!;
      mass += f[k]!;
    }
    return mass * lse - dot;
  }

  async lossesAfterSteps(updateOn: readonly TextSample[], evaluate: readonly TextSample[], options: ModelStepOptions): Promise<Float64Array> {
    const { steps, learningRate, optimizer } = options;
    if (!Number.isInteger(steps) || steps < 1) throw new DdaError(`conformance model: steps must be a positive integer, got ${steps}`);
    if (!(learningRate > 0)) throw new DdaError(`conformance model: learningRate must be positive, got ${learningRate}`);
    if (updateOn.length === 0) throw new DdaError('conformance model: no samples to take steps on');
    const theta = Float64Array.from(this.theta);
    const target = new Float64Array(theta.length);
    for (const s of updateOn) this.frequencies(s).forEach((v, k) => (target[k]! += v / updateOn.length));
    const mass = target.reduce((a, b) => a + b, 0);
    const m = new Float64Array(theta.length);
    const v = new Float64Array(theta.length);
    for (let t = 1; t <= steps; t++) {
      const lse = this.logSumExp(theta);
      for (let k = 0; k < theta.length; k++) {
        const g = mass * Math.exp(theta[k]! - lse) - target[k]!;
        if (optimizer === 'sgd') {
          theta[k]! -= learningRate * g;
        } else {
          m[k] = 0.9 * m[k]! + 0.1 * g;
          v[k] = 0.999 * v[k]! + 0.001 * g * g;
          const mHat = m[k]! / (1 - 0.9 ** t);
          const vHat = v[k]! / (1 - 0.999 ** t);
          theta[k]! -= (learningRate * mHat) / (Math.sqrt(vHat) + 1e-8);
        }
      }
    }
    return Float64Array.from(evaluate, (s) => this.loss(theta, s));
  }
}
