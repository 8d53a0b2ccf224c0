/**
 * The `onnxruntime` engine of @dda/model's engine contract: an opened decoder holds its weights in
 * JavaScript memory and builds, on first use, an {@link OnnxDecoder} (losses, logits, hidden states,
 * gradient rows), an {@link OnnxGenerator} per generation limit (greedy decoding with a key/value
 * cache) and, for each `train` call, an {@link OnnxTrainer} (Adam with fresh moments) whose trained
 * tensors are copied back. Registered in @dda/model's `engines` registry at priority 20 (before
 * tfjs), on the onnxruntime backends this plugin registers (CUDA where it starts, else the CPU).
 */
import { DdaError, registerAsPlugin } from '@dda/core';
import {
  assertFiniteBaseTensors, assertFiniteTensors, checkLoraFits, checkTokenizerFits, cloneTensors, defaultTrainable, engines, isNarrow, tensorElements, validateDecoderConfig,
  validateLoraConfig, widenBaseTensor, widenBaseWeights,
  type BaseWeightMap, type DecoderConfig, type DecoderEngine, type EncodedExample, type EngineAdapter, type EngineDecoder, type EngineGenerateOptions, type EngineGradientLayout,
  type EngineOpenOptions, type EngineTrainOptions, type EngineWeights, type NarrowEngineWeights, type ParameterSet, type TensorMap, type Tokenizer, type TrainingPosition,
} from '@dda/model';
import { ONNX_BACKEND_IDS, startOnnxRuntime, type OnnxBackendId, type OnnxRuntimeBackend } from './backend.js';
import { OnnxDecoder } from './decoder-graph.js';
import { OnnxGenerator } from './generate.js';
import { OnnxTrainer } from './train.js';

/**
 * A decoder opened on the onnxruntime engine. Its base tensors may be narrow (openNarrow): the
 * gradient, loss, logits and hidden-state graphs take them as they are; generation and training,
 * whose graphs take float32 only, get float32 copies widened for them (held while a generator lives,
 * or for one `train` call).
 */
class OnnxEngineDecoder implements EngineDecoder {
  readonly engine = 'onnxruntime';
  readonly backend: { readonly id: string; readonly device: string };
  private decoder: OnnxDecoder | null = null;
  private readonly generators = new Map<number, OnnxGenerator>();

  constructor(
    private readonly onnx: OnnxRuntimeBackend,
    private readonly config: DecoderConfig,
    private base: BaseWeightMap,
    private adapter: EngineAdapter | null,
    readonly trainable: ParameterSet,
    private readonly threads: number | undefined,
    private readonly recompute: boolean | 'auto' = 'auto',
  ) {
    this.backend = { id: onnx.id, device: onnx.device };
  }

  weights(): EngineWeights {
    return { base: new Map([...this.base].map(([n, t]) => [n, isNarrow(t) ? widenBaseTensor(t) : { shape: [...t.shape], data: t.data.slice() }])), adapter: this.adapter ? { config: this.adapter.config, weights: cloneTensors(this.adapter.weights) } : null };
  }

  private options(): { intraOpNumThreads?: number } {
    return this.threads !== undefined ? { intraOpNumThreads: this.threads } : {};
  }

  /** The decoder of losses, logits, hidden states and gradients, built on first use. */
  private onnxDecoder(): OnnxDecoder {
    this.decoder ??= new OnnxDecoder(this.onnx, this.config, this.adapter?.config ?? null, this.base, this.adapter?.weights ?? null, {
      parameters: this.trainable, ...this.options(), recompute: this.recompute, ...(this.trainable === 'all' ? { basePlacement: 'inputs' as const } : {}),
    });
    return this.decoder;
  }

  /** Drops the generators (they bake the weights in); the decoder takes new weights through setWeights. */
  private async dropGenerators(): Promise<void> {
    const gs = [...this.generators.values()];
    this.generators.clear();
    for (const g of gs) await g.release();
  }

  /** The base weights as float32 (narrow ones widened: a new copy, for graphs that take float32 only). */
  private floatBase(): TensorMap {
    return [...this.base.values()].some(isNarrow) ? widenBaseWeights(this.base) : (this.base as TensorMap);
  }

  async setWeights(w: { readonly base?: TensorMap; readonly adapter?: TensorMap }): Promise<void> {
    if (w.adapter && !this.adapter) throw new DdaError('setWeights: adapter weights were given, but this decoder has no adapter', 'open the decoder with an adapter');
    if (w.base) {
      assertFiniteTensors(w.base, 'base weights');
      for (const [name, t] of w.base) {
        const old = this.base.get(name);
        if (!old || tensorElements(old) !== t.data.length) throw new DdaError(`base weight '${name}' is ${old ? `of ${tensorElements(old)} values, not ${t.data.length}` : 'not a weight of this model'}`);
        if (isNarrow(old)) throw new DdaError(`base weight '${name}' is held narrow (${old.format}), and setWeights takes float32 base tensors`, 'open the decoder with float32 base weights (open, not openNarrow) to replace base tensors');
      }
    }
    if (w.adapter && this.adapter) checkLoraFits(this.config, this.adapter.config, w.adapter);
    if (w.base) this.base = new Map([...this.base, ...w.base]);
    if (w.adapter && this.adapter) this.adapter = { config: this.adapter.config, weights: w.adapter };
    await this.dropGenerators();
    if (this.decoder) {
      if (w.base && this.decoder.basePlacement === 'initializers') {
        // Baked base weights: a new decoder for the new ones.
        await this.decoder.release();
        this.decoder = null;
      } else {
        await this.decoder.setWeights({ ...(w.base ? { base: w.base } : {}), ...(w.adapter ? { lora: w.adapter } : {}) });
      }
    }
  }

  loss(e: EncodedExample): Promise<number> {
    return this.onnxDecoder().loss(e);
  }

  logits(tokens: Int32Array): Promise<Float32Array> {
    return this.onnxDecoder().logits(tokens);
  }

  hiddenStates(tokens: Int32Array): Promise<Float32Array> {
    return this.onnxDecoder().hiddenStates(tokens);
  }

  gradientLayout(): EngineGradientLayout {
    const { names, sizes } = this.onnxDecoder().parameterLayout();
    const shapeOf = (n: string): number[] => [...((this.adapter?.weights.get(n) ?? this.base.get(n))?.shape ?? [])];
    return { names, sizes, shapes: names.map(shapeOf) };
  }

  async forEachGradientRow(encoded: readonly EncodedExample[], onRow: (index: number, row: Float32Array) => void | Promise<void>): Promise<void> {
    await this.onnxDecoder().forEachGradientRow(encoded, onRow);
  }

  async generate(promptIds: readonly number[], o: EngineGenerateOptions): Promise<number[]> {
    let g = this.generators.get(o.limit);
    if (!g) {
      g = new OnnxGenerator(this.onnx, this.config, o.limit, this.floatBase(), this.adapter, this.options());
      this.generators.set(o.limit, g);
    }
    return g.generate(promptIds, { maxNewTokens: o.maxNewTokens, eosId: o.eosId, ...(o.stopIds ? { stopIds: o.stopIds } : {}) });
  }

  async train(encoded: readonly EncodedExample[], o: EngineTrainOptions): Promise<number[]> {
    const { optimizer = 'adam', ...rest } = o;
    if (optimizer !== 'adam') throw new DdaError(`the onnxruntime engine trains with Adam only, not '${optimizer}'`, "use the tfjs engine for SGD steps (engines.resolve picks it when the optimizer is 'sgd')");
    const trainer = new OnnxTrainer(this.onnx, this.config, this.trainable, this.floatBase(), this.adapter, { ...this.options(), recompute: this.recompute });
    const install = async (): Promise<void> => {
      const w = trainer.trainedWeights();
      await this.setWeights(this.trainable === 'all' ? { base: w } : { adapter: w });
    };
    try {
      return await trainer.train(encoded, {
        ...rest,
        // The epoch's weights are in the decoder before either callback reads them (weights()).
        ...(o.onState ? { onState: async (position: TrainingPosition, state: { arrays: Float32Array[]; numbers: number[] }) => {
          await install();
          await o.onState?.(position, state);
        } } : {}),
        onEpochEnd: async (epoch, loss) => {
          await install();
          await o.onEpochEnd?.(epoch, loss);
        },
      });
    } finally {
      await install();
      await trainer.release();
    }
  }

  async release(): Promise<void> {
    await this.dropGenerators();
    if (this.decoder) await this.decoder.release();
    this.decoder = null;
  }
}

/**
 * Registers the `onnxruntime` engine (idempotent). The onnxruntime ids among its start options'
 * `backends` choose the backend (default: CUDA, then the CPU); its start option `recompute`
 * (`true`, `false` or `'auto'`, the default) is the gradient and training graphs' per-layer
 * recomputation (OnnxDecoder's `recompute`: the same bits, less memory, one more forward pass).
 *
 * @throws DdaError from `create` if `recompute` is given as anything else.
 */
export function registerOnnxEngine(): void {
  if (engines.has('onnxruntime')) return;
  engines.register({
    id: 'onnxruntime',
    description: 'onnxruntime (CUDA where it starts, else the CPU): the decoder as ONNX graphs with their VJPs; losses, logits, hidden states, per-example gradients, generation with a key/value cache, training with Adam',
    priority: 20,
    create: async (o): Promise<DecoderEngine> => {
      // The onnxruntime backends among those asked for (others belong to other engines); none: CUDA, then the CPU.
      const asked = (o.backends ?? []).filter((b): b is OnnxBackendId => b.startsWith('onnxruntime-'));
      const recompute = o.recompute ?? 'auto';
      if (recompute !== true && recompute !== false && recompute !== 'auto') throw new DdaError(`the onnxruntime engine's start option recompute is ${JSON.stringify(recompute)}`, "pass true, false or 'auto'");
      const onnx = await startOnnxRuntime(asked.length > 0 ? asked : ONNX_BACKEND_IDS, o.log);
      // Both open and openNarrow: the checks and the decoder (narrow base tensors are kept as given).
      const openDecoder = (config: DecoderConfig, tokenizer: Tokenizer, w: NarrowEngineWeights, oo: EngineOpenOptions): Promise<EngineDecoder> => {
        validateDecoderConfig(config);
        checkTokenizerFits(tokenizer, config);
        assertFiniteBaseTensors(w.base, 'base weights');
        if (w.adapter) {
          validateLoraConfig(w.adapter.config);
          checkLoraFits(config, w.adapter.config, w.adapter.weights);
        }
        const trainable = oo.trainable ?? defaultTrainable(w);
        if (trainable === 'lora' && !w.adapter) throw new DdaError('gradients or training over LoRA parameters were asked for, but there are no LoRA adapters', "open with an adapter, or trainable 'all'");
        if (trainable === 'all' && [...w.base.values()].some(isNarrow)) throw new DdaError("gradients or training over every base weight ('all') need float32 base weights, but narrow ones were given", 'open with float32 base weights (open), or open narrow weights with a LoRA adapter');
        return Promise.resolve(new OnnxEngineDecoder(onnx, config, w.base, w.adapter, trainable, oo.threads, recompute));
      };
      return {
        id: 'onnxruntime',
        backend: { id: onnx.id, device: onnx.device },
        optimizers: ['adam'],
        resumable: true,
        open(config: DecoderConfig, tokenizer: Tokenizer, w: EngineWeights, oo: EngineOpenOptions = {}): Promise<EngineDecoder> {
          return openDecoder(config, tokenizer, w, oo);
        },
        // Narrow base weights are fed as stored and decoded inside the graphs (OnnxDecoder), bit-identical to float32.
        openNarrow(config: DecoderConfig, tokenizer: Tokenizer, w: NarrowEngineWeights, oo: EngineOpenOptions = {}): Promise<EngineDecoder> {
          for (const [name, t] of w.base) {
            const n = t.shape.reduce((a, b) => a * b, 1);
            if (tensorElements(t) !== n) throw new DdaError(`base weight '${name}' holds ${tensorElements(t)} values for shape [${t.shape.join(', ')}]`, 'build narrow tensors with storedBaseWeights');
          }
          return openDecoder(config, tokenizer, w, oo);
        },
      };
    },
  });
}
registerAsPlugin('@dda/backend-onnxruntime', registerOnnxEngine);
