import { describe, expect, it } from 'vitest';
import { DdaError, Registry, closestNames, didYouMean, editDistance } from '@dda/core';

describe('did you mean', () => {
  it('measures the edit distance with adjacent swaps counted once', () => {
    expect(editDistance('grad-cos', 'grad-cos')).toBe(0);
    expect(editDistance('grad-coss', 'grad-cos')).toBe(1);
    expect(editDistance('grad-cso', 'grad-cos')).toBe(1);
    expect(editDistance('zscroe-mean', 'zscore-mean')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('suggests the closest names (ties by name), else the names it starts, and nothing for a word far from all', () => {
    const ids = ['grad-dot', 'grad-cos', 'tracin-cp', 'bm25', 'rep-sim', 'random'];
    expect(closestNames('grad-coss', ids)).toEqual(['grad-cos']);
    expect(closestNames('grad-do', ids)).toEqual(['grad-dot']);
    expect(closestNames('rep', ['rep-sim', 'rep-dot', 'bm25'])).toEqual(['rep-dot', 'rep-sim']);
    expect(closestNames('tracin', ids)).toEqual(['tracin-cp']);
    expect(closestNames('GRAD-DOT', ids)).toEqual(['grad-dot']);
    expect(closestNames('nope', ids)).toEqual([]);
    expect(didYouMean('bm52', ids)).toBe("did you mean 'bm25'?");
    expect(didYouMean('grad-cot', ids, (n) => `--${n}`)).toBe('did you mean --grad-cos or --grad-dot?');
    expect(didYouMean('nope', ids)).toBeUndefined();
  });

  it('is part of a registry\'s unknown-id error, before the list of every id', () => {
    const reg = new Registry<number>('denoiser');
    for (const id of ['mean', 'zscore-mean', 'lr-weighted']) reg.register({ id, description: id, priority: 1, create: () => 1 });
    expect(() => reg.entry('zscroe-mean')).toThrow(DdaError);
    expect(() => reg.entry('zscroe-mean')).toThrow(/^unknown denoiser 'zscroe-mean' \(did you mean 'zscore-mean'\? choose one of: /);
    expect(() => reg.entry('xyz')).toThrow(/^unknown denoiser 'xyz' \(choose one of: /);
  });
});
