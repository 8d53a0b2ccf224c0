/**
 * Lazy loading of onnxruntime-node. The package is an optional dependency (its install script
 * may download CUDA binaries, which must never break `npm install`), so it is imported only when
 * a backend is started, and the types below describe the small part of its API this plugin uses.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** An onnxruntime tensor (the part of `ort.Tensor` used here). */
export interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  dispose?(): void;
}

/** An onnxruntime inference session (the part of `ort.InferenceSession` used here). */
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

/** Session options passed to `InferenceSession.create`. */
export interface OrtSessionOptions {
  executionProviders?: string[];
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** onnxruntime's CPU memory arena (default true): freed buffers stay with the session for its next runs. */
  enableCpuMemArena?: boolean;
  /** Pre-plans one allocation for a run's intermediate tensors (default true). */
  enableMemPattern?: boolean;
}

/** The onnxruntime-node module (the part used here). */
export interface OrtModule {
  readonly InferenceSession: { create(model: Uint8Array, options?: OrtSessionOptions): Promise<OrtSession> };
  readonly Tensor: new (type: 'float32' | 'float64' | 'int32' | 'int64' | 'uint16' | 'float16', data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint16Array, dims: readonly number[]) => OrtTensor;
  readonly env: { readonly versions?: Readonly<Record<string, string>> };
  listSupportedBackends?(): readonly { name: string; bundled: boolean }[];
}

const PACKAGE = 'onnxruntime-node';
let loading: Promise<OrtModule> | undefined;

/**
 * Imports onnxruntime-node once and returns it.
 *
 * @throws Error whose message says whether the package is missing (and how to install it) or
 *   is installed but failed to load (e.g. no binary for this platform).
 */
export function loadOnnxRuntime(): Promise<OrtModule> {
  loading ??= (async () => {
    try {
      // A computed specifier keeps TypeScript and bundlers from requiring the optional package at build time.
      const spec: string = PACKAGE;
      const mod = (await import(spec)) as { default?: OrtModule } & Partial<OrtModule>;
      const ort = (mod.default ?? mod) as OrtModule;
      if (typeof ort.InferenceSession?.create !== 'function') throw new Error('the module has no InferenceSession');
      return ort;
    } catch (e) {
      loading = undefined;
      const msg = e instanceof Error ? e.message : String(e);
      const code = (e as { code?: unknown }).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (package|module)|Could not resolve/.test(msg)) {
        throw new Error(
          `${PACKAGE} is not installed (it is an optional dependency); run: ONNXRUNTIME_NODE_INSTALL=skip npm install ${PACKAGE}`,
        );
      }
      throw new Error(`${PACKAGE} is installed but failed to load: ${msg.split('\n')[0]}`);
    }
  })();
  return loading;
}

/** Where Linux's NVIDIA driver says it is loaded. */
const NVIDIA_DRIVER = '/proc/driver/nvidia/version';

/**
 * Whether this machine may have an NVIDIA GPU for CUDA: on Linux, whether the NVIDIA driver is
 * loaded (`/proc/driver/nvidia/version`); on Windows it may (not checked); elsewhere (macOS) none.
 * `exists` and `platform` are for tests.
 */
export function nvidiaGpuPresent(exists: (path: string) => boolean = existsSync, platform: NodeJS.Platform = process.platform): boolean {
  if (platform === 'linux') return exists(NVIDIA_DRIVER);
  return platform === 'win32';
}

/**
 * Why the CUDA execution provider cannot run here, or undefined when it may: a build without it, no
 * NVIDIA GPU (see {@link nvidiaGpuPresent}), or its provider library missing (onnxruntime-node
 * ships it outside the npm tarball, downloaded by its install script, which this project skips).
 * One short line. `exists` is for tests.
 */
export function cudaUnavailableReason(ort: OrtModule, exists: (path: string) => boolean = existsSync): string | undefined {
  const listed = ort.listSupportedBackends?.().some((b) => b.name === 'cuda');
  if (listed === false) return `${PACKAGE} has no CUDA execution provider on ${process.platform}/${process.arch}`;
  if (!nvidiaGpuPresent(exists)) return process.platform === 'linux' ? `no NVIDIA GPU (${NVIDIA_DRIVER} is missing)` : `no NVIDIA GPU on ${process.platform}`;
  let binDir: string | undefined;
  try {
    const req = createRequire(import.meta.url);
    const root = dirname(dirname(req.resolve(PACKAGE))); // .../onnxruntime-node/dist/index.js -> package root
    const napiDirs = readdirSync(join(root, 'bin')).filter((d) => d.startsWith('napi-v'));
    binDir = napiDirs.map((d) => join(root, 'bin', d, process.platform, process.arch)).find((d) => exists(d));
  } catch {
    binDir = undefined;
  }
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  if (binDir === undefined || !exists(join(binDir, lib))) {
    return `${lib} is not installed (with CUDA 12 and network: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/${PACKAGE}/script/install)`;
  }
  return undefined;
}

/** Folders where the Vulkan loader is looked for on Linux (Debian/Ubuntu multiarch, Fedora, generic). */
const VULKAN_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib', '/lib/x86_64-linux-gnu', '/lib64'];

/**
 * Why the WebGPU execution provider cannot run here, or undefined when it may (the probe session
 * decides then): onnxruntime-node bundles WebGPU (Dawn) in its npm package on some platforms
 * (`listSupportedBackends()` says so); on Linux Dawn runs on Vulkan, so the Vulkan loader
 * (libvulkan.so.1, Debian's libvulkan1) and a GPU's Vulkan driver must be installed. Checked
 * before a session is tried, because Dawn prints its own warning to stderr when the loader is missing.
 */
export function webgpuUnavailableReason(ort: OrtModule): string | undefined {
  const entry = ort.listSupportedBackends?.().find((b) => b.name === 'webgpu');
  if (entry === undefined) return `${PACKAGE} ${ort.env.versions?.node ?? ''} has no WebGPU execution provider on ${process.platform}/${process.arch}`.replace('  ', ' ');
  if (!entry.bundled) return `${PACKAGE}'s WebGPU execution provider is not bundled on ${process.platform}/${process.arch}`;
  const ldPaths = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d !== '');
  if (process.platform === 'linux' && ![...ldPaths, ...VULKAN_DIRS].some((d) => existsSync(join(d, 'libvulkan.so.1')))) {
    return 'the Vulkan loader (libvulkan.so.1) is not installed: WebGPU on Linux runs on Vulkan (install libvulkan1 and the GPU\'s Vulkan driver)';
  }
  return undefined;
}
