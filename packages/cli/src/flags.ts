/**
 * Checks of the command line that yargs leaves to its user: numeric flags given something that is not
 * a number (yargs parses them to NaN silently), and "did you mean" for unknown flags.
 */
import { closestNames } from '@dda/core';

/** Bad usage of the command line: printed as one line, exit code 2. */
export class UsageError extends Error {}

/**
 * The values given on the command line for `--flag` (as `--flag a b` or `--flag=a`; a one-letter
 * flag also as `-k a` or `-k=a`), in order. The values of one occurrence run until the next flag; a
 * negative number (`-3`) is a value.
 */
export function givenValues(argv: readonly string[], flag: string): string[] {
  const out: string[] = [];
  const names = flag.length === 1 ? [`--${flag}`, `-${flag}`] : [`--${flag}`];
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i] as string;
    const eq = names.find((n) => x.startsWith(`${n}=`));
    if (eq !== undefined) out.push(x.slice(eq.length + 1));
    else if (names.includes(x)) {
      for (let j = i + 1; j < argv.length && !isFlag(argv[j] as string); j++) out.push(argv[j] as string);
    }
  }
  return out;
}

/** Whether a command-line token is a flag (`--x`, `-x`), not a value such as `-3` or `-.5`. */
const isFlag = (x: string): boolean => /^--?[^\d.-]/.test(x) || x === '--';

/**
 * Refuses the numeric flags that yargs parsed to NaN (`--beta abc`, `--seeds 0 one`), naming each
 * flag and the values given that are not numbers. `parsed` is yargs' argv (kebab-case keys and their
 * camelCase copies; the copies are skipped), `argv` the command line as typed.
 *
 * @throws UsageError `--beta must be a number, got 'abc'` (one clause per bad flag).
 */
export function checkNumericFlags(parsed: Readonly<Record<string, unknown>>, argv: readonly string[]): void {
  const bad: string[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (/[A-Z]/.test(key) || key === '_' || key === '$0') continue;
    const values: unknown[] = Array.isArray(value) ? value : [value];
    if (!values.some((v) => typeof v === 'number' && Number.isNaN(v))) continue;
    const given = givenValues(argv, key).filter((v) => Number.isNaN(Number(v)));
    bad.push(`--${key} must be a number, got ${given.length > 0 ? given.map((v) => `'${v}'`).join(', ') : 'something that is not one'}`);
  }
  if (bad.length > 0) throw new UsageError(bad.join('; '));
}

/**
 * Refuses a flag of one value given more than once (`--queries a --queries b`, which yargs turns
 * into an array its user does not expect). `parsed` is yargs' argv; `multi` the flags that take
 * several values (yargs' `array` options) and the boolean ones (a repeated switch is harmless).
 *
 * @throws UsageError `--queries was given twice (give it once)` (one clause per flag).
 */
export function checkRepeatedFlags(parsed: Readonly<Record<string, unknown>>, multi: readonly string[]): void {
  const bad: string[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (/[A-Z]/.test(key) || key === '_' || key === '$0' || multi.includes(key) || !Array.isArray(value)) continue;
    bad.push(`--${key} was given ${value.length === 2 ? 'twice' : `${value.length} times`}`);
  }
  if (bad.length > 0) throw new UsageError(`${bad.join('; ')} (give ${bad.length === 1 ? 'it' : 'each'} once)`);
}

/** The flags of a yargs instance that may be given more than once: its `array` and `boolean` options (untyped `getOptions()`). */
export function multiValueFlags(parser: object): string[] {
  const getOptions = (parser as { getOptions?: () => { array?: string[]; boolean?: string[] } }).getOptions;
  const o = getOptions?.call(parser);
  return [...(o?.array ?? []), ...(o?.boolean ?? [])];
}

/**
 * yargs' `Unknown argument(s): a, b` with "did you mean" for each unknown flag close to a known one
 * (`Unknown argument: bta (--bta: did you mean --beta?)`). Names yargs adds in camelCase beside the
 * kebab-case one typed are dropped; words that were not typed as flags (stray positionals) get no
 * suggestion. `Missing required argument(s): ...` (which yargs reports before unknown flags) gets
 * the same hints for the flags typed that the command does not know (`--bse` for `--base`). Any
 * other message is returned as it is.
 */
export function withFlagSuggestions(message: string, known: readonly string[], argv: readonly string[]): string {
  if (/^Missing required arguments?: /.test(message)) {
    const typed = argv.filter((x) => x.startsWith('--') && x.length > 2).map((x) => (x.slice(2).split('=')[0] as string));
    const hints = typed.filter((t) => !known.includes(t)).flatMap((t) => suggestion(t, known));
    return hints.length > 0 ? `${message} (${hints.join('; ')})` : message;
  }
  const m = /^Unknown arguments?: (.*)$/.exec(message);
  if (!m) return message;
  const names = (m[1] as string).split(', ');
  const kept = names.filter((n) => !(/[A-Z]/.test(n) && names.includes(n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))));
  const typedAsFlag = (n: string): boolean => argv.some((x) => x === `--${n}` || x.startsWith(`--${n}=`) || x === `-${n}`);
  const hints = kept.flatMap((n) => (typedAsFlag(n) ? suggestion(n, known) : []));
  return `Unknown argument${kept.length === 1 ? '' : 's'}: ${kept.join(', ')}${hints.length > 0 ? ` (${hints.join('; ')})` : ''}`;
}

/** `--x: did you mean --y?` for an unknown flag `x` close to known flags (kebab-case ones), or nothing. */
function suggestion(flag: string, known: readonly string[]): string[] {
  const close = closestNames(flag, known.filter((k) => !/[A-Z]/.test(k)));
  return close.length > 0 ? [`--${flag}: did you mean ${close.map((c) => `--${c}`).join(' or ')}?`] : [];
}

/** The flags a yargs instance knows after parsing (the global ones and the command's), from its untyped `getOptions()`. */
export function knownFlags(parser: object): string[] {
  const getOptions = (parser as { getOptions?: () => { key?: Record<string, unknown> } }).getOptions;
  return Object.keys(getOptions?.call(parser).key ?? {});
}
