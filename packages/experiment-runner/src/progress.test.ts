import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createProgress, PlainProgress, SilentProgress, TtyProgress } from './progress';

/** A stream that says it is (or is not) a terminal and keeps what is written to it. */
function fakeStream(isTTY: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY, columns: 120 });
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { stream, text: () => text };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('progress', () => {
  it('draws bars in a terminal and plain lines elsewhere', () => {
    expect(createProgress('auto', fakeStream(true).stream)).toBeInstanceOf(TtyProgress);
    expect(createProgress('auto', fakeStream(false).stream)).toBeInstanceOf(PlainProgress);
    expect(createProgress('tty', fakeStream(false).stream)).toBeInstanceOf(TtyProgress);
    expect(createProgress('plain', fakeStream(true).stream)).toBeInstanceOf(PlainProgress);
    expect(createProgress('none', fakeStream(true).stream)).toBeInstanceOf(SilentProgress);
  });

  it('in a terminal: an overall bar with ETA and a bar per running trial, redrawn in place', async () => {
    const { stream, text } = fakeStream(true);
    const progress = createProgress('auto', stream);
    progress.start(3, 1);
    progress.trialStarted('v0-s1');
    progress.trialProgress('v0-s1', 2, 5, 'epoch 2');
    progress.trialFinished('v0-s1', 'completed', 1200);
    progress.trialStarted('v0-s2');
    progress.trialProgress('v0-s2', 1, 4);
    progress.stop();
    await new Promise((done) => setImmediate(done));
    const out = text();
    // Cursor movements (ESC [ ... ) redraw the bars in place instead of printing new lines.
    expect(out).toMatch(/\x1b\[\d*[A-G]/);
    expect(out).toMatch(/trials +\|[█░]+\| 2\/3 ETA [\d.]+ s/);
    expect(out).toMatch(/v0-s2 +\|[█░]+\| 1\/4/);
    expect(out).not.toContain('[lab]');
  });

  it('elsewhere: one line per finished trial with counts and an ETA, and periodic lines while trials run', () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const progress = new PlainProgress((line) => lines.push(line), 10_000);
    progress.start(3, 1);
    progress.trialStarted('v0-s1');
    progress.trialProgress('v0-s1', 2, 5, 'epoch 2');
    vi.advanceTimersByTime(10_000);
    progress.trialFinished('v0-s1', 'failed', 1500);
    progress.trialFinished('v0-s2', 'completed', 2500);
    // Nothing is running: no periodic line.
    vi.advanceTimersByTime(10_000);
    progress.stop();
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe('[lab] 3 trials, 1 already done');
    expect(lines[1]).toBe('[lab] 1/3 done; running: v0-s1 2/5 epoch 2');
    expect(lines[2]).toMatch(/^\[lab\] 2\/3 trials done \(1 failed\): v0-s1 failed in 1\.5 s, ETA [\d.]+ s$/);
    expect(lines[3]).toBe('[lab] 3/3 trials done (1 failed): v0-s2 completed in 2.5 s');
    expect(lines.join('\n')).not.toMatch(/\x1b/);
  });

  it('names at most six trials in flight (a fused group runs dozens at once) and counts the rest', () => {
    vi.useFakeTimers();
    try {
      const lines: string[] = [];
      const progress = new PlainProgress((line) => lines.push(line), 10_000);
      progress.start(20, 0);
      for (let i = 0; i < 20; i++) {
        progress.trialStarted(`t${i}`);
        progress.trialProgress(`t${i}`, 1, 8);
      }
      vi.advanceTimersByTime(10_000);
      progress.stop();
      expect(lines[1]).toBe('[lab] 0/20 done; running: t0 1/8; t1 1/8; t2 1/8; t3 1/8; t4 1/8; t5 1/8 (+14 more)');
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not count an interrupted trial as done', () => {
    const lines: string[] = [];
    const progress = new PlainProgress((line) => lines.push(line), 60_000);
    progress.start(2, 0);
    progress.trialFinished('v0-s0', 'interrupted', 100);
    progress.trialFinished('v0-s1', 'completed', 100);
    progress.stop();
    expect(lines[1]).toMatch(/^\[lab\] 1\/2 trials done: v0-s1 completed/);
  });
});
