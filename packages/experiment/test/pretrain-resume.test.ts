import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeExperiment } from '@dda/experiment';

// θ0's pretraining killed after an epoch resumes after it, to the θ0 an uninterrupted run makes.
const dir = mkdtempSync(join(tmpdir(), 'dda-pretrain-resume-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TINY = { seed: 3, nPretrain: 200, pretrainEpochs: 3, nTrain: 24, nHeldOut: 8, finetuneEpochs: 1 };

/** Pretrains in `artifactsDir`, its progress stored after every step, and stops right after the store of step 3 of epoch 2 (as a kill would). */
async function killedAfterStep3OfEpoch2(artifactsDir: string): Promise<void> {
  const stop = (line: string): void => {
    if (line.includes('pretraining progress stored: epoch 2, step 3 of')) throw new Error('killed in epoch 2');
  };
  await expect(makeExperiment({ ...TINY, artifactsDir, pretrainStateEverySeconds: 0 }, stop)).rejects.toThrow('killed in epoch 2');
}

describe('pretraining θ0', () => {
  it('stopped after epoch 2 resumes at epoch 3 (onnxruntime), giving the uninterrupted run\'s θ0 bit for bit, and leaves no progress behind', async () => {
    const whole = await makeExperiment({ ...TINY, artifactsDir: join(dir, 'whole') });
    const interrupted = join(dir, 'interrupted');
    const stop = (line: string): void => {
      if (line.includes('pretrain epoch 2:')) throw new Error('killed after epoch 2');
    };
    await expect(makeExperiment({ ...TINY, artifactsDir: interrupted }, stop)).rejects.toThrow('killed after epoch 2');
    expect(readdirSync(join(interrupted, 'checkpoints'))).toContain('base-progress');
    const lines: string[] = [];
    const resumed = await makeExperiment({ ...TINY, artifactsDir: interrupted }, (l) => lines.push(l));
    expect(lines.some((l) => l.includes('pretraining resumes after epoch 2 of 3'))).toBe(true);
    expect(lines.filter((l) => /pretrain epoch \d:/.test(l)).map((l) => l.trim().split(':')[0])).toEqual(['pretrain epoch 3']);
    expect(readFileSync(join(resumed.files.base, 'model.safetensors')).equals(readFileSync(join(whole.files.base, 'model.safetensors')))).toBe(true);
    const progress = join(interrupted, 'checkpoints', 'base-progress');
    expect(existsSync(progress) ? readdirSync(progress) : []).toEqual([]);
  }, 300_000);

  it('stopped mid-epoch (its progress stored after every step), resumes at that step, giving the same θ0 bit for bit', async () => {
    const whole = await makeExperiment({ ...TINY, artifactsDir: join(dir, 'whole') });
    const interrupted = join(dir, 'mid-epoch');
    await killedAfterStep3OfEpoch2(interrupted);
    const lines: string[] = [];
    const resumed = await makeExperiment({ ...TINY, artifactsDir: interrupted }, (l) => lines.push(l));
    expect(lines.some((l) => l.includes('pretraining resumes after epoch 1 of 3, step 3 of epoch 2'))).toBe(true);
    expect(lines.filter((l) => /pretrain epoch \d:/.test(l)).map((l) => l.trim().split(':')[0])).toEqual(['pretrain epoch 2', 'pretrain epoch 3']);
    expect(readFileSync(join(resumed.files.base, 'model.safetensors')).equals(readFileSync(join(whole.files.base, 'model.safetensors')))).toBe(true);
  }, 300_000);

  it('killed while it stores its progress (the slot being written has no manifest), resumes from the other slot, one store earlier, to the same θ0', async () => {
    const whole = await makeExperiment({ ...TINY, artifactsDir: join(dir, 'whole') });
    const interrupted = join(dir, 'torn');
    await killedAfterStep3OfEpoch2(interrupted);
    // The two slots hold steps 2 and 3 of epoch 2; a kill while step 3 was written leaves its slot without a manifest.
    const slots = readdirSync(join(interrupted, 'checkpoints')).filter((f) => f.startsWith('base-progress')).flatMap((f) => readdirSync(join(interrupted, 'checkpoints', f)).map((h) => join(interrupted, 'checkpoints', f, h)));
    const steps = slots.map((d) => (JSON.parse(readFileSync(join(d, 'progress.json'), 'utf8')) as { step: number }).step).sort();
    expect(steps).toEqual([2, 3]);
    const latest = slots.find((d) => (JSON.parse(readFileSync(join(d, 'progress.json'), 'utf8')) as { step: number }).step === 3) as string;
    rmSync(join(latest, 'manifest.json'));
    const lines: string[] = [];
    const resumed = await makeExperiment({ ...TINY, artifactsDir: interrupted }, (l) => lines.push(l));
    expect(lines.some((l) => l.includes('pretraining resumes after epoch 1 of 3, step 2 of epoch 2'))).toBe(true);
    expect(readFileSync(join(resumed.files.base, 'model.safetensors')).equals(readFileSync(join(whole.files.base, 'model.safetensors')))).toBe(true);
    expect(readdirSync(join(interrupted, 'checkpoints')).filter((f) => f.startsWith('base-progress')).flatMap((f) => readdirSync(join(interrupted, 'checkpoints', f)))).toEqual([]);
  }, 300_000);
});
