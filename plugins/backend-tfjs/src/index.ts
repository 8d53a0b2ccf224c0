/**
 * @dda/backend-tfjs: the tfjs engine of dda. A LLaMA-style decoder (RMSNorm, RoPE, SwiGLU or
 * GeGLU, causal / grouped-query / sliding-window attention, the Llama-3, Qwen3 and Gemma-3
 * features) with LoRA adapters, as @dda/model describes it: losses, training, greedy generation,
 * hidden states, per-example gradients and optimizer steps. Registers the `tfjs` engine in
 * @dda/model's `engines` registry and the `tfjs-wasm` (default) and `tfjs-cpu` backends in
 * @dda/core's `backends` registry on import; `tfjs-node` and
 * `tfjs-node-gpu` come from @dda/backend-tfjs-node.
 */
export * from './decoder.js';
export * from './model.js';
export * from './backends.js';
export * from './engine.js';
