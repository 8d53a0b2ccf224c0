import { createHash } from 'node:crypto';
import { readFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '@dda/model';

export { writeFileAtomic };

/** SHA-256 of a JSON-serialisable value (keys sorted), hex, first 16 chars. */
export function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(stable(value))).digest('hex').slice(0, 16);
}

/** A value with its objects' keys sorted and its typed arrays as their SHA-256 (what {@link hashOf} hashes as JSON). */
function stable(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stable);
  if (v && typeof v === 'object' && !(ArrayBuffer.isView(v))) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, stable(x)]));
  }
  if (ArrayBuffer.isView(v)) return createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');
  return v;
}

/** {@link hashOf} of an array given one item at a time (`add`, then `digest`): the same hash, without holding the array. */
export class ArrayHash {
  private readonly h = createHash('sha256');
  private items = 0;

  add(item: unknown): void {
    this.h.update(`${this.items++ === 0 ? '[' : ','}${JSON.stringify(stable(item)) ?? 'null'}`);
  }

  /** The hash of the items added, as hashOf of their array; once. */
  digest(): string {
    return this.h.update(this.items === 0 ? '[]' : ']').digest('hex').slice(0, 16);
  }
}

/** The manifest stored beside every artifact: what it was computed from. */
export interface ArtifactManifest {
  readonly name: string;
  /** Hash of everything the artifact depends on (config, data hash, seed, upstream artifacts). */
  readonly key: string;
  readonly inputs: unknown;
  /** SHA-256 (first 16 hex chars) of each file of the artifact, to detect corruption. */
  readonly files: Record<string, string>;
  readonly createdAt: string;
  /**
   * Wall-clock seconds it took to compute the artifact (absent in manifests written before this
   * field existed), so that a run which reuses it can still report what it costs.
   */
  readonly seconds?: number;
}

/** The compute seconds recorded in a manifest, or undefined when it has none (older manifests). */
function manifestSeconds(m: ArtifactManifest): number | undefined {
  return typeof m.seconds === 'number' && Number.isFinite(m.seconds) && m.seconds >= 0 ? m.seconds : undefined;
}

const fileHash = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').slice(0, 16);

/**
 * Named artifact folders with a manifest, one folder per (name, inputs):
 * `<root>/<name>/<hash of inputs>/`, so runs with other arguments never overwrite each other. {@link getOrCompute} reuses an artifact only when its
 * manifest's key matches and every file's hash checks out; otherwise it recomputes and rewrites
 * it atomically (files first, manifest last, so a killed run never leaves a valid-looking manifest
 * over partial files).
 */
export class ArtifactStore {
  constructor(readonly root: string) {}

  /** Folder of the artifact `name` computed from `inputs`. */
  folder(name: string, inputs: unknown): string {
    return join(this.root, name, hashOf(inputs));
  }

  /**
   * The artifact's folder and file names if its manifest matches `inputs` and every file's hash
   * checks out (files are read one at a time, so checking needs memory for one file); else undefined.
   * `seconds`: the compute time recorded in its manifest (undefined for manifests that lack it).
   */
  locate(name: string, inputs: unknown): { dir: string; files: string[]; seconds: number | undefined } | undefined {
    const dir = this.folder(name, inputs);
    const mPath = join(dir, 'manifest.json');
    if (!existsSync(mPath)) return undefined;
    let m: ArtifactManifest;
    try {
      m = JSON.parse(readFileSync(mPath, 'utf8')) as ArtifactManifest;
    } catch {
      return undefined;
    }
    if (m.key !== hashOf(inputs) || !m.files || typeof m.files !== 'object') return undefined;
    for (const [file, h] of Object.entries(m.files)) {
      const p = join(dir, file);
      if (!existsSync(p) || fileHash(new Uint8Array(readFileSync(p))) !== h) return undefined;
    }
    return { dir, files: Object.keys(m.files), seconds: manifestSeconds(m) };
  }

  /** Reads the artifact's files if its manifest matches `inputs` and is intact; else undefined. */
  load(name: string, inputs: unknown): Map<string, Uint8Array> | undefined {
    return this.loadWithSeconds(name, inputs)?.files;
  }

  private loadWithSeconds(name: string, inputs: unknown): { files: Map<string, Uint8Array>; seconds: number | undefined } | undefined {
    const hit = this.locate(name, inputs);
    if (!hit) return undefined;
    return { files: new Map(hit.files.map((f) => [f, new Uint8Array(readFileSync(join(hit.dir, f)))])), seconds: hit.seconds };
  }

  /**
   * Like {@link getOrCompute} for large artifacts: `produce` hands over files one at a time through
   * `put` (each written atomically at once), so nothing has to be held in memory; the manifest is
   * written last. Returns the folder and file names, not the contents, and `seconds`: the time
   * `produce` took, measured now or, when reused, as recorded in the manifest (undefined for an
   * artifact whose manifest predates the field).
   */
  async getOrProduce(
    name: string,
    inputs: unknown,
    produce: (put: (file: string, data: Uint8Array) => void) => Promise<void>,
  ): Promise<{ dir: string; files: string[]; reused: boolean; seconds: number | undefined }> {
    const hit = this.locate(name, inputs);
    if (hit) return { ...hit, reused: true };
    const dir = this.folder(name, inputs);
    rmSync(join(dir, 'manifest.json'), { force: true });
    const hashes: Record<string, string> = {};
    const t0 = performance.now();
    await produce((file, data) => {
      writeFileAtomic(join(dir, file), data);
      hashes[file] = fileHash(data);
    });
    const seconds = (performance.now() - t0) / 1000;
    this.writeManifest(name, inputs, hashes, seconds);
    return { dir, files: Object.keys(hashes), reused: false, seconds };
  }

  private writeManifest(name: string, inputs: unknown, files: Record<string, string>, seconds: number | undefined): void {
    const m: ArtifactManifest = { name, key: hashOf(inputs), inputs, files, createdAt: new Date().toISOString(), ...(seconds !== undefined ? { seconds } : {}) };
    writeFileAtomic(join(this.folder(name, inputs), 'manifest.json'), JSON.stringify(m, null, 2));
  }

  /** Deletes the artifact `name` computed from `inputs` (its manifest first, then its folder); nothing when it is not there. */
  remove(name: string, inputs: unknown): void {
    const dir = this.folder(name, inputs);
    rmSync(join(dir, 'manifest.json'), { force: true });
    rmSync(dir, { recursive: true, force: true });
  }

  /** Stores `files` as the artifact (files first, manifest last); `seconds`, if given, is recorded as its compute time. */
  save(name: string, inputs: unknown, files: Map<string, Uint8Array>, seconds?: number): void {
    const dir = this.folder(name, inputs);
    rmSync(join(dir, 'manifest.json'), { force: true });
    const hashes: Record<string, string> = {};
    for (const [file, b] of files) {
      writeFileAtomic(join(dir, file), b);
      hashes[file] = fileHash(b);
    }
    this.writeManifest(name, inputs, hashes, seconds);
  }

  /**
   * Loads the artifact if it matches, else computes, saves and returns it. `reused` tells which;
   * `seconds` is the time `compute` took, measured now or, when reused, as recorded in the manifest
   * (undefined for an artifact whose manifest predates the field).
   */
  async getOrCompute(
    name: string,
    inputs: unknown,
    compute: () => Promise<Map<string, Uint8Array>> | Map<string, Uint8Array>,
  ): Promise<{ files: Map<string, Uint8Array>; reused: boolean; seconds: number | undefined }> {
    const hit = this.loadWithSeconds(name, inputs);
    if (hit) return { ...hit, reused: true };
    const t0 = performance.now();
    const files = await compute();
    const seconds = (performance.now() - t0) / 1000;
    this.save(name, inputs, files, seconds);
    return { files, reused: false, seconds };
  }
}
