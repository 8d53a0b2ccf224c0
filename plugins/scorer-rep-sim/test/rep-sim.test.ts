import { describe, expect, it } from 'vitest';
import { scorers, type ScoringInput } from '@dda/core';
import { repSimScores } from '@dda/scorer-rep-sim';

const rep = (ids: string[], rows: number[][]) => ({ ids, dim: rows[0]!.length, rows: rows.map((r) => Float32Array.from(r)), checkpoint: 'c' });

describe('rep-sim', () => {
  it('is the cosine of the representations (exact small case, zero vector → 0)', () => {
    const v = repSimScores(rep(['a', 'b', 'z'], [[1, 0], [1, 1], [0, 0]]), rep(['t1', 't2'], [[2, 0], [0, -3]]));
    const expected = [1, 0, Math.SQRT1_2, -Math.SQRT1_2, 0, 0];
    expect(v).toHaveLength(6);
    expected.forEach((x, k) => expect(v[k]).toBeCloseTo(x, 12));
  });

  it('is registered and scores through the Scorer contract', async () => {
    const s = await scorers.create('rep-sim', {});
    const input: ScoringInput = {
      checkpoint: 'epoch-1',
      train: [{ id: 'a', prompt: '', response: 'x' }],
      test: [{ id: 't', prompt: '', response: 'y' }],
      trainGradients: () => Promise.reject(new Error('not needed')),
      testGradients: () => Promise.reject(new Error('not needed')),
      trainRepresentations: async () => rep(['a'], [[3, 4]]),
      testRepresentations: async () => rep(['t'], [[4, 3]]),
    };
    const m = await s.score(input);
    expect(m.values[0]).toBeCloseTo(24 / 25, 12);
    expect(m.provenance.method).toBe('rep-sim');
  });

  it('says what is missing when the harness offers no representations', async () => {
    const s = await scorers.create('rep-sim', {});
    const input: ScoringInput = {
      checkpoint: 'c', train: [], test: [],
      trainGradients: () => Promise.reject(new Error('x')), testGradients: () => Promise.reject(new Error('x')),
    };
    await expect(s.score(input)).rejects.toThrow(/needs hidden representations/);
  });

  it('rejects mismatched dimensions', () => {
    expect(() => repSimScores(rep(['a'], [[1, 2]]), rep(['t'], [[1, 2, 3]]))).toThrow(/2 dimensions, test 3/);
  });
});
