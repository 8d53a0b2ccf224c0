/**
 * The `tfjs` engine of @dda/model's engine contract: a {@link DecoderModel} per opened decoder, on
 * the tfjs backend started (tfjs-wasm by default, tfjs-cpu where wasm does not start; tfjs-node
 * through @dda/backend-tfjs-node). Registered in @dda/model's `engines` registry at priority 10
 * (after onnxruntime): the reference engine, and the one that offers SGD steps.
 */
import { DdaError, registerAsPlugin } from '@dda/core';
import {
  defaultTrainable, engines, type DecoderConfig, type DecoderEngine, type EncodedExample, type EngineDecoder, type EngineGenerateOptions, type EngineGradientLayout,
  type EngineOpenOptions, type EngineTrainOptions, type EngineWeights, type ParameterSet, type TensorMap, type Tokenizer,
} from '@dda/model';
import { startTfjsBackend } from './backends.js';
import { DecoderModel } from './model.js';

/** A decoder opened on the tfjs engine. */
class TfjsEngineDecoder implements EngineDecoder {
  readonly engine = 'tfjs';
  private layout: EngineGradientLayout | null = null;

  constructor(private readonly model: DecoderModel, readonly trainable: ParameterSet, readonly backend: { readonly id: string; readonly device: string }) {}

  weights(): EngineWeights {
    const s = this.model.snapshot();
    const adapter = this.model.loraConfig;
    return { base: s.base, adapter: adapter && s.lora ? { config: adapter, weights: s.lora } : null };
  }

  setWeights(w: { readonly base?: TensorMap; readonly adapter?: TensorMap }): Promise<void> {
    if (w.base) this.model.replaceBaseTensors(w.base);
    if (w.adapter) {
      const config = this.model.loraConfig;
      if (!config) throw new DdaError('setWeights: adapter weights were given, but this decoder has no adapter', 'open the decoder with an adapter');
      this.model.setLora(config, w.adapter);
    }
    return Promise.resolve();
  }

  loss(e: EncodedExample): Promise<number> {
    return Promise.resolve(this.model.lossesEncoded([e])[0] as number);
  }

  logits(tokens: Int32Array): Promise<Float32Array> {
    return Promise.resolve(this.model.logits(Array.from(tokens)));
  }

  hiddenStates(tokens: Int32Array): Promise<Float32Array> {
    return Promise.resolve(this.model.hiddenStates(Array.from(tokens)));
  }

  gradientLayout(): EngineGradientLayout {
    this.layout ??= this.model.parameterLayout(this.trainable);
    return this.layout;
  }

  async forEachGradientRow(encoded: readonly EncodedExample[], onRow: (index: number, row: Float32Array) => void | Promise<void>): Promise<void> {
    for (const [i, e] of encoded.entries()) {
      const g = this.model.perExampleGradientsEncoded([String(i)], [e], this.trainable, '');
      await onRow(i, g.rows[0] as Float32Array);
    }
  }

  generate(promptIds: readonly number[], o: EngineGenerateOptions): Promise<number[]> {
    return Promise.resolve(this.model.generateIds(promptIds, o));
  }

  train(encoded: readonly EncodedExample[], o: EngineTrainOptions): Promise<number[]> {
    if (o.resume) throw new DdaError('the tfjs engine cannot resume a training (its Adam state is not exported bit for bit)', 'train on the onnxruntime engine to resume, or train from the start');
    const { resume: _r, onState: _s, stateEverySeconds: _e, ...rest } = o;
    return this.model.trainEncoded(encoded, { ...rest, parameters: this.trainable });
  }

  release(): Promise<void> {
    this.model.dispose();
    return Promise.resolve();
  }
}

/** Registers the `tfjs` engine (idempotent). */
export function registerTfjsEngine(): void {
  if (engines.has('tfjs')) return;
  engines.register({
    id: 'tfjs',
    description: 'tfjs (wasm backend by default, cpu fallback): the reference engine; losses, logits, hidden states, per-example gradients, generation, training with Adam or SGD',
    priority: 10,
    create: async (o): Promise<DecoderEngine> => {
      // The tfjs backends among those asked for (others belong to other engines); none: by priority.
      const asked = o.backends?.filter((b) => b.startsWith('tfjs-'));
      const backend = await startTfjsBackend(asked && asked.length > 0 ? asked : undefined, o.log);
      return {
        id: 'tfjs',
        backend: { id: backend.id, device: backend.device },
        optimizers: ['adam', 'sgd'],
        resumable: false,
        open(config: DecoderConfig, tokenizer: Tokenizer, w: EngineWeights, oo: EngineOpenOptions = {}): Promise<EngineDecoder> {
          const model = new DecoderModel(config, tokenizer, w.base);
          try {
            if (w.adapter) model.setLora(w.adapter.config, w.adapter.weights);
          } catch (e) {
            model.dispose();
            throw e;
          }
          return Promise.resolve(new TfjsEngineDecoder(model, oo.trainable ?? defaultTrainable(w), { id: backend.id, device: backend.device }));
        },
      };
    },
  });
}
registerAsPlugin('@dda/backend-tfjs', registerTfjsEngine);
