#!/usr/bin/env node
// The `dda` command. This file is committed (not built), so that `npm install` on a fresh clone
// links the `dda` bin before anything is built; it runs the built CLI, or says how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write(`dda: the CLI is not built yet (${main} is missing); run \`npm run build\` in the repository first\n`);
  process.exit(1);
}
await import(pathToFileURL(main).href);
