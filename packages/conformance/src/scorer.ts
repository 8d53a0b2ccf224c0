/**
 * The scorer checks: the contracts every `Scorer` of @dda/core must honour, tested on the tiny task
 * of `task.ts`, with an input that offers exactly what the scorer declares in `needs`.
 */
import { DdaError, SeededRandom, scoreByStreamedFit, scorers, type ScoreMatrix, type Scorer, type ScorerNeed, type ScoringInput, type TextSample } from '@dda/core';
import { CHECKPOINT, COPY_OF, CORRECTIONS, TEST, TRAIN, UnigramModel, gradientBlocksOf, gradientsOf, representationsOf } from './task.js';
import { differenceByIds, identical, nonFinite, shapeProblem } from './matrix.js';
import {
  fail, notApplicable, pass, runChecks, toSubject, validateOptOuts, type CheckOptions, type ConformanceReport, type Finding, type Subject,
} from './report.js';

/**
 * The scorer checks, in the order they run:
 * - `shape-and-ids`: a kebab-case `id` equal to the registered one, a description, known `needs`;
 *   the matrix has the input's training ids (rows) and test ids (columns) in their order, nTrain × nTest
 *   Float64 values and a provenance;
 * - `training-order`: shuffling the training set moves each score with its training sample;
 * - `test-order`: shuffling the test set moves each score with its test output;
 * - `determinism`: two scorers made with the same seed, and one scorer called twice, give bit-identical scores;
 * - `finite`: every score is finite;
 * - `float-range`: every score is finite when the gradients and representations span the whole
 *   float32 range: every row scaled by a power of two to a largest entry near 2^127 (3e38), near
 *   2^-126 (1.2e-38, smaller entries subnormal), and rows of both kinds mixed (float32 products
 *   and sums overflow or underflow long before float64 ones; such a result must be computed, or
 *   refused with a DdaError that says it is not representable, never returned as Infinity or NaN);
 * - `sign-convention`: a training sample identical to the test output ranks first in its column
 *   (strictly: higher = more responsible);
 * - `missing-need`: when an input lacks something the scorer declares (representations, model,
 *   corrections), `score` rejects with an error that names it (not a TypeError);
 * - `gradient-blocks`: with the training gradients also offered block by block (an on-disk store),
 *   the scores are the same;
 * - `row-separable`: a scorer that declares `rowSeparable` gives the same scores when blocks of the
 *   training set are scored on their own and their rows concatenated (as a sharding harness does).
 * - `block-summaries`: a scorer that declares `blockSummaries` (its streaming form) gives the same
 *   scores when the training set's blocks are summarized one at a time and the summaries combined
 *   (as a streaming harness does), and refuses summaries that do not cover the training set.
 * - `streamed-fit`: a scorer that declares `streamedFit` (its two-pass streamed form) gives the same
 *   scores when the training set's blocks are folded into the fit pass by pass (partials summed)
 *   and then scored block by block against the fit, for two different splits into blocks, and
 *   declares no other streaming form.
 */
export const SCORER_CHECKS = ['shape-and-ids', 'training-order', 'test-order', 'determinism', 'finite', 'float-range', 'sign-convention', 'missing-need', 'gradient-blocks', 'row-separable', 'block-summaries', 'streamed-fit'] as const;
/** A scorer check's name. */
export type ScorerCheck = (typeof SCORER_CHECKS)[number];

/** Seed the suite passes to the scorer's factory (option `seed`). */
export const CONFORMANCE_SEED = 7;

const KNOWN_NEEDS: readonly ScorerNeed[] = ['gradients', 'text', 'representations', 'model', 'corrections'];
/** What a scorer's error must mention when a declared need is missing (optional members of ScoringInput). */
const NEED_WORDS: Partial<Record<ScorerNeed, RegExp>> = { representations: /represent/i, model: /model/i, corrections: /correct/i };

/** How an input is built: what it offers, and which training / test samples in which order. */
interface InputPlan {
  readonly train?: readonly TextSample[];
  readonly test?: readonly TextSample[];
  /** A declared need left out (for `missing-need`). */
  readonly without?: ScorerNeed;
  /** Offer the training gradients in blocks of this many rows too. */
  readonly blockRows?: number;
  /** Scale the gradient and representation rows to this magnitude (see {@link atMagnitude}). */
  readonly magnitude?: Magnitude;
}

/** Where `float-range` puts the largest entry of every row: near 2^127, near 2^-126, or alternating row by row. */
type Magnitude = 'huge' | 'tiny' | 'mixed';
const MAGNITUDES: readonly Magnitude[] = ['huge', 'tiny', 'mixed'];

/**
 * `rows` with row r multiplied by the power of two that puts its largest entry in [2^126, 2^127)
 * (`huge`), in [2^-127, 2^-126) (`tiny`: most other entries become subnormal), or the one or the
 * other by row parity (`mixed`); an all-zero row stays zero.
 */
function atMagnitude<T extends { readonly rows: readonly Float32Array[] }>(m: T, magnitude: Magnitude | undefined): T {
  if (!magnitude) return m;
  const rows = m.rows.map((row, r) => {
    const max = row.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
    if (max === 0) return row;
    const huge = magnitude === 'huge' || (magnitude === 'mixed' && r % 2 === 0);
    const shift = (huge ? 126 : -127) - Math.floor(Math.log2(max));
    // Two steps: 2^shift itself may not be a float64 (|shift| up to ~280).
    const half = 2 ** Math.trunc(shift / 2);
    const rest = 2 ** (shift - Math.trunc(shift / 2));
    return Float32Array.from(row, (x) => x * half * rest);
  });
  return { ...m, rows };
}

/**
 * A ScoringInput that offers what `scorer` declares and refuses, with a message saying so, what it
 * does not declare (so a scorer that uses an undeclared need fails its checks with that message).
 */
function inputFor(scorer: Scorer, plan: InputPlan = {}): ScoringInput {
  const train = plan.train ?? TRAIN;
  const test = plan.test ?? TEST;
  const needs = new Set(scorer.needs);
  if (plan.without) needs.delete(plan.without);
  const undeclared = (what: string, need: ScorerNeed) => () =>
    Promise.reject(new DdaError(`conformance: scorer '${scorer.id}' asked for ${what} but does not declare the need '${need}'`, `add '${need}' to its needs`));
  const input: ScoringInput & { testCorrections?: readonly TextSample[] } = {
    checkpoint: CHECKPOINT,
    train,
    test,
    trainGradients: needs.has('gradients') ? async () => atMagnitude(gradientsOf(train), plan.magnitude) : undeclared('training gradients', 'gradients'),
    testGradients: needs.has('gradients') ? async () => atMagnitude(gradientsOf(test), plan.magnitude) : undeclared('test gradients', 'gradients'),
    ...(needs.has('gradients') && plan.blockRows ? { trainGradientBlocks: async () => gradientBlocksOf(train, plan.blockRows as number) } : {}),
  };
  const representations = scorer.needs.includes('representations');
  if (needs.has('representations')) {
    Object.assign(input, {
      trainRepresentations: async () => atMagnitude(representationsOf(train), plan.magnitude),
      testRepresentations: async () => atMagnitude(representationsOf(test), plan.magnitude),
    });
  } else if (!representations) {
    Object.assign(input, { trainRepresentations: undeclared('training representations', 'representations'), testRepresentations: undeclared('test representations', 'representations') });
  }
  if (needs.has('model')) {
    Object.assign(input, { model: new UnigramModel([...TRAIN, ...TEST, ...CORRECTIONS]) });
  } else if (!scorer.needs.includes('model')) {
    Object.assign(input, { model: { lossesAfterSteps: undeclared('optimizer steps on the model', 'model') } });
  }
  const byId = new Map(CORRECTIONS.map((c) => [c.id, c]));
  if (needs.has('corrections')) {
    Object.assign(input, { testCorrections: test.map((s) => byId.get(s.id) as TextSample) });
  } else if (!scorer.needs.includes('corrections')) {
    Object.defineProperty(input, 'testCorrections', {
      enumerable: true,
      get() {
        throw new DdaError(`conformance: scorer '${scorer.id}' read the test corrections but does not declare the need 'corrections'`, "add 'corrections' to its needs");
      },
    });
  }
  return input;
}

/** A seeded permutation that moves every element (for n ≥ 2). */
function derange<T>(items: readonly T[], seed: number): T[] {
  const rng = new SeededRandom(seed);
  for (;;) {
    const out = rng.shuffle(items);
    if (items.length < 2 || out.every((x, k) => x !== items[k])) return out;
  }
}

/**
 * Runs every scorer check on `subject`: a registered scorer id (its registry entry's factory and
 * plugin), or `{ id, plugin, create }`. The factory gets `{ ...options.options, seed: 7 }`.
 *
 * @returns The report; use {@link assertConformance} to throw on failures, or the vitest wrapper
 *   `scorerConformance` of `@dda/conformance/vitest`.
 * @throws DdaError for an unknown id, or an opt-out of an unknown check or without a reason.
 */
export async function checkScorer(subject: string | Subject<Scorer>, options: CheckOptions<ScorerCheck> = {}): Promise<ConformanceReport> {
  const s = toSubject(subject, scorers);
  validateOptOuts('scorer', s.id, SCORER_CHECKS, options.optOut);
  const tolerance = options.tolerance ?? 1e-6;
  const make = async (): Promise<Scorer> => await s.create({ ...options.options, seed: CONFORMANCE_SEED });
  // The reference run, shared by several checks (its failure is reported by each of them).
  let scorer: Scorer | undefined;
  let reference: ScoreMatrix | undefined;
  let referenceError: unknown;
  try {
    scorer = await make();
    reference = await scorer.score(inputFor(scorer));
  } catch (e) {
    referenceError = e;
  }
  const ref = (): { scorer: Scorer; matrix: ScoreMatrix } => {
    if (referenceError !== undefined || !scorer || !reference) throw referenceError ?? new DdaError('the scorer returned nothing');
    const problem = shapeProblem(reference, TRAIN.map((x) => x.id), TEST.map((x) => x.id));
    if (problem) throw new DdaError(`on the task's input the score matrix is malformed: ${problem}`);
    return { scorer, matrix: reference };
  };
  const findings: Finding[] = await runChecks(SCORER_CHECKS, async (check) => {
    switch (check) {
      case 'shape-and-ids': {
        const made = scorer ?? (await make());
        if (made.id !== s.id) return fail(`the scorer made for '${s.id}' says its id is '${made.id}'`);
        if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(made.id)) return fail(`id '${made.id}' is not kebab-case`);
        if (typeof made.description !== 'string' || made.description.trim() === '') return fail('the description is empty; say what the score is, its sign and units');
        const unknown = made.needs.filter((n) => !KNOWN_NEEDS.includes(n));
        if (unknown.length > 0) return fail(`unknown needs [${unknown.join(', ')}]; the needs are ${KNOWN_NEEDS.join(', ')}`);
        const { matrix } = ref();
        return pass(`${matrix.trainIds.length} × ${matrix.testIds.length} scores with the input's ids in order; needs [${made.needs.join(', ')}]`);
      }
      case 'training-order':
      case 'test-order': {
        const { scorer: sc, matrix } = ref();
        const training = check === 'training-order';
        const train = training ? derange(TRAIN, 11) : TRAIN;
        const test = training ? TEST : derange(TEST, 12);
        const what = training ? 'training samples when the training set' : 'test outputs when the test set';
        const m = await sc.score(inputFor(sc, { train, test }));
        const problem = shapeProblem(m, train.map((x) => x.id), test.map((x) => x.id));
        if (problem) return fail(`with the ${training ? 'training' : 'test'} set shuffled, ${problem}`);
        const diff = differenceByIds(matrix, m, tolerance);
        return diff ? fail(`the scores do not move with their ${what} is shuffled: ${diff}`) : pass(`scores follow their ${what} is shuffled`);
      }
      case 'determinism': {
        const { scorer: sc, matrix } = ref();
        const again = await sc.score(inputFor(sc));
        if (!identical(matrix, again)) return fail('the same scorer gave different scores on the same input (keep no state between calls, draw randomness from the seed)');
        const other = await make();
        const third = await other.score(inputFor(other));
        if (!identical(matrix, third)) return fail(`two scorers made with the same seed (${CONFORMANCE_SEED}) gave different scores`);
        return pass(`bit-identical scores from the same seed (${CONFORMANCE_SEED}), across calls and instances`);
      }
      case 'finite': {
        const bad = nonFinite(ref().matrix);
        return bad ? fail(`a non-finite score: ${bad}`) : pass('every score is finite');
      }
      case 'float-range': {
        const { scorer: sc } = ref();
        if (!sc.needs.includes('gradients') && !sc.needs.includes('representations')) return notApplicable('uses neither gradients nor representations');
        const bad: string[] = [];
        for (const magnitude of MAGNITUDES) {
          const what = magnitude === 'mixed' ? 'rows scaled to 2^127 and to 2^-126 in turn' : `every row scaled to ${magnitude === 'huge' ? '2^127' : '2^-126'}`;
          try {
            const m = await sc.score(inputFor(sc, { magnitude }));
            const problem = shapeProblem(m, TRAIN.map((x) => x.id), TEST.map((x) => x.id)) ?? nonFinite(m);
            if (problem) bad.push(`with ${what}: ${problem}`);
          } catch (e) {
            // A refusal is allowed only when it says the result is not representable.
            if (!(e instanceof DdaError && /not representable/i.test(e.message))) bad.push(`with ${what} it threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
          }
        }
        return bad.length > 0 ? fail(bad.join('; ')) : pass('finite scores with rows scaled to 2^127, to 2^-126 and mixed');
      }
      case 'sign-convention': {
        const { matrix } = ref();
        const n = matrix.testIds.length;
        const problems: string[] = [];
        for (const [testId, copyId] of COPY_OF) {
          const j = matrix.testIds.indexOf(testId);
          const column = matrix.trainIds.map((t, i) => ({ t, v: matrix.values[i * n + j] as number }));
          const copy = column.find((c) => c.t === copyId) as { t: string; v: number };
          const above = column.filter((c) => c.t !== copyId && c.v >= copy.v);
          if (above.length > 0) {
            const top = column.reduce((a, b) => (b.v > a.v ? b : a));
            problems.push(`for test '${testId}' its verbatim copy '${copyId}' (score ${copy.v.toPrecision(4)}) ranks ${above.length + 1} of ${column.length}${top.t !== copyId ? `, below '${top.t}' (${top.v.toPrecision(4)})` : ' (tied)'}`);
          }
        }
        return problems.length > 0
          ? fail(`a training sample identical to the test output must rank first (higher = more responsible), but ${problems.join('; ')}`)
          : pass(`the verbatim copy of each of the ${COPY_OF.size} test outputs ranks first`);
      }
      case 'missing-need': {
        const { scorer: sc } = ref();
        const optional = sc.needs.filter((x) => NEED_WORDS[x] !== undefined);
        if (optional.length === 0) return notApplicable(`declares [${sc.needs.join(', ')}], which every ScoringInput has`);
        const bad: string[] = [];
        for (const need of optional) {
          const err = await sc.score(inputFor(sc, { without: need })).then(() => undefined, (e: unknown) => e ?? new Error('rejected with nothing'));
          if (err === undefined) bad.push(`without '${need}' it returned scores instead of an error`);
          else if (!(err instanceof Error) || err.name === 'TypeError') bad.push(`without '${need}' it threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} (say what is missing instead)`);
          else if (!(NEED_WORDS[need] as RegExp).test(err.message)) bad.push(`without '${need}' its error does not say what is missing: ${err.message}`);
        }
        return bad.length > 0 ? fail(bad.join('; ')) : pass(`a clear error when ${optional.map((x) => `'${x}'`).join(', ')} is missing`);
      }
      case 'gradient-blocks': {
        const { scorer: sc, matrix } = ref();
        if (!sc.needs.includes('gradients')) return notApplicable('does not use gradients');
        const m = await sc.score(inputFor(sc, { blockRows: 3 }));
        const problem = shapeProblem(m, TRAIN.map((x) => x.id), TEST.map((x) => x.id));
        if (problem) return fail(`with the training gradients offered in blocks, ${problem}`);
        const diff = differenceByIds(matrix, m, tolerance);
        return diff ? fail(`the scores change when the training gradients are also offered in blocks of 3 rows: ${diff}`) : pass('the same scores with the training gradients offered in blocks');
      }
      case 'row-separable': {
        const { scorer: sc, matrix } = ref();
        if (!sc.rowSeparable) return notApplicable('does not declare rowSeparable (it is scored on the whole training set at once)');
        const values: number[] = [];
        const ids: string[] = [];
        for (const block of [TRAIN.slice(0, 4), TRAIN.slice(4, 7), TRAIN.slice(7)]) {
          const m = await sc.score(inputFor(sc, { train: block }));
          const problem = shapeProblem(m, block.map((x) => x.id), TEST.map((x) => x.id));
          if (problem) return fail(`scoring the training block [${block.map((x) => x.id).join(', ')}] alone: ${problem}`);
          ids.push(...m.trainIds);
          values.push(...m.values);
        }
        const joined = { ...matrix, trainIds: ids, values: Float64Array.from(values) };
        const diff = differenceByIds(matrix, joined, tolerance);
        return diff ? fail(`it declares rowSeparable, but scoring blocks of the training set on their own gives other scores: ${diff}`) : pass('blocks of the training set scored on their own give the same rows');
      }
      case 'block-summaries': {
        const { scorer: sc, matrix } = ref();
        const bs = sc.blockSummaries;
        if (!bs) return notApplicable('declares no blockSummaries (no streaming form over summaries of training blocks)');
        if (sc.rowSeparable) return fail('declares both rowSeparable and blockSummaries: a harness streams a row-separable scorer by its blocks of scores, so declare one of them');
        const test = gradientsOf(TEST);
        const ids = TRAIN.map((x) => x.id);
        const summaries: Float64Array[] = [];
        for (const block of [TRAIN.slice(0, 4), TRAIN.slice(4, 7), TRAIN.slice(7)]) summaries.push(await bs.summarize(gradientsOf(block), test));
        const m = await bs.combine(summaries, ids, test, CHECKPOINT);
        const problem = shapeProblem(m, ids, TEST.map((x) => x.id));
        if (problem) return fail(`combining the summaries of 3 training blocks: ${problem}`);
        const diff = differenceByIds(matrix, m, tolerance);
        if (diff) return fail(`combining the summaries of 3 training blocks gives other scores than scoring the whole set: ${diff}`);
        const short = await bs.combine(summaries.slice(0, -1), ids, test, CHECKPOINT).then(() => null, (e: unknown) => e);
        if (!(short instanceof DdaError)) return fail(`combining the summaries of 2 of the 3 blocks for all ${ids.length} training samples ${short ? `threw a ${(short as Error).name}, not a DdaError` : 'was not refused'}`);
        return pass(`summaries of 3 training blocks combined give the whole set's scores (${bs.description})`);
      }
      case 'streamed-fit': {
        const { scorer: sc, matrix } = ref();
        const sf = sc.streamedFit;
        if (!sf) return notApplicable('declares no streamedFit (no two-pass streamed form)');
        if (sc.rowSeparable || sc.blockSummaries) return fail(`declares streamedFit and ${sc.rowSeparable ? 'rowSeparable' : 'blockSummaries'}: a harness streams by one form, so declare one of them`);
        if (!Number.isInteger(sf.fitPasses) || sf.fitPasses < 1) return fail(`fitPasses must be a positive integer, got ${sf.fitPasses}`);
        const test = gradientsOf(TEST);
        const refusal = sf.refuse?.(test.dim, TRAIN.length, TEST.length);
        if (refusal) return notApplicable(`its streamed fit refuses the conformance task's sizes: ${refusal}`);
        for (const split of [[4, 7], [1, 9]]) {
          const blocks = [TRAIN.slice(0, split[0]), TRAIN.slice(split[0], split[1]), TRAIN.slice(split[1])];
          const what = `folding the training blocks of ${blocks.map((b) => b.length).join(', ')} rows in ${sf.fitPasses} fit pass${sf.fitPasses > 1 ? 'es' : ''} and scoring them against the fit`;
          const m = await scoreByStreamedFit(sf, blocks.map((b) => gradientsOf(b)), test, CHECKPOINT, sc.id);
          const problem = shapeProblem(m, TRAIN.map((x) => x.id), TEST.map((x) => x.id));
          if (problem) return fail(`${what}: ${problem}`);
          const diff = differenceByIds(matrix, m, tolerance);
          if (diff) return fail(`${what} gives other scores than scoring the whole set: ${diff}`);
        }
        return pass(`3 training blocks folded in ${sf.fitPasses} fit pass${sf.fitPasses > 1 ? 'es' : ''} and scored against the fit give the whole set's scores, for two splits (${sf.description})`);
      }
    }
  }, options.optOut);
  return { kind: 'scorer', id: s.id, plugin: s.plugin, findings };
}
