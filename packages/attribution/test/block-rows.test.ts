import { describe, expect, it } from 'vitest';
import { DEFAULT_BLOCK_ROWS, DEFAULT_MAX_BLOCK_BYTES, blockRowsFor, type AttributionTask } from '@dda/attribution';

/** A task with LoRA checkpoints of `entries` gradient entries each (only what blockRowsFor reads). */
function taskWith(entries: number, fullBase = 10, storedBytes?: number): AttributionTask {
  const lora = { kind: 'lora', weights: new Map([['a', { shape: [entries], data: { length: entries } }]]) };
  return { baseCheckpoint: lora, checkpoints: [lora, lora], base: { weights: new Map([['w', { shape: [fullBase], data: { length: fullBase } }]]), ...(storedBytes === undefined ? {} : { storedBytes }) } } as unknown as AttributionTask;
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

  it('hold a block to a quarter of the base folder\'s stored bytes where that is less than 1 GiB, at least 128 MiB', () => {
    // A 1.00 GB folder (Qwen2-0.5B in BF16): 250 MB of rows, 7 of 35.2 MB (30 under 1 GiB).
    expect(blockRowsFor(taskWith(8_798_208, 10, 1e9), {})).toBe(7);
    expect(7 * 8_798_208 * 4).toBeLessThanOrEqual(1e9 / 4);
    expect(8 * 8_798_208 * 4).toBeGreaterThan(1e9 / 4);
    // TinyLlama-1.1B (2.20 GB, 12.6 M entries a row with rank-16 LoRA on every linear map): 10 rows.
    expect(blockRowsFor(taskWith(12_615_680, 10, 2.2e9), {})).toBe(10);
    // Small folders: 128 MiB at least, so 128 rows of a tiny or mini model's gradients as before.
    expect(blockRowsFor(taskWith(19_520, 10, 1e6), {})).toBe(DEFAULT_BLOCK_ROWS);
    expect(blockRowsFor(taskWith(156_160, 10, 5e7), {})).toBe(DEFAULT_BLOCK_ROWS); // llama2-mini, rank 16 on every linear map: 0.62 MB a row
    expect(blockRowsFor(taskWith(8_798_208, 10, 1e8), {})).toBe(3); // 128 MiB of 35.2 MB rows
    // A large folder: 1 GiB still caps the block.
    expect(blockRowsFor(taskWith(8_798_208, 10, 3e10), {})).toBe(30);
    expect(blockRowsFor(taskWith(8_798_208, 10, 1e9), { blockRows: 64 })).toBe(64);
  });
});
