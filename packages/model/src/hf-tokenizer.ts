import { Environment, Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizerImpl } from '@huggingface/tokenizers';
import { DdaError } from '@dda/core';
import type { ModelFamily } from './hf-config.js';
import type { ChatMessage, Tokenizer } from './tokenizer.js';

/** ChatML (Qwen2, Qwen3): `<|im_start|>{role}\n{content}<|im_end|>\n` per message. */
const CHATML =
  "{%- for m in messages -%}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endfor -%}" +
  "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}";

/**
 * Chat templates (Jinja, as in tokenizer_config.json) used when a tokenizer_config.json has no
 * `chat_template`, one per family, written from the families' published chat formats:
 * - llama: LLaMA-2-chat, `<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]`;
 * - mistral: Mistral-Instruct, which has no system role: `<s>[INST] {system}\n\n{user} [/INST]`;
 * - qwen2, qwen3: ChatML, `<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n`
 *   (Qwen3's own template, which its tokenizer_config.json always carries, adds thinking blocks).
 * - gemma3_text: Gemma-3's turns, `<bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n<start_of_turn>model\n`:
 *   no system role, the system prompt opens the first user turn, contents trimmed (as the template in
 *   google/gemma-3-1b-it's tokenizer_config.json, for string contents).
 * Assistant turns end with the EOS token (`</s>`; `<|im_end|>` in ChatML; `<end_of_turn>` in Gemma's turns).
 */
export const FAMILY_CHAT_TEMPLATES: Readonly<Record<ModelFamily, string>> = {
  llama:
    "{%- set ns = namespace(sys='') -%}" +
    "{%- for m in messages -%}" +
    "{%- if m['role'] == 'system' -%}{%- set ns.sys = '<<SYS>>\\n' + m['content'] + '\\n<</SYS>>\\n\\n' -%}" +
    "{%- elif m['role'] == 'user' -%}{{ bos_token + '[INST] ' + ns.sys + m['content'] + ' [/INST]' }}{%- set ns.sys = '' -%}" +
    "{%- else -%}{{ ' ' + m['content'] + ' ' + eos_token }}{%- endif -%}" +
    '{%- endfor -%}',
  mistral:
    "{%- set ns = namespace(sys='') -%}" +
    "{{ bos_token }}" +
    "{%- for m in messages -%}" +
    "{%- if m['role'] == 'system' -%}{%- set ns.sys = m['content'] + '\\n\\n' -%}" +
    "{%- elif m['role'] == 'user' -%}{{ '[INST] ' + ns.sys + m['content'] + ' [/INST]' }}{%- set ns.sys = '' -%}" +
    "{%- else -%}{{ m['content'] + eos_token }}{%- endif -%}" +
    '{%- endfor -%}',
  qwen2: CHATML,
  qwen3: CHATML,
  gemma3_text:
    "{{ bos_token }}{%- set ns = namespace(sys='') -%}" +
    "{%- for m in messages -%}" +
    "{%- if m['role'] == 'system' -%}{%- set ns.sys = m['content'] + '\\n\\n' -%}" +
    "{%- else -%}{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\\n' + ns.sys + (m['content'] | trim) + '<end_of_turn>\\n' }}{%- set ns.sys = '' -%}{%- endif -%}" +
    '{%- endfor -%}' +
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}",
};

/** The characters Python's `str.isspace()` is true of (what `str.strip()` removes without an argument). */
const PYTHON_SPACE = new Set('\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000');

/** Python's `s.strip(chars)` / `lstrip` / `rstrip`: `chars` null or undefined strips whitespace (Python's definition). */
export function pythonStrip(s: string, chars: string | null | undefined, left: boolean, right: boolean): string {
  const strip = chars === null || chars === undefined ? PYTHON_SPACE : new Set(chars);
  const cps = [...s];
  let a = 0;
  let b = cps.length;
  while (left && a < b && strip.has(cps[a] as string)) a++;
  while (right && b > a && strip.has(cps[b - 1] as string)) b--;
  return cps.slice(a, b).join('');
}

/**
 * Makes @huggingface/jinja's string methods `strip`, `lstrip` and `rstrip` behave as Python's,
 * which chat templates are written for (transformers renders them with jinja2): they take an
 * optional set of characters (Qwen3's template strips only newlines, `content.lstrip('\n')`, where
 * @huggingface/jinja 0.5 ignored the argument and stripped every space) and strip Python's
 * whitespace. Patched once, on the library's string value class.
 */
function pythonStringMethods(): void {
  const env = new Environment();
  env.set('s', '');
  const str = env.lookupVariable('s') as unknown as { value: string; builtins: Map<string, unknown> };
  const proto = Object.getPrototypeOf(str) as object;
  const getter = Object.getOwnPropertyDescriptor(proto, 'builtins')?.get;
  const FunctionValue = (str.builtins.get('strip') as object | undefined)?.constructor as (new (fn: (args: { value: unknown }[]) => unknown) => unknown) | undefined;
  const StringValue = str.constructor as new (v: string) => unknown;
  if (getter === undefined || FunctionValue === undefined || (proto as { pythonStrip?: boolean }).pythonStrip) return;
  Object.defineProperty(proto, 'pythonStrip', { value: true });
  Object.defineProperty(proto, 'builtins', {
    configurable: true,
    get(this: { value: string }) {
      const map = getter.call(this) as Map<string, unknown>;
      for (const [name, left, right] of [['strip', true, true], ['lstrip', true, false], ['rstrip', false, true]] as const) {
        map.set(name, new FunctionValue((args) => {
          const chars = args[0]?.value;
          return new StringValue(pythonStrip(this.value, typeof chars === 'string' ? chars : null, left, right));
        }));
      }
      return map;
    },
  });
}
pythonStringMethods();

/** Special tokens of each family when no tokenizer_config.json names them. */
const FAMILY_SPECIAL_TOKENS: Readonly<Record<ModelFamily, { bos: string | null; eos: string }>> = {
  llama: { bos: '<s>', eos: '</s>' },
  mistral: { bos: '<s>', eos: '</s>' },
  qwen2: { bos: null, eos: '<|endoftext|>' },
  qwen3: { bos: null, eos: '<|endoftext|>' },
  gemma3_text: { bos: '<bos>', eos: '<eos>' },
};

/** Options of {@link HfTokenizer.fromJSON}. */
export interface HfTokenizerOptions {
  /** Family of the model: picks the chat template and special tokens when tokenizer_config.json lacks them. */
  readonly family?: ModelFamily;
  /** Where the files came from, for error messages. */
  readonly source?: string;
  /** Ids from this one up are special tokens the model has no embedding for: not counted in size, refused by encode (see {@link HfTokenizer.limitedTo}). */
  readonly idLimit?: number;
  /**
   * The text of a `chat_template.jinja` beside the files: transformers (since 4.47) saves the chat
   * template there and, reading a folder, prefers it to tokenizer_config.json's `chat_template`.
   */
  readonly chatTemplateJinja?: string;
  /**
   * The date a template that writes the date (`strftime_now`, e.g. Llama-3.x's "Today Date: ..."
   * system turn) renders, `YYYY-MM-DD` (default {@link DEFAULT_CHAT_DATE}). transformers renders the
   * date of the day it runs, so the training data had the date training ran; rendering today's
   * would change every sample, every cache key and every shard with the calendar and the time zone.
   */
  readonly chatDate?: string;
}

/**
 * The date rendered for a template's `strftime_now` unless another is given: 26 Jul 2024, the date
 * Llama-3.1's and 3.2's own templates fall back to when `strftime_now` is not defined.
 */
export const DEFAULT_CHAT_DATE = '2024-07-26';

/** The name the template's `strftime_now` is renamed to (see the constructor). */
const FIXED_STRFTIME = 'dda_strftime_of_chat_date';

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/**
 * Python's `strftime` of a day (midnight, UTC, C locale) for the directives chat templates use:
 * %d %m %Y %y %b %B %a %A %j %H %M %S %%.
 *
 * @param date - `YYYY-MM-DD`.
 * @throws DdaError for a malformed date or another directive.
 */
export function strftimeOfDay(date: string, format: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
  if (!m || !d || d.getUTCMonth() !== Number(m[2]) - 1 || d.getUTCDate() !== Number(m[3])) throw new DdaError(`chat date '${date}' is not a date YYYY-MM-DD`, 'pass e.g. 2025-03-14');
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const dayOfYear = Math.round((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
  return format.replace(/%./g, (t) => {
    switch (t) {
      case '%d': return pad(d.getUTCDate());
      case '%m': return pad(d.getUTCMonth() + 1);
      case '%Y': return String(d.getUTCFullYear());
      case '%y': return pad(d.getUTCFullYear() % 100);
      case '%b': return (MONTHS[d.getUTCMonth()] as string).slice(0, 3);
      case '%B': return MONTHS[d.getUTCMonth()] as string;
      case '%a': return (DAYS[d.getUTCDay()] as string).slice(0, 3);
      case '%A': return DAYS[d.getUTCDay()] as string;
      case '%j': return pad(dayOfYear, 3);
      case '%H': case '%M': case '%S': return '00';
      case '%%': return '%';
      default: throw new DdaError(`the chat template's strftime_now uses '${t}', which is not rendered here`, 'only %d %m %Y %y %b %B %a %A %j %H %M %S %% are');
    }
  });
}

/** The file transformers saves a tokenizer's chat template in (tokenization_utils_base.py CHAT_TEMPLATE_FILE). */
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

/**
 * The chat template of a tokenizer_config.json's `chat_template`: a string, or the `default` of a
 * list of named templates or of an object of them; null when it has none.
 */
export function configChatTemplate(config: Record<string, unknown>): string | null {
  const ct = config.chat_template;
  if (typeof ct === 'string') return ct;
  if (Array.isArray(ct)) return ((ct as { name?: unknown; template?: unknown }[]).find((t) => t.name === 'default')?.template as string | undefined) ?? null;
  if (ct && typeof ct === 'object') return typeof (ct as Record<string, unknown>).default === 'string' ? ((ct as Record<string, unknown>).default as string) : null;
  return null;
}

/** A special-token entry of tokenizer_config.json: a string or an AddedToken object. */
export function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/**
 * A Hugging Face tokenizer (`tokenizer.json` + `tokenizer_config.json`) run by the
 * `@huggingface/tokenizers` library (pure JavaScript), with the chat template rendered by
 * `@huggingface/jinja`. Implements {@link Tokenizer} for every engine's decoder.
 */
export class HfTokenizer implements Tokenizer {
  readonly kind = 'hugging-face';
  readonly size: number;
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number;
  /** The Jinja chat template in use and where it came from. */
  readonly chatTemplate: { readonly source: 'tokenizer_config.json' | typeof CHAT_TEMPLATE_FILE | `family:${ModelFamily}`; readonly text: string };
  private readonly template: Template;
  private readonly bosToken: string;
  private readonly eosToken: string;
  /** Where the files came from, for error messages. */
  private readonly source: string;
  /** The date the template's `strftime_now` renders (YYYY-MM-DD), or null when the template writes no date. */
  readonly chatDate: string | null;

  private constructor(
    private readonly impl: HfTokenizerImpl,
    /** The parsed tokenizer.json and tokenizer_config.json it was built from (written back unchanged by saveModelFolder). */
    readonly files: { readonly tokenizerJson: object; readonly tokenizerConfig: Record<string, unknown> | null },
    private readonly options: HfTokenizerOptions,
  ) {
    const o = options;
    const config = files.tokenizerConfig ?? {};
    const src = o.source ?? 'tokenizer';
    this.source = src;
    const vocab = impl.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.size = o.idLimit !== undefined ? Math.min(maxId + 1, o.idLimit) : maxId + 1;
    const defaults = o.family ? FAMILY_SPECIAL_TOKENS[o.family] : null;
    const idOf = (field: string, token: string): number => {
      const id = impl.token_to_id(token);
      if (id === undefined) throw new DdaError(`${src}: ${field} '${token}' is not in the vocabulary`, 'check tokenizer_config.json against tokenizer.json');
      return id;
    };
    const eos = tokenContent(config.eos_token) ?? defaults?.eos ?? null;
    if (eos === null) throw new DdaError(`${src}: no eos_token`, 'give tokenizer_config.json an eos_token, or name the model family');
    this.eosToken = eos;
    this.eosId = idOf('eos_token', eos);
    const bos = config.bos_token === undefined ? (defaults?.bos ?? null) : tokenContent(config.bos_token);
    this.bosToken = bos ?? '';
    this.bosId = bos !== null && config.add_bos_token !== false ? idOf('bos_token', bos) : null;
    const pad = tokenContent(config.pad_token);
    this.padId = pad !== null ? idOf('pad_token', pad) : this.eosId;

    const text = configChatTemplate(config);
    if (o.chatTemplateJinja !== undefined) this.chatTemplate = { source: CHAT_TEMPLATE_FILE, text: o.chatTemplateJinja };
    else if (text !== null) this.chatTemplate = { source: 'tokenizer_config.json', text };
    else if (o.family) this.chatTemplate = { source: `family:${o.family}`, text: FAMILY_CHAT_TEMPLATES[o.family] };
    else throw new DdaError(`${src}: tokenizer_config.json has no chat_template and no model family is given`, 'add a chat_template, or name the family (llama, qwen2, mistral, qwen3, gemma3_text) for its standard template');
    this.chatDate = this.chatTemplate.text.includes('strftime_now') ? o.chatDate ?? DEFAULT_CHAT_DATE : null;
    if (this.chatDate !== null) strftimeOfDay(this.chatDate, '%Y');
    try {
      // @huggingface/jinja declares its own strftime_now (the clock) and refuses a render variable of
      // that name, so the template calls ours under another name.
      this.template = new Template(this.chatDate === null ? this.chatTemplate.text : this.chatTemplate.text.replace(/\bstrftime_now\b/g, FIXED_STRFTIME));
    } catch (e) {
      throw new DdaError(`${src}: chat template does not parse (${(e as Error).message})`, `fix ${this.chatTemplate.source === CHAT_TEMPLATE_FILE ? CHAT_TEMPLATE_FILE : 'chat_template in tokenizer_config.json'}`);
    }
  }

  /**
   * Builds a tokenizer from the parsed `tokenizer.json` and `tokenizer_config.json` (null when
   * the folder has none: special tokens and chat template then come from `o.family`).
   */
  static fromJSON(tokenizerJson: unknown, tokenizerConfig: unknown, o: HfTokenizerOptions = {}): HfTokenizer {
    const src = o.source ?? 'tokenizer.json';
    const tj = tokenizerJson as { model?: { type?: unknown } } | null;
    if (typeof tj !== 'object' || tj === null || typeof tj.model !== 'object' || tj.model === null) {
      throw new DdaError(`${src}: not a Hugging Face tokenizer.json (no 'model' object)`, 'use the tokenizer.json saved with the model by the tokenizers library');
    }
    if (tokenizerConfig !== null && (typeof tokenizerConfig !== 'object' || Array.isArray(tokenizerConfig))) {
      throw new DdaError(`${o.source ?? 'tokenizer_config.json'}: tokenizer_config.json is not a JSON object`, 'fix or remove tokenizer_config.json');
    }
    const config = tokenizerConfig as Record<string, unknown> | null;
    let impl: HfTokenizerImpl;
    try {
      impl = new HfTokenizerImpl(tj, config ?? {});
    } catch (e) {
      throw new DdaError(`${src}: the tokenizer library cannot load it (${(e as Error).message})`, `tokenizer model type '${String(tj.model.type)}' or one of its components may be unsupported by @huggingface/tokenizers`);
    }
    return new HfTokenizer(impl, { tokenizerJson: tj, tokenizerConfig: config }, o);
  }

  /**
   * The same tokenizer (sharing its vocabulary) with `chatTemplate` as tokenizer_config.json's
   * `chat_template`, as if the file said so.
   *
   * @throws DdaError if the template does not parse.
   */
  /** The same tokenizer with `date` (YYYY-MM-DD) as the date its template's `strftime_now` renders. */
  withChatDate(date: string): HfTokenizer {
    return new HfTokenizer(this.impl, this.files, { ...this.options, chatDate: date });
  }

  withChatTemplate(chatTemplate: string): HfTokenizer {
    const { chatTemplateJinja: _, ...options } = this.options;
    return new HfTokenizer(this.impl, { ...this.files, tokenizerConfig: { ...(this.files.tokenizerConfig ?? {}), chat_template: chatTemplate } }, options);
  }

  encode(text: string): number[] {
    const ids = this.impl.encode(text, { add_special_tokens: false }).ids;
    const beyond = ids.find((id: number) => id >= this.size);
    if (beyond !== undefined) {
      throw new DdaError(`${this.source}: the text writes the special token '${this.impl.id_to_token(beyond) ?? beyond}' (id ${beyond}), which the model has no embedding for (its vocabulary has ${this.size} ids)`,
        'remove that token from the text (e.g. an image placeholder of a multimodal model)');
    }
    return ids;
  }

  /**
   * This tokenizer for a model of `vocabSize` ids when the tokenizer has more: allowed only when
   * every id ≥ vocabSize is a special added token (as `<image_soft_token>`, id 262,144, in Gemma-3's
   * tokenizer beside gemma-3-1b's 262,144 embeddings); its size is then vocabSize and encode refuses
   * text that writes those tokens.
   *
   * @throws DdaError naming an id ≥ vocabSize that is not a special added token.
   */
  limitedTo(vocabSize: number): HfTokenizer {
    if (this.size <= vocabSize) return this;
    const added = (this.files.tokenizerJson as { added_tokens?: { id?: unknown; content?: unknown; special?: unknown }[] }).added_tokens ?? [];
    const special = new Set(added.filter((t) => t.special === true).map((t) => t.id));
    for (let id = vocabSize; id < this.size; id++) {
      if (!special.has(id)) {
        throw new DdaError(`${this.source}: tokenizer has ${this.size} entries but the model's vocabSize is ${vocabSize}, and id ${id} ('${this.impl.id_to_token(id) ?? '?'}') is not a special added token`,
          'use the tokenizer saved with this model, or a config whose vocabSize matches the tokenizer');
      }
    }
    return new HfTokenizer(this.impl, this.files, { ...this.options, idLimit: vocabSize });
  }

  decode(ids: readonly number[]): string {
    // @huggingface/tokenizers throws on an empty list; a generation that stops at once is ''.
    if (ids.length === 0) return '';
    return this.impl.decode([...ids], { skip_special_tokens: true });
  }

  /** Token strings of `text` (for inspection and tests). */
  tokens(text: string): string[] {
    return this.impl.encode(text, { add_special_tokens: false }).tokens;
  }

  /** The EOS token's text (tokenizer_config.json's eos_token, or the family's). */
  get eosText(): string {
    return this.eosToken;
  }

  private eot: { readonly text: string; readonly id: number } | undefined;

  /**
   * The token the chat template writes right after an assistant turn's content (see
   * Tokenizer.endOfTurn): a user turn and an assistant turn are rendered, and the special token
   * (tokenizer.json's added_tokens with `special` true, the longest that matches) that follows the
   * assistant content after any spaces is taken: `<|eot_id|>` for Llama-3's template, `<|im_end|>`
   * for ChatML, `</s>` for LLaMA-2's. EOS where the template writes no special token there or does
   * not render the probe. LLaMA-Factory's `llama3` template (format_assistant
   * `{{content}}<|eot_id|>`, stop word `<|eot_id|>`) and Llama-3's generation_config.json
   * (eos_token_id [128001, 128008, 128009]) end a response the same way.
   */
  get endOfTurn(): { readonly text: string; readonly id: number } {
    if (this.eot) return this.eot;
    const eos = { text: this.eosToken, id: this.eosId };
    const content = 'x7q9';
    let rest: string | null = null;
    try {
      const full = this.renderChat([{ role: 'user', content: 'hi' }, { role: 'assistant', content }], false);
      const at = full.lastIndexOf(content);
      rest = at < 0 ? null : full.slice(at + content.length).trimStart();
    } catch {
      rest = null;
    }
    const added = (this.files.tokenizerJson as { added_tokens?: { id?: unknown; content?: unknown; special?: unknown }[] }).added_tokens ?? [];
    const special = added.filter((t): t is { id: number; content: string; special: true } => t.special === true && typeof t.content === 'string' && typeof t.id === 'number' && t.content.length > 0);
    const hit = rest === null ? undefined : special.filter((t) => (rest as string).startsWith(t.content)).sort((a, b) => b.content.length - a.content.length)[0];
    this.eot = hit ? { text: hit.content, id: hit.id } : eos;
    return this.eot;
  }

  /**
   * Renders the chat template over `messages`; `addGenerationPrompt` opens the assistant turn. The
   * template sees what transformers' `apply_chat_template` gives it: `messages`,
   * `add_generation_prompt`, `bos_token`, `eos_token` (and @huggingface/jinja's `raise_exception`).
   *
   * @throws DdaError naming the tokenizer, with the template's own message, when the template
   *   refuses the conversation (`raise_exception`, e.g. "Conversation roles must alternate") or
   *   cannot render it.
   */
  renderChat(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    try {
      return this.template.render({
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: addGenerationPrompt,
        bos_token: this.bosToken,
        eos_token: this.eosToken,
        // A fixed day, not the clock: the same samples whenever and wherever they are rendered.
        [FIXED_STRFTIME]: (format: string) => strftimeOfDay(this.chatDate ?? DEFAULT_CHAT_DATE, format),
      });
    } catch (e) {
      throw new DdaError(
        `${this.source}: the chat template fails on this conversation (roles ${messages.map((m) => m.role).join(', ')}): ${(e as Error).message}`,
        "give the conversation the roles and order this model's chat template accepts, or fix chat_template in tokenizer_config.json",
      );
    }
  }

  applyChatTemplate(system: string, user: string): string {
    return this.renderChat([{ role: 'system', content: system }, { role: 'user', content: user }], true);
  }
}
