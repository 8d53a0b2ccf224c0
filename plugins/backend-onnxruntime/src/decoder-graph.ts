/**
 * The LLaMA-style decoder of @dda/model (RMSNorm, RoPE, SwiGLU, causal / sliding-window attention,
 * grouped-query attention, optional q/k/v biases, optional per-head q/k RMSNorm and an explicit head
 * size (Qwen3), Gemma-3's layout (GeGLU, (1 + w) norms, four norms per layer, embedding scale,
 * query_pre_attn_scalar, sliding and full layers with their own RoPE), tied embeddings, LoRA on q, k, v, o, gate, up,
 * down) as an ONNX graph: forward (logits, masked mean cross-entropy) and, through
 * {@link GraphBuilder}'s hand-written VJPs, the gradient of that loss with respect to every LoRA
 * tensor. One example per run; the sequence is right-padded to a bucket length, which changes
 * nothing before the padding because attention is causal and padded positions carry no loss.
 * The layers are @dda/model's decoder block (decoderStack), written once for every engine; here
 * its ops emit graph nodes ({@link decoderParameters}), and the full graph and the decode step
 * give it their own embedding lookup, head layout, RoPE tables and attention (with the present
 * keys and values, or the key/value cache).
 */
import {
  DdaError, GELU_TANH_C, attentionMask, attentionScale, layerAttention, ropeCosSin, type GradientMatrix, type LayerAttention, type RopeScaling,
} from '@dda/core';
import {
  decoderStack, EMBED_WEIGHT, headDim, linearShape, targetModule, type DecoderConfig, type DecoderOps, type LoraConfig, type LoraTarget,
} from '@dda/model';
import { DECODE_PART_BYTES, GraphBuilder, decodeParts } from './autodiff.js';
import type { OnnxRuntimeBackend } from './backend.js';
import { ONNX_TYPE, attr, encodeOnnxModel, type OnnxModel, type OnnxValueInfo } from './onnx-model.js';
import { OrtWorkerPool, type PoolTensor } from './ort-pool.js';
import { aliasSource, isNarrow, tensorBytes, tensorElements, type BaseTensor, type BaseWeightMap, type NarrowSpec } from './narrow-weights.js';
import { SessionCache } from './session-cache.js';
import type { OrtSession, OrtSessionOptions, OrtTensor } from './ort.js';

/** The decoder shape: @dda/model's DecoderConfig. */
export type OnnxDecoderConfig = Omit<DecoderConfig, 'maxSeqLen'>;
/** A LoRA target module. */
export type OnnxLoraTarget = LoraTarget;
/** LoRA adapters: ΔW = s · B·A per adapted module, s = alpha/rank, rsLoRA alpha/√rank, or each module's own (`modules`, PEFT). */
export type OnnxLoraConfig = LoraConfig;
/** Float32 tensors by Hugging Face / PEFT name (linear weights [out, in]), e.g. @dda/model's TensorMap. */
export type WeightMap = ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>;

/**
 * The attention kinds of a config and the kind of each layer: one kind ('') when every layer
 * attends alike, else '' for the full layers and '.sliding' for the sliding ones (Gemma-3's
 * layer_types). Each kind has its own RoPE tables and mask (the decode step's inputs carry the suffix).
 */
export function attentionKinds(c: OnnxDecoderConfig): { kinds: Map<string, LayerAttention>; ofLayer: string[] } {
  const kinds = new Map<string, LayerAttention>();
  const ofLayer = Array.from({ length: c.numLayers }, (_, i) => {
    const kind = c.layerTypes?.[i] === 'sliding_attention' ? '.sliding' : '';
    if (!kinds.has(kind)) kinds.set(kind, layerAttention(c, i));
    return kind;
  });
  return { kinds, ofLayer };
}

/**
 * Where a graph holds the frozen base weights: `initializers` bakes them into the ONNX model
 * (onnxruntime pre-packs them for its GEMMs, but the model is one protobuf message, which cannot
 * exceed 2 GiB, and the weights exist three times while a session is created: the caller's
 * arrays, the model bytes, onnxruntime's copy), `inputs` feeds them at every run (onnxruntime-node
 * reads the caller's Float32Arrays in place: no copy, no size limit; GEMMs pack their weight
 * operand at every call). `auto` takes `initializers` up to {@link BAKED_WEIGHTS_LIMIT_BYTES} of
 * float32 base weights and `inputs` above. Measured on the 2-core development machine
 * (BENCHMARKS.md, issue 13): baked weights run W1's gradients 5-10 % faster once the session
 * exists, but every session then encodes, loads and pre-packs the weights (about 10 s per
 * session for 0.6 GB), which a run of a few hundred examples does not win back.
 */
export type BaseWeightPlacement = 'initializers' | 'inputs';

/** Largest float32 base (bytes) that `auto` bakes into a graph: 256 MiB (W1's 78 MB and the demo's models are baked). */
export const BAKED_WEIGHTS_LIMIT_BYTES = 2 ** 28;

/** Bytes of the tensors of a weight map as held (4 per float32 value, 2 per narrow one). */
export function weightBytes(w: BaseWeightMap): number {
  let n = 0;
  for (const t of w.values()) n += tensorBytes(t);
  return n;
}

/**
 * Resolves a {@link BaseWeightPlacement} (or `auto`, the default) for these base weights. Narrow
 * weights (narrow-weights.ts) are always fed: `auto` gives `inputs` when any tensor is narrow.
 *
 * @throws DdaError if `initializers` is asked for base weights over 2 GiB (one protobuf message
 *   cannot hold them), or for narrow weights (baking them would need them widened to float32).
 */
export function chooseBaseWeightPlacement(base: BaseWeightMap, asked: BaseWeightPlacement | 'auto' = 'auto'): BaseWeightPlacement {
  const narrow = [...base.values()].some(isNarrow);
  if (asked === 'initializers' && narrow) throw new DdaError('ONNX decoder: narrow (BF16/F16) base weights cannot be baked into a graph', "use basePlacement 'inputs' (or 'auto'), or pass float32 weights to bake");
  if (narrow) return 'inputs';
  const bytes = weightBytes(base);
  if (asked === 'initializers' && bytes >= 2 ** 31 - 2 ** 24) {
    throw new DdaError(`ONNX decoder: ${(bytes / 2 ** 30).toFixed(2)} GiB of base weights cannot be baked into one ONNX model (protobuf's 2 GiB limit)`, "use basePlacement 'inputs' (or 'auto')");
  }
  if (asked !== 'auto') return asked;
  return bytes <= BAKED_WEIGHTS_LIMIT_BYTES ? 'initializers' : 'inputs';
}

/** onnxruntime tensors over the weights' own arrays (onnxruntime-node reads them in place): float32, or narrow bits as UINT16 (bf16) / FLOAT16 (f16). */
export function ortWeightFeeds(backend: OnnxRuntimeBackend, weights: Iterable<readonly [string, BaseTensor]>, into: Record<string, OrtTensor> = {}): Record<string, OrtTensor> {
  for (const [name, t] of weights) {
    into[name] = isNarrow(t) ? new backend.ort.Tensor(t.format === 'bf16' ? 'uint16' : 'float16', t.bits, [...t.shape]) : new backend.ort.Tensor('float32', t.data, [...t.shape]);
  }
  return into;
}

/** The formats (and f16 scales) of the narrow tensors of a base weight map, by name (none for float32 ones). */
export function narrowFormats(base: BaseWeightMap): Map<string, NarrowSpec> {
  return new Map([...base].flatMap(([name, t]) => (isNarrow(t) ? [[name, { format: t.format, scale: t.scale ?? 1 }] as [string, NarrowSpec]] : [])));
}

/**
 * Bytes of the activations one example of `T` tokens keeps alive in a run of the gradient graph
 * (an estimate: per layer the attention probabilities, 2 · heads · T² values, and about
 * 14 · max(hidden, heads · headDim) + 5 · intermediate values per token, float32, the attention
 * width counted when Qwen3's head size makes it wider than hidden; plus the loss rows' logits). Used to
 * cap the examples per run so that a run stays within `maxRunBytes`, and to bound the sessions kept.
 * With `recompute` (the graph's layers recomputed in the backward pass, {@link DecoderGraphOptions.recompute})
 * three layers' worth of those values (the layer being differentiated: its rebuilt values, their
 * gradients and the backward pass's temporaries) plus each layer's input, T · hidden values per
 * layer (at most the kept count: with three layers or fewer nothing is saved). Calibrated on W3 (TinyLlama-1.1B's widths, 512 tokens; BENCHMARKS.md): 0.74 GB
 * estimated per example, against 1.33 GB measured for a second example in a run (0.46 GB per
 * example at 4 layers: onnxruntime's arena grows in steps); kept, 4.1 GB estimated and about 5.6 GB
 * measured.
 */
export function activationBytesPerExample(c: OnnxDecoderConfig, T: number, lossRows = T, recompute = false): number {
  const perLayer = 2 * c.numHeads * T * T + T * (14 * Math.max(c.hiddenSize, c.numHeads * headDim(c)) + 5 * c.intermediateSize);
  const layers = Math.min(c.numLayers * perLayer, recompute ? 3 * perLayer + c.numLayers * T * c.hiddenSize : Infinity);
  return 4 * (layers + 3 * lossRows * c.vocabSize);
}

/**
 * Bytes of onnxruntime memory one run of per-example LoRA gradients ({@link OnnxDecoder.forEachGradientRow})
 * holds at its peak beyond the fed weights, estimated; what {@link OnnxDecoder}'s `maxRunBytes`
 * caps. Per example: its activations ({@link activationBytesPerExample}, recomputed or kept, the
 * loss rows' logits included) and four float32 copies of the `loraEntries` LoRA parameters (the
 * example's copy of the adapters that its rows read, that copy's gradient, its row of the
 * `grad_rows` output and the caller's copy of the row). Per run: `decodeBytes`, the largest
 * narrow base matrix decoded at once ({@link largestDecodeBytes}; 0 without narrow weights).
 * Measured on TinyLlama-1.1B's widths at 512 tokens with narrow weights and recomputation
 * (BENCHMARKS.md, issue 27): at 2, 4, 8 and 22 layers a one-example run peaked 0.97–1.40 GB above
 * the weights (estimated 1.00–1.46 GB), a second example added 0.37–0.89 GB (estimated
 * 0.48–0.94 GB). W3 (22 layers): 0.52 + 0.94 GB an example, 2.41 GB for two against the 2.15 GB
 * of 2 GiB, so one per run, where counting the activations alone (0.74 GB an example) planned two.
 */
export function gradientRunBytes(c: OnnxDecoderConfig, T: number, lossRows: number, examples: number, o: { readonly recompute?: boolean; readonly loraEntries: number; readonly decodeBytes?: number }): number {
  return examples * (activationBytesPerExample(c, T, lossRows, o.recompute ?? false) + 16 * o.loraEntries) + (o.decodeBytes ?? 0);
}

/**
 * Bytes of the largest narrow base matrix, or part of one, a graph decodes at once
 * ({@link gradientRunBytes}'s `decodeBytes`): the output projection (`lm_head`, or the embedding
 * when tied) or a layer's matrix, not an untied embedding (its rows are gathered before they are
 * decoded). A decode holds two float32-sized buffers (8 bytes an entry): a scaled f16 matrix's Cast
 * output and its product with the scale (in the backward pass's dy · w; forward Gemms take the
 * scale as alpha, {@link GraphBuilder.gemmOperand}), a bf16 one's int32 table indices and gathered
 * values; an unscaled f16 matrix's Cast output alone (4 bytes). A matrix above
 * {@link DECODE_PART_BYTES} is decoded in parts ({@link decodeParts}: of its rows forward, of its
 * columns backward), each part also holding its slice of the stored bits (2 bytes an entry).
 */
export function largestDecodeBytes(c: OnnxDecoderConfig, base: BaseWeightMap): number {
  let most = 0;
  for (const [name, t] of base) {
    if (!isNarrow(t) || t.shape.length < 2 || (name === EMBED_WEIGHT && !c.tieWordEmbeddings)) continue;
    const perEntry = t.format === 'f16' && (t.scale ?? 1) === 1 ? 4 : 8;
    const [rows, cols] = [t.shape[0] as number, tensorElements(t) / (t.shape[0] as number)];
    const byRows = decodeParts(rows, cols);
    if (byRows.length === 1) {
      most = Math.max(most, tensorElements(t) * perEntry);
      continue;
    }
    const widest = (parts: [number, number][]): number => Math.max(...parts.map(([a, b]) => b - a));
    const partEntries = Math.max(widest(byRows) * cols, widest(decodeParts(cols, rows)) * rows);
    most = Math.max(most, partEntries * (perEntry + 2));
  }
  return most;
}

/**
 * The default `maxRunBytes` of an {@link OnnxDecoder} whose base weights take `baseBytes` as held
 * (narrow: as stored; float32: 4 bytes an entry): {@link RECOMPUTE_ABOVE_BYTES} (2 GiB), or
 * `baseBytes` less 256 MiB (about what Node, onnxruntime and a tokenizer take beside the weights)
 * where that is smaller, at least 256 MiB. So weights, process and a run stay within about twice
 * the weights' bytes (issue 27's target of twice the checkpoint file for narrow weights): the
 * TinyLlama-1.1B shape (2.20 GB held as stored BF16) gets 1.93 GB (one 512-token example per
 * run; 2 GiB let two in once its head was decoded in parts, 4.66 GB at peak), the Qwen2-0.5B
 * shape (0.99 GB) 0.73 GB, the tiny test models (a few MB) 256 MiB, far above what their runs
 * take (their examples per run stay `exampleBatch`). Measured: BENCHMARKS.md, issue 27.
 */
export function defaultMaxRunBytes(baseBytes: number): number {
  return Math.min(RECOMPUTE_ABOVE_BYTES, Math.max(2 ** 28, baseBytes - 2 ** 28));
}

/**
 * The default budget of `auto` recomputation ({@link recomputeLayers}): 2 GiB, the decoder's
 * largest default `maxRunBytes` ({@link defaultMaxRunBytes}). Measured (BENCHMARKS.md, issue 27): recomputation costs about 1.5× the
 * CPU time of a one-example run on W3 (one more forward pass of 21 of its 22 layers) and saves
 * about 0.21 GB per layer at TinyLlama-1.1B's widths and 512 tokens (peak RSS 10.3 → 5.9 GB);
 * below the budget a run keeps its activations and runs faster, above it one example alone
 * exceeds the run's budget unless its layers are recomputed.
 */
export const RECOMPUTE_ABOVE_BYTES = 2 ** 31;

/**
 * Below the budget, `auto` also recomputes where one example's kept activations are above `floor`
 * (256 MiB) and above `share` (a quarter) of the base weights' bytes as held
 * ({@link recomputeLayers}'s `weightBytes`): a real-size model's layers at short sequences.
 * Measured on the Qwen2-0.5B shape (24 layers, 128 tokens, BF16 weights of 0.99 GB held narrow,
 * 0.61 GB of activations estimated; BENCHMARKS.md, issue 27): a one-example run's peak RSS
 * 2.67 → 2.0 GB, the same gradient bits, no measurable time (its 151,936-row head, not the layers,
 * is most of a run); the run budget then fits two examples, which `dda attribute` runs in fewer
 * CPU-seconds at about the same peak. The tiny models' activations are far below 256 MiB, so
 * their runs are as before.
 */
export const RECOMPUTE_ABOVE_WEIGHT_SHARE = { floor: 2 ** 28, share: 0.25 } as const;

/**
 * Whether the gradient graphs of `T`-token sequences recompute their layers: `setting` itself, or
 * for `auto` whether one example's activations kept without recomputation
 * ({@link activationBytesPerExample}, loss on half the tokens) exceed `budget` bytes (default
 * {@link RECOMPUTE_ABOVE_BYTES}; the decoder passes its maxRunBytes), or, given the base weights'
 * bytes `weightBytes`, exceed both {@link RECOMPUTE_ABOVE_WEIGHT_SHARE}'s floor and its share of
 * them. The gradients are the same bits either way; recomputation costs one more forward pass of
 * the layers and keeps about one layer's activations instead of all of them.
 */
export function recomputeLayers(c: OnnxDecoderConfig, T: number, setting: boolean | 'auto' = 'auto', budget = RECOMPUTE_ABOVE_BYTES, weightBytes?: number): boolean {
  if (setting !== 'auto') return setting;
  const kept = activationBytesPerExample(c, T, T / 2);
  const { floor, share } = RECOMPUTE_ABOVE_WEIGHT_SHARE;
  return kept > budget || (weightBytes !== undefined && kept > floor && kept > share * weightBytes);
}

/** Which parameters per-example gradients are taken over: the LoRA adapters or every base tensor. */
export type OnnxParameterSet = 'lora' | 'all';

/**
 * PEFT names, shapes and scales of every LoRA tensor (layer by layer, targets in config order, A [r, in]
 * then B [out, r]): the config's `modules` (per-module rank and scale, as @dda/model resolved PEFT's
 * patterns), or every layer's targets at rank `rank`, scale alpha/rank.
 */
export function loraSpecs(c: OnnxDecoderConfig, lora: OnnxLoraConfig): { layer: number; target: OnnxLoraTarget; a: string; b: string; aShape: [number, number]; bShape: [number, number]; scale: number }[] {
  const modules = lora.modules ?? Array.from({ length: c.numLayers }, (_, layer) => lora.targets.map((target) => ({ layer, target, rank: lora.rank, scale: lora.alpha / lora.rank }))).flat();
  return modules.map(({ layer, target, rank, scale }) => {
    const [o, n] = linearShape(c, target);
    const p = `base_model.model.${targetModule(layer, target)}`;
    return { layer, target, a: `${p}.lora_A.weight`, b: `${p}.lora_B.weight`, aShape: [rank, n] as [number, number], bShape: [o, rank] as [number, number], scale };
  });
}

/** Names of the graph's inputs and outputs. */
export const DECODER_IO = { ids: 'ids', positions: 'loss_positions', targets: 'targets', weights: 'loss_weights', loss: 'loss', logits: 'logits', hidden: 'hidden', positionLogits: 'position_logits' } as const;
/** Graph output holding the gradient of LoRA tensor `name`. */
export const gradOutput = (name: string): string => `grad:${name}`;

/** RoPE tables as @dda/model builds them (@dda/core's ropeCosSin: frequencies repeated over both halves, the config's llama3 scaling if any); cos, sin [T, hd]. */
export function ropeTables(T: number, hd: number, theta: number, scaling?: RopeScaling | null): { cos: Float32Array; sin: Float32Array } {
  return ropeCosSin(T, hd, theta, scaling);
}

/** Options of {@link buildDecoderGraph}. */
export interface DecoderGraphOptions {
  /** Outputs `grad:<name>` for every differentiated tensor. */
  readonly gradients: boolean;
  /** Outputs `logits` [batch·T, V]. */
  readonly logits: boolean;
  /** Outputs `hidden` [batch·T, d] (the final hidden states, after the last norm). */
  readonly hidden?: boolean;
  /** Outputs `position_logits` [P, V]: the logits at the `loss_positions` only (greedy decoding's prefill). */
  readonly positionLogits?: boolean;
  /**
   * Outputs, per layer i, `present_k.<i>` (keys after RoPE) and `present_v.<i>` (values), each
   * [batch·T, numKvHeads·headDim] row-major: the key/value cache a prefill hands to
   * {@link buildDecodeStepGraph}.
   */
  readonly present?: boolean;
  /** Computes the loss (default true); without it the graph has no `targets` and `loss_weights` inputs. */
  readonly loss?: boolean;
  /** Frozen base weights baked into the graph as initializers (onnxruntime pre-packs them); else they are inputs. */
  readonly baseWeights?: WeightMap;
  /** LoRA weights baked in as initializers (only when the LoRA tensors are not differentiated); else they are inputs. */
  readonly loraWeights?: WeightMap;
  /** Differentiate the LoRA tensors (default) or every base tensor (then the base weights are inputs, never baked). */
  readonly parameters?: OnnxParameterSet;
  /**
   * Base weights fed narrow (narrow-weights.ts), by name: each is a UINT16 (bf16) or FLOAT16
   * (f16) input decoded to float32 inside the graph where it is read ({@link GraphBuilder.decode}),
   * and fed again under `<name>@decode<k>` for its k-th further decode ({@link pickFeeds} does
   * so). Base weights not named are float32 inputs. Not with baked `baseWeights` or parameters 'all'.
   */
  readonly narrowWeights?: ReadonlyMap<string, NarrowSpec>;
  /** Sequences per run (default 1): `ids` holds batch·T tokens, sequence b at rows [b·T, (b+1)·T). */
  readonly batch?: number;
  /**
   * Per-example LoRA gradients from one batched run: each sequence reads its own copy of every
   * LoRA tensor ({@link GraphBuilder.perExampleCopies}), and `grad:<name>` is [batch, ...shape],
   * row b the gradient of sequence b's term of the loss. Give loss weights mask / (loss tokens of
   * the sequence) (a sum of per-sequence means, `meanOver` = 1 in {@link batchInputs}) for the
   * gradient of each sequence's own mean loss. Needs `gradients` over 'lora'.
   */
  readonly perExample?: boolean;
  /**
   * With `gradients`: one output `grad_rows` [rows, Σ sizes] instead of one `grad:<name>` per
   * tensor, the gradients of these tensors (every differentiated one, in this order) side by
   * side; rows = batch with `perExample`, else 1. The rows come out of onnxruntime ready to use:
   * no reshuffling, one output buffer.
   */
  readonly gradientRows?: readonly string[];
  /**
   * With `gradients`: recompute each decoder layer's values in the backward pass instead of
   * keeping them from the forward pass (gradient checkpointing, {@link GraphBuilder.recomputed}):
   * only each layer's input, N × hidden floats per layer, stays alive from the forward pass, and
   * at most one layer's intermediates at a time, for one more forward pass of every layer but
   * the last (whose backward pass follows its forward pass, so it is kept). The
   * loss and the gradients are bit-identical to the graph without it (default false: the graph
   * is then byte for byte what it was before the option).
   */
  readonly recompute?: boolean;
}

/** The graph output of {@link DecoderGraphOptions.gradientRows}. */
export const GRAD_ROWS = 'grad_rows';

/**
 * The parameters of a graph, base and LoRA tensors (inputs or initializers), and the ops of
 * @dda/model's decoder block that every graph of a config shares (`ops`: all but `embed`, `heads`,
 * `rope` and `attention`, which depend on the run's token layout and cache); `rope` here is the
 * rotation on heads with given tables, `attScale` the attention scale.
 */
function decoderParameters(g: GraphBuilder, c: OnnxDecoderConfig, lora: OnnxLoraConfig | null, o: Pick<DecoderGraphOptions, 'baseWeights' | 'loraWeights' | 'parameters' | 'perExample' | 'batch' | 'narrowWeights'>) {
  const all = o.parameters === 'all';
  if (o.narrowWeights && o.narrowWeights.size > 0 && (all || o.baseWeights)) throw new DdaError('ONNX decoder: narrow base weights are fed and not differentiated', "pass float32 weights with parameters 'all' or baked baseWeights");
  const bases = new Map<string, string>();
  const baked = (what: string, name: string, shape: readonly number[], from: WeightMap): Float32Array => {
    const t = from.get(name);
    if (t === undefined) throw new DdaError(`ONNX decoder: missing ${what} '${name}'`, `pass every ${what} of the config`);
    if (t.shape.length !== shape.length || t.shape.some((x, k) => x !== shape[k])) {
      throw new DdaError(`ONNX decoder: '${name}' has shape [${t.shape.join(', ')}], the config needs [${shape.join(', ')}]`, 'load weights that match the config');
    }
    return t.data;
  };
  // Frozen base weights: initializers when given (onnxruntime pre-packs them for its GEMMs), else graph inputs.
  const base = (name: string, shape: readonly number[]): string => {
    let v = bases.get(name);
    if (v === undefined) {
      const narrow = o.narrowWeights?.get(name);
      v = o.baseWeights ? g.initializer(name, baked('base weight', name, shape, o.baseWeights), shape) : narrow ? g.narrowInput(name, shape, narrow.format, narrow.scale) : g.input(name, shape, ONNX_TYPE.float, all);
      bases.set(name, v);
    }
    return v;
  };
  const B = o.batch ?? 1;
  const loraNames: string[] = [];
  /** The values differentiated for each LoRA tensor: the input itself, or its per-example copies. */
  const loraRoots: string[] = [];
  const loraOf = new Map<string, { a: string; b: string; scale: string }>();
  for (const spec of lora ? loraSpecs(c, lora) : []) {
    const tensor = (name: string, shape: [number, number]): string => {
      const v = o.loraWeights ? g.initializer(name, baked('LoRA tensor', name, shape, o.loraWeights), shape) : g.input(name, shape, ONNX_TYPE.float, !all && !o.perExample);
      loraNames.push(v);
      const root = o.perExample ? g.perExampleCopies(v, B) : v;
      loraRoots.push(root);
      return root;
    };
    loraOf.set(`${spec.layer}.${spec.target}`, { a: tensor(spec.a, spec.aShape), b: tensor(spec.b, spec.bShape), scale: g.scalar(spec.scale) });
  }
  /** x [n, in] → x·Wᵀ (+ b) (+ s·x·Aᵀ·Bᵀ, s the module's scale), as @dda/model's `linear`; per example, x's rows are B sequences of n/B. */
  const linear = (i: number, t: OnnxLoraTarget, x: string): string => {
    const mod = targetModule(i, t);
    const [out, inDim] = linearShape(c, t);
    let y = g.linear(x, base(`${mod}.weight`, linearShape(c, t)));
    if (c.attentionBias && (t === 'q' || t === 'k' || t === 'v')) y = g.add(y, g.decode(base(`${mod}.bias`, [out])));
    const ab = loraOf.get(`${i}.${t}`);
    if (ab && o.perExample) {
      const n = g.shape(x)[0] as number;
      const low = g.matmul(g.matmul(g.reshape(x, [B, n / B, inDim]), g.swapLast(ab.a)), g.swapLast(ab.b)); // [B, n/B, out]
      y = g.add(y, g.mul(g.reshape(low, [n, out]), ab.scale));
    } else if (ab) {
      y = g.add(y, g.mul(g.linear(g.linear(x, ab.a), ab.b), ab.scale));
    }
    return y;
  };
  // The shared scalars and constants are created here, in this order (the graph's value names count up).
  g.scalar(c.rmsNormEps);
  const one = g.scalar(1);
  const hd = headDim(c);
  // rotate_half(x) = [−x2, x1] = x · R (exact: one ±1 product per entry).
  const rData = new Float32Array(hd * hd);
  for (let j = 0; j < hd / 2; j++) {
    rData[(j + hd / 2) * hd + j] = -1;
    rData[j * hd + j + hd / 2] = 1;
  }
  const rot = g.constant('rope_rot', rData, [hd, hd]);
  /** RoPE of x [n, T, hd] with tables cos, sin [T, hd]: x·cos + rotate_half(x)·sin. */
  const rope = (x: string, cos: string, sin: string): string => {
    const s = g.shape(x);
    const rows = s.reduce((a, b) => a * b, 1) / hd;
    return g.add(g.mul(x, cos), g.mul(g.reshape(g.matmul(g.reshape(x, [rows, hd]), rot), s), sin));
  };
  base(EMBED_WEIGHT, [c.vocabSize, c.hiddenSize]); // the embedding's input (or initializer) comes before every layer's
  const attScale = g.scalar(attentionScale(hd, c.queryPreAttnScalar));
  const ops: Omit<DecoderOps<string>, 'embed' | 'heads' | 'rope' | 'attention'> = {
    weight: base,
    scale: (x, factor) => g.mul(x, g.scalar(factor)),
    linear,
    rmsNorm: (x, w, n) => g.mul(g.mul(x, g.rsqrt(g.add(g.meanLast(g.mul(x, x)), g.scalar(n.eps)))), n.plusOne ? g.add(g.decode(w), one) : g.decode(w)),
    silu: (x) => g.mul(x, g.sigmoid(x)),
    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    geluTanh: (x) => g.mul(g.mul(x, g.scalar(0.5)), g.add(g.tanh(g.mul(g.add(x, g.mul(g.mul(x, g.mul(x, x)), g.scalar(0.044715))), g.scalar(GELU_TANH_C))), one)),
    add: (a, b) => g.add(a, b),
    mul: (a, b) => g.mul(a, b),
  };
  return { bases, loraNames, loraRoots, ops, rope, attScale };
}

/** Graph outputs holding layer i's key/value cache. */
export const presentOutputs = (i: number): { k: string; v: string } => ({ k: `present_k.${i}`, v: `present_v.${i}` });

/**
 * Builds the decoder graph for `batch` sequences of exactly `T` tokens with `P` loss positions
 * in all. Inputs: `ids` int64 [batch·T]; `loss_positions` int64 [P] (rows b·T + t whose next
 * token carries loss), `targets` int64 [P] (those next tokens), `loss_weights` [P, 1] (the loss
 * is Σ_p w_p · −log p(target_p): give w = mask / (loss tokens of the sequence) / batch for the
 * mean over the batch of each sequence's mean loss, and 0 for padding entries); every LoRA
 * tensor and base tensor by name unless baked in (see {@link DecoderGraphOptions}). The output
 * projection runs on the P loss positions only (and on all rows when `logits` is asked for).
 * Outputs: `loss` (scalar, nats/token), and those chosen in `o`; with `gradients` one
 * `grad:<name>` per differentiated tensor in `parameterNames` order.
 */
export function buildDecoderGraph(c: OnnxDecoderConfig, lora: OnnxLoraConfig | null, T: number, P: number, o: DecoderGraphOptions): { model: OnnxModel; parameterNames: string[] } {
  const all = o.parameters === 'all';
  const B = o.batch ?? 1;
  const withLoss = o.loss ?? true;
  if (all && o.baseWeights) throw new DdaError('ONNX decoder: base weights cannot be baked into a graph that differentiates them', "leave baseWeights out with parameters 'all'");
  if (!all && o.gradients && o.loraWeights) throw new DdaError('ONNX decoder: LoRA weights cannot be baked into a graph that differentiates them', 'leave loraWeights out');
  if (o.gradients && !withLoss) throw new DdaError('ONNX decoder: gradients need the loss', 'leave loss on');
  if (!Number.isInteger(B) || B < 1) throw new DdaError(`ONNX decoder: batch must be a positive integer, got ${B}`, 'pass e.g. 1');
  if (o.perExample && (all || !o.gradients || !lora || o.loraWeights)) throw new DdaError('ONNX decoder: per-example copies need gradients over fed LoRA tensors', "use parameters 'lora' with gradients, adapters and no baked loraWeights");
  const g = new GraphBuilder('dda-decoder');
  const H = c.numHeads;
  const KV = c.numKvHeads;
  const hd = headDim(c);
  const N = B * T;
  const ids = g.input(DECODER_IO.ids, [N], ONNX_TYPE.int64);
  const positions = withLoss || o.positionLogits ? g.input(DECODER_IO.positions, [P], ONNX_TYPE.int64) : '';
  const targets = withLoss ? g.input(DECODER_IO.targets, [P], ONNX_TYPE.int64) : '';
  const weights = withLoss ? g.input(DECODER_IO.weights, [P, 1]) : '';
  const { bases, loraNames, loraRoots, ops, rope, attScale } = decoderParameters(g, c, lora, o);
  // RoPE tables and mask of each attention kind (one, or Gemma-3's full and sliding layers).
  const { kinds, ofLayer } = attentionKinds(c);
  const tables = new Map([...kinds].map(([kind, a]) => {
    const { cos, sin } = ropeTables(T, hd, a.theta, a.scaling);
    return [kind, { cos: g.constant(`rope_cos${kind}`, cos, [T, hd]), sin: g.constant(`rope_sin${kind}`, sin, [T, hd]), mask: g.constant(`causal_mask${kind}`, attentionMask(T, a.window), [T, T]) }];
  }));
  const tableOf = (i: number): { cos: string; sin: string; mask: string } => tables.get(ofLayer[i] as string) as { cos: string; sin: string; mask: string };
  /** [N, n·hd] → [B·n, T, hd]. */
  const heads = (y: string, n: number): string => (B === 1 ? g.transpose(g.reshape(y, [T, n, hd]), [1, 0, 2]) : g.reshape(g.transpose(g.reshape(y, [B, T, n, hd]), [0, 2, 1, 3]), [B * n, T, hd]));
  /** [B·n, T, hd] → [N, n·hd]. */
  const merge = (y: string, n: number): string => (B === 1 ? g.reshape(g.transpose(y, [1, 0, 2]), [T, n * hd]) : g.reshape(g.transpose(g.reshape(y, [B, n, T, hd]), [0, 2, 1, 3]), [N, n * hd]));
  const repeatKv = (y: string): string => (KV === H ? y : g.reshape(g.expand(g.reshape(y, [B * KV, 1, T, hd]), [B * KV, H / KV, T, hd]), [B * H, T, hd]));
  const outputs: OnnxValueInfo[] = [];

  const { hidden, head: w } = decoderStack<string>({
    ...ops,
    // The last layer is not recomputed: its backward pass comes right after the forward pass, so its values are alive at that point either way.
    ...(o.gradients && o.recompute ? { layer: (i: number, x: string, run: (x: string) => string) => (i === c.numLayers - 1 ? run(x) : g.recomputed(x, run)) } : {}),
    // Differentiated embeddings need the scatter-add VJP of gatherRows; frozen ones a plain Gather.
    embed: (table) => (all ? g.gatherRows(table, ids) : g.gather(table, ids)),
    heads: (y, role) => heads(y, role === 'q' ? H : KV),
    rope: (x, i) => rope(x, tableOf(i).cos, tableOf(i).sin),
    attention: (i, q, k, v) => {
      // A recomputed layer's rebuild adds no outputs (the forward pass added them).
      if (o.present && !g.recomputing) {
        outputs.push(g.output(presentOutputs(i).k, merge(k, KV)));
        outputs.push(g.output(presentOutputs(i).v, merge(v, KV)));
      }
      const scores = g.add(g.mul(g.matmul(q, g.swapLast(repeatKv(k))), attScale), tableOf(i).mask);
      return merge(g.matmul(g.softmax(scores), repeatKv(v)), H);
    },
  }, c);
  const picked = positions ? g.linear(g.gatherRows(hidden, positions), w) : '';
  const loss = withLoss ? g.crossEntropy(picked, targets, weights) : '';
  if (withLoss) outputs.unshift(g.output(DECODER_IO.loss, loss));
  if (o.positionLogits) outputs.push(g.output(DECODER_IO.positionLogits, picked));
  if (o.logits) outputs.push(g.output(DECODER_IO.logits, g.linear(hidden, w)));
  if (o.hidden) outputs.push(g.output(DECODER_IO.hidden, hidden));
  const parameterNames = all ? [...bases.keys()] : loraNames;
  if (o.gradients) {
    if (!all && !lora) throw new DdaError('ONNX decoder: gradients over LoRA parameters were asked for, but there are no LoRA adapters', "pass a LoRA config, or use parameters 'all'");
    const roots = all ? parameterNames : loraRoots;
    const grads = g.backward(loss, roots);
    const gradOf = new Map(parameterNames.map((n, k) => [n, grads.get(roots[k] as string) as string]));
    if (o.gradientRows) {
      const rows = o.perExample ? B : 1;
      if (o.gradientRows.length !== parameterNames.length) throw new DdaError(`ONNX decoder: gradientRows names ${o.gradientRows.length} tensors, the graph differentiates ${parameterNames.length}`, 'name every differentiated tensor once');
      const parts = o.gradientRows.map((n) => {
        const v = gradOf.get(n);
        if (v === undefined) throw new DdaError(`ONNX decoder: gradientRows names '${n}', which the graph does not differentiate`, 'name the differentiated tensors');
        const size = g.shape(v).reduce((a, b) => a * b, 1) / rows;
        return g.reshape(v, [rows, size]);
      });
      const width = parts.reduce((a, p) => a + (g.shape(p)[1] as number), 0);
      outputs.push(g.output(GRAD_ROWS, parts.length === 1 ? (parts[0] as string) : g.op('Concat', parts, [rows, width], { axis: attr.int(1) })));
    } else {
      for (const n of parameterNames) outputs.push(g.output(gradOutput(n), gradOf.get(n) as string));
    }
  }
  return { model: g.model(outputs), parameterNames };
}

/** Names of the decode-step graph's inputs and outputs (see {@link buildDecodeStepGraph}); RoPE rows and masks per attention kind ({@link attentionKinds}: '' or '.sliding'). */
export const DECODE_IO = {
  token: 'token', cos: (kind = ''): string => `rope_cos_row${kind}`, sin: (kind = ''): string => `rope_sin_row${kind}`, mask: (kind = ''): string => `attn_mask${kind}`, index: 'cache_index', logits: 'logits',
  pastK: (i: number): string => `past_k.${i}`, pastV: (i: number): string => `past_v.${i}`,
  newK: (i: number): string => `new_k.${i}`, newV: (i: number): string => `new_v.${i}`,
} as const;

/**
 * One greedy-decoding step with a key/value cache of `S` positions: the decoder on one new token
 * at position p, attending to the cached keys and values of positions 0..p.
 * Inputs: `token` int64 [1]; `rope_cos_row`, `rope_sin_row` [1, hd] (the RoPE tables' row p);
 * `attn_mask` [1, S] (0 where position j is visible from p: j ≤ p and within the sliding window,
 * −1e9 elsewhere, as the full graph's mask row p), these three once per attention kind with its
 * suffix ({@link attentionKinds}: Gemma-3's sliding layers read `rope_cos_row.sliding`, ...); `cache_index` int64 [1, 1] (= p); per layer i
 * `past_k.<i>`, `past_v.<i>` [S, numKvHeads·hd] (keys after RoPE, values; rows ≥ p are ignored:
 * the graph attends to the past rows with row p replaced by the new token's key and value).
 * Outputs: `logits` [1, V] and `new_k.<i>`, `new_v.<i>` [1, numKvHeads·hd] (the row p to write into
 * the caches before the next step).
 * LoRA weights are baked in as initializers; base weights too when given, else they are inputs by name.
 */
export function buildDecodeStepGraph(c: OnnxDecoderConfig, lora: OnnxLoraConfig | null, S: number, o: { readonly baseWeights?: WeightMap; readonly loraWeights?: WeightMap }): OnnxModel {
  if (lora && !o.loraWeights) throw new DdaError('ONNX decode step: LoRA adapters without their weights', 'pass loraWeights');
  const g = new GraphBuilder('dda-decode-step');
  const H = c.numHeads;
  const KV = c.numKvHeads;
  const hd = headDim(c);
  const kvDim = KV * hd;
  const token = g.input(DECODE_IO.token, [1], ONNX_TYPE.int64);
  const { kinds, ofLayer } = attentionKinds(c);
  const rows = new Map([...kinds.keys()].map((kind) => [kind, { cos: g.input(DECODE_IO.cos(kind), [1, hd]), sin: g.input(DECODE_IO.sin(kind), [1, hd]), mask: g.input(DECODE_IO.mask(kind), [1, S]) }]));
  const index = g.input(DECODE_IO.index, [1, 1], ONNX_TYPE.int64);
  const { ops, rope, attScale } = decoderParameters(g, c, lora, o);
  const rowsOf = (i: number): { cos: string; sin: string; mask: string } => rows.get(ofLayer[i] as string) as { cos: string; sin: string; mask: string };
  /** Cache [S, kvDim] → [H, S, hd] (kv heads repeated for grouped-query attention). */
  const cacheHeads = (cache: string): string => {
    const kvh = g.transpose(g.reshape(cache, [S, KV, hd]), [1, 0, 2]);
    return KV === H ? kvh : g.reshape(g.expand(g.reshape(kvh, [KV, 1, S, hd]), [KV, H / KV, S, hd]), [H, S, hd]);
  };
  const outputs: OnnxValueInfo[] = [];
  const { hidden, head } = decoderStack<string>({
    ...ops,
    embed: (table) => g.gather(table, token), // [1, d]
    // Queries and keys [n, 1, hd]; the value stays the cache row [1, kvDim].
    heads: (y, role) => (role === 'v' ? y : g.reshape(y, [role === 'q' ? H : KV, 1, hd])),
    // The key leaves RoPE as the cache row [1, kvDim] that it is written to.
    rope: (x, i, role) => {
      const r = rope(x, rowsOf(i).cos, rowsOf(i).sin);
      return role === 'k' ? g.reshape(r, [1, kvDim]) : r;
    },
    attention: (i, q, kNew, vNew) => {
      const pastK = g.input(DECODE_IO.pastK(i), [S, kvDim]);
      const pastV = g.input(DECODE_IO.pastV(i), [S, kvDim]);
      const presentK = g.op('ScatterND', [pastK, index, kNew], [S, kvDim]);
      const presentV = g.op('ScatterND', [pastV, index, vNew], [S, kvDim]);
      // Only the new rows leave the graph: the caller writes them into its cache (whole caches as
      // outputs would be copied into fresh memory at every token).
      outputs.push(g.output(DECODE_IO.newK(i), kNew), g.output(DECODE_IO.newV(i), vNew));
      const scores = g.add(g.mul(g.matmul(q, g.swapLast(cacheHeads(presentK))), attScale), rowsOf(i).mask); // [H, 1, S]
      return g.reshape(g.matmul(g.softmax(scores), cacheHeads(presentV)), [1, H * hd]); // [H, 1, hd] → [1, H·hd]
    },
  }, c);
  outputs.unshift(g.output(DECODE_IO.logits, g.linear(hidden, head)));
  return g.model(outputs);
}

/** One encoded example: token ids and the loss mask (length tokens − 1; 1 where tokens[t+1] is a response token). */
export interface OnnxEncodedExample {
  readonly tokens: Int32Array;
  readonly lossMask: Float32Array;
}

/** The token and loss inputs of {@link buildDecoderGraph} for a batch of examples (see {@link batchInputs}). */
export interface BatchInputs {
  /** Sequences, padded length, loss positions (padded). */
  readonly B: number;
  readonly T: number;
  readonly P: number;
  /** int64 [B·T], right-padded with 0 (padding never reaches a loss position: attention is causal). */
  readonly ids: BigInt64Array;
  /** int64 [P]: rows b·T + t whose next token carries loss; padding entries 0. */
  readonly positions: BigInt64Array;
  /** int64 [P]: the next tokens. */
  readonly targets: BigInt64Array;
  /** [P]: mask / (loss tokens of the sequence, at least 1) / meanOver (default B); padding entries 0. */
  readonly weights: Float32Array;
}

/**
 * Lays out `examples` for one run of the decoder graph: each sequence right-padded to `T`
 * tokens, its loss positions listed in order, their number padded to `bucket(count)`. The
 * weights make the graph's loss the mean over the batch of each sequence's mean response-token
 * cross-entropy, what @dda/model's `tf.mean(sequenceLosses(...))` computes. With `meanOver` > B
 * (one shard of a larger batch) the loss is this shard's share of the mean over `meanOver` sequences.
 *
 * @throws DdaError if an example has fewer than 2 tokens, more than T, a loss mask of the wrong
 *   length, or a token id outside the vocabulary.
 */
export function batchInputs(examples: readonly OnnxEncodedExample[], vocabSize: number, T: number, bucket: (loss: number) => number, meanOver = examples.length): BatchInputs {
  const B = examples.length;
  const ids = new BigInt64Array(B * T);
  const rows: { row: number; target: number; weight: number }[] = [];
  examples.forEach((e, b) => {
    const n = e.tokens.length;
    if (n < 2 || e.lossMask.length !== n - 1) throw new DdaError(`ONNX decoder: ${n} tokens with a loss mask of ${e.lossMask.length}`, 'give tokens.length − 1 mask entries and at least 2 tokens');
    if (n > T) throw new DdaError(`ONNX decoder: ${n} tokens do not fit ${T} positions`, 'pad to the longest sequence of the batch');
    for (let t = 0; t < n; t++) {
      const id = e.tokens[t] as number;
      if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) throw new DdaError(`ONNX decoder: token id ${id} outside the vocabulary of ${vocabSize}`, "encode with the model's tokenizer");
      ids[b * T + t] = BigInt(id);
    }
    let count = 0;
    for (let t = 0; t < n - 1; t++) count += e.lossMask[t] as number;
    for (let t = 0; t < n - 1; t++) {
      const m = e.lossMask[t] as number;
      if (m !== 0) rows.push({ row: b * T + t, target: e.tokens[t + 1] as number, weight: m / Math.max(count, 1) / meanOver });
    }
  });
  const P = bucket(rows.length);
  if (P < rows.length) throw new DdaError(`ONNX decoder: ${rows.length} loss positions do not fit a bucket of ${P}`, 'fix the bucket function');
  const positions = new BigInt64Array(P);
  const targets = new BigInt64Array(P);
  const weights = new Float32Array(P);
  rows.forEach((r, k) => {
    positions[k] = BigInt(r.row);
    targets[k] = BigInt(r.target);
    weights[k] = r.weight;
  });
  return { B, T, P, ids, positions, targets, weights };
}

/**
 * Smallest bucket ≥ n among padMultiple · {1, 2, 3, 4, 6, 8, 12, 16, …} (powers of two and
 * 1.5 × powers of two), capped at `cap`: at most a third of the loss positions are padding,
 * and few distinct graph shapes.
 */
export function lossPositionBucket(n: number, padMultiple: number, cap: number): number {
  let k = 1;
  let j = 0; // k is 2^j or 1.5 · 2^(j−1)... stepping 1, 2, 3, 4, 6, 8, 12, ...
  while (padMultiple * k < n) {
    if (k === 2 ** j && j >= 1) k = 3 * 2 ** (j - 1);
    else k = 2 ** ++j;
  }
  return Math.max(n, Math.min(padMultiple * k, cap), 1);
}

/** onnxruntime tensors of a batch's token and loss inputs. */
export function ortBatchFeeds(backend: OnnxRuntimeBackend, b: BatchInputs): Record<string, OrtTensor> {
  const { Tensor } = backend.ort;
  return {
    [DECODER_IO.ids]: new Tensor('int64', b.ids, [b.B * b.T]),
    [DECODER_IO.positions]: new Tensor('int64', b.positions, [b.P]),
    [DECODER_IO.targets]: new Tensor('int64', b.targets, [b.P]),
    [DECODER_IO.weights]: new Tensor('float32', b.weights, [b.P, 1]),
  };
}

/** A batch's token and loss inputs as {@link OrtWorkerPool} feeds. */
export function poolBatchFeeds(b: BatchInputs): Record<string, PoolTensor> {
  return {
    [DECODER_IO.ids]: { type: 'int64', data: b.ids, dims: [b.B * b.T] },
    [DECODER_IO.positions]: { type: 'int64', data: b.positions, dims: [b.P] },
    [DECODER_IO.targets]: { type: 'int64', data: b.targets, dims: [b.P] },
    [DECODER_IO.weights]: { type: 'float32', data: b.weights, dims: [b.P, 1] },
  };
}

/** The weight feeds a session's inputs name (everything that is not a token or loss input); a narrow weight's decode alias `<name>@decode<k>` gets `<name>`'s tensor. */
export function pickFeeds(inputNames: readonly string[], weightFeeds: Readonly<Record<string, OrtTensor>>): Record<string, OrtTensor> {
  const out: Record<string, OrtTensor> = {};
  const io = new Set<string>([DECODER_IO.ids, DECODER_IO.positions, DECODER_IO.targets, DECODER_IO.weights]);
  for (const name of inputNames) {
    if (io.has(name)) continue;
    const f = weightFeeds[name] ?? weightFeeds[aliasSource(name)];
    if (f === undefined) throw new DdaError(`ONNX decoder: missing weight '${name}'`, 'pass every LoRA tensor of the config (and every base tensor with parameters all)');
    out[name] = f;
  }
  return out;
}

/**
 * The decoder on an onnxruntime backend: losses, logits, hidden states and per-example LoRA gradients, agreeing
 * with @dda/backend-tfjs's engine. Sessions are built per padded sequence length and reused; the base
 * weights are baked into each session's graph up to 256 MiB and fed at every run above
 * ({@link BaseWeightPlacement}: no 2 GiB limit, so real-size models such as TinyLlama-1.1B run),
 * the LoRA weights are fed at every run.
 */
export class OnnxDecoder {
  /** Sessions by graph key, at most {@link maxSessions} (the least recently used idle one released first). */
  private readonly sessions: SessionCache<Promise<{ session: OrtSession; parameterNames: string[] }>>;
  private readonly weightFeeds: Record<string, OrtTensor> = {};

  readonly padMultiple: number;
  /** The parameters gradients are taken over. */
  readonly parameters: OnnxParameterSet;
  /** Worker threads {@link perExampleGradients} runs on (1: the main thread's session). */
  readonly workers: number;
  /** Most examples per run of {@link perExampleGradients} over LoRA tensors. */
  readonly exampleBatch: number;
  /** Where the frozen base weights are: baked into each graph, or fed at every run. */
  readonly basePlacement: BaseWeightPlacement;
  /** Bytes a run of {@link perExampleGradients} may take beyond the weights (estimated, {@link gradientRunBytes}): fewer examples per run on long sequences or large models. */
  readonly maxRunBytes: number;
  /** Whether gradient graphs recompute their layers in the backward pass (`auto`: by size, {@link recomputeLayers}). */
  readonly recompute: boolean | 'auto';
  /** Main-thread sessions kept at most (the least recently used idle one is released beyond it). */
  readonly maxSessions: number;
  /** Estimated activation bytes of the main-thread sessions kept at most, summed (see the constructor's `maxSessionBytes`). */
  readonly maxSessionBytes: number;
  private readonly sessionOptions: Omit<OrtSessionOptions, 'executionProviders'>;
  private readonly base: BaseWeightMap;
  /** {@link weightBytes} of the base weights (for `auto` recomputation). */
  private readonly baseBytes: number;
  /** The formats of the narrow base weights (fed as stored, decoded in the graph), by name. */
  private readonly narrow: ReadonlyMap<string, NarrowSpec>;
  /** Bytes of the largest narrow matrix, or part of one, decoded at once ({@link largestDecodeBytes}; 0 without narrow weights). */
  private readonly decodeBytes: number;
  /** Entries of a gradient row over the LoRA tensors (computed on first use). */
  private loraEntries: number | undefined;
  private fed: [string, BaseTensor][];
  private pool: Promise<OrtWorkerPool> | undefined;
  private readonly models = new Map<string, Uint8Array>();

  /**
   * @param options.padMultiple - Sequences (and loss positions) are right-padded to a multiple of
   *   this (default 16), so one session serves many lengths.
   * @param options.intraOpNumThreads - onnxruntime threads per operator of the main-thread sessions (default: onnxruntime's, one per core).
   * @param options.parameters - Gradients over the LoRA tensors (`lora`, default: the base weights are
   *   baked into the graph) or over every base tensor (`all`, in the order of `base`'s keys, as tfjs's
   *   `perExampleGradients(..., 'all')`; the base weights are then fed at every run).
   * @param options.workers - Worker threads for {@link perExampleGradients} (default 1: the main
   *   thread). With n ≥ 2 (CPU only) each worker runs its own sessions with one intra-op thread,
   *   examples going to whichever worker is free; the rows are bit-identical to a main-thread
   *   session with `intraOpNumThreads: 1` (the same graph, the same single-threaded kernels).
   * @param options.exampleBatch - Consecutive examples per run of {@link perExampleGradients} over
   *   the LoRA tensors (default 8): one batched graph in which each example reads its own copy of
   *   the adapters, so bigger matrix products and fewer operators per example. Each row equals
   *   the one-example result up to float rounding (padding to the chunk's longest sequence adds
   *   exact zeros in other orders). Gradients over 'all' run one example at a time.
   * @param options.basePlacement - Where the frozen base weights are ({@link BaseWeightPlacement}):
   *   `auto` (default) bakes up to 256 MiB of float32 weights into each graph and feeds larger
   *   ones at every run, read in place from `base`'s arrays (keep them unchanged while the
   *   decoder is in use, or pass new ones with {@link setWeights}). With worker threads, each
   *   worker holds its own copy of fed weights. Narrow base tensors (`base` entries with `bits`:
   *   a BF16 or F16 checkpoint's stored patterns, narrow-weights.ts's storedBaseWeights) are
   *   always fed, at half the bytes of float32, and decoded inside the graph exactly: losses and
   *   gradients are bit-identical to feeding their float32 widening. Not with parameters 'all'.
   * @param options.maxSessions - Main-thread sessions kept at once (default: unlimited with baked
   *   weights, 2 with fed ones). A session per padded length and loss-position bucket is built
   *   on first use; each holds onnxruntime's memory arena, as large as its runs' activations
   *   (gigabytes at real size), so with fed weights the least recently used idle session is
   *   released beyond this many, and memory does not grow with the number of distinct lengths.
   * @param options.maxSessionBytes - Main-thread sessions kept at once, by size (default 4 GiB):
   *   the least recently used idle sessions are released while the estimates of the sessions kept
   *   ({@link activationBytesPerExample} of a loss or logits run; {@link gradientRunBytes} of a
   *   run of per-example gradients) sum above this. Real
   *   text has many lengths, so many graph shapes: kept without this bound, a session per shape
   *   grew the memory of one attribution pass over 800 State-of-the-Union windows (llama2-mini,
   *   T up to 512) past 22 GB.
   * @param options.sessionOptions - Other onnxruntime session options of the main-thread sessions,
   *   e.g. `enableCpuMemArena: false`: a run's buffers go back to the system after it. Measured at
   *   real widths (Qwen2-0.5B's, 6 layers, 512 tokens; BENCHMARKS.md): with the arena (the
   *   default) RSS grows over the first two runs (1.9, then 2.8 GB) and runs then take 2.5 s;
   *   without it the peak stays at 2.0 GB and every run takes about 5.5 s (fresh memory is faulted
   *   in again at every run). With narrow base weights the arena is off unless this turns it on:
   *   their decoded matrices are large short-lived buffers (TinyLlama-1.1B's lm_head: 262 MB of
   *   int32 indices and 262 MB of float32 values), and the arena's growth around them took a
   *   1-layer TinyLlama-1.1B-wide run from a peak of 1.50 GB (arena off) to 3.28 GB (BENCHMARKS.md).
   * @param options.maxRunBytes - Memory a run of {@link perExampleGradients} may take beyond the
   *   weights, estimated with {@link gradientRunBytes} (the examples' activations, their LoRA
   *   copies, gradients and rows, and the largest narrow matrix decoded at once; default
   *   {@link defaultMaxRunBytes}: 2 GiB, or the base weights' bytes as held less 256 MiB where
   *   smaller): a
   *   chunk holds at most exampleBatch examples and at most as many as fit (at least one). Memory
   *   then does not grow with the number of examples, only with the longest sequence of a chunk.
   *   The activations and the base weights' bytes decide `auto` recomputation ({@link recomputeLayers}).
   * @param options.recompute - Gradient graphs recompute each layer's values in the backward pass
   *   instead of keeping them (gradient checkpointing; {@link DecoderGraphOptions.recompute}):
   *   `true`, `false`, or `auto` (default: for sequences whose one-example activations, kept,
   *   exceed maxRunBytes, or exceed 256 MiB and a quarter of the base weights: {@link recomputeLayers}).
   *   The rows and losses are the same bits either way; with recomputation a run keeps about one
   *   layer's activations, so more examples fit {@link maxRunBytes}, for one more forward pass of
   *   the layers.
   */
  constructor(
    readonly backend: OnnxRuntimeBackend,
    readonly config: OnnxDecoderConfig,
    readonly lora: OnnxLoraConfig | null,
    base: BaseWeightMap,
    loraWeights: WeightMap | null,
    options: {
      readonly padMultiple?: number; readonly intraOpNumThreads?: number; readonly parameters?: OnnxParameterSet; readonly workers?: number; readonly exampleBatch?: number;
      readonly basePlacement?: BaseWeightPlacement | 'auto'; readonly maxRunBytes?: number; readonly maxSessions?: number; readonly maxSessionBytes?: number;
      readonly recompute?: boolean | 'auto';
      readonly sessionOptions?: Omit<OrtSessionOptions, 'executionProviders' | 'intraOpNumThreads'>;
    } = {},
  ) {
    this.padMultiple = options.padMultiple ?? 16;
    this.parameters = options.parameters ?? 'lora';
    // Narrow weights: onnxruntime's arena off unless asked for (see the constructor's `sessionOptions`).
    const narrowBase = [...base.values()].some(isNarrow);
    this.sessionOptions = { ...(narrowBase ? { enableCpuMemArena: false } : {}), ...options.sessionOptions, ...(options.intraOpNumThreads === undefined ? {} : { intraOpNumThreads: options.intraOpNumThreads }) };
    this.workers = options.workers ?? 1;
    this.exampleBatch = options.exampleBatch ?? 8;
    if (!Number.isInteger(this.exampleBatch) || this.exampleBatch < 1) throw new DdaError(`ONNX decoder: exampleBatch must be a positive integer, got ${this.exampleBatch}`, 'pass e.g. 8');
    if (!Number.isInteger(this.padMultiple) || this.padMultiple < 1) throw new DdaError(`ONNX decoder: padMultiple must be a positive integer, got ${this.padMultiple}`, 'pass e.g. 16');
    if (!Number.isInteger(this.workers) || this.workers < 1) throw new DdaError(`ONNX decoder: workers must be a positive integer, got ${this.workers}`, 'pass 1 (main thread) or the number of cores');
    if (this.workers > 1 && backend.executionProviders[0] !== 'cpu') throw new DdaError('ONNX decoder: worker threads run on the CPU only', 'use workers: 1 on a GPU backend');
    this.baseBytes = weightBytes(base);
    this.maxRunBytes = options.maxRunBytes ?? defaultMaxRunBytes(this.baseBytes);
    this.recompute = options.recompute ?? 'auto';
    if (!(this.maxRunBytes > 0)) throw new DdaError(`ONNX decoder: maxRunBytes must be positive, got ${this.maxRunBytes}`, 'pass e.g. 2 ** 31');
    this.base = base;
    this.narrow = narrowFormats(base);
    this.decodeBytes = largestDecodeBytes(config, base);
    if (this.narrow.size > 0 && this.parameters === 'all') throw new DdaError("ONNX decoder: gradients over every base tensor need float32 base weights, not narrow (BF16/F16) ones", "widen them (@dda/model's readFloat32), or use parameters 'lora'");
    this.basePlacement = this.parameters === 'all' ? 'inputs' : chooseBaseWeightPlacement(base, options.basePlacement);
    this.fed = this.basePlacement === 'inputs' ? [...base, ...(loraWeights ?? new Map())] : [...(loraWeights ?? new Map())];
    ortWeightFeeds(backend, this.fed, this.weightFeeds);
    this.maxSessions = options.maxSessions ?? (this.basePlacement === 'inputs' ? 2 : Infinity);
    if (!(this.maxSessions >= 1)) throw new DdaError(`ONNX decoder: maxSessions must be at least 1, got ${this.maxSessions}`, 'pass e.g. 2');
    this.maxSessionBytes = options.maxSessionBytes ?? 4 * 2 ** 30;
    this.sessions = new SessionCache(this.maxSessions, async (s) => (await s.catch(() => null))?.session.release(), 'ONNX decoder', this.maxSessionBytes);
  }

  /** The base weights to bake into a graph, if they are baked. */
  private baked(): { baseWeights?: WeightMap; narrowWeights?: ReadonlyMap<string, NarrowSpec> } {
    if (this.basePlacement === 'initializers') return { baseWeights: this.base as WeightMap }; // never narrow (chooseBaseWeightPlacement)
    return this.narrow.size > 0 ? { narrowWeights: this.narrow } : {};
  }

  private graph(T: number, P: number, gradients: boolean, logits: boolean, hidden: boolean): { model: OnnxModel; parameterNames: string[] } {
    return buildDecoderGraph(this.config, this.lora, T, P, { gradients, logits, hidden, parameters: this.parameters, ...this.baked(), recompute: gradients && this.recomputes(T) });
  }

  /** Whether the gradient graphs of `T`-token sequences recompute their layers ({@link recompute}). */
  private recomputes(T: number): boolean {
    return recomputeLayers(this.config, T, this.recompute, this.maxRunBytes, this.baseBytes);
  }

  /** {@link activationBytesPerExample} of one example in a graph of T tokens (with gradients: recomputed or not, as that graph is). */
  private activationBytes(T: number, lossRows: number, gradients = true): number {
    return activationBytesPerExample(this.config, T, lossRows, gradients && this.recomputes(T));
  }

  /** {@link gradientRunBytes} of a run of per-example LoRA gradients of `examples` sequences of T tokens (gradients over 'all': the activations only). */
  runBytes(T: number, lossRows: number, examples: number): number {
    if (this.parameters === 'all') return examples * this.activationBytes(T, lossRows);
    this.loraEntries ??= this.parameterLayout().sizes.reduce((a, b) => a + b, 0);
    return gradientRunBytes(this.config, T, lossRows, examples, { recompute: this.recomputes(T), loraEntries: this.loraEntries, decodeBytes: this.decodeBytes });
  }

  /**
   * Runs `f` with the session of graph `key` (built on first use), which is not released while
   * `f` runs; afterwards idle sessions beyond {@link maxSessions} are released, least recently used first.
   */
  private withSession<R>(key: string, build: () => { model: OnnxModel; parameterNames: string[] }, f: (session: OrtSession) => Promise<R>, bytes: number): Promise<R> {
    return this.sessions.use(key, () => {
      const { model, parameterNames } = build();
      const s = this.backend.createSession(model, this.sessionOptions).then((session) => ({ session, parameterNames }));
      s.catch(() => this.sessions.forget(key));
      return s;
    }, async (s) => f((await s).session), bytes);
  }

  /**
   * One run of {@link perExampleGradients}: consecutive examples in one batched graph with
   * per-example LoRA copies ('lora'), or one example ('all').
   */
  private gradientJob(chunk: readonly OnnxEncodedExample[]): { key: string; b: BatchInputs; build: () => { model: OnnxModel; parameterNames: string[] } } {
    const B = chunk.length;
    const T = this.padded(Math.max(...chunk.map((e) => e.tokens.length)));
    const gradientRows = this.parameterLayout().names;
    if (this.parameters === 'all') {
      const { b } = this.inputs(chunk[0] as OnnxEncodedExample);
      return { key: `rows:${T}:${b.P}`, b, build: () => buildDecoderGraph(this.config, this.lora, T, b.P, { gradients: true, logits: false, parameters: 'all', gradientRows, recompute: this.recomputes(T) }) };
    }
    // Each sequence's own mean loss (meanOver 1): the gradient of copy b is example b's gradient.
    const b = batchInputs(chunk, this.config.vocabSize, T, (p) => lossPositionBucket(p, this.padMultiple, B * T), 1);
    return {
      key: `pe:${B}:${T}:${b.P}`, b,
      build: () => buildDecoderGraph(this.config, this.lora, T, b.P, { batch: B, perExample: true, gradients: true, logits: false, ...this.baked(), gradientRows, recompute: this.recomputes(T) }),
    };
  }

  private workerPool(): Promise<OrtWorkerPool> {
    this.pool ??= (async () => {
      const pool = await OrtWorkerPool.create(this.workers);
      await pool.setConstants(this.poolConstants());
      return pool;
    })();
    return this.pool;
  }

  private poolConstants(): Record<string, PoolTensor> {
    return Object.fromEntries(this.fed.map(([name, t]) => [name, (isNarrow(t) ? { type: t.format === 'bf16' ? 'uint16' : 'float16', data: t.bits, dims: t.shape } : { type: 'float32', data: t.data, dims: t.shape }) satisfies PoolTensor]));
  }

  /**
   * Replaces the weights fed at every run (the sessions, and the base weights baked into them,
   * are kept): the LoRA adapters of another checkpoint, and with parameters 'all' the base
   * weights too. Same names and shapes as the constructor's.
   *
   * @throws DdaError if a tensor is unknown or its size differs, or if base weights are given
   *   while they are baked into the sessions (basePlacement 'initializers'; create a new decoder).
   */
  async setWeights(weights: { readonly base?: BaseWeightMap; readonly lora?: WeightMap }): Promise<void> {
    if (weights.base && this.basePlacement === 'initializers') throw new DdaError('ONNX decoder: the base weights are baked into its sessions', "create a new OnnxDecoder for other base weights, or use basePlacement 'inputs'");
    const next = new Map(this.fed);
    const kind = (t: BaseTensor): string => (isNarrow(t) ? `${t.format}${t.scale !== undefined && t.scale !== 1 ? ` × ${t.scale}` : ''}` : 'float32');
    for (const [name, t] of [...(weights.base ?? []), ...(weights.lora ?? [])]) {
      const old = next.get(name);
      if (!old || tensorElements(old) !== tensorElements(t)) throw new DdaError(`ONNX decoder: '${name}' is not a fed weight of ${old ? tensorElements(old) : 0} values`, 'pass the same tensors as the constructor, with new values');
      if (kind(old) !== kind(t)) throw new DdaError(`ONNX decoder: '${name}' is fed as ${kind(old)}, not ${kind(t)} (the sessions' input types)`, 'pass it in the form the constructor had, or create a new OnnxDecoder');
      next.set(name, t);
    }
    this.fed = [...next];
    ortWeightFeeds(this.backend, this.fed, this.weightFeeds);
    if (this.pool) await (await this.pool).setConstants(this.poolConstants());
  }

  /** One example's inputs: ids padded to T, loss positions padded to a multiple of padMultiple (weight 0). */
  private inputs(e: OnnxEncodedExample): { T: number; b: BatchInputs } {
    const T = this.padded(e.tokens.length);
    return { T, b: batchInputs([e], this.config.vocabSize, T, (p) => this.padded(Math.max(1, p))) };
  }

  /** Feeds of one example (see {@link inputs}). */
  private feeds(e: OnnxEncodedExample): { T: number; P: number; feeds: (names: readonly string[]) => Record<string, OrtTensor> } {
    const { T, b } = this.inputs(e);
    return { T, P: b.P, feeds: (inputNames) => ({ ...ortBatchFeeds(this.backend, b), ...pickFeeds(inputNames, this.weightFeeds) }) };
  }

  private padded(n: number): number {
    return Math.ceil(n / this.padMultiple) * this.padMultiple;
  }

  private async run(e: OnnxEncodedExample, gradients: boolean, logits: boolean, hidden = false): Promise<{ out: Record<string, OrtTensor> }> {
    const { T, P, feeds } = this.feeds(e);
    const out = await this.withSession(`${T}:${P}:${gradients}:${logits}:${hidden}`, () => this.graph(T, P, gradients, logits, hidden), (session) => session.run(feeds(session.inputNames)), this.activationBytes(T, logits ? T : P, gradients));
    return { out };
  }

  /** Mean masked cross-entropy (nats/token) of one example. */
  async loss(e: OnnxEncodedExample): Promise<number> {
    return ((await this.run(e, false, false)).out[DECODER_IO.loss]?.data as Float32Array)[0] as number;
  }

  /** Final hidden states (after the last norm) [n × d], row-major, of one token sequence. */
  async hiddenStates(tokens: Int32Array): Promise<Float32Array> {
    const { out } = await this.run({ tokens, lossMask: new Float32Array(tokens.length - 1) }, false, false, true);
    return (out[DECODER_IO.hidden]?.data as Float32Array).slice(0, tokens.length * this.config.hiddenSize);
  }

  /** Next-token logits [n × V] (row-major) of one token sequence. */
  async logits(tokens: Int32Array): Promise<Float32Array> {
    const { out } = await this.run({ tokens, lossMask: new Float32Array(tokens.length - 1) }, false, true);
    return (out[DECODER_IO.logits]?.data as Float32Array).slice(0, tokens.length * this.config.vocabSize);
  }

  /** Names and sizes of the differentiated tensors, in flattening order (PEFT order for LoRA, `base`'s key order for all). */
  parameterLayout(): { names: string[]; sizes: number[] } {
    if (this.parameters === 'all') return { names: [...this.base.keys()], sizes: [...this.base.values()].map(tensorElements) };
    if (!this.lora) throw new DdaError('ONNX decoder: gradients over LoRA parameters were asked for, but there are no LoRA adapters', "pass a LoRA config, or use parameters 'all'");
    const specs = loraSpecs(this.config, this.lora);
    return { names: specs.flatMap((s) => [s.a, s.b]), sizes: specs.flatMap((s) => [s.aShape[0] * s.aShape[1], s.bShape[0] * s.bShape[1]]) };
  }

  /**
   * Gradient of the example's loss with respect to the decoder's parameter set (see the
   * constructor), flattened and concatenated in {@link parameterLayout} order, and the loss.
   */
  async lossAndGradient(e: OnnxEncodedExample): Promise<{ loss: number; gradient: Float32Array; names: string[]; sizes: number[] }> {
    const { names, sizes } = this.parameterLayout();
    const { out } = await this.run(e, true, false);
    const gradient = new Float32Array(sizes.reduce((a, b) => a + b, 0));
    let off = 0;
    names.forEach((n, k) => {
      const part = out[gradOutput(n)]?.data as Float32Array | undefined;
      if (part === undefined || part.length !== sizes[k]) throw new DdaError(`ONNX decoder: no gradient of the expected size for '${n}'`, 'check that the weights match the config');
      gradient.set(part, off);
      off += part.length;
    });
    return { loss: (out[DECODER_IO.loss]?.data as Float32Array)[0] as number, gradient, names, sizes };
  }

  /**
   * Per-example gradients as a core GradientMatrix (one row per example), what tfjs's
   * `DecoderModel.perExampleGradientsEncoded(ids, encoded, parameters, checkpoint)` returns.
   */
  async perExampleGradients(ids: readonly string[], encoded: readonly OnnxEncodedExample[], checkpoint: string, onSample?: (done: number) => void): Promise<GradientMatrix> {
    if (ids.length !== encoded.length) throw new DdaError(`ONNX decoder: ${ids.length} ids for ${encoded.length} examples`, 'pass one id per example');
    const rows: Float32Array[] = [];
    let done = 0;
    const { dim, parameterNames, parameterSizes } = await this.forEachGradientRow(encoded, (k, row) => {
      rows[k] = row;
      onSample?.(++done);
    });
    return { ids: [...ids], dim, rows, parameterNames, parameterSizes, checkpoint };
  }

  /**
   * The per-example gradients of {@link perExampleGradients} handed to `onRow` one example at a
   * time without collecting them: memory stays one run's rows (a few examples) however many
   * examples there are, for callers that store or reduce each row (e.g. 12.6 M values, 50 MB, per
   * example for rank-16 LoRA on every linear map of TinyLlama-1.1B). `index` is the example's
   * position in `encoded`; rows come in run order ({@link runPlan}: by padded length, then
   * position), the same order whatever the number of workers (a worker's finished run waits for
   * the earlier runs' rows to be handed over). `row` is a view of the run's output: copy it to
   * keep it beyond the call without keeping the run's other rows alive.
   *
   * @returns The row length and the differentiated tensors' names and sizes, in row order.
   */
  async forEachGradientRow(encoded: readonly OnnxEncodedExample[], onRow: (index: number, row: Float32Array) => void | Promise<void>): Promise<{ dim: number; parameterNames: string[]; parameterSizes: number[] }> {
    const { names, sizes } = this.parameterLayout();
    const chunks = this.chunks(encoded);
    const dim = sizes.reduce((a, b) => a + b, 0);
    /** The chunk's rows: views of the one `grad_rows` output. */
    const split = (flat: Float32Array | undefined, B: number): Float32Array[] => {
      if (flat === undefined || flat.length !== B * dim) throw new DdaError(`ONNX decoder: gradient rows of ${flat?.length ?? 0} values, expected ${B} × ${dim}`, 'check that the weights match the config');
      return Array.from({ length: B }, (_, r) => flat.subarray(r * dim, (r + 1) * dim));
    };
    const hand = async (c: number, rows: Float32Array[]): Promise<void> => {
      for (const [r, row] of rows.entries()) await onRow((chunks[c] as number[])[r] as number, row);
    };
    if (this.workers > 1) {
      const pool = await this.workerPool();
      // Finished chunks wait here until every earlier one has been handed over.
      const ready = new Map<number, Float32Array[]>();
      let next = 0;
      let handing: Promise<void> = Promise.resolve();
      await pool.map(chunks, async (w, chunk, c) => {
        const { key, b, build } = this.gradientJob(chunk.map((k) => encoded[k] as OnnxEncodedExample));
        const model = (): Uint8Array => {
          let bytes = this.models.get(key);
          if (bytes === undefined) this.models.set(key, (bytes = encodeOnnxModel(build().model)));
          return bytes;
        };
        ready.set(c, split((await pool.run(w, key, model, poolBatchFeeds(b), [GRAD_ROWS]))[GRAD_ROWS], b.B));
        handing = handing.then(async () => {
          while (ready.has(next)) {
            const rows = ready.get(next) as Float32Array[];
            ready.delete(next);
            await hand(next++, rows);
          }
        });
        await handing;
      });
    } else {
      for (const [c, chunk] of chunks.entries()) {
        const { key, b, build } = this.gradientJob(chunk.map((k) => encoded[k] as OnnxEncodedExample));
        const out = await this.withSession(key, build, (session) => session.run({ ...ortBatchFeeds(this.backend, b), ...pickFeeds(session.inputNames, this.weightFeeds) }), this.runBytes(b.T, b.P / b.B, b.B));
        await hand(c, split(out[GRAD_ROWS]?.data as Float32Array | undefined, b.B));
      }
    }
    return { dim, parameterNames: names, parameterSizes: sizes };
  }

  /**
   * The runs of {@link perExampleGradients}, as lists of example indices: examples taken in order
   * of padded length (stable), so that each graph shape is built once per call and a run pads
   * little; at most exampleBatch per run ('lora'; 'all' runs one at a time) and at most as many
   * as {@link maxRunBytes} allows for the run's longest sequence (at least one).
   */
  private chunks(encoded: readonly OnnxEncodedExample[]): number[][] {
    const max = this.parameters === 'lora' ? this.exampleBatch : 1;
    const len = encoded.map((e) => this.padded(e.tokens.length));
    const order = encoded.map((_, k) => k).sort((a, b) => (len[a] as number) - (len[b] as number) || a - b);
    const out: number[][] = [];
    let chunk: number[] = [];
    for (const k of order) {
      const T = len[k] as number; // the longest so far: examples come in increasing length
      if (chunk.length > 0 && (chunk.length >= max || this.runBytes(T, T / 2, chunk.length + 1) > this.maxRunBytes)) {
        out.push(chunk);
        chunk = [];
      }
      chunk.push(k);
    }
    if (chunk.length) out.push(chunk);
    return out;
  }

  /** Main-thread sessions open now (at most {@link maxSessions} between calls). */
  get openSessions(): number {
    return this.sessions.size;
  }

  /** The runs {@link perExampleGradients} would make for these examples: the example indices of each, in run order. */
  runPlan(encoded: readonly OnnxEncodedExample[]): number[][] {
    return this.chunks(encoded);
  }

  /** Releases every session and stops the workers. */
  async release(): Promise<void> {
    await this.sessions.clear();
    this.models.clear();
    if (this.pool) await (await this.pool).terminate();
    this.pool = undefined;
  }
}
