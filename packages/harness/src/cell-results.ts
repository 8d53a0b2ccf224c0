/**
 * A family × seed cell of `dda bench` / `dda ablate` computed by a worker process of
 * `dda bench --jobs N`, kept beside the cell's files (`cells/<family>-seed<seed>/<kind>-result-<run>.json`):
 * its rows, curves, timing and gates, under the id of the run that made it and a key of everything
 * in the configuration that can change them. The run that started the workers collects the results
 * of its own workers only (a later run recomputes its metrics from the stored score matrices as
 * before, so a changed metric or scorer is never hidden behind an old result). Each worker claims a
 * cell before it starts it. Non-finite numbers (an undefined metric is NaN) are kept as such.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { hashOf, writeFileAtomic } from '@dda/attribution';
import type { BenchConfig } from './bench-config.js';

/** The folder of a cell's files and result. */
export function cellDir(outDir: string, family: string, seed: number): string {
  return join(outDir, 'cells', `${family.replace(/[^a-zA-Z0-9._-]+/g, '_')}-seed${seed}`);
}

/** The file of a cell that claims it for the run `run`, and the file of its result for that run. */
const claimName = (kind: string, run: string): string => `.claim-${kind}-${run}`;
const resultName = (kind: string, run: string): string => `${kind}-result-${run}.json`;

/** The format of a cell result; a different one is computed again. */
const FORMAT = 'dda-bench-cell-v1';

/**
 * The key of a cell's result: the configuration without the lists of families and seeds and the
 * output name (they choose cells, not what a cell computes), the cell, and the first seed (whose
 * cells draw the curves).
 */
export function cellKey(kind: string, c: BenchConfig, family: string, seed: number): string {
  const { families: _f, seeds: _s, name: _n, ...rest } = c;
  return hashOf({ format: FORMAT, kind, config: rest, family, seed, curves: c.seeds[0] === seed });
}

const encode = (_k: string, v: unknown): unknown => (typeof v === 'number' && !Number.isFinite(v) ? { nonFinite: String(v) } : v);
const decode = (_k: string, v: unknown): unknown => {
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { nonFinite?: unknown }).nonFinite === 'string') return Number((v as { nonFinite: string }).nonFinite);
  return v;
};

/** One file per run (its id in the name), so two runs into the same folder at once do not overwrite each other's cells. */
export function cellResultPath(outDir: string, kind: string, run: string, family: string, seed: number): string {
  return join(cellDir(outDir, family, seed), resultName(kind, run));
}

/** A cell's result saved by a worker of the run `run` with this key, else null (absent, unreadable, of another run or configuration). */
export function readCellResult<T>(outDir: string, kind: string, run: string, key: string, family: string, seed: number): T | null {
  const path = cellResultPath(outDir, kind, run, family, seed);
  if (!existsSync(path)) return null;
  try {
    const saved = JSON.parse(readFileSync(path, 'utf8'), decode) as { run?: unknown; key?: unknown; result?: T };
    return saved.run === run && saved.key === key && saved.result !== undefined ? saved.result : null;
  } catch {
    return null; // a torn or edited file: the cell is computed again and the file rewritten
  }
}

/** Saves a finished cell's result for the run `run` (atomically). */
export function writeCellResult(outDir: string, kind: string, run: string, key: string, family: string, seed: number, result: unknown): void {
  writeFileAtomic(cellResultPath(outDir, kind, run, family, seed), `${JSON.stringify({ run, key, family, seed, result }, encode)}\n`);
}

/** Removes the file `name` from every cell folder of `outDir`. */
function removeInEveryCell(outDir: string, name: string): void {
  const cells = join(outDir, 'cells');
  if (!existsSync(cells)) return;
  for (const d of readdirSync(cells)) rmSync(join(cells, d, name), { force: true });
}

/** Removes the claims of the run `run` (they only keep its workers apart). */
export function releaseClaims(outDir: string, kind: string, run: string): void {
  removeInEveryCell(outDir, claimName(kind, run));
}

/** Removes the cell results the workers of the run `run` saved, once the collecting run has read them. */
export function removeCellResults(outDir: string, kind: string, run: string): void {
  removeInEveryCell(outDir, resultName(kind, run));
}

/**
 * Claims a cell for one of the processes of `dda bench --jobs` (`claim`: that run's id): true for
 * exactly one process (an exclusive create of `cells/<cell>/.claim-<kind>-<claim>`).
 */
export function claimCell(outDir: string, kind: string, claim: string, family: string, seed: number): boolean {
  mkdirSync(cellDir(outDir, family, seed), { recursive: true });
  try {
    closeSync(openSync(join(cellDir(outDir, family, seed), claimName(kind, claim)), 'wx'));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}
