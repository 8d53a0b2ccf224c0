#!/usr/bin/env node
// Memory benchmark: peak RSS and time of reading a large `.json` training file (one array of
// alpaca-style records, as LLaMA-Factory's datasets are) with @dda/data's scanTrainingData (read
// 1 MiB and one record at a time, every record checked and rendered), beside the reference of
// JSON.parse over the whole file (what reading it whole costs before any record is checked). Each
// mode runs in its own process, so each peak RSS (process.resourceUsage().maxRSS) is its own.
// Usage (after `npm run build`): node benchmarks/memory/json-array-read.mjs [--records 300000]
//   [--file /tmp/dda-json-array.json] [--repeat 2]
// The file is written once per record count (about 340 bytes per record) and reused.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const mode = arg('mode', null);
const records = Number(arg('records', '300000'));
const file = arg('file', `/tmp/dda-json-array-${records}.json`);

if (mode !== null) {
  const t = process.hrtime.bigint();
  let count;
  if (mode === 'json-parse') count = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(file))).length;
  else {
    const { scanTrainingData } = await import('@dda/data');
    count = (await scanTrainingData(file, { promptFormat: 'alpaca' }, () => {})).count;
  }
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  console.log(JSON.stringify({ mode, count, seconds, peakRssGb: (process.resourceUsage().maxRSS * 1024) / 1e9 }));
} else {
  if (!existsSync(file)) {
    writeFileSync(file, JSON.stringify(Array.from({ length: records }, (_, i) => ({
      instruction: `Summarise document ${i} — é 日本 about the "council" [${i % 7}]`, input: 'x'.repeat(200), output: `The council met on day ${i}, {ok}.`,
    }))));
  }
  console.log(`${file}: ${records} records, ${(statSync(file).size / 1e6).toFixed(1)} MB; load ${loadavg()[0].toFixed(2)}`);
  const self = fileURLToPath(import.meta.url);
  for (let r = 0; r < Number(arg('repeat', '2')); r++) {
    for (const m of ['json-parse', 'scan']) {
      const p = spawnSync(process.execPath, [self, '--mode', m, '--records', String(records), '--file', file], { encoding: 'utf8' });
      if (p.status !== 0) throw new Error(`${m}: ${p.stderr}`);
      const o = JSON.parse(p.stdout.trim());
      console.log(`${m.padEnd(10)} ${o.count} records  ${o.seconds.toFixed(2)} s  peak RSS ${o.peakRssGb.toFixed(2)} GB`);
    }
  }
  console.log(`load ${loadavg()[0].toFixed(2)}`);
}
