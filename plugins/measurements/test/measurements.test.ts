import { describe, expect, it } from 'vitest';
import { contrastiveMeasurement, differingSpan, entityMarginMeasurement, lossMeasurement } from '@dda/measurements';

const q = { id: 'q1', prompt: '<|user|> summarise <|assistant|>', response: 'the council in china met on monday .' };
const c = { ...q, response: 'the council in england met on monday .' };

describe('test measurements', () => {
  it('loss: the output itself, weight 1', () => {
    expect(lossMeasurement.terms(q, null)).toEqual([{ sample: q, weight: 1 }]);
  });

  it('contrastive: the output (+1) and its correction (−1)', () => {
    expect(contrastiveMeasurement.terms(q, c)).toEqual([{ sample: q, weight: 1 }, { sample: { ...c, id: 'q1#corrected' }, weight: -1 }]);
  });

  it('entity-margin: the loss over the hallucinated entity (+1) and over the original one (−1), same prefix', () => {
    const [h, o] = entityMarginMeasurement.terms(q, c);
    expect(h!.weight).toBe(1);
    expect(o!.weight).toBe(-1);
    expect(h!.sample.segments).toEqual([
      { text: q.prompt, loss: false }, { text: 'the council in ', loss: false }, { text: 'china', loss: true }, { text: ' met on monday .', loss: false },
    ]);
    expect(o!.sample.segments?.filter((s) => s.loss).map((s) => s.text)).toEqual(['england']);
    expect(h!.sample.id).toBe('q1#hallucinated');
  });

  it('finds the differing span on whole words, also for multi-word and shared-affix entities', () => {
    expect(differingSpan('in new york today', 'in paris today')).toEqual([3, 11, 8]);
    // "scotland" vs "england" share the suffix "land": the span still covers the whole word.
    const [a, b1, b2] = differingSpan('north of scotland .', 'north of england .');
    expect(['north of scotland .'.slice(a, b1), 'north of england .'.slice(a, b2)]).toEqual(['scotland', 'england']);
    expect(differingSpan('rate of 12 percent', 'rate of 17 percent')).toEqual([8, 10, 10]);
  });

  it('names the query it cannot measure', () => {
    expect(() => contrastiveMeasurement.terms(q, null)).toThrow(/'contrastive' needs the corrected output of query 'q1'/);
    expect(() => entityMarginMeasurement.terms(q, q)).toThrow(/query 'q1': its corrected output equals its output/);
    expect(() => entityMarginMeasurement.terms(q, { ...q, response: 'the council in met on monday .' })).toThrow(/insertion or deletion/);
  });
});
