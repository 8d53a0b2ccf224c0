/**
 * @dda/backend-tfjs: the tfjs engine of dda. A LLaMA-style decoder (RMSNorm, RoPE, SwiGLU or
 * GeGLU, causal / grouped-query / sliding-window attention, the Llama-3, Qwen3 and Gemma-3
 * features) with LoRA adapters, as @dda/model describes it: losses, training, greedy generation,
 * hidden states, per-example gradients and optimizer steps. Registers the `tfjs` engine in
 * @dda/model's `engines` registry and the `tfjs-wasm` (default) and `tfjs-cpu` backends in
 * @dda/core's `backends` registry on import; `tfjs-node` and
 * `tfjs-node-gpu` come from @dda/backend-tfjs-node.
 *
 * The public entry point, listed name by name (issue 25).
 */
// the forward pass (@dda/model's decoder block on tfjs kernels) and sequence losses
export {
  type VariableMap, type DecoderParams, type ForwardOutput, forward, sequenceLosses,
} from './decoder.js';
// the decoder as a model: losses, training, generation, hidden states, per-example gradients
export {
  DecoderModel,
} from './model.js';
// the tfjs-wasm and tfjs-cpu backends of the core `backends` registry
export {
  registerTfjsBackends, startTfjsBackend,
} from './backends.js';
// the `tfjs` engine of @dda/model's engine contract
export { registerTfjsEngine } from './engine.js';
