/**
 * A pool of worker threads, each with its own onnxruntime-node sessions (one intra-op thread
 * each by default), so that independent runs (one example's gradient, one shard of a batch)
 * execute on several cores at once. onnxruntime-node runs a session on the JavaScript thread
 * that calls it, so two sessions of one thread never overlap; two workers do.
 *
 * Models are built on the main thread and sent to a worker the first time it runs them (by key);
 * tensors that every run reads (weights) are registered once with {@link OrtWorkerPool.setConstants}
 * and, when they live in a SharedArrayBuffer, refreshed from it by each worker when they change.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { DdaError } from '@dda/core';
import { DECODE_ALIAS } from './narrow-weights.js';
import { SessionCache } from './session-cache.js';
import type { OrtSessionOptions } from './ort.js';

/** A tensor crossing to a worker: element type, data and dims. */
export interface PoolTensor {
  readonly type: 'float32' | 'int64' | 'int32' | 'uint16' | 'float16';
  readonly data: Float32Array | BigInt64Array | Int32Array | Uint16Array;
  readonly dims: readonly number[];
}

/** Options of {@link OrtWorkerPool.create}. */
export interface OrtWorkerPoolOptions {
  /** onnxruntime threads per operator in each worker (default 1). */
  readonly intraOpNumThreads?: number;
  readonly graphOptimizationLevel?: OrtSessionOptions['graphOptimizationLevel'];
  /**
   * Sessions each worker keeps at most (default 4); beyond it the least recently run one is
   * released once its run is over. A session holds on to the memory of its largest run, and
   * every sequence-length bucket has its own session: without a bound, training on texts of many
   * lengths at a 512-token context and a 32,000-token vocabulary grew past 22 GB.
   */
  readonly maxSessionsPerWorker?: number;
}

// The worker: plain JavaScript (it runs outside TypeScript and vitest's transforms), loading the
// same onnxruntime-node the main thread resolved.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const sessions = new Map();
// The run in progress of each session, so that a dropped session is released only after it.
const running = new Map();
const constants = {};
// onnxruntime-node refuses SharedArrayBuffer data: shared constants are copied into local arrays,
// again whenever the main thread says they changed (a new version).
const shared = [];
let version = 0;
const tensor = (t) => new ort.Tensor(t.type, t.data, t.dims);
parentPort.on('message', async (msg) => {
  try {
    if (msg.kind === 'session') {
      const p = ort.InferenceSession.create(msg.bytes, workerData.options);
      p.catch(() => {});
      sessions.set(msg.key, p);
    } else if (msg.kind === 'constants') {
      for (const [name, t] of Object.entries(msg.tensors)) {
        if (t.data.buffer instanceof SharedArrayBuffer) {
          const local = new t.data.constructor(t.data.length);
          local.set(t.data);
          shared.push({ from: t.data, to: local });
          constants[name] = tensor({ ...t, data: local });
        } else constants[name] = tensor(t);
      }
      version = msg.version;
      parentPort.postMessage({ id: msg.id, ok: true });
    } else if (msg.kind === 'run') {
      const session = await sessions.get(msg.key);
      if (!session) throw new Error('no session ' + msg.key);
      if (msg.version !== version) {
        for (const c of shared) c.to.set(c.from);
        version = msg.version;
      }
      const feeds = {};
      for (const name of session.inputNames) {
        const t = msg.feeds[name];
        // A narrow weight's decode alias '<name>@decode<k>' reads <name>'s constant (narrow-weights.ts).
        feeds[name] = t ? tensor(t) : (constants[name] ?? constants[name.replace(/${DECODE_ALIAS}[0-9]+$/, '')]);
        if (!feeds[name]) throw new Error('no tensor for the input ' + name);
      }
      const run = session.run(feeds);
      running.set(msg.key, run.catch(() => {}));
      const out = await run;
      const outputs = {};
      for (const name of msg.outputs) outputs[name] = out[name].data;
      try {
        // Hand the output buffers over without a copy where they allow it.
        parentPort.postMessage({ id: msg.id, ok: true, outputs }, Object.values(outputs).map((d) => d.buffer));
      } catch {
        parentPort.postMessage({ id: msg.id, ok: true, outputs });
      }
    } else if (msg.kind === 'drop') {
      const p = sessions.get(msg.key);
      sessions.delete(msg.key);
      const busy = running.get(msg.key);
      running.delete(msg.key);
      if (p) {
        const session = await p.catch(() => null);
        await busy;
        if (session) await session.release();
      }
    } else if (msg.kind === 'close') {
      for (const p of sessions.values()) await (await p).release();
      sessions.clear();
      parentPort.postMessage({ id: msg.id, ok: true });
    }
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String((e && e.message) || e) });
  }
});
parentPort.postMessage({ id: 0, ok: true, ready: true });
`;

interface Pending {
  resolve(v: { outputs?: Record<string, Float32Array> }): void;
  reject(e: Error): void;
}

/**
 * One worker: its thread, the session keys it holds, and its pending requests. The thread keeps
 * the process alive only while a request is pending (so a forgotten pool never blocks exit).
 */
class PoolWorker {
  /** The session keys it holds (at most the pool's maxSessionsPerWorker; one leaving is dropped in the thread). */
  readonly keys: SessionCache<true>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  /** Resolves when the worker has loaded onnxruntime-node. */
  readonly ready: Promise<unknown>;

  constructor(readonly worker: Worker, maxSessions: number) {
    this.keys = new SessionCache<true>(maxSessions, (_, key) => this.post({ kind: 'drop', key }), 'onnxruntime worker pool');
    this.ready = new Promise((resolve, reject) => this.pending.set(0, { resolve, reject }));
    worker.on('message', (m: { id: number; ok: boolean; error?: string; outputs?: Record<string, Float32Array> }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.ok) p.resolve(m);
      else p.reject(new DdaError(`onnxruntime worker: ${m.error ?? 'unknown error'}`, 'check the model and its inputs'));
    });
    const fail = (e: Error): void => {
      this.failure = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new DdaError(`onnxruntime worker exited (code ${code})`, 'see the error above')));
  }

  post(msg: Record<string, unknown>): void {
    this.worker.postMessage(msg);
  }

  request(msg: Record<string, unknown>): Promise<{ outputs?: Record<string, Float32Array> }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }
}

/** A fixed set of worker threads running onnxruntime sessions on the CPU. */
export class OrtWorkerPool {
  private version = 0;
  private constructor(private readonly workers: PoolWorker[]) {}

  /** Number of workers. */
  get size(): number {
    return this.workers.length;
  }

  /**
   * Starts `size` workers, each loading onnxruntime-node (CPU execution provider).
   *
   * @throws DdaError if size is not a positive integer or a worker cannot load onnxruntime-node.
   */
  static async create(size: number, o: OrtWorkerPoolOptions = {}): Promise<OrtWorkerPool> {
    if (!Number.isInteger(size) || size < 1) throw new DdaError(`onnxruntime worker pool: size must be a positive integer, got ${size}`, 'pass e.g. 2 (one per core)');
    const maxSessions = o.maxSessionsPerWorker ?? 4;
    if (!Number.isInteger(maxSessions) || maxSessions < 1) throw new DdaError(`onnxruntime worker pool: maxSessionsPerWorker must be a positive integer, got ${maxSessions}`, 'pass e.g. 4');
    const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
    const options: OrtSessionOptions = {
      executionProviders: ['cpu'], intraOpNumThreads: o.intraOpNumThreads ?? 1, interOpNumThreads: 1, graphOptimizationLevel: o.graphOptimizationLevel ?? 'all', logSeverityLevel: 3,
    };
    const workers = Array.from({ length: size }, () => new PoolWorker(new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath, options } }), maxSessions));
    try {
      await Promise.all(workers.map((w) => w.ready));
    } catch (e) {
      await Promise.all(workers.map((w) => w.worker.terminate()));
      throw e;
    }
    return new OrtWorkerPool(workers);
  }

  /**
   * Registers tensors that runs read by input name when their feeds leave them out (weights), on
   * every worker. Data in a SharedArrayBuffer (see {@link sharedFloat32}) may be updated in place
   * between runs: call {@link constantsChanged} after, and each worker copies the new values
   * before its next run (onnxruntime-node does not read shared memory directly).
   */
  async setConstants(tensors: Readonly<Record<string, PoolTensor>>): Promise<void> {
    const plain = Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, { type: t.type, data: t.data, dims: [...t.dims] }]));
    await Promise.all(this.workers.map((w) => w.request({ kind: 'constants', tensors: plain, version: this.version })));
  }

  /** Says that shared constants were updated in place: every worker refreshes its copy before its next run. */
  constantsChanged(): void {
    this.version++;
  }

  /**
   * Runs model `key` on worker `w` (sending it `model()`'s bytes the first time that worker runs
   * the key, and releasing its least recently run session beyond `maxSessionsPerWorker`). Inputs
   * missing from `feeds` are taken from the constants.
   *
   * @param outputs - The outputs to return (float32), by name.
   */
  async run(w: number, key: string, model: () => Uint8Array, feeds: Readonly<Record<string, PoolTensor>>, outputs: readonly string[]): Promise<Record<string, Float32Array>> {
    const worker = this.workers[w];
    if (!worker) throw new DdaError(`onnxruntime worker pool: no worker ${w} of ${this.size}`, 'pass an index below the pool size');
    // A new key drops the least recently run sessions beyond the limit before the thread builds this one.
    worker.keys.getNow(key, () => {
      worker.post({ kind: 'session', key, bytes: model() });
      return true;
    });
    return (await worker.request({ kind: 'run', key, feeds, outputs, version: this.version })).outputs ?? {};
  }

  /**
   * Runs `task(worker, item)` for every item, each worker taking the next item when it is free;
   * results come back in the items' order whichever worker ran them.
   */
  async map<T, R>(items: readonly T[], task: (worker: number, item: T, index: number) => Promise<R>): Promise<R[]> {
    const out: R[] = new Array<R>(items.length);
    let next = 0;
    await Promise.all(this.workers.map(async (_, w) => {
      while (next < items.length) {
        const i = next++;
        out[i] = await task(w, items[i] as T, i);
      }
    }));
    return out;
  }

  /** Releases every session and stops the workers. */
  async terminate(): Promise<void> {
    await Promise.all(this.workers.map(async (w) => {
      try {
        await w.request({ kind: 'close' });
      } finally {
        await w.worker.terminate();
      }
    }));
  }
}

/** A Float32Array of `n` entries in a SharedArrayBuffer (readable by every worker), holding a copy of `from` if given. */
export function sharedFloat32(n: number, from?: Float32Array): Float32Array {
  const a = new Float32Array(new SharedArrayBuffer(4 * n));
  if (from) a.set(from);
  return a;
}

