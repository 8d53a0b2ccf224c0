import { describe, expect, it } from 'vitest';
import { DEFAULT_BLOCK_ROWS, DEFAULT_MAX_BLOCK_BYTES, blockRowsFor, type AttributionTask } from '@dda/attribution';

/** A task with LoRA checkpoints of `entries` gradient entries each (only what blockRowsFor reads). */
function taskWith(entries: number, fullBase = 10): AttributionTask {
  const lora = { kind: 'lora', weights: new Map([['a', { shape: [entries], data: { length: entries } }]]) };
  return { baseCheckpoint: lora, checkpoints: [lora, lora], base: { weights: new Map([['w', { shape: [fullBase], data: { length: fullBase } }]]) } } as unknown as AttributionTask;
}

describe('gradient blocks sized by memory', () => {
  it('keep 128 samples where 128 rows fit 1 GiB, and fewer where they would not; a given size is kept', () => {
    expect(DEFAULT_MAX_BLOCK_BYTES).toBe(2 ** 30);
    expect(blockRowsFor(taskWith(19_520), {})).toBe(DEFAULT_BLOCK_ROWS); // the demo's rows: 78 KB
    // Qwen2-0.5B with rank-16 LoRA on every linear map: 8,798,208 entries, 35.2 MB a row → 30 rows (1,055.8 MB).
    expect(blockRowsFor(taskWith(8_798_208), {})).toBe(30);
    expect(30 * 8_798_208 * 4).toBeLessThanOrEqual(2 ** 30);
    expect(31 * 8_798_208 * 4).toBeGreaterThan(2 ** 30);
    expect(blockRowsFor(taskWith(400_000_000), {})).toBe(1); // a row above 1 GiB: one sample at a time
    expect(blockRowsFor(taskWith(8_798_208), { blockRows: 128 })).toBe(128);
  });
});
