/**
 * The `onnxruntime` dot-product kernel ({@link DotKernel} of @dda/core): the gradient scorers'
 * train × query inner products as onnxruntime's float32 GEMM ({@link OnnxBlockedDot}, blocked over
 * training rows so memory is one block plus the queries), the index scan's half-float products
 * ({@link OnnxHalfDot}) and the influence scorers' float64 products ({@link OnnxFloat64Dot}), on the
 * backend `startOnnxRuntime` picks.
 * Registered in `dotKernels` on import (priority 35); started once, when first created.
 */
import { dotKernels, registerAsPlugin, type DotKernel } from '@dda/core';
import { startOnnxRuntime } from './backend.js';
import { OnnxBlockedDot, OnnxFloat64Dot, OnnxHalfDot, defaultBlockRows, rowArraySource } from './gemm.js';

let kernel: Promise<DotKernel> | undefined;

/** Starts onnxruntime and its scoring GEMM once; a failed start is tried again on the next call. */
function onnxDotKernel(): Promise<DotKernel> {
  if (kernel === undefined) {
    kernel = startOnnxRuntime().then(async (b) => {
      const gemm = await OnnxBlockedDot.create(b);
      const half = new OnnxHalfDot(b);
      const f64 = new OnnxFloat64Dot(b);
      return {
        id: 'onnxruntime',
        backend: b.id,
        how: `float32 GEMM on ${b.id}`,
        dot: (train, dim, test, nTest, o = {}) => gemm.scores(rowArraySource(train, dim), test, nTest, { blockRows: Math.min(o.blockRows ?? Infinity, defaultBlockRows(dim)) }),
        dotHalf: (bits, rows, dim, test, nTest) => half.scores(bits, rows, dim, test, nTest),
        dot64: (a, nA, bb, nB, dim) => f64.products(a, nA, bb, nB, dim),
      };
    });
    kernel.catch(() => {
      kernel = undefined;
    });
  }
  return kernel;
}

/** Registers the `onnxruntime` dot-product kernel (idempotent; runs on import). */
export function registerOnnxDotKernel(): void {
  if (dotKernels.has('onnxruntime')) return;
  dotKernels.register({
    id: 'onnxruntime',
    description: 'train × query gradient inner products as onnxruntime\'s float32 GEMM, blocked over training rows (float32 accumulation)',
    priority: 35,
    create: () => onnxDotKernel(),
  });
}

registerAsPlugin('@dda/backend-onnxruntime', registerOnnxDotKernel);
