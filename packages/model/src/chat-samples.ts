/**
 * Chat data as model samples: a conversation rendered with the tokenizer's chat template, the loss
 * over its assistant turns and the end-of-turn token after each (as in supervised fine-tuning with an
 * assistant-only loss: TRL's completion, LLaMA-Factory's format_assistant).
 */
import { DdaError, type ChatMessage, type TextSample, type TextSegment } from '@dda/core';
import type { Tokenizer } from './tokenizer.js';

const ROLES = new Set(['system', 'user', 'assistant']);

/**
 * The sample of a conversation whose last turn is the assistant's: `segments` cut from the whole
 * rendered conversation, the loss over every assistant turn's content and the end-of-turn token the
 * template writes right after it ({@link Tokenizer.endOfTurn}: `<|eot_id|>` for Llama-3, EOS for LLaMA-2), encoded as Hugging Face's `apply_chat_template(tokenize=True)`
 * tokenises the rendering (see `encodeSegments`). Each turn is found by rendering the conversation
 * up to it with the assistant turn opened, which must be a prefix of the whole rendering (true of
 * the chat templates of LLaMA-2, Mistral, ChatML/Qwen2 and the tiny models). The text view:
 * - one assistant turn (the usual instruction sample): `prompt` = the turns before it rendered with
 *   the assistant turn opened (what {@link Tokenizer.applyChatTemplate} gives for a system and a
 *   user turn), `response` = its content;
 * - several: `prompt` = the pieces without loss joined, `response` = the pieces with loss joined.
 *
 * @param origin - Where the record came from (e.g. `train.jsonl:4`), named in errors.
 * @throws DdaError naming the record if a role is unknown, there is no assistant turn, the last
 *   turn is not the assistant's, an assistant turn is empty, or the template is not prefix-consistent.
 */
export function chatSample(tok: Tokenizer, id: string, messages: readonly ChatMessage[], origin = id): TextSample {
  messages.forEach((m, i) => {
    if (!ROLES.has(m.role)) throw new DdaError(`${origin}: message ${i + 1} has role '${String(m.role)}'`, "roles must be 'system', 'user' or 'assistant'");
  });
  const turns = messages.flatMap((m, i) => (m.role === 'assistant' ? [i] : []));
  const last = turns[turns.length - 1];
  if (last === undefined) throw new DdaError(`${origin}: the conversation has no assistant turn to take the loss over`, 'end every training conversation with the assistant turn');
  if (last !== messages.length - 1) throw new DdaError(`${origin}: the last message is a '${messages[messages.length - 1]?.role}' turn, not the assistant's`, 'end every training conversation with the assistant turn (the loss is taken over the assistant turns)');
  for (const i of turns) {
    if ((messages[i] as ChatMessage).content.trim() === '') throw new DdaError(`${origin}: assistant message ${i + 1} is empty`, 'remove empty assistant turns');
  }
  const full = tok.renderChat(messages, false);
  const segments: TextSegment[] = [];
  let at = 0;
  for (const i of turns) {
    const open = tok.renderChat(messages.slice(0, i), true);
    const given = (messages[i] as ChatMessage).content;
    // Templates that strip the content (LLaMA-2-chat's content.strip()) render it without its outer spaces.
    const content = full.slice(open.length).trimStart().startsWith(given) ? given : given.trim();
    let start = open.length;
    // Templates that put a space or newline between the opened turn and the content.
    while (start < full.length && full.slice(start).startsWith(content) === false && /\s/.test(full[start] as string)) start++;
    // Templates that write more of the turn than the generation prompt opens (Qwen3's empty
    // `<think>\n\n</think>\n\n` before the last assistant turn's content): text the template writes
    // whatever the content (the same with another content in its place) is what the model writes
    // after the generation prompt, so the loss covers it, as TRL's completion (the rendering after
    // the prompt rendered with add_generation_prompt) does.
    let templateText = 0;
    if (full.startsWith(open) && !full.slice(start).startsWith(content)) {
      const p = full.indexOf(content, open.length);
      const gap = p < 0 ? '' : full.slice(open.length, p);
      const probe = 'x7q9';
      if (p >= 0 && tok.renderChat(messages.map((m, k) => (k === i ? { ...m, content: probe } : m)), false).startsWith(open + gap + probe)) {
        start = open.length;
        templateText = gap.length;
      }
    }
    if (!full.startsWith(open) || !full.slice(start + templateText).startsWith(content) || start < at) {
      throw new DdaError(`${origin}: the chat template does not render assistant turn ${i + 1} after the conversation before it`, 'the template must be prefix-consistent (rendering turns 1..k with the assistant turn opened is a prefix of the whole conversation); give this record as prompt/response pairs instead');
    }
    let end = start + templateText + content.length;
    const rest = full.slice(end);
    const eos = /^\s*/.exec(rest)?.[0].length ?? 0;
    const eot = tok.endOfTurn.text;
    if (eot && rest.slice(eos).startsWith(eot)) end += eos + eot.length;
    if (start > at) segments.push({ text: full.slice(at, start), loss: false });
    segments.push({ text: full.slice(start, end), loss: true });
    at = end;
  }
  if (at < full.length) segments.push({ text: full.slice(at), loss: false });
  if (turns.length === 1) {
    return { id, prompt: tok.renderChat(messages.slice(0, last), true), response: (messages[last] as ChatMessage).content, segments };
  }
  return {
    id,
    prompt: segments.filter((s) => !s.loss).map((s) => s.text).join(''),
    response: segments.filter((s) => s.loss).map((s) => s.text).join(''),
    segments,
  };
}
