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
export * from './safetensors-reader.js';
export * from './weight-files.js';
export * from './peft.js';
export * from './model-folder.js';
export { writeFileAtomic } from './files.js';
export * from './real-models.js';
export * from './llama2-tokenizer.js';
export * from './preset-tokenizers.js';
