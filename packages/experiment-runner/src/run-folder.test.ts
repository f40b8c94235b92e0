import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendLine, writeJsonAtomic } from './atomic-write';
import { acquireRunLock, createRunDir, pruneMetricsForResume, readMetrics, runTimestamp, slugify } from './run-folder';

describe('run folders', () => {
  it('never collide when started in the same second', () => {
    const runs = mkdtempSync(join(tmpdir(), 'er-runs-'));
    const now = new Date(Date.UTC(2025, 3, 8, 17, 35, 32));
    const dirs = Array.from({ length: 5 }, () => createRunDir(runs, 'batch gradient/analysis', now));
    expect(new Set(dirs).size).toBe(5);
    expect(basename(dirs[0])).toBe('20250408_173532_batch_gradient_analysis');
    expect(basename(dirs[1])).toBe('20250408_173532_batch_gradient_analysis_2');
    expect(dirs.every((d) => existsSync(join(d, 'trials')))).toBe(true);
  });

  it('turns hostile names into safe folder names', () => {
    expect(slugify('<img src=x onerror=alert(1)>')).toBe('img_src_x_onerror_alert_1');
    expect(slugify('../../etc')).toBe('etc');
    expect(runTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)))).toBe('20260102_030405');
  });

  it('writes atomically without leaving temporary files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'er-atomic-'));
    writeJsonAtomic(join(dir, 'a.json'), { x: 1 });
    writeJsonAtomic(join(dir, 'a.json'), { x: 2 });
    expect(JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8'))).toEqual({ x: 2 });
    expect(readdirSync(dir)).toEqual(['a.json']);
  });
});

describe('metrics for resume', () => {
  it('drops a torn last line and the lines past each unfinished trial checkpoint', () => {
    const run = mkdtempSync(join(tmpdir(), 'er-prune-'));
    const path = join(run, 'metrics.jsonl');
    for (let seq = 0; seq < 3; seq++) appendLine(path, JSON.stringify({ trial: 'done', seq, time: '', epoch: seq + 1 }));
    for (let seq = 0; seq < 4; seq++) appendLine(path, JSON.stringify({ trial: 'cut', seq, time: '', epoch: seq + 1 }));
    appendLine(path, JSON.stringify({ trial: 'fresh', seq: 0, time: '', epoch: 1 }));
    appendFileSync(path, '{"trial":"cut","seq":4,"ti');
    mkdirSync(join(run, 'trials', 'cut'), { recursive: true });
    // The checkpoint was saved after two lines: lines seq 2 and 3 will be logged again.
    writeJsonAtomic(join(run, 'trials', 'cut', 'checkpoint.json'), { seq: 2, savedAt: '', kind: 'json', state: {} });
    expect(readMetrics(run)).toHaveLength(8);
    expect(pruneMetricsForResume(run, new Set(['done']))).toBe(3);
    expect(readMetrics(run).map((l) => `${l.trial}:${l.seq}`)).toEqual(['done:0', 'done:1', 'done:2', 'cut:0', 'cut:1']);
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
  });
});

describe('run lock', () => {
  it('refuses a second driver while the first is alive, and takes over a dead one', () => {
    const run = mkdtempSync(join(tmpdir(), 'er-lock-'));
    // The parent process (vitest) is alive: its lock must be respected.
    writeFileSync(join(run, 'run.lock'), String(process.ppid));
    expect(() => acquireRunLock(run)).toThrow(new RegExp(`in use by process ${process.ppid}`));
    // A pid that cannot exist: the lock is stale.
    writeFileSync(join(run, 'run.lock'), '4194304999');
    const release = acquireRunLock(run);
    expect(readFileSync(join(run, 'run.lock'), 'utf8')).toBe(String(process.pid));
    release();
    expect(existsSync(join(run, 'run.lock'))).toBe(false);
  });
});
