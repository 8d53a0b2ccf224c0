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
 * A word-level tokenizer for the project's tiny models. Its vocabulary is built from a corpus
 * (sorted by frequency, then alphabetically, so it is deterministic) and saved as JSON.
 */
export class WordTokenizer {
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

/** Encodes a prompt/response pair; the loss covers the response tokens and EOS. */
export function encodeExample(tok: WordTokenizer, prompt: string, response: string, maxSeqLen: number, id = '?'): EncodedExample {
  const p = tok.encode(prompt);
  const r = tok.encode(response);
  if (r.length === 0) throw new DdaError(`sample '${id}': empty response`, 'every sample needs a non-empty response to take a loss over');
  const tokens = [BOS_ID, ...p, ...r, EOS_ID];
  if (tokens.length > maxSeqLen) {
    throw new DdaError(`sample '${id}': ${tokens.length} tokens, longer than the model's maxSeqLen ${maxSeqLen}`, 'shorten the text or use a model with a longer context');
  }
  const lossMask = new Float32Array(tokens.length - 1);
  for (let t = p.length; t < tokens.length - 1; t++) lossMask[t] = 1;
  return { tokens: Int32Array.from(tokens), lossMask };
}
