import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { trackProgress } from '@dda/core';
import { createReporter, interruptMessage, progressModeOf } from '@dda/cli';

/** A fake clock in milliseconds. */
function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 5_000_000;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

describe('--progress json: events per step', () => {
  it('at most one progress event per step per second, plus its first and final updates', () => {
    const clock = fakeClock();
    const lines: string[] = [];
    const r = createReporter({ err: (l) => lines.push(l) }, { mode: 'json', clock: clock.now });
    const slow = trackProgress('gradients of 1000 train samples at base', 1000, r.progress, clock.now);
    for (let i = 0; i < 1000; i++) {
      clock.advance(200); // 1000 units in 200 s
      slow.tick();
    }
    const events = lines.map((l) => JSON.parse(l) as { event: string; done: number; elapsedSeconds: number });
    // The updates at 0.2 s, 1.2 s, 2.2 s, ..., 199.2 s (units 1, 6, ..., 996: 200), and the final one.
    expect(events).toHaveLength(201);
    expect(events.slice(0, 3).map((e) => e.done)).toEqual([1, 6, 11]);
    expect(events[200]).toMatchObject({ event: 'progress', done: 1000, elapsedSeconds: 200 });
    // A fast step (every unit within a second) gives its first and final events only.
    lines.length = 0;
    const fast = trackProgress('gradients of 240 train samples at checkpoint-15', 240, r.progress, clock.now);
    for (let i = 0; i < 240; i++) {
      clock.advance(4);
      fast.tick();
    }
    expect(lines.map((l) => (JSON.parse(l) as { done: number }).done)).toEqual([1, 240]);
  });

  it('keeps one step\'s pace apart from another\'s', () => {
    const clock = fakeClock();
    const lines: string[] = [];
    const r = createReporter({ err: (l) => lines.push(l) }, { mode: 'json', clock: clock.now, jsonEverySeconds: 10 });
    const a = trackProgress('a', 10, r.progress, clock.now);
    const b = trackProgress('b', 10, r.progress, clock.now);
    for (let i = 0; i < 10; i++) {
      clock.advance(3000);
      a.tick();
      b.tick();
    }
    const seen = lines.map((l) => JSON.parse(l) as { label: string; done: number }).map((e) => `${e.label}${e.done}`);
    expect(seen).toEqual(['a1', 'b1', 'a5', 'b5', 'a9', 'b9', 'a10', 'b10']);
  });
});

describe('the interrupt message', () => {
  it('is a JSON event with --progress json, a line of text otherwise', () => {
    expect(progressModeOf(['demo', '--progress', 'json'])).toBe('json');
    expect(progressModeOf(['demo', '--progress=json'])).toBe('json');
    expect(progressModeOf(['demo', '--progress', 'log'])).toBe('auto');
    expect(JSON.parse(interruptMessage('SIGINT', 'json'))).toEqual({ event: 'interrupted', signal: 'SIGINT', message: 'interrupted (SIGINT); finished steps are kept, run the same command again to resume' });
    expect(interruptMessage('SIGTERM', 'auto')).toBe('\ndda: interrupted (SIGTERM); finished steps are kept, run the same command again to resume\n');
  });

  it('leaves every line on stderr a JSON event when the built dda is stopped with SIGINT', async () => {
    const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
    const out = mkdtempSync(join(tmpdir(), 'dda-interrupt-'));
    try {
      const child = spawn(process.execPath, [main, 'demo', '--progress', 'json', '--out', out, '--n-pretrain', '200', '--n-train', '40'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => {
        if (err === '') child.kill('SIGINT'); // at the first event, while it works
        err += b.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect(code).toBe(130);
      const lines = err.split('\n').filter((l) => l !== '');
      const events = lines.map((l) => JSON.parse(l) as { event: string });
      expect(events.length).toBeGreaterThan(1);
      expect(events[events.length - 1]).toMatchObject({ event: 'interrupted', signal: 'SIGINT' });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
