/**
 * One build per index folder: `build.lock` (this process's id, host and start), created
 * exclusively by the build, shard or merge that writes into the folder, checked before each block
 * of rows is recorded, deleted when it ends.
 *
 * A lock left by a build that is not running any more (its process gone, on this host) is taken
 * over by renaming it away (atomic: of two builds taking over the same stale lock at once, one
 * renames it, the other finds it gone and tries again) and checking that what was renamed is the
 * stale lock judged; a live lock renamed by mistake (another build took the folder over in
 * between) is put back and this build refused. A build whose lock was nevertheless replaced finds
 * out at its next block ({@link checkBuildLock}) and stops before recording it.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DdaError } from '@dda/core';
import type { Log } from './engine.js';

/** The lock file of a folder a build is writing rows into. */
export const BUILD_LOCK = 'build.lock';

/** The text of each lock this process holds, by the lock's path. */
const held = new Map<string, string>();

interface LockHolder { pid?: number; host?: string; started?: string }

const readText = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Takes `dir` for one build: creates `build.lock` exclusively; a lock of a build that is not
 * running (on this host) is taken over, with a log line.
 *
 * @returns The release, which deletes the lock if it is still this build's.
 * @throws DdaError when another build on this host is writing into `dir`, a lock of another host
 *   is there (whose process cannot be checked from here), or another build took a stale lock over
 *   at the same moment.
 */
export function lockBuildFolder(dir: string, log: Log): () => void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, BUILD_LOCK);
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString(), token: randomBytes(8).toString('hex') });
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      writeFileSync(path, mine, { flag: 'wx' });
      held.set(path, mine);
      return () => {
        held.delete(path);
        if (readText(path) === mine) rmSync(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = readText(path);
    if (text === null) continue; // released in between: try again
    let holder: LockHolder = {};
    try {
      holder = JSON.parse(text) as LockHolder;
    } catch {
      // unreadable (a build killed while writing it): taken over below
    }
    if (holder.host !== undefined && holder.host !== hostname()) {
      throw new DdaError(`${dir}: a build on ${holder.host} (process ${holder.pid}, started ${holder.started}) holds ${path}`, `wait for it, or give another --out; if no build is running there, delete ${path}`);
    }
    // This process's own id in a lock it does not hold: left by an earlier process that had the same
    // id (a restarted container numbers its processes alike), so not running.
    const ownIdNotHeld = holder.pid === process.pid && !held.has(path);
    if (typeof holder.pid === 'number' && !ownIdNotHeld && alive(holder.pid)) {
      throw new DdaError(`${dir}: another dda index build (process ${holder.pid}, started ${holder.started}) is writing into this folder`, `wait for it to finish (a rerun then finds the index built), or give another --out; if no build is running, delete ${path}`);
    }
    if (takeOverStaleLock(path, text)) log(`index: ${path} was left by a build that is not running (process ${holder.pid ?? '?'}); taking the folder over`);
  }
  throw new DdaError(`${dir}: ${BUILD_LOCK} kept changing while this build tried to take the folder (other builds starting at the same moment?)`, 'run one build per folder at a time');
}

/**
 * Removes the lock at `path` if it is still `staleText` (judged stale by the caller): renames it
 * away, then compares. A different lock renamed away (another build took the folder over in
 * between) is put back where nothing has been created since, and this build refused.
 *
 * @returns true when the stale lock was removed, false when it was gone already.
 * @throws DdaError when the renamed lock was another build's.
 */
export function takeOverStaleLock(path: string, staleText: string): boolean {
  const aside = `${path}.taken-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  const moved = readFileSync(aside, 'utf8');
  if (moved === staleText) {
    rmSync(aside, { force: true });
    return true;
  }
  try {
    linkSync(aside, path); // fails if a lock was created at `path` in the meantime: that build's stays
  } catch (e) {
    // A file system without hard links: put it back by renaming (which would replace a lock created in that instant).
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') renameSync(aside, path);
  }
  rmSync(aside, { force: true });
  let holder: LockHolder = {};
  try {
    holder = JSON.parse(moved) as LockHolder;
  } catch {
    // described without its process below
  }
  throw new DdaError(`${path}: another dda index build (process ${holder.pid ?? '?'}) took this folder over at the same moment as this one`, 'wait for it to finish, or give another --out');
}

/**
 * Checks that this process still holds `dir`'s build lock (the file is there with the text it
 * wrote), before rows written into `dir` are recorded.
 *
 * @throws DdaError when it does not: the lock was never taken here (internal), deleted, or
 *   replaced by another build's.
 */
export function checkBuildLock(dir: string): void {
  const path = join(dir, BUILD_LOCK);
  const mine = held.get(path);
  if (mine === undefined) throw new DdaError(`internal: rows written into ${dir} without its build lock (lockBuildFolder)`);
  let now = readText(path);
  if (now === null) {
    // Gone: perhaps renamed away for a moment by a build taking a stale lock over, which puts a live one back.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    now = readText(path);
  }
  if (now !== mine) {
    throw new DdaError(
      `${dir}: this build's ${BUILD_LOCK} was ${now === null ? 'deleted' : 'replaced by another build\'s'} while it was writing; stopped before recording more rows`,
      'make sure one build at a time writes into the folder, then run the same command again (a build or shard resumes at its first unrecorded block; a merge starts again)',
    );
  }
}
