/** @dda/cli: the `dda` command. */
export * from './cli.js';
export * from './progress.js';
export * from './demo-output.js';
