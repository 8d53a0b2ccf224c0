import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { padSummary } from '@dda/dataset-hallucination';
import { buildRegistryDataset } from '../src/index.js';

const digest = (v: unknown): string => createHash('sha256').update(JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? Array.from(x) : x))).digest('hex');

describe('the registry generator with summaryPadding', () => {
  it('leaves the default output exactly as before the option (pinned digest)', () => {
    expect(digest(buildRegistryDataset({ seed: 0, summaryPadding: 0 }))).toBe('16f22ddf0d05cf4ee2a05826418079472c3b3a526b7f5d5721e815bb8f9ae707');
  });

  it('pads every train and held-out summary by K sentences without a canary entity, keeping documents and labels', () => {
    const o = { seed: 1, nTrain: 120, nHeldOut: 9, nPretrain: 150 };
    const plain = buildRegistryDataset(o);
    const padded = buildRegistryDataset({ ...o, summaryPadding: 3 });
    expect(padded.train.map((s) => s.document)).toEqual(plain.train.map((s) => s.document));
    padded.train.forEach((s, i) => expect(s.summary).toBe(padSummary(s.document, plain.train[i]!.summary, 3)));
    padded.heldOut.forEach((h, i) => expect(h.summary).toBe(padSummary(h.document, plain.heldOut[i]!.summary, 3)));
    expect(padded.labels).toEqual(plain.labels);
    expect(padded.pretrainCorpus.filter((t) => t.startsWith('document : ')).length).toBe(plain.pretrainCorpus.filter((t) => t.startsWith('document : ')).length);
  });
});
