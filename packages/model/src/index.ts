/**
 * @dda/model: a LLaMA-style decoder (RMSNorm, RoPE, SwiGLU, causal / grouped-query /
 * sliding-window attention) with LoRA adapters, on tfjs (wasm backend by default, cpu fallback).
 */
export * from './config.js';
export * from './tokenizer.js';
export * from './chat-samples.js';
export * from './weights.js';
export * from './decoder.js';
export * from './model.js';
export * from './backends.js';
export * from './safetensors.js';
export * from './presets.js';
export * from './hf-config.js';
export * from './hf-tokenizer.js';
export * from './safetensors-folder.js';
export * from './peft.js';
export * from './model-folder.js';
export { writeFileAtomic } from './files.js';
