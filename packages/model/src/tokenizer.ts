import { DdaError, type ChatMessage } from '@dda/core';

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
  /**
   * Renders a conversation with this tokenizer's chat template; `addGenerationPrompt` opens an
   * assistant turn at the end. Assistant turns are followed by the end-of-turn text the template
   * writes (e.g. {@link eosText}).
   */
  renderChat(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string;
  /** The text of the EOS token as it appears in rendered chats (e.g. `</s>`, `<|im_end|>`, `<eos>`). */
  readonly eosText: string;
  /**
   * The token the chat template writes right after an assistant turn's content, which ends a chat
   * response (the loss covers it; generation stops at it as at EOS): Llama-3's `<|eot_id|>` (whose
   * tokenizer's EOS is `<|end_of_text|>`), ChatML's `<|im_end|>`, EOS for LLaMA-2, Mistral and the
   * tiny models' template.
   */
  readonly endOfTurn: { readonly text: string; readonly id: number };
}

export type { ChatMessage };

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

  readonly eosText = '<eos>';

  /** The tiny models' template ends an assistant turn with EOS. */
  readonly endOfTurn = { text: '<eos>', id: EOS_ID } as const;

  /** {@link applyChatTemplate} (the function) of the tiny models. */
  applyChatTemplate(system: string, user: string): string {
    return applyChatTemplate(system, user);
  }

  /**
   * The tiny models' template over any conversation: `<|system|> … <|user|> … <|assistant|> … <eos>`
   * turn after turn (an assistant turn ends with ` <eos>`); with `addGenerationPrompt`, a final
   * ` <|assistant|>`. For one system and one user turn it is {@link applyChatTemplate}.
   */
  renderChat(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    const parts = messages.map((m) => (m.role === 'assistant' ? `<|assistant|> ${m.content} <eos>` : `<|${m.role}|> ${m.content}`));
    if (addGenerationPrompt) parts.push('<|assistant|>');
    return parts.join(' ');
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
 * What to do with a sample longer than the model's context: `fail` (a DdaError naming the sample),
 * or `truncate`: drop prompt tokens from the left (after BOS) until it fits, and if the response
 * alone is still too long, cut the end of the response.
 */
export type OverlongPolicy = 'fail' | 'truncate';

/** Where a sample came from, for error messages (e.g. `train.jsonl:12`). */
export type SampleOrigin = string;

/** What `truncate` cut from one sample (see {@link OverlongPolicy}). */
export interface TruncationCut {
  /** Tokens of the sample before the cut (BOS, prompt, response and EOS). */
  readonly length: number;
  /** Tokens cut in all: promptTokensCut + responseTokensCut. */
  readonly tokensCut: number;
  /** Cut tokens that were not in the loss (prompt, or the non-assistant turns of a conversation). */
  readonly promptTokensCut: number;
  /** Cut tokens that were in the loss (response, or assistant turns). */
  readonly responseTokensCut: number;
}

function overlong(id: string, n: number, maxSeqLen: number, o: EncodeOptions): DdaError {
  return new DdaError(
    `sample '${id}'${o.origin ? ` (${o.origin})` : ''}: ${n} tokens, longer than ${o.limitName ?? "the model's context"} of ${maxSeqLen} tokens`,
    'shorten the record, or pass --overlong truncate to drop prompt tokens from the left (then response tokens from the end)',
  );
}

/**
 * Encodes a prompt/response pair as BOS + prompt + response + EOS (prompt and response encoded
 * separately, as in supervised fine-tuning); the loss covers the response tokens and EOS. BOS is
 * left out when the tokenizer has none or the prompt already starts with it (a chat template
 * that writes the BOS token). Longer than `maxSeqLen`: see {@link OverlongPolicy} (default `fail`).
 *
 * @throws DdaError if the response is empty, or the sample is too long under policy `fail`.
 */
export function encodeExample(
  tok: Tokenizer,
  prompt: string,
  response: string,
  maxSeqLen: number,
  id = '?',
  o: EncodeOptions = {},
): EncodedExample {
  let p = tok.encode(prompt);
  let r = tok.encode(response);
  if (r.length === 0) throw new DdaError(`sample '${id}'${o.origin ? ` (${o.origin})` : ''}: empty response`, 'every sample needs a non-empty response to take a loss over');
  const hasBos = tok.bosId !== null;
  if (hasBos && p[0] !== tok.bosId) p = [tok.bosId as number, ...p];
  const n = p.length + r.length + 1;
  if (n > maxSeqLen) {
    if (o.overlong !== 'truncate') throw overlong(id, n, maxSeqLen, o);
    const keepBos = hasBos ? 1 : 0;
    let excess = n - maxSeqLen;
    const dropPrompt = Math.min(excess, p.length - keepBos);
    p = [...p.slice(0, keepBos), ...p.slice(keepBos + dropPrompt)];
    excess -= dropPrompt;
    if (excess > 0) r = r.slice(0, r.length - excess);
    if (r.length === 0) throw overlong(id, n, maxSeqLen, o);
    o.onTruncate?.({ length: n, tokensCut: n - maxSeqLen, promptTokensCut: dropPrompt, responseTokensCut: Math.max(excess, 0) });
  }
  const tokens = [...p, ...r, tok.eosId];
  const lossMask = new Float32Array(tokens.length - 1);
  for (let t = Math.max(0, p.length - 1); t < tokens.length - 1; t++) lossMask[t] = 1;
  return { tokens: Int32Array.from(tokens), lossMask };
}

/** Length of the common prefix of two id lists. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/**
 * Encodes a chat sample from its segments (see TextSample.segments in @dda/core) as Hugging Face's
 * `apply_chat_template(tokenize=True)` does: the whole rendered text is tokenised at once (a
 * word-level tokenizer: segment by segment, which is the same where words do not span them; so a
 * token is never split at a segment boundary, and a SentencePiece tokenizer prepends '▁' to the
 * text once, not to every segment); then BOS unless the tokenizer has none or the text starts with
 * it. The loss covers the tokens of the segments marked `loss`: a segment starting at character c
 * starts at the first token where the tokens of the text before c stop being a prefix of the
 * whole (a token that straddles the boundary carries loss text and is in the loss). No EOS is
 * appended (the chat template writes the end-of-turn token into the assistant segments).
 * Longer than `maxSeqLen`: `fail`, or `truncate`: with one loss segment, as {@link encodeExample}
 * (drop tokens from the left after BOS up to the loss, then cut the end); with several, from the
 * right (a multi-turn sample keeps its beginning; at least one loss token must remain).
 *
 * @throws DdaError if no segment carries loss tokens, or the sample is too long under `fail`.
 */
export function encodeSegments(
  tok: Tokenizer,
  segments: readonly { readonly text: string; readonly loss: boolean }[],
  maxSeqLen: number,
  id = '?',
  o: EncodeOptions = {},
): EncodedExample {
  const full = segments.map((seg) => seg.text).join('');
  const ids: number[] = [];
  const loss: boolean[] = [];
  if (tok.kind === 'word-level') {
    // Words never span a segment boundary of a rendered chat (the tiny models' template puts spaces around every turn).
    for (const seg of segments) {
      for (const t of tok.encode(seg.text)) {
        ids.push(t);
        loss.push(seg.loss);
      }
    }
  } else {
    ids.push(...tok.encode(full));
    loss.push(...ids.map(() => false));
  }
  let at = 0;
  for (const seg of tok.kind === 'word-level' ? [] : segments) {
    const begin = at;
    at += seg.text.length;
    if (!seg.loss || seg.text.length === 0) continue;
    const from = begin === 0 ? 0 : commonPrefix(tok.encode(full.slice(0, begin)), ids);
    const through = tok.encode(full.slice(0, at));
    const common = commonPrefix(through, ids);
    const to = common === through.length ? common : Math.min(ids.length, common + 1);
    for (let t = from; t < to; t++) loss[t] = true;
  }
  if (tok.bosId !== null && ids[0] !== tok.bosId) {
    ids.unshift(tok.bosId);
    loss.unshift(false);
  }
  let cutSegments: TruncationCut | undefined;
  if (ids.length > maxSeqLen) {
    if (o.overlong !== 'truncate') throw overlong(id, ids.length, maxSeqLen, o);
    const length = ids.length;
    const lossBefore = loss.filter((x) => x).length;
    if (segments.filter((seg) => seg.loss).length === 1) {
      const keep = tok.bosId !== null ? 1 : 0;
      const firstLoss = loss.indexOf(true);
      const drop = Math.min(ids.length - maxSeqLen, Math.max(0, firstLoss - keep - 1));
      ids.splice(keep, drop);
      loss.splice(keep, drop);
    }
    ids.length = Math.min(ids.length, maxSeqLen);
    loss.length = ids.length;
    const lossCut = lossBefore - loss.filter((x) => x).length;
    cutSegments = { length, tokensCut: length - ids.length, promptTokensCut: length - ids.length - lossCut, responseTokensCut: lossCut };
  }
  const lossMask = new Float32Array(Math.max(ids.length - 1, 0));
  for (let t = 0; t < ids.length - 1; t++) lossMask[t] = loss[t + 1] ? 1 : 0;
  if (!lossMask.some((m) => m > 0)) {
    throw new DdaError(`sample '${id}'${o.origin ? ` (${o.origin})` : ''}: no token carries the loss`, 'a conversation needs at least one non-empty assistant turn (within the context length)');
  }
  if (cutSegments) o.onTruncate?.(cutSegments);
  return { tokens: Int32Array.from(ids), lossMask };
}

/** Options of {@link encodeSample}. */
export interface EncodeOptions {
  /** Longer than the context: `fail` (default) or `truncate` (see {@link OverlongPolicy}). */
  readonly overlong?: OverlongPolicy;
  /** Where the sample came from (file and line), named in errors. */
  readonly origin?: SampleOrigin;
  /** The limit `maxSeqLen` is, named in errors (default `the model's context`; e.g. `--max-length`). */
  readonly limitName?: string;
  /** Called once for a sample that `truncate` cut, with what it cut (see {@link TruncationCut}). */
  readonly onTruncate?: (cut: TruncationCut) => void;
}

/**
 * Encodes a TextSample of @dda/core: {@link encodeSegments} when it has segments (a chat
 * conversation, see `chatSample`), else {@link encodeExample} of its prompt and response.
 */
export function encodeSample(
  tok: Tokenizer,
  s: { readonly id: string; readonly prompt: string; readonly response: string; readonly segments?: readonly { readonly text: string; readonly loss: boolean }[] },
  maxSeqLen: number,
  o: EncodeOptions = {},
): EncodedExample {
  return s.segments ? encodeSegments(tok, s.segments, maxSeqLen, s.id, o) : encodeExample(tok, s.prompt, s.response, maxSeqLen, s.id, o);
}
