/** @dda/cli: the `dda` command. */
export * from './cli.js';
export * from './progress.js';
