/**
 * `DDA_ORT_THREADS`: the intra-op threads of every onnxruntime session (a session's own option
 * wins), read by @dda/backend-onnxruntime when it starts and checked by the `dda` CLI before any
 * command (an invalid value keeps onnxruntime from starting, and an `auto` engine choice would then
 * quietly take the next engine). `dda bench --jobs` sets it for its workers.
 */
import { DdaError } from './errors.js';

/** The environment variable of onnxruntime's intra-op threads per session. */
export const ORT_THREADS_ENV = 'DDA_ORT_THREADS';

/**
 * The intra-op threads `DDA_ORT_THREADS` asks for, or undefined when it is unset or empty
 * (onnxruntime's default, one per core).
 *
 * @throws DdaError naming the variable and its value when it is not a positive integer.
 */
export function ortThreadsFromEnvironment(): number | undefined {
  const v = process.env[ORT_THREADS_ENV];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new DdaError(`${ORT_THREADS_ENV}=${v}: onnxruntime's intra-op threads per session must be a positive integer`, 'set it to e.g. 1, or unset it for onnxruntime\'s default (one per core)');
  return n;
}
