import cliProgress from 'cli-progress';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'none';

/** Trials in flight shown one by one (a bar each, or a part of the periodic line); a fused group runs dozens at once. */
const SHOWN_TRIALS = 6;

/** What the scheduler tells about progress; the CLI picks bars in a terminal and plain lines elsewhere. */
export interface ProgressReporter {
  start(total: number, alreadyDone: number): void;
  trialStarted(id: string): void;
  trialProgress(id: string, done: number, total: number, note?: string): void;
  trialFinished(id: string, status: 'completed' | 'failed' | 'interrupted', durationMs: number): void;
  stop(): void;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

class Tally {
  total = 0;
  done = 0;
  failed = 0;
  finishedThisSession = 0;
  started = Date.now();
  readonly active = new Map<string, { done: number; total: number; note?: string }>();

  /** Counts a finished trial; an interrupted one is not finished (a resume runs it again). */
  finish(status: 'completed' | 'failed' | 'interrupted'): boolean {
    if (status === 'interrupted') return false;
    this.done++;
    this.finishedThisSession++;
    if (status === 'failed') this.failed++;
    return true;
  }

  eta(): number {
    if (this.finishedThisSession === 0) return Number.NaN;
    const perTrial = (Date.now() - this.started) / this.finishedThisSession;
    return perTrial * (this.total - this.done);
  }
}

/** Plain lines: one per finished trial and one every `intervalMs` with the trials in flight. */
export class PlainProgress implements ProgressReporter {
  private readonly tally = new Tally();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    private readonly intervalMs = 10_000,
  ) {}

  start(total: number, alreadyDone: number): void {
    Object.assign(this.tally, { total, done: alreadyDone, started: Date.now() });
    this.write(`[lab] ${total} trials, ${alreadyDone} already done`);
    this.timer = setInterval(() => this.periodic(), this.intervalMs);
    this.timer.unref();
  }

  trialStarted(id: string): void {
    this.tally.active.set(id, { done: 0, total: 0 });
  }

  trialProgress(id: string, done: number, total: number, note?: string): void {
    this.tally.active.set(id, { done, total, ...(note !== undefined ? { note } : {}) });
  }

  trialFinished(id: string, status: 'completed' | 'failed' | 'interrupted', durationMs: number): void {
    this.tally.active.delete(id);
    if (!this.tally.finish(status)) return;
    const eta = this.tally.eta();
    this.write(
      `[lab] ${this.tally.done}/${this.tally.total} trials done${this.tally.failed ? ` (${this.tally.failed} failed)` : ''}: ${id} ${status} in ${formatDuration(durationMs)}${this.tally.done < this.tally.total && Number.isFinite(eta) ? `, ETA ${formatDuration(eta)}` : ''}`,
    );
  }

  private periodic(): void {
    if (this.tally.active.size === 0) return;
    const active = [...this.tally.active];
    const parts = active.slice(0, SHOWN_TRIALS).map(([id, p]) => `${id} ${p.total ? `${p.done}/${p.total}` : 'starting'}${p.note ? ` ${p.note}` : ''}`);
    const more = active.length > SHOWN_TRIALS ? ` (+${active.length - SHOWN_TRIALS} more)` : '';
    this.write(`[lab] ${this.tally.done}/${this.tally.total} done; running: ${parts.join('; ')}${more}`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** cli-progress bars: one for the run (with ETA) and one per trial in flight. */
export class TtyProgress implements ProgressReporter {
  private readonly tally = new Tally();
  private readonly multibar: cliProgress.MultiBar;
  private overall: cliProgress.SingleBar | undefined;
  private readonly bars = new Map<string, cliProgress.SingleBar>();

  /** `stream`: the terminal to draw on (default stderr, so stdout stays clean for piping). */
  constructor(options: { stream?: NodeJS.WritableStream } = {}) {
    this.multibar = new cliProgress.MultiBar(
      { stream: options.stream ?? process.stderr, clearOnComplete: false, hideCursor: true, format: '{label} |{bar}| {value}/{total} {note}', etaBuffer: 20 },
      cliProgress.Presets.shades_classic,
    );
  }

  start(total: number, alreadyDone: number): void {
    Object.assign(this.tally, { total, done: alreadyDone, started: Date.now() });
    this.overall = this.multibar.create(total, alreadyDone, { label: 'trials'.padEnd(14), note: '' });
  }

  trialStarted(id: string): void {
    // Fused trials start many at once: bars for the first few in flight, the overall bar counts the rest.
    if (this.bars.size >= SHOWN_TRIALS) return;
    this.bars.set(id, this.multibar.create(1, 0, { label: id.padEnd(14).slice(0, 14), note: '' }, { format: '{label} |{bar}| {value}/{total} ETA {eta_formatted} {note}' }));
  }

  trialProgress(id: string, done: number, total: number, note?: string): void {
    const bar = this.bars.get(id);
    if (!bar) return;
    bar.setTotal(Math.max(total, 1));
    bar.update(done, { note: note ?? '' });
  }

  trialFinished(id: string, status: 'completed' | 'failed' | 'interrupted', _durationMs: number): void {
    const bar = this.bars.get(id);
    if (bar) {
      bar.stop();
      this.multibar.remove(bar);
      this.bars.delete(id);
    }
    if (!this.tally.finish(status)) return;
    const eta = this.tally.eta();
    this.overall?.update(this.tally.done, {
      note: `${this.tally.failed ? `${this.tally.failed} failed ` : ''}${Number.isFinite(eta) && this.tally.done < this.tally.total ? `ETA ${formatDuration(eta)}` : ''}`,
    });
  }

  stop(): void {
    this.multibar.stop();
  }
}

export class SilentProgress implements ProgressReporter {
  start(): void {}
  trialStarted(): void {}
  trialProgress(): void {}
  trialFinished(): void {}
  stop(): void {}
}

/** `auto`: bars when `stream` (default stderr) is a terminal, plain periodic lines otherwise (CI, logs). */
export function createProgress(mode: ProgressMode = 'auto', stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr): ProgressReporter {
  if (mode === 'none') return new SilentProgress();
  if (mode === 'tty' || (mode === 'auto' && stream.isTTY === true)) return new TtyProgress({ stream });
  return new PlainProgress((line) => stream.write(`${line}\n`));
}
