/**
 * @dda/model describes a decoder without running one: importing it (and @dda/core, @dda/data)
 * loads no engine, so reading a safetensors file, a tokenizer or a PEFT adapter never starts tfjs
 * or onnxruntime. Checked on the built packages in a child process whose module resolution refuses
 * any `@tensorflow/*` or `onnxruntime*` import; the engine plugin is the control.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const HOOK = `export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@tensorflow/') || specifier.startsWith('onnxruntime')) throw new Error('engine module imported: ' + specifier + ' from ' + context.parentURL);
  return next(specifier, context);
}`;

function importRefusingEngines(pkg: string): { ok: boolean; stderr: string } {
  const code = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOK)}`)}); await import(${JSON.stringify(pkg)});`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: new URL('../../..', import.meta.url).pathname, encoding: 'utf8' });
  return { ok: r.status === 0, stderr: r.stderr };
}

describe('@dda/model without any engine', () => {
  it.each(['@dda/core', '@dda/data', '@dda/model'])('%s imports no tfjs or onnxruntime module', (pkg) => {
    const r = importRefusingEngines(pkg);
    expect(r.stderr).toBe('');
    expect(r.ok).toBe(true);
  });

  it('the check catches an engine import (control: @dda/backend-tfjs)', () => {
    const r = importRefusingEngines('@dda/backend-tfjs');
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(/engine module imported: @tensorflow\/tfjs/);
  });

  it('declares no engine dependency', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { dependencies?: Record<string, string> };
    expect(Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@tensorflow/') || d.startsWith('onnxruntime'))).toEqual([]);
  });
});
