/**
 * @dda/model: what a decoder is, without any engine: configurations (the presets, Hugging Face
 * `config.json` of every supported family), tokenizers and chat templates, safetensors and model
 * folders, PEFT adapters, weight initialisation, the real models' shapes and the checks every
 * engine makes before it runs (engine-inputs). The engines that run it are plugins:
 * @dda/backend-tfjs (tfjs: wasm, cpu; tfjs-node through @dda/backend-tfjs-node) and
 * @dda/backend-onnxruntime.
 */
export * from './config.js';
export * from './tokenizer.js';
export * from './chat-samples.js';
export * from './weights.js';
export * from './engine-inputs.js';
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
export * from './engine.js';
