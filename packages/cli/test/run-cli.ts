import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '@dda/cli';

/** Runs the CLI in this process, collecting what it prints. */
export async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The outputs of `dda attribute` that must equal a one-machine run's, byte for byte (base64 of each file in `out`). */
export function attributionOutputs(out: string): Record<string, string> {
  return Object.fromEntries(['scores.npy', 'scores.json', 'topk.csv', 'topk.jsonl'].map((f) => [f, readFileSync(join(out, f)).toString('base64')]));
}
