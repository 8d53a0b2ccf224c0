/**
 * @dda/backend-onnxruntime: onnxruntime-node backends (`onnxruntime-cuda`, `onnxruntime-cpu`),
 * registered in the core `backends` registry on import and started lazily (onnxruntime-node is an
 * optional dependency); an ONNX model builder (own protobuf encoder); blocked GEMM scoring.
 */
export * from './backend.js';
export * from './gemm.js';
export * from './onnx-model.js';
export { ProtoWriter, WIRE } from './protobuf.js';
export { cudaUnavailableReason, loadOnnxRuntime, type OrtModule, type OrtSession, type OrtSessionOptions, type OrtTensor } from './ort.js';
export { GraphBuilder } from './autodiff.js';
export * from './decoder-graph.js';
export * from './adam.js';
export * from './train.js';
export * from './ort-pool.js';
export * from './generate.js';
