import { describe, expect, it } from 'vitest';
import { backends } from '@dda/core';
import '@dda/backend-tfjs-node';
import { startTfjsBackend } from '@dda/backend-tfjs';

describe('optional tfjs-node backends', () => {
  it('are registered above the wasm backend', () => {
    const ids = backends.ids();
    expect(ids.indexOf('tfjs-node-gpu')).toBeLessThan(ids.indexOf('tfjs-wasm'));
    expect(ids.indexOf('tfjs-node')).toBeLessThan(ids.indexOf('tfjs-wasm'));
  });

  it('fall back to tfjs-wasm with a logged reason when the native packages are absent', async () => {
    const lines: string[] = [];
    const b = await startTfjsBackend(undefined, (l) => lines.push(l));
    expect(b.id).toBe('tfjs-wasm');
    expect(lines.join('\n')).toMatch(/tfjs-node-gpu unavailable \(@tensorflow\/tfjs-node-gpu is not installed; its install script downloads libtensorflow/);
    expect(lines.join('\n')).toMatch(/tfjs-node unavailable/);
  });

  it('a registry with no working backend lists every reason in one error', async () => {
    await expect(backends.resolve({}, ['tfjs-node-gpu', 'tfjs-node'])).rejects.toThrow(/tfjs-node-gpu: .*not installed[\s\S]*tfjs-node: .*not installed/);
  });
});
