import { describe, expect, it } from 'vitest';
import { contrastiveMeasurement, differingHunks, differingSpan, entityMarginMeasurement, lossMeasurement } from '@dda/measurements';

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

  it('entity-margin refuses corrections that differ in more than one span (changes around a shared token, appended text), naming the spans', () => {
    const out = 'strong winds hit the north of england .';
    const two = { ...q, response: out };
    const cor = { ...q, response: 'heavy winds hit the north of china .' };
    expect(differingHunks(out, cor.response)).toEqual([['strong', 'heavy'], ['england', 'china']]);
    expect(() => entityMarginMeasurement.terms(two, cor)).toThrow(/query 'q1': the output and its correction differ in 2 separate spans \("strong" → "heavy", "england" → "china"\).*use --measurement contrastive for multi-span corrections/);
    const appended = { ...q, response: 'the council in england met on monday . it rained' };
    expect(differingHunks(q.response, appended.response)).toEqual([['china', 'england'], ['', 'it rained']]);
    expect(() => entityMarginMeasurement.terms(q, appended)).toThrow(/differ in 2 separate spans \("china" → "england", \(nothing\) → "it rained"\)/);
    // One replaced span, multi-word or with a shared affix, stays one span.
    expect(differingHunks('in new york today', 'in paris today')).toEqual([['new york', 'paris']]);
    expect(differingHunks('north of scotland .', 'north of england .')).toEqual([['scotland', 'england']]);
    expect(entityMarginMeasurement.terms(q, c)).toHaveLength(2);
    // The same swap at two mentions (real-text summaries name an entity up to twice) is measured
    // over the span from the first mention to the last, as one mention's span is.
    const twice = { ...q, response: 'normalization with britain has eased britain\'s entry .' };
    const twiceCor = { ...q, response: 'normalization with china has eased china\'s entry .' };
    expect(differingHunks(twice.response, twiceCor.response)).toEqual([['britain', 'china'], ['britain', 'china']]);
    const [a, bOut, bCor] = differingSpan(twice.response, twiceCor.response);
    expect([twice.response.slice(a, bOut), twiceCor.response.slice(a, bCor)]).toEqual(['britain has eased britain', 'china has eased china']);
    expect(entityMarginMeasurement.terms(twice, twiceCor).map((t) => t.weight)).toEqual([1, -1]);
    // A multi-word name with punctuation inside ('paris, france', 'rolls-royce') replaced by another is one span;
    // changes across a sentence's '.' or a shared word stay two.
    expect(differingHunks('she flew to paris, france today .', 'she flew to berlin, germany today .')).toEqual([['paris, france', 'berlin, germany']]);
    expect(differingHunks('a rolls-royce engine', 'a pratt-whitney engine')).toEqual([['rolls-royce', 'pratt-whitney']]);
    const named = entityMarginMeasurement.terms({ ...q, response: 'she flew to paris, france today .' }, { ...q, response: 'she flew to berlin, germany today .' });
    expect(named.map((t) => t.sample.segments?.filter((s) => s.loss).map((s) => s.text))).toEqual([['paris, france'], ['berlin, germany']]);
    expect(differingHunks('it hit china . japan was next', 'it hit india . korea was next')).toEqual([['china', 'india'], ['japan', 'korea']]);
    expect(differingHunks('paris, france', 'paris, germany')).toEqual([['france', 'germany']]);
    // The rule does not tell a name from a list: two changes around one comma are one span, measured with the comma.
    expect(differingHunks('to paris, now', 'to berlin, then')).toEqual([['paris, now', 'berlin, then']]);
    // Two mentions swapped to different entities are two changes: refused.
    expect(() => entityMarginMeasurement.terms(twice, { ...q, response: 'normalization with china has eased japan\'s entry .' })).toThrow(/differ in 2 separate spans/);
    // contrastive takes multi-span corrections.
    expect(contrastiveMeasurement.terms(two, cor)).toHaveLength(2);
  });

  it('names the query it cannot measure', () => {
    expect(() => contrastiveMeasurement.terms(q, null)).toThrow(/'contrastive' needs the corrected output of query 'q1'/);
    expect(() => entityMarginMeasurement.terms(q, q)).toThrow(/query 'q1': its corrected output equals its output/);
    expect(() => entityMarginMeasurement.terms(q, { ...q, response: 'the council in met on monday .' })).toThrow(/insertion or deletion/);
  });
});
