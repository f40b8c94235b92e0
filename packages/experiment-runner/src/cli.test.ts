import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { tiny } from '../fixtures/tiny-experiment';
import { main } from './cli';
import { describeFileError } from './input-error';
import { byTrialThenSeq, listRuns, readMetrics, readRunConfig, readRunState, readTrialStatus } from './run-folder';
import { runExperiment } from './run-experiment';

const pkg = resolve(__dirname, '..');
const lab = join(pkg, 'bin', 'lab.mjs');
const fixture = join(pkg, 'fixtures', 'tiny-experiment.ts');

function labSync(args: string[]) {
  const r = spawnSync(process.execPath, [lab, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI in this process (cheaper than a spawn) capturing what it prints. */
async function labHere(args: string[]) {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  // cac prints help and version with console.info.
  const info = vi.spyOn(console, 'info').mockImplementation((...parts: unknown[]) => void (stdout += `${parts.join(' ')}\n`));
  try {
    const code = await main(['node', 'lab', ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    info.mockRestore();
  }
}

function metricsWithoutTime(runDir: string) {
  return readMetrics(runDir)
    .map(({ time: _time, ...rest }) => rest)
    .sort(byTrialThenSeq);
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('lab CLI', () => {
  it('prints help with commands and exit codes, and exits 2 on bad input naming the field', async () => {
    const help = labSync(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['run <experiment-file>', 'resume <run-dir>', 'report <run-dir>', 'compare <run-dir>', 'ls', 'export <run-dir>']) expect(help.stdout).toContain(command);
    expect(help.stdout).toContain('Exit codes');
    const runsDir = mkdtempSync(join(tmpdir(), 'er-cli-bad-'));
    const bad = labSync(['run', fixture, '--runs-dir', runsDir, '--set', 'step=fast', '--progress', 'none']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/step: .*expected number, received string/);
    expect(readdirSync(runsDir)).toEqual([]);
    const unknown = await labHere(['run', fixture, '--runs-dir', runsDir, '--set', 'nope=1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown parameter "nope"/);
    expect((await labHere(['run', fixture, '--runs-dir', runsDir, '--backend', 'gpu'])).stderr).toMatch(/--backend: expected one of auto/);
    expect((await labHere(['run', fixture, '--runs-dir', runsDir, '--workers', 'many'])).code).toBe(2);
    expect((await labHere(['run', fixture, '--runs-dir', runsDir, '--workers', '-1'])).stderr).toBe('lab: --workers: expected a non-negative integer, got -1\n');
    expect((await labHere(['frobnicate'])).code).toBe(2);
    expect((await labHere(['export', runsDir])).stderr).toMatch(/--csv/);
    expect(readdirSync(runsDir)).toEqual([]);
  });

  it('checks paths and values before any work, naming the option, the path and what was expected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'er-cli-paths-'));
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const runsDir = join(dir, 'runs');
    const cases: [string[], string][] = [
      [['run', dir, '--runs-dir', runsDir], `run: ${dir} is a folder; expected an experiment module (.js, .mjs or .ts) exporting defineExperiment(...)`],
      [['run', fixture, '--config', dir, '--runs-dir', runsDir], `--config: ${dir} is a folder; expected a YAML or JSON file of { params, sweep, seeds, folds }`],
      [['run', fixture, '--runs-dir', file], `--runs-dir: ${file} is a file; expected a folder for the run folders that this user can write in (created if absent)`],
      [['run', fixture, '--runs-dir', join(file, 'runs')], `--runs-dir: cannot create ${join(file, 'runs')}: ${file} is a file; expected a folder for the run folders`],
      [['run', fixture, '--runs-dir', runsDir, '--set', 'folds=1'], 'folds: expected an integer ≥ 2 (k-fold cross-validation holds out one fold of k), got 1'],
      [['run', fixture, '--runs-dir', runsDir, '--workers', '-2', '--config', dir], '--workers: expected a non-negative integer, got -2'],
      [['ls', '--runs-dir', file], `--runs-dir: ${file} is a file; expected a folder of run folders`],
      [['resume', file], `resume: ${file} is a file; expected a run folder`],
      [['report', join(dir, 'nope')], `report: ${join(dir, 'nope')} does not exist; expected a run folder`],
      [['export', dir, '--csv', '--out', dir], `--out: ${dir} is a folder; expected a file to write the CSV to`],
      [['export', dir, '--csv', '--out', join(file, 'm.csv')], `--out: cannot write ${join(file, 'm.csv')}: ${file} is a file`],
    ];
    for (const [args, message] of cases) {
      const result = await labHere(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toContain(`lab: ${message}`);
    }
    expect(existsSync(runsDir)).toBe(false);
  });

  it('prints why trials failed, one line per reason', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-cli-why-'));
    const result = await labHere(['run', fixture, '--runs-dir', runsDir, '--workers', '0', '--set', 'crashSeed=0', '--progress', 'none', '--no-report']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('lab: 2 trials failed (v0-s0, v1-s0): deliberate crash in seed 0\n');
  });

  it("names the folder of a file-system error that carries no path (a full disk's ENOSPC on a write)", () => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    expect(describeFileError(enospc, '/runs/r1')).toBe('/runs/r1: no space left on the device (ENOSPC: no space left on device, write)');
    // As a worker reports it: the message only.
    expect(describeFileError('EDQUOT: disk quota exceeded, write', '/runs/r1')).toBe('/runs/r1: disk quota exceeded (EDQUOT: disk quota exceeded, write)');
    // A message that names its path, or no file-system error at all, is left as it is.
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open '/data/x.wav'"), { code: 'ENOENT', path: '/data/x.wav' });
    expect(describeFileError(enoent, '/runs/r1')).toBe(enoent.message);
    expect(describeFileError(new Error('deliberate crash'), '/runs/r1')).toBe('deliberate crash');
  });

  it("explains each command in its help, with that command's exit codes", async () => {
    const run = await labHere(['run', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Runs every trial of an experiment');
    expect(run.stdout).toContain('$ lab run experiments/ghm.ts --set lr=0.0005');
    expect(run.stdout).toMatch(/Exit codes:\n {2}0 all trials completed · 1 some trials failed · 2 bad usage, invalid parameters or config, .* · 3 run incomplete/);
    // A negated flag is not shown as on by default.
    expect(run.stdout).toMatch(/--no-report +Do not build the report at the end\n/);
    for (const [command, about, exitCodes] of [
      ['resume', 'restart from their last checkpoint', 'not a run folder'],
      ['report', 'self-contained report.html', '1 some figures could not be rendered'],
      ['compare', 'paired by seed and fold', 'no such metric'],
      ['ls', 'newest first', '0 listed'],
      ['export', 'a row per logged line', '0 exported'],
    ]) {
      const help = await labHere([command, '--help']);
      expect(help.stdout, command).toContain(about);
      expect(help.stdout, command).toContain(exitCodes);
    }
    expect((await labHere(['--version'])).stdout).toMatch(/^lab\/0\.1\.0 /);
  });

  it('exits 1 when trials fail (--fail-fast stops early) and 2 naming the file and field for bad input', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-cli-codes-'));
    const failing = await labHere(['run', fixture, '--runs-dir', runsDir, '--workers', '0', '--set', 'crashSeed=0', '--fail-fast', '--progress', 'none', '--no-report']);
    expect(failing.code).toBe(1);
    const runDir = /run folder: (.+)\n/.exec(failing.stdout)![1];
    expect(readRunState(runDir)!.status).toBe('failed');
    expect(readTrialStatus(runDir, 'v0-s1')).toBeUndefined();
    const out = join(runsDir, 'metrics.csv');
    expect((await labHere(['export', runDir, '--csv', '--out', out])).code).toBe(0);
    // v0-s0 logged one line before crashing at epoch 2.
    expect(readFileSync(out, 'utf8').split('\r\n')[1]).toMatch(/^v0-s0,0,0,,0\.1,0,/);
    expect((await labHere(['compare', runDir, '--metric', 'nope'])).stderr).toMatch(/metric "nope" was not logged by these runs \(found: score, loss\)/);
    const notARun = await labHere(['resume', runsDir]);
    expect(notARun.code).toBe(2);
    expect(notARun.stderr).toMatch(/config\.json not found \(is this a run folder\?\)/);

    const badFile = join(runsDir, 'bad.yaml');
    writeFileSync(badFile, 'params:\n  epochs: many\n');
    const bad = await labHere(['run', fixture, '--runs-dir', runsDir, '--config', badFile]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/config file .*bad\.yaml: params: epochs: .*expected number, received string/);
    const goodFile = join(runsDir, 'good.yaml');
    writeFileSync(goodFile, 'params:\n  epochs: 3\n');
    const badSet = await labHere(['run', fixture, '--runs-dir', runsDir, '--config', goodFile, '--set', 'step=big']);
    expect(badSet.code).toBe(2);
    expect(badSet.stderr).toMatch(/^lab: params: step: .*expected number/);
    expect(readdirSync(runsDir).filter((f) => !/\.(yaml|csv)$/.test(f))).toHaveLength(1);
  });

  it('refuses to report a completed trial whose metrics line was deleted (exit 2, naming file and line) unless --allow-incomplete; ls lists an unreadable run with the reason', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-cli-incomplete-'));
    const runDir = await runExperiment(tiny, { runsDir, workers: 0, overrides: { params: { epochs: 3 } }, progress: 'none', report: false, log: () => {} });
    const path = join(runDir, 'metrics.jsonl');
    const lines = readFileSync(path, 'utf8').split('\n');
    // v0-s1's second line (seq 1) goes: every line left parses, only the seq numbers show the loss.
    const removed = lines.findIndex((l) => l.startsWith('{"trial":"v0-s1","seq":1,'));
    expect(removed).toBeGreaterThan(-1);
    writeFileSync(path, lines.filter((_, i) => i !== removed).join('\n'));
    const where = `${path}:${removed + 1}: trial v0-s1: no line with seq 1`;

    const refused = await labHere(['report', runDir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('lab: report: the metrics of completed trial v0-s1 are incomplete');
    expect(refused.stderr).toContain(where);
    expect(refused.stderr).toContain('--allow-incomplete');
    expect(existsSync(join(runDir, 'report.md'))).toBe(false);
    for (const args of [['compare', runDir], ['export', runDir, '--csv']]) {
      const other = await labHere(args);
      expect(other.code, args[0]).toBe(2);
      expect(other.stderr, args[0]).toContain(where);
    }

    const warned = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const allowed = await labHere(['report', runDir, '--allow-incomplete']);
      expect(allowed.code).toBe(0);
      expect(allowed.stdout).toBe(`${join(runDir, 'report.md')}\n${join(runDir, 'report.html')}\n`);
      expect(readFileSync(join(runDir, 'report.md'), 'utf8')).toContain('(v0-s1) are incomplete');
      expect(warned.mock.calls.map((c) => String(c[0]))).toContain(`report: metrics line left out: ${where}: a line of this trial missing before line ${removed + 1} (allowed: incomplete trials are reported and flagged)`);
      expect((await labHere(['compare', runDir, '--allow-incomplete'])).code).toBe(0);
      const csv = await labHere(['export', runDir, '--csv', '--allow-incomplete']);
      expect(csv.code).toBe(0);
      expect(csv.stdout.trim().split('\r\n')).toHaveLength(1 + 6 * 3 - 1);
    } finally {
      warned.mockRestore();
    }

    // A run whose config.json was cut short is listed as unreadable, with the file and the reason.
    const broken = join(runsDir, '20990101_000000_broken');
    mkdirSync(broken);
    writeFileSync(join(broken, 'config.json'), readFileSync(join(runDir, 'config.json'), 'utf8').slice(0, 40));
    const ls = await labHere(['ls', '--runs-dir', runsDir]);
    expect(ls.code).toBe(0);
    const listed = ls.stdout.trim().split('\n');
    expect(listed).toHaveLength(2);
    expect(listed[0]).toMatch(new RegExp(`^20990101_000000_broken  unreadable  run config: ${join(broken, 'config.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid JSON \\(`));
    expect(listed[1]).toMatch(/_tiny\s+completed\s+6\/6 done {2}backend none$/);
    const json = JSON.parse((await labHere(['ls', '--runs-dir', runsDir, '--json'])).stdout) as { status: string; problem?: string }[];
    expect(json[0]).toMatchObject({ status: 'unreadable', problem: expect.stringContaining('is not valid JSON') });
  });

  it('survives kill -9 (of the driver alone, then of the whole process group): resume finishes without recomputing and equals an uninterrupted run', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-cli-kill-'));
    const epochs = 12;
    const statuses = (runDir: string) => readRunConfig(runDir).trials.map((t) => ({ id: t.id, status: readTrialStatus(runDir, t.id)?.status }));
    const completedCount = (runDir: string) => statuses(runDir).filter((t) => t.status === 'completed').length;
    const midway = (runDir: string) => statuses(runDir).some((t) => t.status === 'running' && existsSync(join(runDir, 'trials', t.id, 'checkpoint.json')));
    // detached: the driver leads its own process group, which its worker processes join.
    const start = (args: string[]) => spawn(process.execPath, [lab, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const exitOf = (child: ChildProcess) => new Promise<void>((done) => child.on('exit', () => done()));
    const children: ChildProcess[] = [];
    try {
      const child = start(['run', fixture, '--runs-dir', runsDir, '--workers', '2', '--set', 'sleepMs=40', '--set', `epochs=${epochs}`, '--progress', 'plain', '--no-report']);
      children.push(child);
      let stdout = '';
      child.stdout!.on('data', (d) => (stdout += d));
      child.stderr!.on('data', () => {});
      const exited = exitOf(child);
      const runDir = await waitFor('the run folder', () => /run folder: (.+)\n/.exec(stdout)?.[1]);
      // 1. kill -9 of the driving process only, once a trial has finished and another is part-way through.
      await waitFor('progress', () => (completedCount(runDir) >= 1 && midway(runDir) ? true : undefined));
      child.kill('SIGKILL');
      await exited;
      // Give the orphaned workers a moment to notice (IPC disconnect) before checking they stay quiet.
      await sleep(200);
      const config = readRunConfig(runDir);
      const before = new Map(config.trials.map((t) => [t.id, readTrialStatus(runDir, t.id)]));
      const completedBefore = [...before].filter(([, s]) => s?.status === 'completed').map(([id]) => id);
      const interrupted = [...before].filter(([, s]) => s?.status === 'running').map(([id]) => id);
      expect(completedBefore.length).toBeGreaterThanOrEqual(1);
      expect(completedBefore.length).toBeLessThan(config.trials.length);
      expect(interrupted.length).toBeGreaterThanOrEqual(1);
      // The worker processes noticed their parent died and stopped writing.
      const linesAfterKill = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8');
      await sleep(300);
      expect(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')).toBe(linesAfterKill);
      expect(listRuns(runsDir)[0].status).toBe('interrupted');

      // 2. kill -9 of the whole resumed run at once (driver and workers, as the OOM killer or a closed terminal would).
      const resuming = start(['resume', runDir, '--progress', 'none', '--no-report']);
      children.push(resuming);
      resuming.stdout!.on('data', () => {});
      resuming.stderr!.on('data', () => {});
      let resumeExited = false;
      const resumeExit = exitOf(resuming).then(() => (resumeExited = true));
      await waitFor('progress of the resume', () => {
        if (resumeExited) throw new Error('the resume finished before it could be killed');
        return completedCount(runDir) > completedBefore.length && midway(runDir) ? true : undefined;
      });
      process.kill(-resuming.pid!, 'SIGKILL');
      await resumeExit;
      expect(completedCount(runDir)).toBeLessThan(config.trials.length);
      expect(listRuns(runsDir)[0].status).toBe('interrupted');

      // 3. resume to the end.
      const resumed = labSync(['resume', runDir, '--progress', 'none', '--no-report']);
      expect(resumed.stderr).toBe('');
      expect(resumed.code).toBe(0);
      expect(readRunState(runDir)!.sessions.map((s) => s.status ?? 'killed')).toEqual(['killed', 'killed', 'completed']);
      for (const id of completedBefore) expect(readTrialStatus(runDir, id)).toEqual(before.get(id));
      const restarted = interrupted.map((id) => JSON.parse(readFileSync(join(runDir, 'trials', id, 'artifacts', 'final.json'), 'utf8')) as { attempt: number; startEpoch: number });
      expect(restarted.every((a) => a.attempt >= 2)).toBe(true);
      expect(restarted.some((a) => a.startEpoch > 0)).toBe(true);

      const reference = await runExperiment(tiny, { runsDir, name: 'reference', workers: 0, overrides: { params: { epochs } }, progress: 'none', report: false, log: () => {} });
      expect(metricsWithoutTime(runDir)).toEqual(metricsWithoutTime(reference));

      const ls = await labHere(['ls', '--runs-dir', runsDir]);
      expect(ls.code).toBe(0);
      expect(ls.stdout).toMatch(/_tiny\s+completed\s+6\/6 done/);
      const csv = await labHere(['export', runDir, '--csv']);
      expect(csv.code).toBe(0);
      expect(csv.stdout.trim().split('\r\n')).toHaveLength(1 + 6 * epochs);
      const compare = await labHere(['compare', reference, runDir]);
      expect(compare.code).toBe(0);
      // Identical runs: every paired difference is 0, a degenerate case rather than a test result.
      expect(compare.stdout).toContain('step=0.1: all 3 paired differences are equal (d = 0): no test possible, n = 3');
    } finally {
      // Never leave a process group behind when an assertion failed half-way.
      for (const c of children) {
        try {
          process.kill(-c.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });

  it('stops cleanly on SIGINT with exit code 130, leaving the run resumable', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-cli-int-'));
    const child = spawn(process.execPath, [lab, 'run', fixture, '--runs-dir', runsDir, '--workers', '0', '--set', 'sleepMs=30', '--progress', 'plain', '--no-report'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exitCode = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const runDir = await waitFor('the run folder', () => /run folder: (.+)\n/.exec(stdout)?.[1]);
    await waitFor('two metrics lines', () => (readMetrics(runDir).length >= 2 ? true : undefined));
    child.kill('SIGINT');
    expect(await exitCode).toBe(130);
    expect(stderr).toContain('SIGINT: stopping; finish later with `lab resume`');
    expect(readRunState(runDir)!.status).toBe('interrupted');
    expect(listRuns(runsDir)[0]).toMatchObject({ status: 'interrupted', trials: 6 });
  });
});
