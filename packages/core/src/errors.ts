/**
 * An error meant for the user: it says what went wrong and what to change.
 * The CLI prints `message` on one line (and the stack only with `--verbose`).
 */
export class DdaError extends Error {
  /** What the user should change to make the call succeed. */
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(hint ? `${message} (${hint})` : message);
    this.name = 'DdaError';
    this.hint = hint;
  }
}
