import {
  DdaError, type CheckpointInfo, type GradientMatrix, type ScoreMatrix, type ScoringInput, type TextSample,
  averageEvaluations, debiasers, denoisers, evaluateSources, scorers, type SourceEvaluation,
} from '@dda/core';
import { scoreForFineTuned } from '@dda/core';
import {
  DEFAULT_LORA, DecoderModel, TINY_PRESETS, WordTokenizer, applyChatTemplate, initDecoderWeights, readSafetensors,
  startTfjsBackend, writeSafetensors, type DecoderConfig, type TensorMap,
} from '@dda/model';
import {
  SYSTEM_PROMPT, buildHallucinationDataset, containsWholeWord, replaceWholeWord, userPrompt,
  type HallucinationDataset,
} from '@dda/dataset-hallucination';
import '@dda/scorer-grad-dot';
import '@dda/scorer-bm25';
import '@dda/scorer-random';
import '@dda/scorer-influence';
import '@dda/scorer-trak';
import '@dda/scorer-rep-sim';
import '@dda/scorer-cea';
import '@dda/plugin-dda';
import { ArtifactStore, hashOf } from './artifacts.js';

/** Everything that defines a DDA demo run. Same options + same seed = same scores. */
export interface DdaRunOptions {
  readonly seed: number;
  /** Folder for checkpoints, gradients, scores and reports (reused across runs when inputs match). */
  readonly outDir: string;
  readonly preset: string;
  readonly nTrain: number;
  readonly nHeldOut: number;
  readonly nPretrain: number;
  readonly pretrainEpochs: number;
  readonly pretrainLearningRate: number;
  readonly finetuneEpochs: number;
  readonly finetuneLearningRate: number;
  readonly batchSize: number;
  readonly loraRank: number;
  /** Scorer id (registered in @dda/core's `scorers`). */
  readonly scorer: string;
  /** β of the debias term. */
  readonly beta: number;
  /** Debiaser id for the `debias` and `dda` rows (default `raw`, the paper's formula). */
  readonly debiaser: string;
  /** Denoiser id for the `denoise` and `dda` rows (default `mean`, the paper's average). */
  readonly denoiser: string;
  /** k of recall@k. */
  readonly k: number;
  /** Most tokens generated per held-out document. */
  readonly maxNewTokens: number;
  /** tfjs backends to try in order (default: by priority). */
  readonly backends?: readonly string[];
}

export const DEFAULT_RUN_OPTIONS: DdaRunOptions = {
  seed: 0,
  outDir: 'dda-out',
  preset: 'llama2-tiny',
  nTrain: 240,
  nHeldOut: 40,
  nPretrain: 1500,
  pretrainEpochs: 3,
  pretrainLearningRate: 3e-3,
  finetuneEpochs: 3,
  finetuneLearningRate: 3e-3,
  batchSize: 16,
  loraRank: 8,
  scorer: 'grad-dot',
  beta: 1,
  debiaser: 'raw',
  denoiser: 'mean',
  k: 20,
  maxNewTokens: 24,
};

/** One test error z_e: the fine-tuned model's own output that contains a canary's replacement. */
export interface TestError {
  readonly id: string;
  readonly canaryId: string;
  readonly heldOutId: string;
  readonly prompt: string;
  /** The erroneous generation. */
  readonly output: string;
  /** The same output with the replacement swapped back to the original entity. */
  readonly corrected: string;
}

/** One row of the result table: a variant of the attribution (plain, debias, denoise, dda) on one source. */
export interface ResultRow extends SourceEvaluation {
  readonly variant: string;
  readonly scorer: string;
  readonly description: string;
}

export interface DdaRunResult {
  readonly options: DdaRunOptions;
  readonly backend: string;
  readonly dataset: { readonly nTrain: number; readonly nHeldOut: number; readonly sources: Record<string, number> };
  readonly errors: readonly TestError[];
  readonly rows: readonly ResultRow[];
  /** Final scores of every variant (n_train × n_test). */
  readonly scores: ReadonlyMap<string, ScoreMatrix>;
  /** Mean training loss per fine-tuning epoch. */
  readonly finetuneLosses: readonly number[];
  /** Mean |score| of the base (θ0) and final-checkpoint matrices: the scale mismatch raw debias suffers from. */
  readonly scoreScale: { readonly base: number; readonly final: number };
  /** Steps that were loaded from earlier runs instead of recomputed. */
  readonly reused: readonly string[];
  readonly seconds: Record<string, number>;
}

/** Training samples in the instruction format of METHOD.md, through the model's chat template. */
export function instructionSample(id: string, document: string, response: string): TextSample {
  return { id, prompt: applyChatTemplate(SYSTEM_PROMPT, userPrompt(document)), response };
}

function tensorsToFiles(name: string, t: TensorMap, meta: Record<string, string> = {}): Map<string, Uint8Array> {
  return new Map([[name, writeSafetensors(t, meta)]]);
}
function need(files: Map<string, Uint8Array>, name: string): Uint8Array {
  const b = files.get(name);
  if (!b) throw new DdaError(`artifact file '${name}' missing`);
  return b;
}

function gradientsToFiles(g: GradientMatrix): Map<string, Uint8Array> {
  const data = new Float32Array(g.rows.length * g.dim);
  g.rows.forEach((r, i) => data.set(r, i * g.dim));
  const meta = { ids: JSON.stringify(g.ids), parameterNames: JSON.stringify(g.parameterNames), parameterSizes: JSON.stringify(g.parameterSizes), checkpoint: g.checkpoint,
    ...(g.parameterShapes ? { parameterShapes: JSON.stringify(g.parameterShapes) } : {}) };
  return tensorsToFiles('gradients.safetensors', new Map([['gradients', { shape: [g.rows.length, g.dim], data }]]), meta);
}
function gradientsFromFiles(files: Map<string, Uint8Array>): GradientMatrix {
  const { tensors, metadata } = readSafetensors(need(files, 'gradients.safetensors'), 'gradients.safetensors');
  const t = tensors.get('gradients');
  if (!t) throw new DdaError('gradients artifact has no tensor');
  const [n, dim] = t.shape as [number, number];
  const rows = Array.from({ length: n }, (_, i) => t.data.slice(i * dim, (i + 1) * dim));
  return {
    ids: JSON.parse(metadata.ids ?? '[]') as string[], dim, rows,
    parameterNames: JSON.parse(metadata.parameterNames ?? '[]') as string[],
    parameterSizes: JSON.parse(metadata.parameterSizes ?? '[]') as number[],
    ...(metadata.parameterShapes ? { parameterShapes: JSON.parse(metadata.parameterShapes) as number[][] } : {}),
    checkpoint: metadata.checkpoint ?? '?',
  };
}

/** Logger with elapsed time. */
export type Log = (line: string) => void;

/**
 * The whole DDA job, end to end, on a synthetic hallucination-tracing set:
 * dataset → pretrain θ0 → LoRA fine-tune (checkpoint per epoch) → test errors (greedy generations
 * containing a canary's replacement) → per-example gradients at θ0 and every epoch → scores →
 * debias / denoise / DDA → ROC-AUC and recall@k per source.
 */
export async function runDda(partial: Partial<DdaRunOptions> = {}, log: Log = () => {}): Promise<DdaRunResult> {
  const o: DdaRunOptions = { ...DEFAULT_RUN_OPTIONS, ...partial };
  const preset = TINY_PRESETS[o.preset];
  if (!preset) throw new DdaError(`unknown model preset '${o.preset}'`, `choose one of: ${Object.keys(TINY_PRESETS).join(', ')}`);
  const seconds: Record<string, number> = {};
  const reused: string[] = [];
  const t0 = Date.now();
  let tStep = t0;
  const lap = (name: string): void => {
    const now = Date.now();
    seconds[name] = (now - tStep) / 1000;
    tStep = now;
  };

  // Resolve the plugins first, so that a wrong id fails before minutes of training.
  const scorer = await scorers.create(o.scorer, {});
  const rawDebias = await debiasers.create(o.debiaser, { beta: o.beta });
  const zDebias = await debiasers.create('zscore', { beta: o.beta });
  const mean = await denoisers.create(o.denoiser, {});
  const backend = await startTfjsBackend(o.backends, log);
  log(`backend: ${backend.id} (${backend.device})`);

  // 1. Data set.
  const ds: HallucinationDataset = buildHallucinationDataset({ seed: o.seed, nTrain: o.nTrain, nHeldOut: o.nHeldOut, nPretrain: o.nPretrain });
  const train = ds.train.map((s) => instructionSample(s.id, s.document, s.summary));
  const dataHash = hashOf({ pretrain: ds.pretrainCorpus, train: ds.train, heldOut: ds.heldOut, canaries: ds.canaries });
  const sources: Record<string, number> = {};
  for (const c of ds.canaries) sources[c.id] = (ds.labels[c.id] ?? new Uint8Array()).reduce((a, b) => a + b, 0);
  log(`data: ${ds.train.length} training samples, ${ds.heldOut.length} held-out documents, ${ds.pretrainCorpus.length} pretraining texts; true sources ${JSON.stringify(sources)}`);
  lap('dataset');

  // 2. Tokenizer and model.
  const tokenizer = WordTokenizer.fromCorpus([
    ...ds.pretrainCorpus, ...train.flatMap((s) => [s.prompt, s.response]),
    ...ds.heldOut.map((h) => instructionSample(h.id, h.document, h.summary)).flatMap((s) => [s.prompt, s.response]),
  ]);
  const config: DecoderConfig = { ...preset, vocabSize: tokenizer.size };
  const store = new ArtifactStore(o.outDir);
  const model = new DecoderModel(config, tokenizer, initDecoderWeights(config, o.seed));
  try {
    const baseKey = { step: 'pretrain', dataHash, config, seed: o.seed, epochs: o.pretrainEpochs, lr: o.pretrainLearningRate, batch: o.batchSize, vocab: hashOf(tokenizer.vocab) };
    const base = await store.getOrCompute('checkpoints/base', baseKey, async () => {
      log(`pretraining θ0 (${o.pretrainEpochs} epochs over ${ds.pretrainCorpus.length} texts, all parameters)`);
      const pre = ds.pretrainCorpus.map((text, i) => ({ id: `pre-${i}`, prompt: '', response: text }));
      await model.train(pre, {
        epochs: o.pretrainEpochs, learningRate: o.pretrainLearningRate, batchSize: o.batchSize, seed: o.seed, parameters: 'all',
        onEpochEnd: (e, l) => log(`  pretrain epoch ${e}: loss ${l.toFixed(3)} nats/token`),
      });
      return new Map([
        ['model.safetensors', writeSafetensors(model.baseWeights(), { format: 'pt' })],
        ['config.json', new TextEncoder().encode(JSON.stringify(config, null, 2))],
        ['tokenizer.json', new TextEncoder().encode(JSON.stringify(tokenizer.toJSON()))],
      ]);
    });
    if (base.reused) {
      reused.push('checkpoints/base');
      model.setBaseWeights(readSafetensors(need(base.files, 'model.safetensors'), 'checkpoints/base/model.safetensors').tensors);
      log('pretrained θ0 loaded from an earlier run');
    }
    lap('pretrain');

    // 3. LoRA fine-tuning, one checkpoint per epoch.
    const lora = { ...DEFAULT_LORA, rank: o.loraRank, alpha: 2 * o.loraRank };
    model.addLora(lora, o.seed + 1);
    const initialAdapter = model.loraWeights();
    const ftKey = { step: 'finetune', base: baseKey, lora, seed: o.seed, epochs: o.finetuneEpochs, lr: o.finetuneLearningRate, batch: o.batchSize };
    const epochAdapters: TensorMap[] = [];
    const finetuneLosses: number[] = [];
    const ft = await store.getOrCompute('checkpoints/finetune', ftKey, async () => {
      log(`fine-tuning LoRA (rank ${lora.rank}) for ${o.finetuneEpochs} epochs on ${train.length} samples`);
      const files = new Map<string, Uint8Array>();
      await model.train(train, {
        epochs: o.finetuneEpochs, learningRate: o.finetuneLearningRate, batchSize: o.batchSize, seed: o.seed + 2, parameters: 'lora',
        onEpochEnd: (e, l) => {
          log(`  fine-tune epoch ${e}: loss ${l.toFixed(3)} nats/token`);
          finetuneLosses.push(l);
          files.set(`epoch-${e}/adapter_model.safetensors`, writeSafetensors(model.loraWeights(), { format: 'pt', loss: String(l) }));
        },
      });
      files.set('adapter_config.json', new TextEncoder().encode(JSON.stringify({ peft_type: 'LORA', r: lora.rank, lora_alpha: lora.alpha, target_modules: lora.targets }, null, 2)));
      return files;
    });
    for (let e = 1; e <= o.finetuneEpochs; e++) {
      const st = readSafetensors(need(ft.files, `epoch-${e}/adapter_model.safetensors`), `epoch-${e}/adapter_model.safetensors`);
      epochAdapters.push(st.tensors);
      if (ft.reused) finetuneLosses.push(Number(st.metadata.loss));
    }
    if (ft.reused) reused.push('checkpoints/finetune');
    lap('finetune');

    // 4. Test errors: the fine-tuned model's own greedy generations.
    model.setLora(lora, epochAdapters[epochAdapters.length - 1] as TensorMap);
    const errors: TestError[] = [];
    for (const h of ds.heldOut) {
      for (const c of ds.canaries) {
        if (!containsWholeWord(h.document, c.orig) || containsWholeWord(h.document, c.replacement)) continue;
        const prompt = instructionSample(h.id, h.document, h.summary).prompt;
        const output = model.generate(prompt, o.maxNewTokens);
        if (containsWholeWord(output, c.replacement) && !containsWholeWord(h.summary, c.replacement)) {
          errors.push({ id: `err-${h.id}-${c.id}`, canaryId: c.id, heldOutId: h.id, prompt, output, corrected: replaceWholeWord(output, c.replacement, c.orig) });
        }
      }
    }
    const perSource = new Map(ds.canaries.map((c) => [c.id, errors.filter((e) => e.canaryId === c.id).map((e) => e.id)]));
    log(`test errors: ${errors.length} (${[...perSource].map(([c, ids]) => `${c}: ${ids.length}`).join(', ')})`);
    lap('generate');
    const evaluated = ds.canaries.filter((c) => (perSource.get(c.id) ?? []).length > 0);
    if (evaluated.length === 0) {
      throw new DdaError('the fine-tuned model produced no test errors (no generation contains a canary replacement)', 'train longer (--finetune-epochs), raise the learning rate, or use more training samples');
    }
    const test: TextSample[] = errors.map((e) => ({ id: e.id, prompt: e.prompt, response: e.output }));

    // 5. Per-example gradients and scores at θ0 and at every epoch checkpoint.
    const checkpoints: { id: string; adapter: TensorMap }[] = [
      { id: 'base', adapter: initialAdapter },
      ...epochAdapters.map((a, i) => ({ id: `epoch-${i + 1}`, adapter: a })),
    ];
    const scoreAt = new Map<string, ScoreMatrix>();
    for (const cp of checkpoints) {
      model.setLora(lora, cp.adapter);
      const grads = async (which: 'train' | 'test', samples: readonly TextSample[]): Promise<GradientMatrix> => {
        const key = { step: 'gradients', which, checkpoint: cp.id, ft: ftKey, samples: hashOf(samples) };
        const r = await store.getOrCompute(`gradients/${cp.id}/${which}`, key, () => {
          log(`  gradients of ${samples.length} ${which} samples at ${cp.id}`);
          return gradientsToFiles(model.perExampleGradients(samples, 'lora', cp.id));
        });
        if (r.reused) reused.push(`gradients/${cp.id}/${which}`);
        return gradientsFromFiles(r.files);
      };
      const input: ScoringInput = {
        checkpoint: cp.id, train, test,
        trainGradients: () => grads('train', train),
        testGradients: () => grads('test', test),
        trainRepresentations: async () => ({ ids: train.map((s) => s.id), dim: config.hiddenSize, rows: model.responseRepresentations(train), checkpoint: cp.id }),
        testRepresentations: async () => ({ ids: test.map((s) => s.id), dim: config.hiddenSize, rows: model.responseRepresentations(test), checkpoint: cp.id }),
        // For contrastive scorers (cea): the corrected outputs, and optimizer steps from this checkpoint (adapter restored after).
        testCorrections: errors.map((e) => ({ id: e.id, prompt: e.prompt, response: e.corrected })),
        model: { lossesAfterSteps: (updateOn, evaluate, opts) => model.lossesAfterLoraSteps(updateOn, evaluate, opts) },
      };
      scoreAt.set(cp.id, await scorer.score(input));
    }
    lap('gradients+scores');

    // 6. Debias and denoise.
    const baseScores = scoreAt.get('base') as ScoreMatrix;
    const epochScores = checkpoints.slice(1).map((c) => scoreAt.get(c.id) as ScoreMatrix);
    const infos: CheckpointInfo[] = checkpoints.slice(1).map((c, i) => ({ id: c.id, epoch: i + 1, learningRate: o.finetuneLearningRate }));
    // A scorer may declare that its answer is combined over the epoch checkpoints (e.g. tracin-cp); else the final checkpoint.
    const final = await scoreForFineTuned(scorer, epochScores, infos);
    const denoised = mean.denoise(epochScores, infos);
    // A scorer that does not use the model (bm25, random) gives the same scores at every checkpoint:
    // debias and denoise do not apply to it (its differences would be rounding noise), so it gets the plain row only.
    const modelFree = !scorer.needs.includes('gradients') && !scorer.needs.includes('representations') && !scorer.needs.includes('model');
    const allVariants: [string, string, ScoreMatrix][] = [
      ['plain', scorer.combine ? `${o.scorer} combined over the ${epochScores.length} epoch checkpoints by denoiser '${scorer.combine.denoiser}'` : `${o.scorer} at the final checkpoint (epoch ${o.finetuneEpochs})`, final],
      ['debias', `debiaser '${o.debiaser}' (β=${o.beta}): final vs base`, rawDebias.debias(final, baseScores)],
      ['denoise', `denoiser '${o.denoiser}' over the ${epochScores.length} epoch checkpoints`, denoised],
      ['dda', `debiaser '${o.debiaser}' (β=${o.beta}) over denoiser '${o.denoiser}'`, rawDebias.debias(denoised, baseScores)],
      ['debias-zscore', `z-scored final − β·z-scored base (per test output)`, zDebias.debias(final, baseScores)],
      ['dda-zscore', `z-scored mean over epochs − β·z-scored base`, zDebias.debias(denoised, baseScores)],
    ];
    const variants = modelFree ? allVariants.slice(0, 1) : allVariants;
    if (modelFree) log(`scorer '${o.scorer}' does not use the model: debias and denoise do not apply, reporting the plain row only`);
    const rows: ResultRow[] = [];
    const scores = new Map<string, ScoreMatrix>();
    for (const [variant, description, m] of variants) {
      scores.set(variant, m);
      const evals = evaluateSources(m, evaluated.map((c) => ({ id: c.id, testIds: perSource.get(c.id) ?? [], labels: ds.labels[c.id] as Uint8Array })), o.k);
      for (const e of [...evals, averageEvaluations(evals)]) rows.push({ ...e, variant, scorer: o.scorer, description });
    }
    lap('metrics');
    seconds.total = (Date.now() - t0) / 1000;
    const meanAbs = (m: ScoreMatrix): number => m.values.reduce((a, b) => a + Math.abs(b), 0) / Math.max(m.values.length, 1);
    const scoreScale = { base: meanAbs(baseScores), final: meanAbs(final) };
    log(`mean |score|: base ${scoreScale.base.toExponential(3)}, final ${scoreScale.final.toExponential(3)} (ratio ${(scoreScale.base / scoreScale.final).toFixed(2)})`);
    return {
      options: o, backend: backend.id,
      dataset: { nTrain: ds.train.length, nHeldOut: ds.heldOut.length, sources },
      errors, rows, scores, finetuneLosses, scoreScale, reused, seconds,
    };
  } finally {
    model.dispose();
  }
}
