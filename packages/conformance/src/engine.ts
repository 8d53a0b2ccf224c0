/**
 * The engine checks: the contract every engine of @dda/model's `engines` registry must honour
 * (issue 25), on tiny decoders of the families (random weights, LoRA adapters with B ≠ 0), and,
 * when given, against an independent reference (PyTorch float64 fixtures).
 */
import { DdaError, SeededRandom } from '@dda/core';
import {
  SPECIAL_TOKENS, TINY_PRESETS, WordTokenizer, engines, float32ToBf16Bits, float32ToF16Bits, initDecoderWeights, initLoraWeights, widenBaseWeights,
  type BaseWeightMap, type DecoderConfig, type DecoderEngine, type EncodedExample, type EngineDecoder, type EngineOptimizerState, type EngineStartOptions, type EngineWeights, type LoraConfig, type TensorMap, type TrainingPosition,
} from '@dda/model';
import { fail, notApplicable, pass, runChecks, validateOptOuts, type CheckOptions, type ConformanceReport, type Finding } from './report.js';

/**
 * The engine checks, in the order they run (each on every preset of the options unless said):
 * - `reference`: logits (1e-4 of the largest), losses (1e-5 relative) and per-example gradient rows
 *   (1e-4 of each tensor's largest entry, or of its largest sampled entry where the reference gives
 *   `gradIndices`) equal independent references' (`options.references`; not applicable without one);
 * - `loss-from-logits`: `loss(e)` is the mean over the loss mask of −log softmax(logits)[next token]
 *   computed in float64 from `logits` (1e-5 relative);
 * - `hidden-states`: `hiddenStates` is [T × hidden] and the logits are the hidden states times the
 *   output matrix (lm_head, or the embeddings when tied; 1e-4 of the largest logit);
 * - `gradient`: each gradient row's product with a unit direction v (along the row plus a seeded
 *   random part) equals the central difference (loss(θ + εv) − loss(θ − εv)) / 2ε, ε = 0.01
 *   (2 % relative, float32), through
 *   `setWeights`; the layout names every trainable tensor once with its size;
 * - `row-independence`: every example's row is delivered once, and equals its row computed alone
 *   (1e-6 relative);
 * - `restore`: moving the adapter away and back with `setWeights` gives bit-identical logits;
 * - `training`: two decoders trained from the same weights with the same seed end with bit-identical
 *   weights and epoch losses, the loss falls, and `weights()` returns the trained adapter;
 * - `generation`: greedy generation equals the argmax of `logits` token by token, stops after
 *   `maxNewTokens`, before `limit`, and at `eosId` (not emitted);
 * - `resume`: an engine that says it is `resumable` continues a training stopped after epoch 1,
 *   and one stopped after the first step of epoch 2 (a new decoder at that position's weights, the
 *   optimizer's state from `onState`, called after every step with `stateEverySeconds: 0`, which
 *   changes nothing), to the weights and epoch losses of an uninterrupted training, bit for bit;
 *   one that is not refuses `resume` (not applicable otherwise);
 * - `narrow-base`: an engine with `openNarrow` gives, at base weights rounded to bfloat16 and to
 *   IEEE half and handed over as those 16-bit patterns, the losses, logits, hidden states and
 *   gradient rows that `open` gives at the same values widened to float32, bit for bit (first three
 *   presets; not applicable without `openNarrow`).
 */
export const ENGINE_CHECKS = ['reference', 'loss-from-logits', 'hidden-states', 'gradient', 'row-independence', 'restore', 'training', 'generation', 'resume', 'narrow-base'] as const;
/** An engine check's name. */
export type EngineCheck = (typeof ENGINE_CHECKS)[number];

/** One example of a reference: token ids, loss mask, and the reference's loss, logits [T·V] and gradient entries by tensor name. */
export interface EngineReferenceExample {
  readonly tokens: readonly number[];
  /** [T − 1]: weight of position t's next-token loss. */
  readonly lossMask: readonly number[];
  /** Mean masked next-token loss, nats per token. */
  readonly loss: number;
  /** [T × vocabSize], row-major. */
  readonly logits: readonly number[];
  /**
   * Gradients of the loss by trainable tensor name (PEFT names), flattened row-major: the whole
   * tensor, or, for a tensor named in {@link gradIndices}, only the entries at those indices.
   */
  readonly grads: Readonly<Record<string, readonly number[]>>;
  /**
   * Optional, for large tensors: `grads[name][j]` is the gradient entry at flat index
   * `gradIndices[name][j]` (a sampled subset, e.g. a few hundred of a real-width LoRA tensor's
   * entries); the check compares those entries, relative to the largest of them.
   */
  readonly gradIndices?: Readonly<Record<string, readonly number[]>>;
}

/** An independent reference (e.g. a PyTorch float64 fixture): a decoder, its weights and expected outputs. */
export interface EngineReference {
  /** What it is, for messages (e.g. `PyTorch float64, make-decoder-fixtures.py`). */
  readonly name: string;
  readonly config: DecoderConfig;
  readonly weights: EngineWeights;
  readonly examples: readonly EngineReferenceExample[];
}

/** Options of {@link checkEngine}. */
export interface EngineCheckOptions extends CheckOptions<EngineCheck> {
  /** The tiny presets to run the checks on (default: all six families). */
  readonly presets?: readonly string[];
  /** Options of the engine's start (e.g. `backends`). */
  readonly start?: EngineStartOptions;
  /** Independent references for the `reference` check (e.g. one PyTorch fixture per family). */
  readonly references?: readonly EngineReference[];
}

/** A tiny decoder of `preset`: 16 wide, 2 layers, 32 word ids, random weights and a rank-2 adapter with B ≠ 0 on every target. */
function tinyCase(preset: string): { config: DecoderConfig; weights: EngineWeights; tokenizer: WordTokenizer } {
  const p = TINY_PRESETS[preset];
  if (!p) throw new DdaError(`conformance: no tiny preset '${preset}'`, `use one of: ${Object.keys(TINY_PRESETS).join(', ')}`);
  const tokenizer = new WordTokenizer([...SPECIAL_TOKENS, ...Array.from({ length: 24 }, (_, i) => `w${i}`)]);
  const heads = p.headDim !== undefined ? { headDim: 8 } : {};
  const config: DecoderConfig = { ...p, ...heads, vocabSize: tokenizer.size, hiddenSize: 16, intermediateSize: 24, numHeads: 2, numKvHeads: p.numKvHeads < p.numHeads ? 1 : 2, maxSeqLen: 64, ...(p.slidingWindow !== null ? { slidingWindow: 6 } : {}) };
  const lora: LoraConfig = { rank: 2, alpha: 4, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] };
  const adapter = initLoraWeights(config, lora, 3);
  for (const [name, t] of adapter) if (name.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.05 * Math.sin(i + 1)));
  const base = initDecoderWeights(config, 11);
  // Gemma norms multiply by 1 + w and start at w = 0: give them values, so that the offset is tested.
  for (const [name, t] of base) if (config.gemmaNorms && name.endsWith('norm.weight')) t.data.forEach((_, i) => (t.data[i] = 0.1 * Math.cos(i)));
  return { config, weights: { base, adapter: { config: lora, weights: adapter } }, tokenizer };
}

/** Seeded examples: BOS, a prompt, a response whose tokens (and the one after the last) are in the loss. */
function examples(vocab: number, seed: number): EncodedExample[] {
  const rng = new SeededRandom(seed);
  return [9, 13, 7].map((T) => {
    const tokens = Int32Array.from({ length: T }, (_, t) => (t === 0 ? 2 : 8 + Math.floor(rng.next() * (vocab - 8))));
    const lossMask = Float32Array.from({ length: T - 1 }, (_, t) => (t >= Math.floor(T / 2) ? 1 : 0));
    return { tokens, lossMask };
  });
}

/** −log softmax(logits[t])[tokens[t+1]] averaged over the loss mask, in float64. */
function lossFromLogits(logits: Float32Array, e: EncodedExample, V: number): number {
  let sum = 0;
  let w = 0;
  for (let t = 0; t + 1 < e.tokens.length; t++) {
    const m = e.lossMask[t] as number;
    if (m === 0) continue;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v] as number);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp((logits[t * V + v] as number) - max);
    sum += m * (max + Math.log(z) - (logits[t * V + (e.tokens[t + 1] as number)] as number));
    w += m;
  }
  return sum / w;
}

const maxAbs = (x: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] as number));
  return m;
};
/** max |a − b| / max |b| (0 when both are zero). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  const s = maxAbs(b);
  return s === 0 ? d : d / s;
}

/** Every row of `encoded`, copied, by index. */
async function rowsOf(d: EngineDecoder, encoded: readonly EncodedExample[]): Promise<{ rows: (Float32Array | undefined)[]; repeats: number }> {
  const rows: (Float32Array | undefined)[] = encoded.map(() => undefined);
  let repeats = 0;
  await d.forEachGradientRow(encoded, (i, row) => {
    if (rows[i] !== undefined) repeats++;
    rows[i] = Float32Array.from(row);
  });
  return { rows, repeats };
}

/** `w` with each tensor moved by `scale` times its slice of `v` (laid out as a gradient row). */
function moved(w: TensorMap, names: readonly string[], sizes: readonly number[], v: Float32Array, scale: number): TensorMap {
  const out: TensorMap = new Map();
  let off = 0;
  names.forEach((n, k) => {
    const t = w.get(n);
    const size = sizes[k] as number;
    if (!t) throw new DdaError(`the gradient layout names '${n}', which is not a trainable tensor`);
    out.set(n, { shape: [...t.shape], data: Float32Array.from(t.data, (x, i) => x + scale * (v[off + i] as number)) });
    off += size;
  });
  return out;
}

/** The engine of a registered id (started with `start`) or the started engine given, with its id and plugin. */
async function startEngine(subject: string | DecoderEngine, start: EngineStartOptions): Promise<{ id: string; plugin: string | undefined; engine: DecoderEngine }> {
  if (typeof subject !== 'string') return { id: subject.id, plugin: undefined, engine: subject };
  const plugin = engines.has(subject) ? engines.entry(subject).plugin : undefined;
  return { id: subject, plugin, engine: (await engines.resolve(start, [subject])).value };
}

/** The `reference` check (see {@link ENGINE_CHECKS}) of a started engine on `refs`, one reference at a time. */
async function referenceFinding(engine: DecoderEngine, refs: readonly EngineReference[]): Promise<Omit<Finding, 'check'>> {
  if (refs.length === 0) return notApplicable('no reference given (options.references)');
  for (const ref of refs) {
    const tok = new WordTokenizer([...SPECIAL_TOKENS, ...Array.from({ length: ref.config.vocabSize - SPECIAL_TOKENS.length }, (_, i) => `r${i}`)]);
    const d = await engine.open(ref.config, tok, ref.weights);
    try {
      const layout = d.gradientLayout();
      for (const [k, ex] of ref.examples.entries()) {
        const e = { tokens: Int32Array.from(ex.tokens), lossMask: Float32Array.from(ex.lossMask) };
        const logitErr = relErr(await d.logits(e.tokens), ex.logits);
        if (!(logitErr < 1e-4)) return fail(`${ref.name}, example ${k}: logits differ from the reference by ${logitErr.toExponential(2)} of the largest (1e-4 allowed)`);
        const loss = await d.loss(e);
        if (!(Math.abs(loss - ex.loss) / ex.loss < 1e-5)) return fail(`${ref.name}, example ${k}: loss ${loss} vs the reference's ${ex.loss}`);
        const [row] = (await rowsOf(d, [e])).rows;
        let off = 0;
        for (const [j, name] of layout.names.entries()) {
          const size = layout.sizes[j] as number;
          const want = ex.grads[name];
          const at = ex.gradIndices?.[name];
          if (want) {
            const ours = (row as Float32Array).subarray(off, off + size);
            const err = relErr(at ? at.map((i) => (i < size ? (ours[i] as number) : NaN)) : ours, want);
            if (!(err < 1e-4)) return fail(`${ref.name}, example ${k}: the gradient of '${name}' differs from the reference's by ${err.toExponential(2)} of its largest ${at ? `sampled entry (${at.length} sampled)` : 'entry'} (1e-4 allowed)`);
          }
          off += size;
        }
        const missing = Object.keys(ex.grads).filter((n) => !layout.names.includes(n));
        if (missing.length) return fail(`the reference has gradients of ${missing.slice(0, 3).join(', ')}, which the engine's gradient rows do not hold`);
      }
    } finally {
      await d.release();
    }
  }
  return pass(`${refs.map((r) => `${r.examples.length} examples of ${r.name}`).join('; ')}: logits, losses and gradient rows within tolerance`);
}

/**
 * The `reference` check alone (see {@link ENGINE_CHECKS}), for references too large to run with
 * every check of {@link checkEngine} (e.g. `realWidthReferences()`): a registered engine id (import
 * its plugin first) or a started {@link DecoderEngine}, started with `start` (e.g. `backends`).
 *
 * @returns a report with the one finding `reference`; it throws only for an engine that does not start.
 */
export async function checkEngineReferences(subject: string | DecoderEngine, references: readonly EngineReference[], start: EngineStartOptions = {}): Promise<ConformanceReport> {
  const { id, plugin, engine } = await startEngine(subject, start);
  const findings = await runChecks(['reference'] as const, () => referenceFinding(engine, references));
  return { kind: 'engine', id, plugin, findings };
}

/**
 * Runs every engine check on a registered engine id (import its plugin first) or a started
 * {@link DecoderEngine}; see {@link ENGINE_CHECKS}.
 *
 * @returns one finding per check; it throws only for bad opt-outs, or an engine that does not start.
 */
export async function checkEngine(subject: string | DecoderEngine, options: EngineCheckOptions = {}): Promise<ConformanceReport> {
  validateOptOuts('engine', typeof subject === 'string' ? subject : subject.id, ENGINE_CHECKS, options.optOut);
  const { id, plugin, engine } = await startEngine(subject, options.start ?? {});
  const presets = options.presets ?? Object.keys(TINY_PRESETS);
  const each = async (f: (preset: string, d: EngineDecoder, c: ReturnType<typeof tinyCase>) => Promise<string | null>, which = presets): Promise<ReturnType<typeof pass>> => {
    for (const preset of which) {
      const c = tinyCase(preset);
      const d = await engine.open(c.config, c.tokenizer, c.weights);
      try {
        const problem = await f(preset, d, c);
        if (problem) return fail(`${preset}: ${problem}`);
      } finally {
        await d.release();
      }
    }
    return pass(`on ${which.join(', ')}`);
  };
  const findings = await runChecks(ENGINE_CHECKS, async (check) => {
    switch (check) {
      case 'reference':
        return referenceFinding(engine, options.references ?? []);
      case 'loss-from-logits':
        return each(async (_p, d, c) => {
          for (const [k, e] of examples(c.config.vocabSize, 1).entries()) {
            const want = lossFromLogits(await d.logits(e.tokens), e, c.config.vocabSize);
            const got = await d.loss(e);
            if (!(Math.abs(got - want) / want < 1e-5)) return `example ${k}: loss ${got}, but its logits give ${want}`;
          }
          return null;
        });
      case 'hidden-states':
        return each(async (_p, d, c) => {
          const e = examples(c.config.vocabSize, 2)[0] as EncodedExample;
          const T = e.tokens.length;
          const H = c.config.hiddenSize;
          const V = c.config.vocabSize;
          const h = await d.hiddenStates(e.tokens);
          if (h.length !== T * H) return `hidden states have ${h.length} values for ${T} tokens × ${H}`;
          const out = c.config.tieWordEmbeddings ? c.weights.base.get('model.embed_tokens.weight') : c.weights.base.get('lm_head.weight');
          if (!out) return 'no output matrix in the weights';
          const logits = await d.logits(e.tokens);
          const want = new Float64Array(T * V);
          for (let t = 0; t < T; t++) for (let v = 0; v < V; v++) {
            let s = 0;
            for (let j = 0; j < H; j++) s += (h[t * H + j] as number) * (out.data[v * H + j] as number);
            want[t * V + v] = s;
          }
          const err = relErr(logits, want);
          return err < 1e-4 ? null : `the logits are not the hidden states times the output matrix (${err.toExponential(2)} of the largest)`;
        });
      case 'gradient':
        return each(async (_p, d, c) => {
          const layout = d.gradientLayout();
          const adapter = (c.weights.adapter as NonNullable<EngineWeights['adapter']>).weights;
          const want = [...adapter.keys()].sort();
          if (JSON.stringify([...layout.names].sort()) !== JSON.stringify(want)) return `the gradient layout names [${layout.names.slice(0, 4).join(', ')}…], not the ${want.length} adapter tensors`;
          const badSize = layout.names.find((n, k) => adapter.get(n)?.data.length !== layout.sizes[k]);
          if (badSize) return `the layout's size of '${badSize}' is not the tensor's`;
          const enc = examples(c.config.vocabSize, 3);
          const { rows } = await rowsOf(d, enc);
          const dim = layout.sizes.reduce((a, b) => a + b, 0);
          const rng = new SeededRandom(5);
          const random = Float32Array.from({ length: dim }, () => rng.next() - 0.5);
          const eps = 1e-2;
          const unit = (x: Float32Array): Float32Array => {
            const n = Math.sqrt(x.reduce((a, b) => a + b * b, 0)) || 1;
            return x.map((y) => y / n);
          };
          for (const [k, e] of enc.entries()) {
            const row = rows[k] as Float32Array;
            // A unit direction along the row plus a seeded random part: a slope far above float32's
            // rounding of the loss, and a wrong row (scale, sign or direction) moves it.
            const [g, r] = [unit(row), unit(random)];
            const v = unit(g.map((x, i) => x + 0.5 * (r[i] as number)));
            let dot = 0;
            for (let i = 0; i < dim; i++) dot += (row[i] as number) * (v[i] as number);
            await d.setWeights({ adapter: moved(adapter, layout.names, layout.sizes, v, eps) });
            const up = await d.loss(e);
            await d.setWeights({ adapter: moved(adapter, layout.names, layout.sizes, v, -eps) });
            const down = await d.loss(e);
            await d.setWeights({ adapter });
            const fd = (up - down) / (2 * eps);
            if (!(Math.abs(fd - dot) <= 0.02 * Math.max(Math.abs(fd), 1e-3))) return `example ${k}: the row's directional derivative is ${dot.toPrecision(6)}, the central difference of the loss ${fd.toPrecision(6)}`;
          }
          return null;
        }, presets.slice(0, 3));
      case 'row-independence':
        return each(async (_p, d, c) => {
          const enc = examples(c.config.vocabSize, 4);
          const { rows, repeats } = await rowsOf(d, enc);
          if (repeats > 0 || rows.some((r) => r === undefined)) return `rows delivered ${repeats} time(s) too often, ${rows.filter((r) => r === undefined).length} missing`;
          for (const [k, e] of enc.entries()) {
            const [alone] = (await rowsOf(d, [e])).rows;
            const err = relErr(rows[k] as Float32Array, alone as Float32Array);
            if (!(err < 1e-6)) return `example ${k}'s row in a batch differs from its row alone by ${err.toExponential(2)}`;
          }
          return null;
        }, presets.slice(0, 2));
      case 'restore':
        return each(async (_p, d, c) => {
          const e = examples(c.config.vocabSize, 5)[1] as EncodedExample;
          const before = await d.logits(e.tokens);
          const adapter = (c.weights.adapter as NonNullable<EngineWeights['adapter']>).weights;
          await d.setWeights({ adapter: new Map([...adapter].map(([n, t]) => [n, { shape: [...t.shape], data: t.data.map((x) => x + 0.1) }])) });
          const away = await d.logits(e.tokens);
          if (relErr(away, before) === 0) return 'moving the adapter did not change the logits';
          await d.setWeights({ adapter });
          const back = await d.logits(e.tokens);
          return back.every((x, i) => x === before[i]) ? null : `logits after moving the adapter back differ by ${relErr(back, before).toExponential(2)}`;
        }, presets.slice(0, 2));
      case 'training':
        return each(async (_p, d, c) => {
          const enc = examples(c.config.vocabSize, 6);
          const o = { epochs: 4, learningRate: 0.05, batchSize: 2, seed: 9 };
          const other = await engine.open(c.config, c.tokenizer, c.weights);
          try {
            const [a, b] = [await d.train(enc, o), await other.train(enc, o)];
            if (JSON.stringify(a) !== JSON.stringify(b)) return `two trainings with seed 9 give epoch losses ${JSON.stringify(a)} and ${JSON.stringify(b)}`;
            if (!((a[3] as number) < (a[0] as number))) return `the loss did not fall over 4 epochs: ${JSON.stringify(a)}`;
            const [wa, wb] = [d.weights().adapter, other.weights().adapter];
            if (!wa || !wb) return 'weights() returned no adapter after training';
            for (const [n, t] of wa.weights) {
              const u = wb.weights.get(n);
              if (!u || !t.data.every((x, i) => x === u.data[i])) return `the trained '${n}' differs between two trainings with the same seed`;
            }
            const start = (c.weights.adapter as NonNullable<EngineWeights['adapter']>).weights;
            if ([...wa.weights].every(([n, t]) => t.data.every((x, i) => x === start.get(n)?.data[i]))) return 'weights() returns the adapter as it was before training';
          } finally {
            await other.release();
          }
          return null;
        }, presets.slice(0, 2));
      case 'generation':
        return each(async (_p, d, c) => {
          const prompt = [2, 9, 10, 11];
          const V = c.config.vocabSize;
          const greedy: number[] = [];
          const ids = [...prompt];
          for (let n = 0; n < 5; n++) {
            const l = await d.logits(Int32Array.from(ids));
            let best = 0;
            for (let v = 1; v < V; v++) if ((l[(ids.length - 1) * V + v] as number) > (l[(ids.length - 1) * V + best] as number)) best = v;
            greedy.push(best);
            ids.push(best);
          }
          const noStop = V + 1;
          const got = await d.generate(prompt, { maxNewTokens: 5, limit: 64, eosId: noStop });
          if (JSON.stringify(got) !== JSON.stringify(greedy)) return `generated ${JSON.stringify(got)}, the argmax of the logits gives ${JSON.stringify(greedy)}`;
          const limited = await d.generate(prompt, { maxNewTokens: 5, limit: prompt.length + 2, eosId: noStop });
          if (JSON.stringify(limited) !== JSON.stringify(greedy.slice(0, 2))) return `with limit ${prompt.length + 2} it generated ${JSON.stringify(limited)}, not the first 2 tokens`;
          const stopped = await d.generate(prompt, { maxNewTokens: 5, limit: 64, eosId: noStop, stopIds: [greedy[2] as number] });
          const firstStop = greedy.indexOf(greedy[2] as number);
          if (JSON.stringify(stopped) !== JSON.stringify(greedy.slice(0, firstStop))) return `with the third token as a stop token it generated ${JSON.stringify(stopped)}`;
          const eos = await d.generate(prompt, { maxNewTokens: 5, limit: 64, eosId: greedy[0] as number });
          return eos.length === 0 ? null : `with the first token as EOS it generated ${JSON.stringify(eos)}`;
        }, presets.slice(0, 3));
      case 'resume': {
        if (!engine.resumable) {
          const c = tinyCase(presets[0] as string);
          const d = await engine.open(c.config, c.tokenizer, c.weights);
          try {
            await d.train(examples(c.config.vocabSize, 8), { epochs: 2, learningRate: 0.05, batchSize: 2, seed: 1, resume: { epoch: 1, optimizer: { arrays: [], numbers: [] } } });
            return fail('the engine says it is not resumable, yet accepted resume');
          } catch (e) {
            if (!(e instanceof DdaError)) throw e;
            return notApplicable(`not resumable, and resume is refused: ${e.message}`);
          } finally {
            await d.release();
          }
        }
        return each(async (_p, d, c) => {
          const enc = examples(c.config.vocabSize, 8);
          const o = { epochs: 3, learningRate: 0.05, batchSize: 2, seed: 11 };
          const whole = await d.train(enc, o);
          const adapterOf = (w: EngineWeights): Map<string, { data: Float32Array }> => new Map(w.adapter?.weights ?? []);
          const differs = (w: EngineWeights): string | null => {
            const b = adapterOf(w);
            for (const [n, t] of adapterOf(d.weights())) {
              const u = b.get(n);
              if (!u || !t.data.every((x: number, i: number) => x === u.data[i])) return n;
            }
            return null;
          };
          // The states after epoch 1 and after the first step of epoch 2 (stateEverySeconds 0: after every step).
          const stops: { position: TrainingPosition; state: EngineOptimizerState; weights: EngineWeights }[] = [];
          const first = await engine.open(c.config, c.tokenizer, c.weights);
          try {
            const losses = await first.train(enc, { ...o, stateEverySeconds: 0, onState: (p, s) => {
              if (p.epoch === 1 && p.step <= 1) stops.push({ position: p, state: s, weights: first.weights() });
            } });
            if (JSON.stringify(losses) !== JSON.stringify(whole)) return `with onState after every step the losses ${JSON.stringify(losses)} are not ${JSON.stringify(whole)}`;
            const n = differs(first.weights());
            if (n) return `with onState after every step, '${n}' differs from the training without it`;
          } finally {
            await first.release();
          }
          const at = (step: number) => stops.find((s) => s.position.step === step);
          for (const stop of [at(0), at(1)]) {
            if (!stop) return `onState was not called after epoch 1 (step 0) and after step 1 of epoch 2 (got ${JSON.stringify(stops.map((s) => s.position))})`;
            const second = await engine.open(c.config, c.tokenizer, stop.weights);
            try {
              const { epoch, step, lossSum } = stop.position;
              const rest = await second.train(enc, { ...o, resume: { epoch, step, lossSum, optimizer: stop.state } });
              if (JSON.stringify(rest) !== JSON.stringify(whole.slice(1))) return `resumed at epoch ${epoch} step ${step}, the epochs' losses ${JSON.stringify(rest)} are not the uninterrupted ${JSON.stringify(whole.slice(1))}`;
              const n = differs(second.weights());
              if (n) return `after resuming at epoch ${epoch} step ${step}, '${n}' differs from the uninterrupted training's`;
            } finally {
              await second.release();
            }
          }
          return null;
        }, presets.slice(0, 2));
      }
      case 'narrow-base': {
        if (!engine.openNarrow) return notApplicable('the engine has no openNarrow: it takes float32 base weights only');
        const which = presets.slice(0, 3);
        for (const preset of which) {
          const c = tinyCase(preset);
          for (const format of ['bf16', 'f16'] as const) {
            const narrow: BaseWeightMap = new Map([...c.weights.base].map(([n, t]) => [n, {
              shape: [...t.shape], format, bits: Uint16Array.from(t.data, (x) => (format === 'bf16' ? float32ToBf16Bits(x) : float32ToF16Bits(x))),
            }]));
            const a = await engine.open(c.config, c.tokenizer, { base: widenBaseWeights(narrow), adapter: c.weights.adapter });
            const b = await engine.openNarrow(c.config, c.tokenizer, { base: narrow, adapter: c.weights.adapter });
            try {
              const same = (x: Float32Array, y: Float32Array): boolean => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
              const enc = examples(c.config.vocabSize, 2);
              for (const [k, e] of enc.entries()) {
                const [la, lb] = [await a.loss(e), await b.loss(e)];
                if (!Object.is(la, lb)) return fail(`${preset}, ${format}: example ${k}'s loss is ${lb} with narrow weights, ${la} with float32`);
                if (!same(await a.logits(e.tokens), await b.logits(e.tokens))) return fail(`${preset}, ${format}: example ${k}'s logits differ from float32's`);
                if (!same(await a.hiddenStates(e.tokens), await b.hiddenStates(e.tokens))) return fail(`${preset}, ${format}: example ${k}'s hidden states differ from float32's`);
              }
              const [ra, rb] = [(await rowsOf(a, enc)).rows, (await rowsOf(b, enc)).rows];
              const bad = ra.findIndex((r, k) => !r || !rb[k] || !same(r, rb[k] as Float32Array));
              if (bad >= 0) return fail(`${preset}, ${format}: example ${bad}'s gradient row differs from float32's`);
            } finally {
              await a.release();
              await b.release();
            }
          }
        }
        return pass(`bf16 and f16 on ${which.join(', ')}`);
      }
    }
  }, options.optOut);
  return { kind: 'engine', id, plugin, findings };
}
