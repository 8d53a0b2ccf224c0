import { describe, expect, it } from 'vitest';
import { cudaUnavailableReason, logFallbacks, nvidiaGpuPresent, startOnnxRuntime, type OrtModule } from '@dda/backend-onnxruntime';

/** An onnxruntime module that lists a CUDA provider (nothing else of it is used). */
const withCuda = { listSupportedBackends: () => [{ name: 'cpu', bundled: true }, { name: 'cuda', bundled: false }] } as unknown as OrtModule;

describe('the CUDA fallback line', () => {
  it('knows an NVIDIA GPU by its driver on Linux, none on macOS', () => {
    expect(nvidiaGpuPresent(() => false, 'linux')).toBe(false);
    expect(nvidiaGpuPresent((p) => p === '/proc/driver/nvidia/version', 'linux')).toBe(true);
    expect(nvidiaGpuPresent(() => true, 'darwin')).toBe(false);
  });

  it('gives one short reason: no GPU first, then the missing provider library with the command that installs it', () => {
    if (process.platform !== 'linux') return; // the paths below are Linux's
    expect(cudaUnavailableReason(withCuda, () => false)).toBe('no NVIDIA GPU (/proc/driver/nvidia/version is missing)');
    const noLib = cudaUnavailableReason(withCuda, (p) => p === '/proc/driver/nvidia/version');
    expect(noLib).toBe('libonnxruntime_providers_cuda.so is not installed (with CUDA 12 and network: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install)');
  });

  it('is not logged without an NVIDIA GPU, and once per process with one', () => {
    const lines: string[] = [];
    const failure = { id: 'onnxruntime-cuda', reason: 'libonnxruntime_providers_cuda.so is not installed (test)' };
    logFallbacks([failure], 'onnxruntime-cpu', (l) => lines.push(l), false);
    expect(lines).toEqual([]);
    logFallbacks([failure], 'onnxruntime-cpu', (l) => lines.push(l), true);
    logFallbacks([failure], 'onnxruntime-cpu', (l) => lines.push(l), true);
    expect(lines).toEqual(['backend onnxruntime-cuda unavailable: libonnxruntime_providers_cuda.so is not installed (test); using onnxruntime-cpu']);
    // Another backend's fallback is still logged.
    logFallbacks([{ id: 'onnxruntime-webgpu', reason: 'no Vulkan (test)' }], 'onnxruntime-cpu', (l) => lines.push(l), true);
    expect(lines).toHaveLength(2);
  });

  it('here: starting the default backends logs nothing on a machine without an NVIDIA GPU', async () => {
    const lines: string[] = [];
    const b = await startOnnxRuntime(['onnxruntime-cuda', 'onnxruntime-cpu'], (l) => lines.push(l));
    if (!nvidiaGpuPresent()) {
      expect(b.id).toBe('onnxruntime-cpu');
      expect(lines).toEqual([]);
    } else if (b.id === 'onnxruntime-cpu') {
      expect(lines).toEqual([expect.stringMatching(/^backend onnxruntime-cuda unavailable: .{1,160}; using onnxruntime-cpu$/)]);
    }
  });
});
