import { describe, expect, it } from 'vitest';
import { DdaError, Registry } from '@dda/core';

type Opts = { fail?: readonly string[] };

function make(): Registry<string, Opts> {
  const r = new Registry<string, Opts>('widget');
  const entry = (id: string, priority: number, reason: string) => ({
    id,
    description: `the ${id} widget`,
    priority,
    create: async (o: Opts) => {
      if (o.fail?.includes(id)) throw new Error(reason);
      return `made ${id}`;
    },
  });
  r.register(entry('low', 1, 'low is broken'));
  r.register(entry('high-b', 5, 'no GPU found'));
  r.register(entry('high-a', 5, 'library missing'));
  return r;
}

describe('Registry', () => {
  it('lists entries by priority, ties by id', () => {
    expect(make().ids()).toEqual(['high-a', 'high-b', 'low']);
  });

  it('resolves the highest-priority entry that initialises and keeps the failures', async () => {
    const r = make();
    const got = await r.resolve({ fail: ['high-a', 'high-b'] });
    expect(got.id).toBe('low');
    expect(got.value).toBe('made low');
    expect(got.failures).toEqual([
      { id: 'high-a', reason: 'library missing' },
      { id: 'high-b', reason: 'no GPU found' },
    ]);
    expect(r.lastFailures).toEqual(got.failures);
    expect((await r.resolve({}, ['low', 'high-a'])).id).toBe('low');
  });

  it('collects every failure into one error', async () => {
    const err = await make()
      .resolve({ fail: ['high-a', 'high-b', 'low'] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DdaError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/no widget could be initialised/);
    for (const line of ['high-a: library missing', 'high-b: no GPU found', 'low: low is broken']) expect(msg).toContain(line);
  });

  it('names the known ids when an id is unknown', async () => {
    const r = make();
    expect(() => r.entry('nope')).toThrow(/unknown widget 'nope'.*choose one of: high-a, high-b, low/);
    await expect(r.create('nope', {})).rejects.toThrow(DdaError);
    await expect(r.resolve({}, ['nope'])).rejects.toThrow(/high-a, high-b, low/);
    expect(() => new Registry('empty').entry('x')).toThrow(/no empty is registered/);
  });

  it('checks ids and duplicate registrations', () => {
    const r = make();
    const e = { id: 'x', description: '', priority: 0, create: () => 'x' };
    expect(() => r.register({ ...e, id: 'Not_Kebab' })).toThrow(/kebab-case/);
    r.register(e);
    r.register(e); // the same entry again is a no-op
    expect(() => r.register({ ...e })).toThrow(/already registered/);
    r.register({ ...e, priority: 9 }, true);
    expect(r.ids()[0]).toBe('x');
  });
});
