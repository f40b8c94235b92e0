import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendLine, writeJsonAtomic } from './atomic-write';
import { acquireRunLock, createRunDir, formatMetricsProblem, formatRunListing, listRuns, pruneMetricsForResume, readMetrics, readMetricsChecked, runTimestamp, slugify } from './run-folder';

/** The parser's own message for a text, whatever the Node version words it as. */
function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`${text} parses`);
}

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
  it('drops a torn last line and the lines past each unfinished trial checkpoint, keeping the file as it was aside', () => {
    const run = mkdtempSync(join(tmpdir(), 'er-prune-'));
    const path = join(run, 'metrics.jsonl');
    for (let seq = 0; seq < 3; seq++) appendLine(path, JSON.stringify({ trial: 'done', seq, time: '', epoch: seq + 1 }));
    for (let seq = 0; seq < 4; seq++) appendLine(path, JSON.stringify({ trial: 'cut', seq, time: '', epoch: seq + 1 }));
    appendLine(path, JSON.stringify({ trial: 'fresh', seq: 0, time: '', epoch: 1 }));
    appendFileSync(path, '{"trial":"cut","seq":4,"ti');
    const original = readFileSync(path, 'utf8');
    mkdirSync(join(run, 'trials', 'cut'), { recursive: true });
    // The checkpoint was saved after two lines: lines seq 2 and 3 will be logged again.
    writeJsonAtomic(join(run, 'trials', 'cut', 'checkpoint.json'), { seq: 2, savedAt: '', kind: 'json', state: {} });
    const warnings: string[] = [];
    expect(readMetrics(run, { warn: (m) => warnings.push(m) })).toHaveLength(8);
    expect(warnings).toEqual([`metrics line left out: ${path}:9: trial cut: cut short (no line break at the end of the file) and not valid JSON (${jsonError('{"trial":"cut","seq":4,"ti')})`]);
    warnings.length = 0;
    const pruned = pruneMetricsForResume(run, new Set(['done']), (m) => warnings.push(m));
    expect(pruned.dropped).toBe(3);
    expect(readMetrics(run).map((l) => `${l.trial}:${l.seq}`)).toEqual(['done:0', 'done:1', 'done:2', 'cut:0', 'cut:1']);
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
    // The torn line (cut, seq 4, past the checkpoint) is logged again: removed, but said so and the old file kept.
    expect(readFileSync(pruned.movedAside!, 'utf8')).toBe(original);
    expect(pruned.movedAside).toMatch(/metrics\.jsonl\.corrupt-\d{4}-/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('metrics line 9 removed: trial cut seq 4 is past its checkpoint');
  });

  it('never drops a line it cannot parse that is not superseded: kept as it is, and named', () => {
    const run = mkdtempSync(join(tmpdir(), 'er-prune-keep-'));
    const path = join(run, 'metrics.jsonl');
    appendLine(path, JSON.stringify({ trial: 'done', seq: 0, time: '', epoch: 1, acc: 0.5 }));
    appendLine(path, '{"trial":"done","seq":1,"time":"","epoch":2,"acc":0.6'); // damaged, not the last line
    appendLine(path, JSON.stringify({ trial: 'done', seq: 2, time: '', epoch: 3, acc: 0.7 }));
    appendLine(path, 'garbage');
    appendLine(path, JSON.stringify({ trial: 'cut', seq: 0, time: '', epoch: 1 }));
    appendLine(path, JSON.stringify({ trial: 'cut', seq: 1, time: '', epoch: 2 }));
    const warnings: string[] = [];
    // The old code rewrote the file without lines 2 and 4, and the report then had no trace of them.
    const pruned = pruneMetricsForResume(run, new Set(['done']), (m) => warnings.push(m));
    expect(pruned.dropped).toBe(2);
    expect(pruned.movedAside).toBeUndefined();
    expect(pruned.keptUnusable.map((p) => [p.line, p.trial])).toEqual([[2, 'done'], [4, undefined]]);
    expect(readFileSync(path, 'utf8').split('\n')).toEqual([
      JSON.stringify({ trial: 'done', seq: 0, time: '', epoch: 1, acc: 0.5 }),
      '{"trial":"done","seq":1,"time":"","epoch":2,"acc":0.6',
      JSON.stringify({ trial: 'done', seq: 2, time: '', epoch: 3, acc: 0.7 }),
      'garbage',
      '',
    ]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/metrics line 2 kept as it is \(now line 2\): .*metrics\.jsonl:2: trial done: not valid JSON/);
    expect(warnings[1]).toMatch(/metrics line 4 kept as it is \(now line 4\): .*metrics\.jsonl:4: trial unknown: not valid JSON/);
  });
});

describe('checked metrics', () => {
  it('names every damaged line, gap and repeat by file and line, and says whose it is', () => {
    const run = mkdtempSync(join(tmpdir(), 'er-checked-'));
    const path = join(run, 'metrics.jsonl');
    const put = (trial: string, seq: number) => appendLine(path, JSON.stringify({ trial, seq, time: '', epoch: seq + 1 }));
    put('a', 0);
    put('b', 0);
    appendLine(path, '{"trial":"a","seq":1,"time":"","epoch":2,"loss":0.'); // line 3
    put('a', 2);
    put('b', 2); // b's seq 1 is missing: line 5 follows the gap
    put('b', 2); // line 6 repeats it
    appendLine(path, '[1, 2]'); // line 7: JSON, but not a metrics line
    put('a', 3);
    const { lines, problems } = readMetricsChecked(run);
    expect(lines.map((l) => `${l.trial}:${l.seq}`)).toEqual(['a:0', 'b:0', 'a:2', 'b:2', 'b:2', 'a:3']);
    expect(problems.map(formatMetricsProblem)).toEqual([
      `${path}:3: trial a: not valid JSON (${jsonError('{"trial":"a","seq":1,"time":"","epoch":2,"loss":0.')})`,
      `${path}:5: trial b: no line with seq 1: a line of this trial missing before line 5`,
      `${path}:6: trial b: seq 2 logged a second time (first at line 5)`,
      `${path}:7: trial unknown: not a metrics line (expected an object with a "trial" string and a "seq" integer)`,
    ]);
    // Damaged line 3 still names a's seq 1: it is not reported a second time as a gap.
    expect(problems.filter((p) => p.trial === 'a')).toHaveLength(1);
  });
});

describe('listRuns', () => {
  it('lists a run it cannot read as unreadable, with the file and the reason, instead of hiding it', () => {
    const runs = mkdtempSync(join(tmpdir(), 'er-ls-'));
    const good = createRunDir(runs, 'good', new Date(Date.UTC(2025, 0, 1, 0, 0, 1)));
    const trials = [{ id: 'v0-s0' }, { id: 'v0-s1' }];
    const config = { id: basename(good), createdAt: '', experiment: { name: 'good' }, trials, backend: { name: 'cpu' } };
    writeJsonAtomic(join(good, 'config.json'), config);
    writeJsonAtomic(join(good, 'run.json'), { status: 'completed', startedAt: '', sessions: [] });
    writeJsonAtomic(join(good, 'trials', 'v0-s0', 'status.json'), { id: 'v0-s0', status: 'completed', attempt: 1, startedAt: '' });
    // config.json cut short.
    const truncated = createRunDir(runs, 'truncated', new Date(Date.UTC(2025, 0, 1, 0, 0, 2)));
    writeFileSync(join(truncated, 'config.json'), JSON.stringify(config).slice(0, 40));
    // A trial's status.json cut short: the run is listed with what could be read.
    const badStatus = createRunDir(runs, 'badstatus', new Date(Date.UTC(2025, 0, 1, 0, 0, 3)));
    writeJsonAtomic(join(badStatus, 'config.json'), { ...config, id: basename(badStatus) });
    writeJsonAtomic(join(badStatus, 'run.json'), { status: 'completed', startedAt: '', sessions: [] });
    mkdirSync(join(badStatus, 'trials', 'v0-s1'), { recursive: true });
    writeFileSync(join(badStatus, 'trials', 'v0-s1', 'status.json'), '{"id":"v0-s1","sta');
    // Not a run folder at all: still not listed.
    mkdirSync(join(runs, 'notes'));
    writeFileSync(join(runs, 'notes', 'todo.txt'), 'x');

    const listed = listRuns(runs);
    expect(listed.map((r) => [basename(r.dir), r.status])).toEqual([
      [basename(badStatus), 'unreadable'],
      [basename(truncated), 'unreadable'],
      [basename(good), 'completed'],
    ]);
    expect(listed[0]).toMatchObject({ trials: 2, completed: 0 });
    expect(listed[0].problem).toBe(`trial v0-s1 status: ${join(badStatus, 'trials', 'v0-s1', 'status.json')} is not valid JSON (${jsonError('{"id":"v0-s1","sta')})`);
    expect(listed[1].problem).toMatch(new RegExp(`^run config: ${join(truncated, 'config.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid JSON \\(`));
    expect(formatRunListing(listed[1])).toBe(`${basename(truncated)}  unreadable  ${listed[1].problem}`);
    expect(formatRunListing(listed[2])).toBe(`${basename(good)}  completed   1/2 done  backend cpu`);
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
