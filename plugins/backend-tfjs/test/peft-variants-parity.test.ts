import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SPECIAL_TOKENS, WordTokenizer, readPeftAdapter, targetModule, writePeftAdapter } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { maxRelErr, readVariantAdapter, toTensorMap, variantFx, variantModelConfig } from '../../../packages/model/test/peft-variant-case.js';

// rsLoRA, rank_pattern / alpha_pattern, regular-expression target_modules, exclude_modules and
// layers_to_transform, read from adapter_config.json and checked against PyTorch (float64) with
// PEFT's own selection and scaling (make-peft-variant-fixtures.py).
describe.each(Object.keys(variantFx.adapters))('PEFT adapter %s vs PyTorch reference (tfjs engine)', (name) => {
  const x = variantFx.adapters[name]!;
  let model: DecoderModel;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    const words = Array.from({ length: variantModelConfig.vocabSize - SPECIAL_TOKENS.length }, (_, i) => `w${i}`);
    model = new DecoderModel(variantModelConfig, new WordTokenizer([...SPECIAL_TOKENS, ...words]), toTensorMap(variantFx.weights));
    const adapter = readVariantAdapter(x);
    model.setLora(adapter.config, adapter.weights);
  });

  it('adapts exactly the modules PEFT adapts, each with its scale', () => {
    const modules = model.loraConfig!.modules!;
    expect(modules.map((m) => targetModule(m.layer, m.target)).sort()).toEqual(Object.keys(x.scaling).sort());
    for (const m of modules) expect(m.scale).toBeCloseTo(x.scaling[targetModule(m.layer, m.target)]!, 12);
  });

  it('logits, per-example losses and LoRA gradients agree to 1e-4 relative (losses 1e-5)', () => {
    const enc = x.examples.map((ex) => ({ tokens: Int32Array.from(ex.tokens), lossMask: Float32Array.from(ex.lossMask) }));
    const losses = model.lossesEncoded(enc);
    const grads = model.perExampleGradientsEncoded(enc.map((_, i) => `ex${i}`), enc, 'lora', 'fixture');
    expect([...grads.parameterNames].sort()).toEqual(Object.keys(x.lora).sort());
    x.examples.forEach((ex, i) => {
      expect(maxRelErr(model.logits(ex.tokens), ex.logits)).toBeLessThan(1e-4);
      expect(Math.abs(losses[i]! - ex.loss) / ex.loss).toBeLessThan(1e-5);
      let off = 0;
      grads.parameterNames.forEach((p, k) => {
        const size = grads.parameterSizes[k]!;
        expect(maxRelErr(grads.rows[i]!.subarray(off, off + size), ex.loraGrads[p]!), `${name} ${p}`).toBeLessThan(1e-4);
        off += size;
      });
    });
  });

  it('written back with writePeftAdapter, it reads back to the same modules, ranks and scales', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dda-peft-variant-rt-'));
    try {
      writePeftAdapter(dir, model.loraConfig!, toTensorMap(x.lora));
      const back = readPeftAdapter(dir, variantModelConfig);
      const strip = (ms: readonly { layer: number; target: string; rank: number; scale: number }[]) => ms.map((m) => ({ ...m, scale: Number(m.scale.toPrecision(12)) }));
      expect(strip(back.config.modules!)).toEqual(strip(model.loraConfig!.modules!));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
