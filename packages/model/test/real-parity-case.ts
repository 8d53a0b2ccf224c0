import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { ropeCosSin, ropeInverseFrequencies } from '@dda/core';
import {
  REAL_MODELS, headDim, parseHfConfig, realModelConfig,
  type DecoderConfig, type LoraTarget, type RealModelName, type SafetensorsDtype, type Tokenizer,
} from '@dda/model';
import { maxRelErr } from './peft-variant-case.js';

// Expected values made by make-real-parity-fixtures.py with PyTorch (float64), an independent
// implementation, at the real widths and vocabularies of TinyLlama-1.1B, Qwen2-0.5B and Mistral-7B
// with one layer. Both sides make the weights from the same seeded counter-based generator
// (fillUniformStream), so only norms, maxima and sampled entries are stored.
/** A compact reference tensor: its L2 norm, largest |entry| and sampled (index, value) pairs. */
export interface Summary { norm: number; maxAbs: number; samples: [number, number][] }
/** One case of real-parity-fixtures.json (also read by the onnxruntime engine's parity tests). */
export interface Case {
  name: string;
  layers: number;
  T: number;
  seed: number;
  dtype: SafetensorsDtype;
  /** slidingWindow: the window of every windowed layer; config: config.json fields replacing the published ones (reduced widths). */
  overrides: { slidingWindow?: number; config?: Record<string, unknown> };
  init: { std: number; normNoise: number; biasNoise: number };
  lora: { rank: number; alpha: number; targets: LoraTarget[]; seed: number; half: number };
  weightChecks: Record<string, [number, number][]>;
  loss: number;
  logits: Summary;
  /** Absent for a case of logits and loss only. */
  grads?: Record<string, Summary>;
  /** With a llama3 RoPE scaling: inverse frequencies and cos / sin [positions][headDim / 2] at a few positions. */
  rope?: { positions: number[]; invFreq: number[]; cos: number[][]; sin: number[][] };
  /** For a sequence beyond the original context: how far its logits there move with plain RoPE, or with factor 32. */
  ropeSensitivity?: { plain: number; factor32: number };
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/real-parity-fixtures.json', import.meta.url), 'utf8')) as { cases: Case[] };

/** The case `name` of real-parity-fixtures.json. @throws Error if there is none. */
export function caseNamed(name: string): Case {
  const c = fx.cases.find((x) => x.name === name);
  if (!c) throw new Error(`no case '${name}' in real-parity-fixtures.json`);
  return c;
}

/** The case's DecoderConfig: the published config.json with its layers, window and config overrides, as parseHfConfig reads it. */
export function caseConfig(c: Case): DecoderConfig {
  const { configJson } = realModelConfig(c.name, { numLayers: c.layers, ...(c.overrides.slidingWindow !== undefined ? { slidingWindow: c.overrides.slidingWindow } : {}) });
  return parseHfConfig({ ...configJson, ...c.overrides.config }, `${c.name} with the fixture's overrides`).config;
}

/** 'real widths', or 'reduced widths' for a case that overrides some of the published config.json's fields. */
export const widths = (c: Case): string => (c.overrides.config ? 'reduced widths' : 'real widths');

/** The tokenizer is not used by logits and gradients of given ids: only its size must fit. */
export const idsOnly = (size: number): Tokenizer => ({
  kind: 'hugging-face', size, bosId: 1, eosId: 2, padId: 2, encode: () => [], decode: () => '', applyChatTemplate: () => '',
});

/** Same token ids and loss mask as the fixture script: the second half of the sequence is the response. */
export const caseTokens = (T: number, vocab: number): number[] => Array.from({ length: T }, (_, k) => (k * k * 7919 + k * 104729 + 13) % vocab);

export function l2(a: Float32Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += (a[k] as number) ** 2;
  return Math.sqrt(s);
}

/** Largest |ours − reference| over the sampled entries, relative to the reference's largest |entry| (over all entries). */
export function sampledRelErr(ours: Float32Array, ref: Summary): number {
  let worst = 0;
  for (const [k, v] of ref.samples) worst = Math.max(worst, Math.abs((ours[k] as number) - v));
  return worst / ref.maxAbs;
}

/** Expects rows `positions` of RoPE tables cos, sin [T, headDim] (both halves) within 1e-6 of the reference's [positions][headDim / 2]. */
export function expectRopeTables(tables: { cos: Float32Array; sin: Float32Array }, headDim: number, ref: { positions: number[]; cos: number[][]; sin: number[][] }): void {
  const half = headDim / 2;
  ref.positions.forEach((t, i) => {
    for (let k = 0; k < half; k++) {
      for (const col of [k, k + half]) {
        expect(Math.abs(tables.cos[t * headDim + col]! - ref.cos[i]![k]!), `cos t=${t} k=${k}`).toBeLessThan(1e-6);
        expect(Math.abs(tables.sin[t * headDim + col]! - ref.sin[i]![k]!), `sin t=${t} k=${k}`).toBeLessThan(1e-6);
      }
    }
  });
}

/** @dda/core's RoPE for the published config.json of `name` (REAL_MODELS, not the fixture's widths) against the reference's. */
export function defineRope(name: string, r: NonNullable<Case['rope']>): void {
  it(`RoPE of the published config at positions ${r.positions.join(', ')}: frequencies to 1e-15, cos/sin to 1e-6`, () => {
    const { config } = REAL_MODELS[name as RealModelName];
    const hd = headDim(config);
    expect(maxRelErr(ropeInverseFrequencies(hd, config.ropeTheta, config.ropeScaling), r.invFreq)).toBeLessThan(1e-15);
    expectRopeTables(ropeCosSin(Math.max(...r.positions) + 1, hd, config.ropeTheta, config.ropeScaling), hd, r);
  });
}
