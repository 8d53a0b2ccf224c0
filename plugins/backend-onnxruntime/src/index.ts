/**
 * @dda/backend-onnxruntime: onnxruntime-node backends (`onnxruntime-cuda`, `onnxruntime-cpu`),
 * registered in the core `backends` registry on import and started lazily (onnxruntime-node is an
 * optional dependency); an ONNX model builder (own protobuf encoder) with reverse-mode
 * differentiation; the decoder as ONNX graphs: losses, per-example gradients (`OnnxDecoder`),
 * training with Adam (`OnnxTrainer`), greedy generation with a key/value cache (`OnnxGenerator`);
 * a worker-thread session pool (`OrtWorkerPool`); blocked GEMM scoring (`OnnxBlockedDot`).
 *
 * The public entry point, listed name by name (issue 25): what the other packages, the tests and
 * the benchmark scripts use; graph-building internals (feeds, IO names, LoRA specs) are not exported.
 */
// the onnxruntime backends (cpu, cuda, webgpu) of the core `backends` registry, started lazily
export {
  type OnnxRuntimeBackend, type OnnxBackendId, registerOnnxRuntimeBackends, logFallbacks,
  startOnnxRuntime, type OnnxRuntimeAvailability, tryStartOnnxRuntime,
} from './backend.js';
// score matrices on onnxruntime's GEMM, blocked over training rows
export {
  type RowBlockSource, rowArraySource, type BlockedDotOptions, DEFAULT_BLOCK_BYTES,
  defaultBlockRows, type GemmPacking, OnnxBlockedDot, type MatMulPeak, measureMatMulPeak,
} from './gemm.js';
// ONNX models: their shape, attributes and protobuf encoding
export {
  ONNX_TYPE, type OnnxElemType, type OnnxShape, type OnnxValueInfo, type OnnxTensor,
  type OnnxAttributeValue, type OnnxNode, type OnnxGraph, type OnnxModel, ONNX_IR_VERSION, attr,
  encodeOnnxModel,
} from './onnx-model.js';
export { ProtoWriter, WIRE } from './protobuf.js';
// loading onnxruntime-node (optional), and its types
export {
  cudaUnavailableReason, loadOnnxRuntime, nvidiaGpuPresent, type OrtModule, type OrtSession,
  type OrtSessionOptions, type OrtTensor,
} from './ort.js';
// graphs with reverse-mode differentiation (each op's vector-Jacobian product)
export { GraphBuilder } from './autodiff.js';
// the decoder as ONNX graphs: losses, per-example gradients, logits and hidden states (OnnxDecoder)
export {
  type OnnxDecoderConfig, type OnnxLoraTarget, type OnnxLoraConfig, type WeightMap,
  type BaseWeightPlacement, BAKED_WEIGHTS_LIMIT_BYTES, chooseBaseWeightPlacement,
  activationBytesPerExample, defaultMaxRunBytes, gradientRunBytes, largestDecodeBytes, RECOMPUTE_ABOVE_BYTES, RECOMPUTE_ABOVE_WEIGHT_SHARE, recomputeLayers, type OnnxParameterSet, type DecoderGraphOptions, buildDecoderGraph,
  buildDecodeStepGraph, type OnnxEncodedExample, type BatchInputs, lossPositionBucket, OnnxDecoder,
} from './decoder-graph.js';
// frozen base weights fed narrow (a BF16 / F16 checkpoint's stored bits), decoded exactly inside the graph
export {
  type NarrowFormat, type NarrowSpec, type Float32Weight, type NarrowWeight, type BaseTensor, type BaseWeightMap, isNarrow,
  bf16Table, bf16AsScaledF16, type StoredTensor, baseTensorFromStored, storedBaseWeights,
} from './narrow-weights.js';
// Adam (Kingma & Ba 2015), operation for operation as tfjs's
export {
  Adam,
} from './adam.js';
// training on onnxruntime
export {
  type OnnxTrainOptions, type OnnxTrainerOptions, OnnxTrainer,
} from './train.js';
// a pool of worker threads, each with its own onnxruntime sessions
export {
  type PoolTensor, type OrtWorkerPoolOptions, OrtWorkerPool,
} from './ort-pool.js';
// greedy decoding on onnxruntime with a key/value cache
export {
  type OnnxGenerateOptions, OnnxGenerator,
} from './generate.js';
// the `onnxruntime` engine of @dda/model's engine contract, and the `onnxruntime` dot-product kernel
export { registerOnnxEngine } from './engine.js';
export { registerOnnxDotKernel } from './dot-kernel.js';
