import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_RUN_OPTIONS } from '@dda/harness';
import { computedSeconds, demoHeader, demoNextStep } from '@dda/cli';
import { run } from './run-cli.js';

const options = { ...DEFAULT_RUN_OPTIONS, outDir: 'dda-out' };
const fresh = { options, backend: 'onnxruntime-cpu', errors: new Array(29).fill(null), computed: ['runs/finetune'], seconds: { total: 23.4 } };
const cached = { ...fresh, computed: [], seconds: { total: 0.4 } };

describe('the demo\'s header and next step', () => {
  it('says how long a computing run took, and that a cached run reused the results, from where and how long they took', () => {
    expect(demoHeader(fresh, computedSeconds(fresh, undefined))).toBe('DDA demo (seed 0, onnxruntime-cpu, 29 test errors, 23 s)');
    const prior = { options, computedSeconds: 23.4 };
    expect(computedSeconds(cached, prior)).toBe(23.4);
    expect(demoHeader(cached, 23.4)).toBe('DDA demo (seed 0, onnxruntime-cpu, 29 test errors): results reused from dda-out/artifacts (computed in 23 s by an earlier run)');
    // An earlier summary of other options (or none, or one without the time) does not give the time.
    expect(computedSeconds(cached, { ...prior, options: { ...options, k: 5 } })).toBeUndefined();
    expect(computedSeconds(cached, { options })).toBeUndefined();
    expect(demoHeader(cached, undefined)).toBe('DDA demo (seed 0, onnxruntime-cpu, 29 test errors): results reused from dda-out/artifacts (computed by an earlier run)');
  });

  it('ends with the dda attribute command on the exported experiment, with a scorer that is not the default', () => {
    expect(demoNextStep(options, false)[1]).toBe('  dda attribute --base dda-out/experiment/base --checkpoints dda-out/experiment/run --train dda-out/experiment/train.jsonl --queries dda-out/experiment/queries.jsonl --labels dda-out/experiment/labels.json --out dda-out/attribution');
    const other = demoNextStep({ outDir: 'my out', scorer: 'grad-cos', measurement: 'contrastive' }, true)[1];
    expect(other).toBe("  npm run -s dda -- attribute --base 'my out/experiment/base' --checkpoints 'my out/experiment/run' --train 'my out/experiment/train.jsonl' --queries 'my out/experiment/queries.jsonl' --labels 'my out/experiment/labels.json' --scorer grad-cos --measurement contrastive --out 'my out/attribution'");
  });
});

describe('dda demo run twice, then the command it ends with', () => {
  const out = mkdtempSync(join(tmpdir(), 'dda-demo-output-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));
  it('the second run says its results were reused and the time the first took; the printed dda attribute runs', async () => {
    const args = ['demo', '--out', out, '--n-train', '60', '--n-held-out', '16', '--n-pretrain', '300', '--pretrain-epochs', '2', '--finetune-epochs', '2', '--quiet'];
    const first = await run(args);
    expect(first.code, first.err).toBe(0);
    const took = (JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { computedSeconds: number }).computedSeconds;
    expect(first.out.split('\n')[0]).toMatch(new RegExp(`^DDA demo \\(seed 0, \\S+, \\d+ test errors, ${took.toFixed(0)} s\\)$`));
    const second = await run(args);
    expect(second.code, second.err).toBe(0);
    const lines = second.out.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^DDA demo \\(seed 0, \\S+, \\d+ test errors\\): results reused from ${join(out, 'artifacts')} \\(computed in ${took.toFixed(0)} s by an earlier run\\)$`));
    expect((JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { computedSeconds: number }).computedSeconds).toBe(took);
    const command = lines[lines.length - 1] as string;
    expect(command).toMatch(/^ {2}(dda|npm run -s dda --) attribute --base /);
    const attribute = await run([...command.replace(/^ {2}(dda|npm run -s dda --) /, '').split(' '), '--quiet']);
    expect(attribute.code, attribute.err).toBe(0);
    expect(attribute.out).toMatch(/^Attribution \(/);
  }, 240_000);
});
