// The user run of the sharding and streaming benchmarks (packages/attribution/test/fixtures/user-run.ts's
// recipe): a random-weight llama2-tiny base folder, two PEFT LoRA checkpoints (rank 4 on every
// linear map), `n` training samples of short random sentences and 8 queries that copy the first 8.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SeededRandom } from '../../packages/core/dist/index.js';
import { SPECIAL_TOKENS, TINY_PRESETS, WordTokenizer, initDecoderWeights, initLoraWeights, saveModelFolder, writePeftAdapter } from '../../packages/model/dist/index.js';

/** Writes the run into `dir` (base/, run/checkpoint-50, run/checkpoint-100, train.jsonl, queries.jsonl); returns `dda attribute`'s input options. */
export function writeTinyRun(dir, n) {
  const WORDS = ['the', 'council', 'met', 'on', 'monday', 'tuesday', 'in', 'england', 'wales', 'china', 'roads', 'schools', 'budget', 'voted', 'for', 'against', 'new', 'plan', 'said', 'mayor'];
  const tok = new WordTokenizer([...SPECIAL_TOKENS, ...WORDS, '.', '?']);
  const config = { ...TINY_PRESETS['llama2-tiny'], vocabSize: tok.size };
  const lora = { rank: 4, alpha: 8, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] };
  saveModelFolder(join(dir, 'base'), { config, weights: initDecoderWeights(config, 11), tokenizer: tok });
  for (const [step, seed] of [[50, 12], [100, 13]]) {
    const w = initLoraWeights(config, lora, seed);
    for (const [k, t] of w) if (k.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.02 * Math.sin(i * 0.7 + seed)));
    writePeftAdapter(join(dir, 'run', `checkpoint-${step}`), lora, w);
  }
  const rng = new SeededRandom(7);
  const sentence = (k) => Array.from({ length: k }, () => WORDS[rng.int(WORDS.length)]).join(' ');
  const rows = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, prompt: `${sentence(8)} ?`, response: `${sentence(6)} .` }));
  writeFileSync(join(dir, 'train.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n'));
  writeFileSync(join(dir, 'queries.jsonl'), Array.from({ length: 8 }, (_, j) => JSON.stringify({ id: `q${j}`, prompt: rows[j].prompt, output: rows[j].response })).join('\n'));
  return ['--base', join(dir, 'base'), '--checkpoints', join(dir, 'run'), '--train', join(dir, 'train.jsonl'), '--queries', join(dir, 'queries.jsonl')];
}
