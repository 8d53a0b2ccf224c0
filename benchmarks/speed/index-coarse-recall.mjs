#!/usr/bin/env node
// What an approximate two-stage index query would give (issue 27's "< 1 s for one query's top-100
// at 1,000,000 rows", not met by the exact scan): a coarse scan of a column subset of every row,
// then the exact scores of the best C candidates only. Measured on an index that
// benchmarks/speed/index-scale.mjs built (default its 250,000 rows): this script takes the exact
// top-100 of its 100 queries from `dda index query`'s code (queryGradientIndex, the exact scan) and
// the queries' projected gradients, then index-coarse-recall.py (numpy, Debian's /usr/bin/python3)
// keeps, per tensor, the first round(k_m · k'/k) of its k_m projected dimensions (each itself a
// random projection of the tensor's gradient; scaled by k_m / k'_m so that the coarse score is an
// unbiased estimate of the full one), scores every row on them, takes the C best, scores those
// exactly and reports recall@100 against the exact top-100 (mean and worst query) and the coarse
// scan's time in numpy. Nothing of the product uses this: it informs what an approximate mode would cost.
// Usage (after `npm run build` and index-scale.mjs): node benchmarks/speed/index-coarse-recall.mjs [--dir dda-bench/index-scale] [--rows 250000]
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queryGradientIndex } from '@dda/attribution';
import { arg, uptime } from './bench-lib.mjs';

const dir = arg('dir', 'dda-bench/index-scale');
const rows = arg('rows', '250000');
const index = join(dir, `idx-${rows}`);
const out = join(dir, `coarse-${rows}.json`);
console.log(`start: ${uptime()}`);
const r = await queryGradientIndex({ index, queries: join(dir, 'queries-100.jsonl'), topK: 100, log: (l) => (l.startsWith('index: scored') ? console.log(l) : undefined) });
writeFileSync(out, JSON.stringify({ rows: r.queryRows.map((x) => Array.from(x)), tops: r.tops.map((t) => t.top.map((e) => e.trainId)) }));
const py = spawnSync('/usr/bin/python3', [fileURLToPath(new URL('index-coarse-recall.py', import.meta.url)), index, out], { stdio: 'inherit' });
console.log(`end: ${uptime()}`);
process.exit(py.status ?? 1);
