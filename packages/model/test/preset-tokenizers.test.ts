import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FAMILY_CHAT_TEMPLATES, MINI_PRESETS, PRESET_TOKENIZERS, loadPresetTokenizer, resolveModelSpec } from '@dda/model';

// Token ids of the same texts from an independent Python BPE over each tokenizer's vocabulary and
// merges (fixtures/make-tokenizer-fixtures.py).
const fx = JSON.parse(readFileSync(new URL('./fixtures/tokenizer-fixtures.json', import.meta.url), 'utf8')) as {
  strings: string[];
  llama2: { ids: number[][] };
  mistral: { ids: number[][] };
  qwen: { ids: number[][] };
};

describe('the real tokenizers of the mini presets', () => {
  it.each([
    ['llama2', 'llama2', [1, 2, 32000], 'family:llama'],
    ['mistral', 'mistral', [1, 2, 32000], 'family:mistral'],
    ['qwen2', 'qwen', [null, 151645, 151669], 'family:qwen2'],
  ] as const)('%s: ids agree with the independent Python BPE; BOS, EOS, size; its family chat template is written into tokenizer_config.json', async (name, fixture, special, template) => {
    const tok = await loadPresetTokenizer(name);
    fx.strings.forEach((s, i) => expect(tok.encode(s), s).toEqual(fx[fixture].ids[i]));
    expect([tok.bosId, tok.eosId, tok.size]).toEqual(special);
    expect(tok.size).toBeLessThanOrEqual(PRESET_TOKENIZERS[name].vocabSize);
    const family = PRESET_TOKENIZERS[name].family;
    expect(tok.files.tokenizerConfig?.chat_template).toBe(FAMILY_CHAT_TEMPLATES[family]);
    // The template comes from tokenizer_config.json, which holds the family's template.
    expect([tok.chatTemplate.source, template]).toEqual(['tokenizer_config.json', template]);
    // A generation that stops at once decodes to the empty string.
    expect(tok.decode([])).toBe('');
  });

  it('refuses an unknown tokenizer, naming the known ones', async () => {
    await expect(loadPresetTokenizer('gpt2')).rejects.toThrow(/unknown tokenizer 'gpt2'.*llama2, mistral, qwen2/s);
  });

  it('the mini presets resolve with their tokenizer and family', () => {
    expect(Object.keys(MINI_PRESETS)).toEqual(['llama2-mini', 'mistral-mini', 'qwen2-mini']);
    const spec = (n: string) => {
      const s = resolveModelSpec(n);
      return s.kind === 'preset' ? [s.family, s.tokenizer, s.config.maxSeqLen, s.config.hiddenSize, s.config.numLayers] : null;
    };
    expect(spec('llama2-mini')).toEqual(['llama', 'llama2', 512, 128, 4]);
    expect(spec('mistral-mini')).toEqual(['mistral', 'mistral', 512, 128, 4]);
    expect(spec('qwen2-mini')).toEqual(['qwen2', 'qwen2', 512, 128, 4]);
  });
});
