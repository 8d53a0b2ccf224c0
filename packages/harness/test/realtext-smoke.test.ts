import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBenchConfig, runBench, writeBenchOutputs } from '@dda/harness';

// The real-text benchmark's whole path at CI size (benchmarks/configs/realtext-smoke.yaml): the SOTU
// data set cut to llama2-mini's context with LLaMA-2's tokenizer, θ0 pretrained on its own corpus
// and pairs, LoRA fine-tuning, (injected) test errors, gradient scores, and every regime gate in
// the summary JSON.
const dir = mkdtempSync(join(tmpdir(), 'dda-realtext-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('realtext-smoke.yaml', () => {
  it('runs the whole path and stores the regime gates G1–G5', async () => {
    const config = loadBenchConfig(new URL('../../../benchmarks/configs/realtext-smoke.yaml', import.meta.url).pathname);
    const log: string[] = [];
    const r = await runBench(config, dir, (l) => log.push(l));
    expect(r.skipped).toEqual([]);
    const methods = new Set(r.rows.map((x) => x.method));
    for (const m of ['grad-dot', 'bm25', 'dda(grad-dot)']) expect(methods.has(m), m).toBe(true);
    for (const x of r.rows) expect(x.metrics['auc']).toBeGreaterThanOrEqual(0);
    // The data and θ0 are what the config says: a real tokenizer's pairs, a separate pretraining corpus.
    expect(log.some((l) => l.includes('pretraining θ0 (1 epochs over 300 texts and 100 instruction pairs, all parameters, seed 0)'))).toBe(true);
    const cell = r.gates![0]!;
    // Injected test errors: the gates are computed but marked as no evidence for the verdict, and left out of the mean.
    expect(cell.notEvidence).toMatch(/injected/);
    expect(log.some((l) => l.includes('gates below are no evidence for the verdict'))).toBe(true);
    for (const g of ['g1', 'g2', 'g3', 'g4'] as const) expect(cell.gates[g], g).toBeDefined();
    expect(cell.g5['grad-dot']!.epochAucs).toHaveLength(3);
    // G2 is a fraction of the gradient norm; G3 the fine-tuned loss of a barely trained model (nats/token).
    expect(cell.gates.g2!.value).toBeGreaterThan(0);
    expect(cell.gates.g3!.value).toBeGreaterThan(1.5);
    await writeBenchOutputs(r, dir, 'dda bench --config benchmarks/configs/realtext-smoke.yaml');
    const json = JSON.parse(readFileSync(join(dir, 'realtext-smoke-summary.json'), 'utf8')) as { gates: { cells: { gates: Record<string, { value: number }> }[]; mean: object; meanOver: string } };
    expect(Object.keys(json.gates.cells[0]!.gates).sort()).toEqual(['g1', 'g2', 'g3', 'g4']);
    expect(json.gates.mean).toEqual({});
    expect(json.gates.meanOver).toBe('0 cell(s) with G1; 1 cell(s) left out as no evidence for the verdict (see their notEvidence)');
    const experiment = JSON.parse(readFileSync(join(dir, 'cells', 'llama2-mini-seed0', 'cell.json'), 'utf8')) as { errors: number };
    expect(experiment.errors).toBeGreaterThan(0);
  }, 900_000);
});
