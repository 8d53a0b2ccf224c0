import { describe, expect, it } from 'vitest';
import { formatDuration, trackProgress, type ProgressUpdate } from '@dda/core';

describe('progress contract', () => {
  it('reports done/total, elapsed seconds and a linear ETA from the given clock', () => {
    let now = 1_000;
    const seen: ProgressUpdate[] = [];
    const bar = trackProgress('step', 4, (u) => seen.push(u), () => now);
    now += 2_000;
    bar.tick();
    now += 2_000;
    bar.tick(2);
    bar.tick(5); // clamped to total
    expect(seen).toEqual([
      { label: 'step', done: 1, total: 4, elapsedSeconds: 2, etaSeconds: 6 },
      { label: 'step', done: 3, total: 4, elapsedSeconds: 4, etaSeconds: 4 / 3 },
      { label: 'step', done: 4, total: 4, elapsedSeconds: 4, etaSeconds: 0 },
    ]);
  });

  it('counts without a sink', () => {
    expect(() => trackProgress('quiet', 3, undefined).tick()).not.toThrow();
  });

  it('formats durations', () => {
    expect(formatDuration(42.4)).toBe('42s');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(3720)).toBe('1h02m');
    expect(formatDuration(-3)).toBe('0s');
  });
});
