import { DdaError } from '@dda/core';

/** Special tokens of the word-level tokenizer; ids 0..n-1 in this order. */
export const SPECIAL_TOKENS = ['<pad>', '<unk>', '<bos>', '<eos>', '<|system|>', '<|user|>', '<|assistant|>', '<nl>'] as const;
export const PAD_ID = 0;
export const UNK_ID = 1;
export const BOS_ID = 2;
export const EOS_ID = 3;

/** Splits text into word tokens: punctuation is separated, newlines become `<nl>`. */
export function splitWords(text: string): string[] {
  return text
    .replace(/\n/g, ' <nl> ')
    .replace(/([.,:;!?()"])/g, ' $1 ')
    .split(/\s+/)
    .filter((w) => w.length > 0);
}

/**
 * What the model needs of a tokenizer: implemented by {@link WordTokenizer} (the tiny models'
 * word-level vocabulary) and by `HfTokenizer` (a Hugging Face tokenizer.json).
 */
export interface Tokenizer {
  /** `word-level`: the model's vocabSize must equal {@link size}; `hugging-face`: it may be larger (padded embeddings). */
  readonly kind: 'word-level' | 'hugging-face';
  /** Number of token ids (vocabulary plus added/special tokens); ids are 0..size-1. */
  readonly size: number;
  /** Id put at the start of every sequence, or null when the tokenizer uses none (Qwen2). */
  readonly bosId: number | null;
  /** Id that ends a response (the loss covers it; generation stops at it). */
  readonly eosId: number;
  /** Id of batch padding (never in the loss). */
  readonly padId: number;
  /** Token ids of `text`, special tokens written in the text recognised, no BOS/EOS added. */
  encode(text: string): number[];
  /** Text of `ids`, special tokens left out. */
  decode(ids: readonly number[]): string;
  /**
   * The prompt of the instruction format (METHOD.md): a system and a user turn, then the start of
   * the assistant turn, in this tokenizer's chat template. The response follows it, then EOS.
   */
  applyChatTemplate(system: string, user: string): string;
}

/**
 * A word-level tokenizer for the project's tiny models. Its vocabulary is built from a corpus
 * (sorted by frequency, then alphabetically, so it is deterministic) and saved as JSON.
 */
export class WordTokenizer implements Tokenizer {
  readonly kind = 'word-level';
  readonly bosId = BOS_ID;
  readonly eosId = EOS_ID;
  readonly padId = PAD_ID;
  private readonly index: Map<string, number>;

  constructor(readonly vocab: readonly string[]) {
    SPECIAL_TOKENS.forEach((t, i) => {
      if (vocab[i] !== t) throw new DdaError(`tokenizer: vocabulary entry ${i} must be '${t}', got '${String(vocab[i])}'`);
    });
    this.index = new Map();
    vocab.forEach((w, i) => {
      if (this.index.has(w)) throw new DdaError(`tokenizer: duplicate vocabulary entry '${w}' at ${i}`);
      this.index.set(w, i);
    });
  }

  /** Builds a vocabulary from texts (every word seen at least `minCount` times). */
  static fromCorpus(texts: Iterable<string>, minCount = 1): WordTokenizer {
    const counts = new Map<string, number>();
    for (const t of texts) for (const w of splitWords(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const specials = new Set<string>(SPECIAL_TOKENS);
    const words = [...counts.entries()]
      .filter(([w, c]) => c >= minCount && !specials.has(w))
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([w]) => w);
    return new WordTokenizer([...SPECIAL_TOKENS, ...words]);
  }

  get size(): number {
    return this.vocab.length;
  }

  /** Token ids of `text` (no BOS/EOS). Unknown words map to `<unk>`. */
  encode(text: string): number[] {
    return splitWords(text).map((w) => this.index.get(w) ?? UNK_ID);
  }

  /** Words that are not in the vocabulary (for validation messages). */
  unknownWords(text: string): string[] {
    return [...new Set(splitWords(text).filter((w) => !this.index.has(w)))];
  }

  decode(ids: readonly number[]): string {
    return ids
      .filter((i) => i !== PAD_ID && i !== BOS_ID && i !== EOS_ID)
      .map((i) => (this.vocab[i] === '<nl>' ? '\n' : (this.vocab[i] ?? '<unk>')))
      .join(' ')
      .replace(/ ?\n ?/g, '\n');
  }

  /** {@link applyChatTemplate} (the function) of the tiny models. */
  applyChatTemplate(system: string, user: string): string {
    return applyChatTemplate(system, user);
  }

  toJSON(): { type: 'word-level'; vocab: readonly string[] } {
    return { type: 'word-level', vocab: this.vocab };
  }

  static fromJSON(json: unknown, fileName = 'tokenizer'): WordTokenizer {
    const j = json as { type?: unknown; vocab?: unknown };
    if (!j || j.type !== 'word-level' || !Array.isArray(j.vocab) || !j.vocab.every((w) => typeof w === 'string')) {
      throw new DdaError(`${fileName}: not a word-level tokenizer file`, 'expected {"type":"word-level","vocab":[...strings]}');
    }
    return new WordTokenizer(j.vocab as string[]);
  }
}

/**
 * The chat template of the tiny models: `<|system|> {system} <|user|> {user} <|assistant|>`;
 * the response follows and ends with `<eos>`.
 */
export function applyChatTemplate(system: string, user: string): string {
  return `<|system|> ${system} <|user|> ${user} <|assistant|>`;
}

/** A tokenised example: `tokens` = BOS + prompt + response + EOS; `lossMask[t]` = 1 where token t+1 is a response/EOS token. */
export interface EncodedExample {
  readonly tokens: Int32Array;
  /** Length tokens.length - 1: weight of predicting tokens[t+1] from position t. */
  readonly lossMask: Float32Array;
}

/**
 * Encodes a prompt/response pair as BOS + prompt + response + EOS (prompt and response encoded
 * separately, as in supervised fine-tuning); the loss covers the response tokens and EOS. BOS is
 * left out when the tokenizer has none or the prompt already starts with it (a chat template
 * that writes the BOS token).
 */
export function encodeExample(tok: Tokenizer, prompt: string, response: string, maxSeqLen: number, id = '?'): EncodedExample {
  let p = tok.encode(prompt);
  const r = tok.encode(response);
  if (r.length === 0) throw new DdaError(`sample '${id}': empty response`, 'every sample needs a non-empty response to take a loss over');
  if (tok.bosId !== null && p[0] !== tok.bosId) p = [tok.bosId, ...p];
  const tokens = [...p, ...r, tok.eosId];
  if (tokens.length > maxSeqLen) {
    throw new DdaError(`sample '${id}': ${tokens.length} tokens, longer than the model's maxSeqLen ${maxSeqLen}`, 'shorten the text or use a model with a longer context');
  }
  const lossMask = new Float32Array(tokens.length - 1);
  for (let t = Math.max(0, p.length - 1); t < tokens.length - 1; t++) lossMask[t] = 1;
  return { tokens: Int32Array.from(tokens), lossMask };
}
