import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SPECIAL_TOKENS, WordTokenizer, loadModelFolder, readPeftAdapter, saveModelFolder, writePeftAdapter } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { maxRelErr as relErr } from '../../../packages/model/test/peft-variant-case.js';
import { decoderFixtureReferences } from '@dda/conformance';

// Fixtures made by make-decoder-fixtures.py with PyTorch (float64), an independent implementation
// (shipped with and read by @dda/conformance, whose engine suite uses them too).
const references = decoderFixtureReferences();

describe.each(references.map((r) => [r.name.split(' ')[0] as string, r] as const))('%s-style decoder vs PyTorch reference', (family, ref) => {
  const f = { examples: ref.examples.map((ex) => ({ ...ex, loraGrads: ex.grads })) };
  const lora = ref.weights.adapter!;
  let model: DecoderModel;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    const words = Array.from({ length: ref.config.vocabSize - SPECIAL_TOKENS.length }, (_, i) => `w${i}`);
    model = new DecoderModel(ref.config, new WordTokenizer([...SPECIAL_TOKENS, ...words]), ref.weights.base);
    model.setLora(lora.config, lora.weights);
  });

  it('logits agree to 1e-4 relative', () => {
    for (const ex of f.examples) expect(relErr(model.logits(ex.tokens), ex.logits)).toBeLessThan(1e-4);
  });

  it('saved as a Hugging Face folder and PEFT adapter, it loads back to the same family, config and reference logits', () => {
    const dir = mkdtempSync(join(tmpdir(), `dda-parity-${family}-`));
    try {
      saveModelFolder(dir, { config: model.config, weights: ref.weights.base, tokenizer: model.tokenizer, maxShardBytes: 4096 });
      writePeftAdapter(join(dir, 'adapter'), model.loraConfig!, lora.weights);
      const loaded = loadModelFolder(dir);
      expect(loaded.family).toBe(family === 'llama2' ? 'llama' : family);
      expect(loaded.config).toEqual(model.config);
      const adapter = readPeftAdapter(join(dir, 'adapter'), loaded.config);
      const m = new DecoderModel(loaded.config, loaded.tokenizer!, loaded.weights);
      m.setLora(adapter.config, adapter.weights);
      for (const ex of f.examples) expect(relErr(m.logits(ex.tokens), ex.logits)).toBeLessThan(1e-4);
      m.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('per-example losses and LoRA gradients agree to 1e-4 relative', () => {
    const enc = f.examples.map((ex) => ({ tokens: Int32Array.from(ex.tokens), lossMask: Float32Array.from(ex.lossMask) }));
    const losses = model.lossesEncoded(enc);
    const grads = model.perExampleGradientsEncoded(enc.map((_, i) => `ex${i}`), enc, 'lora', 'fixture');
    f.examples.forEach((ex, i) => {
      expect(Math.abs(losses[i]! - ex.loss) / ex.loss).toBeLessThan(1e-5);
      let off = 0;
      grads.parameterNames.forEach((name, k) => {
        const size = grads.parameterSizes[k]!;
        const ref = ex.loraGrads[name];
        expect(ref, name).toBeDefined();
        expect(relErr(grads.rows[i]!.subarray(off, off + size), ref!), `${family} ${name}`).toBeLessThan(1e-4);
        off += size;
      });
    });
  });
});
