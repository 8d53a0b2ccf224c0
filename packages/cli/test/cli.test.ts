import { describe, expect, it } from 'vitest';
import { run } from './run-cli.js';

describe('dda CLI', () => {
  it('lists the registered methods', async () => {
    const r = await run(['methods']);
    expect(r.code).toBe(0);
    for (const id of ['grad-dot', 'grad-cos', 'raw', 'zscore', 'mean', 'lr-weighted', 'tfjs-wasm', 'tfjs-cpu']) expect(r.out).toContain(id);
  });

  it('rejects an unknown option with exit code 2 and a one-line reason', async () => {
    const r = await run(['demo', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^dda: Unknown argument/);
  });

  it('rejects a bad value with exit code 1 and says what to change', async () => {
    const r = await run(['demo', '--n-train', '-3']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('dda: --n-train must be a positive integer, got -3');
  });

  it('names the known ids for an unknown scorer', async () => {
    const r = await run(['demo', '--scorer', 'nope', '--n-pretrain', '10', '--pretrain-epochs', '1', '--n-train', '20', '--n-held-out', '4', '--finetune-epochs', '1', '--out', '/nonexistent-dda-dir']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown scorer 'nope' \(choose one of: .*grad-dot/);
  });

  it('requires a command', async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('name a command');
  });
});
