/**
 * @dda/model: what a decoder is, without any engine: configurations (the presets, Hugging Face
 * `config.json` of every supported family), tokenizers and chat templates, safetensors and model
 * folders, PEFT adapters, weight initialisation, the real models' shapes, the checks every
 * engine makes before it runs (engine-inputs) and the decoder's layers written once over a small
 * op set that each engine implements (decoder-block). The engines that run it are plugins:
 * @dda/backend-tfjs (tfjs: wasm, cpu; tfjs-node through @dda/backend-tfjs-node) and
 * @dda/backend-onnxruntime.
 *
 * The public entry point, listed name by name (issue 25): helpers of the file formats that only
 * this package uses (safetensors header parsing, Git LFS pointer checks, tokenizer internals) are
 * not exported.
 */
export {
  ALL_LORA_TARGETS, headDim, loraModuleList, validateDecoderConfig, validateLoraConfig,
  type DecoderConfig, type LoraConfig, type LoraModule, type LoraTarget,
} from './config.js';
export {
  applyChatTemplate, BOS_ID, encodeExample, encodeSample, encodeSegments, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID,
  WordTokenizer, type EncodedExample, type EncodeOptions, type OverlongPolicy, type SampleOrigin,
  type Tokenizer, type TruncationCut,
} from './tokenizer.js';
export { chatSample } from './chat-samples.js';
export {
  assertFiniteTensors, cloneTensors, countParameters, decoderWeightSpecs, initDecoderWeights,
  initLoraWeights, linearShape, loraWeightSpecs, targetModule, tensorsEqual, type NamedTensor,
  type TensorMap, type WeightInit,
} from './weights.js';
export {
  decoderLayer, decoderStack, EMBED_WEIGHT, type DecoderBlockConfig, type DecoderOps, type HeadRole, type RmsNormSpec,
} from './decoder-block.js';
export {
  checkStepOptions, checkTokenizerFits, generationPrompt, trainingLoop, type ParameterSet, type TrainingPosition, type TrainOptions,
} from './engine-inputs.js';
export {
  float32ToBf16Bits, float32ToF16Bits, readSafetensors, widenToFloat32, writeSafetensors,
  type SafetensorsDtype, type SafetensorsEntry, type SafetensorsFile, type SafetensorsHeader,
} from './safetensors.js';
export {
  DEFAULT_LORA, MINI_PRESETS, resolveModelSpec, TINY_PRESETS, type ModelSpec, type ResolveModelOptions,
} from './presets.js';
export {
  FAMILY_ARCHITECTURES, inferFamily, parseHfConfig, toHfConfig, type HfConfigOptions,
  type HfModelConfig, type ModelFamily,
} from './hf-config.js';
export {
  CHAT_TEMPLATE_FILE, DEFAULT_CHAT_DATE, FAMILY_CHAT_TEMPLATES, HfTokenizer, strftimeOfDay,
  type HfTokenizerOptions,
} from './hf-tokenizer.js';
export {
  readSafetensorsFolder, writeSafetensorsFolder, writeSafetensorsFolderStreamed, type TensorSource,
  type WriteWeightsOptions,
} from './safetensors-folder.js';
export {
  SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, SafetensorsReader, type RawTensor,
  type SafetensorsReaderOptions, type TensorInfo, type WidenEvent,
} from './safetensors-reader.js';
export { findWeightFiles, type WeightFilesFound } from './weight-files.js';
export {
  ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, checkLoraFits, parseAdapterConfig, PEFT_MODULE_NAMES,
  readPeftAdapter, toAdapterConfig, writePeftAdapter, type PeftAdapter, type SavedModules,
} from './peft.js';
export {
  checkBaseWeights, CONFIG_FILE, hasWeights, LazyModelWeights, loadModelFolder, loadTokenizerFolder, savedTokenizerSettings,
  openModelFolder, saveModelFolder, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, writeTokenizerFolder,
  type LazyModelFolder, type LoadModelOptions, type ModelFolder, type SaveModelOptions,
} from './model-folder.js';
export {
  fillUniformStream, randomDecoderWeights, randomLoraWeights, REAL_MODELS, realModelConfig, writeRandomModelFolder,
  type RandomFolderOptions, type RandomInit, type RealConfigOverrides, type RealModel,
  type RealModelName,
} from './real-models.js';
export { llama2TokenizerFiles, loadLlama2Tokenizer } from './llama2-tokenizer.js';
export { loadPresetTokenizer, PRESET_TOKENIZERS, type PresetTokenizerName } from './preset-tokenizers.js';
export {
  defaultTrainable, engines, type DecoderEngine, type EngineAdapter, type EngineDecoder,
  type EngineGenerateOptions, type EngineGradientLayout, type EngineOpenOptions,
  type EngineOptimizerState, type EngineStartOptions, type EngineTrainOptions, type EngineWeights, type NarrowEngineWeights,
} from './engine.js';
export {
  assertFiniteBaseTensors, baseTensorFromStored, bf16AsScaledF16, isNarrow, storedBaseWeights, tensorBytes, tensorElements, widenBaseTensor,
  widenBaseWeights, type BaseTensor, type BaseWeightMap, type Float32Weight, type NarrowFormat, type NarrowWeight, type StoredTensor,
} from './narrow-weights.js';
export { writeFileAtomic } from './files.js';
