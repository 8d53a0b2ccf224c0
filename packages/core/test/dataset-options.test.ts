import { describe, expect, it } from 'vitest';
import { checkDatasetOptions } from '@dda/core';

describe('checkDatasetOptions', () => {
  const shape = { n: 'integer', rate: 'fraction', scale: 'number', strict: 'boolean' } as const;

  it('returns the given options, each checked against its kind', () => {
    expect(checkDatasetOptions({ n: 3, rate: 0.5, scale: -2.5, strict: true }, shape, 'data')).toEqual({ n: 3, rate: 0.5, scale: -2.5, strict: true });
    expect(checkDatasetOptions({ strict: false, n: undefined }, shape, 'data')).toEqual({ strict: false });
  });

  it('refuses unknown keys and values of the wrong kind, naming the key', () => {
    expect(() => checkDatasetOptions({ size: 1 }, shape, 'cfg.yaml: data')).toThrow(/cfg\.yaml: data: unknown option 'size'/);
    expect(() => checkDatasetOptions({ n: 1.5 }, shape, 'data')).toThrow(/option 'n' must be a non-negative integer, got 1\.5/);
    expect(() => checkDatasetOptions({ rate: 2 }, shape, 'data')).toThrow(/option 'rate' must be a number from 0 to 1/);
    expect(() => checkDatasetOptions({ strict: 'yes' }, shape, 'data')).toThrow(/option 'strict' must be true or false, got "yes"/);
    expect(() => checkDatasetOptions({ scale: true }, shape, 'data')).toThrow(/option 'scale' must be a finite number, got true/);
  });
});
