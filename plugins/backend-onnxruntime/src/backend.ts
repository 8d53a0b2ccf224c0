import { DdaError, backends, ortThreadsFromEnvironment, registerAsPlugin, type Backend, type ResolveFailure } from '@dda/core';
import { encodeOnnxModel, type OnnxModel } from './onnx-model.js';
import { cudaUnavailableReason, loadOnnxRuntime, nvidiaGpuPresent, webgpuUnavailableReason, type OrtModule, type OrtSession, type OrtSessionOptions } from './ort.js';

/** An onnxruntime-node backend: the loaded runtime and the execution providers its sessions use. */
export interface OnnxRuntimeBackend extends Backend {
  readonly engine: 'onnxruntime';
  /** `['cuda']`, `['webgpu']` or `['cpu']`: the providers every session of this backend is created with (onnxruntime runs nodes a GPU provider lacks on the CPU). */
  readonly executionProviders: readonly string[];
  readonly ort: OrtModule;
  /** Creates an inference session on this backend's provider from a model or its encoded bytes. */
  createSession(model: OnnxModel | Uint8Array, options?: Omit<OrtSessionOptions, 'executionProviders'>): Promise<OrtSession>;
}

/**
 * Backend ids {@link startOnnxRuntime} tries by default, fastest first. `onnxruntime-webgpu` is
 * registered too but tried only when asked for (e.g. `startOnnxRuntime(['onnxruntime-webgpu',
 * 'onnxruntime-cpu'])`): its results have not been checked against the CPU's on a GPU yet.
 */
export const ONNX_BACKEND_IDS = ['onnxruntime-cuda', 'onnxruntime-cpu'] as const;
/** Every backend id this plugin registers. */
export const ALL_ONNX_BACKEND_IDS = ['onnxruntime-cuda', 'onnxruntime-webgpu', 'onnxruntime-cpu'] as const;
/** One of {@link ALL_ONNX_BACKEND_IDS}. */
export type OnnxBackendId = (typeof ALL_ONNX_BACKEND_IDS)[number];

const PROVIDERS: Readonly<Record<OnnxBackendId, string>> = { 'onnxruntime-cuda': 'cuda', 'onnxruntime-webgpu': 'webgpu', 'onnxruntime-cpu': 'cpu' };

// A one-node model (y = x + x) that every provider must be able to run before the backend is used.
const PROBE: OnnxModel = {
  graph: {
    name: 'probe',
    nodes: [{ opType: 'Add', inputs: ['x', 'x'], outputs: ['y'] }],
    inputs: [{ name: 'x', elemType: 1, shape: [2] }],
    outputs: [{ name: 'y', elemType: 1, shape: [2] }],
  },
};

async function startOnnx(id: OnnxBackendId): Promise<OnnxRuntimeBackend> {
  const ort = await loadOnnxRuntime();
  const provider = PROVIDERS[id];
  const why = provider === 'cuda' ? cudaUnavailableReason(ort) : provider === 'webgpu' ? webgpuUnavailableReason(ort) : undefined;
  if (why !== undefined) throw new Error(why);
  const executionProviders = [provider];
  const intraOpNumThreads = ortThreadsFromEnvironment();
  const threads = intraOpNumThreads === undefined ? {} : { intraOpNumThreads };
  const createSession = async (model: OnnxModel | Uint8Array, options: Omit<OrtSessionOptions, 'executionProviders'> = {}): Promise<OrtSession> =>
    await ort.InferenceSession.create(model instanceof Uint8Array ? model : encodeOnnxModel(model), {
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      ...threads,
      ...options,
      executionProviders,
    });
  // Run the probe: a provider that loads but cannot execute (driver mismatch, no device) fails here, not mid-scoring.
  let probe: OrtSession;
  try {
    probe = await createSession(PROBE);
  } catch (e) {
    // e.g. WebGPU: "Failed to get a WebGPU adapter: No supported adapters" (no GPU, or no Vulkan driver for it).
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0] as string;
    throw new Error(`the ${provider} provider cannot start: ${msg.replace(/^.*?(Failed to|No supported)/, '$1')}`);
  }
  try {
    const out = await probe.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
    const y = out.y?.data as Float32Array | undefined;
    if (y?.[0] !== 2 || y[1] !== 4) throw new Error(`the ${provider} provider computed 1+1, 2+2 as ${y ? Array.from(y).join(', ') : 'nothing'}`);
  } finally {
    await probe.release();
  }
  const version = ort.env.versions?.node ?? ort.env.versions?.common ?? '?';
  return {
    id,
    engine: 'onnxruntime',
    device: provider === 'cpu' ? `cpu (onnxruntime-node ${version}, MLAS)` : `gpu (onnxruntime-node ${version}, ${provider === 'cuda' ? 'CUDA' : 'WebGPU'} execution provider)`,
    executionProviders,
    ort,
    createSession,
  };
}

let registered = false;
/**
 * Registers `onnxruntime-cuda` (priority 45), `onnxruntime-webgpu` (40) and `onnxruntime-cpu` (priority 35) in the core
 * `backends` registry; idempotent, runs on import. Creating either loads onnxruntime-node lazily
 * and runs a probe session; it throws, with the reason, where that is impossible.
 * These backends run ONNX graphs: the scoring GEMM, and the decoder's training, generation and
 * per-example gradients (OnnxTrainer, OnnxGenerator, OnnxDecoder), which callers choose over tfjs.
 */
export function registerOnnxRuntimeBackends(): void {
  if (registered) return;
  registered = true;
  backends.register({
    id: 'onnxruntime-cuda',
    description: 'onnxruntime-node with the CUDA execution provider (ONNX graphs: decoder training, generation and gradients, scoring GEMM; optional CUDA binaries)',
    priority: 45,
    create: () => startOnnx('onnxruntime-cuda'),
  });
  backends.register({
    id: 'onnxruntime-webgpu',
    description: 'onnxruntime-node with its bundled WebGPU execution provider (Dawn; on Linux needs Vulkan and a GPU driver; not tried by default)',
    priority: 40,
    create: () => startOnnx('onnxruntime-webgpu'),
  });
  backends.register({
    id: 'onnxruntime-cpu',
    description: 'onnxruntime-node on the CPU (MLAS; ONNX graphs: decoder training, generation and gradients, scoring GEMM)',
    priority: 35,
    create: () => startOnnx('onnxruntime-cpu'),
  });
}
registerAsPlugin('@dda/backend-onnxruntime', registerOnnxRuntimeBackends);

const started = new Map<string, Promise<OnnxRuntimeBackend>>();

/** Fallback lines already logged by this process. */
const fallbacksLogged = new Set<string>();

/**
 * Logs, once per process, each backend that did not start before `chosen` did:
 * `backend onnxruntime-cuda unavailable: <reason>; using onnxruntime-cpu`. CUDA on a machine with
 * no NVIDIA GPU (`gpu` false, see {@link nvidiaGpuPresent}) is no fallback and is not logged.
 * @internal
 */
export function logFallbacks(failures: readonly ResolveFailure[], chosen: string, log: (line: string) => void, gpu: boolean = nvidiaGpuPresent()): void {
  for (const f of failures) {
    if (f.id === 'onnxruntime-cuda' && !gpu) continue;
    const line = `backend ${f.id} unavailable: ${f.reason}; using ${chosen}`;
    if (fallbacksLogged.has(line)) continue;
    fallbacksLogged.add(line);
    log(line);
  }
}

/**
 * Starts the first onnxruntime backend that works among `preferred` (default: CUDA, then CPU),
 * logging each fallback with its reason through `log` (once per process; see {@link logFallbacks}). Started backends are cached per id list.
 *
 * @throws DdaError listing every backend's reason when none starts.
 */
export function startOnnxRuntime(preferred: readonly OnnxBackendId[] = ONNX_BACKEND_IDS, log: (line: string) => void = () => {}): Promise<OnnxRuntimeBackend> {
  const key = preferred.join(',');
  let p = started.get(key);
  if (p === undefined) {
    p = (async () => {
      const { id, value, failures } = await backends.resolve({}, preferred);
      logFallbacks(failures, id, log);
      return value as OnnxRuntimeBackend;
    })();
    started.set(key, p);
    p.catch(() => started.delete(key));
  }
  return p;
}

/** What {@link tryStartOnnxRuntime} found: a started backend, or why none started. */
export type OnnxRuntimeAvailability =
  | { readonly backend: OnnxRuntimeBackend; readonly reason?: undefined }
  | { readonly backend: null; readonly reason: string };

/**
 * {@link startOnnxRuntime} for callers that fall back to another engine: never throws; when no
 * onnxruntime backend starts (package missing, no binary for this platform, a probe run that
 * fails), it returns the reason of each (one line each, `id: reason`) for the caller to log with
 * the engine it falls back to. Fallbacks between onnxruntime backends (CUDA → CPU) are logged
 * through `log` as with startOnnxRuntime.
 */
export async function tryStartOnnxRuntime(log: (line: string) => void = () => {}, preferred: readonly OnnxBackendId[] = ONNX_BACKEND_IDS): Promise<OnnxRuntimeAvailability> {
  try {
    return { backend: await startOnnxRuntime(preferred, log) };
  } catch (e) {
    // The registry's error lists one "  - id: reason" line per backend; keep those, on one line.
    const hint = e instanceof DdaError && e.hint ? ` (${e.hint})` : '';
    const message = e instanceof Error ? e.message.slice(0, e.message.length - hint.length) : String(e);
    const lines = message.split('\n').filter((l) => l.startsWith('  - ')).map((l) => l.slice(4));
    return { backend: null, reason: lines.length ? lines.join('; ') : message };
  }
}
