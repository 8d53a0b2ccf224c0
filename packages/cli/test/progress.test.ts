import { describe, expect, it } from 'vitest';
import { trackProgress } from '@dda/core';
import { createReporter, formatProgressLine, runCli, type Terminal } from '@dda/cli';

/** A fake clock in milliseconds. */
function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

/** A fake TTY that keeps what cli-progress writes. */
function fakeTerminal(): Terminal & { text: () => string } {
  const chunks: string[] = [];
  return { isTTY: true, columns: 120, write: (c: string) => (chunks.push(c), true), text: () => chunks.join('') };
}

describe('progress on stderr', () => {
  it('log mode prints a long step sparsely: at most one line per 15 s, and the final line', () => {
    const clock = fakeClock();
    const lines: string[] = [];
    const r = createReporter({ err: (l) => lines.push(l) }, { mode: 'auto', clock: clock.now });
    expect(r.mode).toBe('log'); // no terminal
    const step = trackProgress('gradients of 1000 train samples at epoch-1', 1000, r.progress, clock.now);
    for (let i = 0; i < 1000; i++) {
      clock.advance(200); // 1000 units in 200 s
      step.tick();
    }
    // The first update starts the step's clock; lines at 15.2 s, 30.2 s, ..., 195.2 s (13), then the
    // final line at 200 s: not one per 10%, not one per unit.
    expect(lines).toHaveLength(14);
    expect(lines[0]).toBe('[##..................]   8% 76/1000 ETA 3m05s  gradients of 1000 train samples at epoch-1');
    expect(lines[13]).toBe('[####################] 100% 1000/1000 done in 3m20s  gradients of 1000 train samples at epoch-1');
    // A step shorter than 15 s prints its final line only.
    const short = trackProgress('gradients of 2 test samples at base', 2, r.progress, clock.now);
    short.tick();
    short.tick();
    expect(lines.slice(14)).toEqual(['[####################] 100% 2/2 done in 0s  gradients of 2 test samples at base']);
    r.log('fine-tuning LoRA');
    expect(lines[15]).toBe('[  200.0s] fine-tuning LoRA');
  });

  it('json mode writes one parseable event per line: progress, log and error', () => {
    const clock = fakeClock();
    const lines: string[] = [];
    const r = createReporter({ err: (l) => lines.push(l) }, { mode: 'json', clock: clock.now });
    const step = trackProgress('cells', 2, r.progress, clock.now);
    clock.advance(1500);
    step.tick();
    r.log('bench: llama2-tiny, seed 0');
    r.log('warning: the final checkpoint\'s loss on --train is 1.59× ...');
    clock.advance(1500);
    step.tick();
    r.error('something failed (do this)');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { event: 'progress', label: 'cells', done: 1, total: 2, elapsedSeconds: 1.5, etaSeconds: 1.5 },
      { event: 'log', elapsedSeconds: 1.5, message: 'bench: llama2-tiny, seed 0' },
      { event: 'log', elapsedSeconds: 1.5, level: 'warning', message: 'warning: the final checkpoint\'s loss on --train is 1.59× ...' },
      { event: 'progress', label: 'cells', done: 2, total: 2, elapsedSeconds: 3, etaSeconds: 0 },
      { event: 'error', message: 'something failed (do this)' },
    ]);
  });

  it('quiet mode prints neither progress nor log lines, but errors', () => {
    const lines: string[] = [];
    const r = createReporter({ err: (l) => lines.push(l), terminal: fakeTerminal() }, { mode: 'json', quiet: true });
    expect(r.mode).toBe('quiet');
    trackProgress('step', 3, r.progress).tick(3);
    r.log('a log line');
    expect(lines).toEqual([]);
    r.error('bad input');
    expect(lines).toEqual(['dda: bad input']);
  });

  it('bar mode draws live cli-progress bars on a terminal, log lines above them and a final line per step', async () => {
    const term = fakeTerminal();
    const lines: string[] = [];
    const r = createReporter({ err: (l) => lines.push(l), terminal: term }, { mode: 'auto' });
    expect(r.mode).toBe('bar');
    const step = trackProgress('gradients of 4 train samples at base', 4, r.progress);
    step.tick(2);
    r.log('computing gradients');
    await new Promise((res) => setTimeout(res, 250)); // cli-progress redraws at 10 fps
    const live = term.text();
    expect(live).toContain('[##########..........]  50% 2/4 ETA');
    expect(live).toContain('gradients of 4 train samples at base');
    expect(live).toContain('computing gradients');
    step.tick(2);
    r.close();
    expect(term.text()).toMatch(/\[####################\] 100% 4\/4 done in \d+s {2}gradients of 4 train samples at base/);
    expect(lines).toEqual([]); // everything went through the terminal
    r.log('after the bars');
    expect(lines).toEqual([expect.stringMatching(/\] after the bars$/)]);
  });

  it('formats a line with the ETA', () => {
    expect(formatProgressLine({ label: 'x', done: 1, total: 4, elapsedSeconds: 10, etaSeconds: 30 })).toBe('[#####...............]  25% 1/4 ETA 30s  x');
    expect(formatProgressLine({ label: 'x', done: 0, total: 4, elapsedSeconds: 0, etaSeconds: null })).toBe('[....................]   0% 0/4 ETA ?  x');
  });
});

describe('dda --progress / --quiet', () => {
  async function run(args: string[]): Promise<{ code: number; err: string[] }> {
    const err: string[] = [];
    const code = await runCli(args, { out: () => {}, err: (l) => err.push(l) });
    return { code, err };
  }
  it('reports a bad value as a JSON error event with --progress json, and as a line with --quiet', async () => {
    const j = await run(['demo', '--n-train', '-3', '--progress', 'json']);
    expect(j.code).toBe(1);
    expect(j.err.map((l) => JSON.parse(l) as unknown)).toEqual([{ event: 'error', message: '--n-train must be a positive integer, got -3' }]);
    const q = await run(['demo', '--n-train', '-3', '--quiet']);
    expect(q).toEqual({ code: 1, err: ['dda: --n-train must be a positive integer, got -3'] });
    const u = await run(['demo', '--progress=json', '--no-such-flag']);
    expect(u.code).toBe(2);
    expect((JSON.parse(u.err[0] ?? '') as { event: string; message: string }).message).toMatch(/Unknown argument/);
  });
  it('rejects an unknown progress mode', async () => {
    const r = await run(['methods', '--progress', 'fancy']);
    expect(r.code).toBe(2);
    expect(r.err.join('\n')).toMatch(/Invalid values:[\s\S]*progress/);
  });
});
