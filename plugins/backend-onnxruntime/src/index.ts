/**
 * @dda/backend-onnxruntime: onnxruntime-node backends (`onnxruntime-cuda`, `onnxruntime-cpu`),
 * registered in the core `backends` registry on import and started lazily (onnxruntime-node is an
 * optional dependency); an ONNX model builder (own protobuf encoder) with reverse-mode
 * differentiation; the decoder as ONNX graphs: losses, per-example gradients (`OnnxDecoder`),
 * training with Adam (`OnnxTrainer`), greedy generation with a key/value cache (`OnnxGenerator`);
 * a worker-thread session pool (`OrtWorkerPool`); blocked GEMM scoring (`OnnxBlockedDot`).
 */
export * from './backend.js';
export * from './gemm.js';
export * from './onnx-model.js';
export { ProtoWriter, WIRE } from './protobuf.js';
export { cudaUnavailableReason, loadOnnxRuntime, nvidiaGpuPresent, type OrtModule, type OrtSession, type OrtSessionOptions, type OrtTensor } from './ort.js';
export { GraphBuilder } from './autodiff.js';
export * from './decoder-graph.js';
export * from './adam.js';
export * from './train.js';
export * from './ort-pool.js';
export * from './generate.js';
export * from './engine.js';
export { registerOnnxDotKernel } from './dot-kernel.js';
