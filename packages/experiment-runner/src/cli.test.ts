import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { tiny } from '../fixtures/tiny-experiment';
import { main } from './cli';
import { listRuns, readMetrics, readRunConfig, readRunState, readTrialStatus } from './run-folder';
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
  try {
    const code = await main(['node', 'lab', ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

function metricsWithoutTime(runDir: string) {
  return readMetrics(runDir)
    .map(({ time: _time, ...rest }) => rest)
    .sort((a, b) => (a.trial === b.trial ? a.seq - b.seq : a.trial < b.trial ? -1 : 1));
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
    expect((await labHere(['frobnicate'])).code).toBe(2);
    expect((await labHere(['export', runsDir])).stderr).toMatch(/--csv/);
    expect(readdirSync(runsDir)).toEqual([]);
  });

  it('survives kill -9 of the whole run: resume finishes without recomputing and equals an uninterrupted run', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-cli-kill-'));
    const child = spawn(
      process.execPath,
      [lab, 'run', fixture, '--runs-dir', runsDir, '--workers', '2', '--set', 'sleepMs=40', '--set', 'epochs=8', '--progress', 'plain', '--no-report'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', () => {});
    const exited = new Promise<void>((done) => child.on('exit', () => done()));
    const runDir = await waitFor('the run folder', () => /run folder: (.+)\n/.exec(stdout)?.[1]);
    // Kill once at least one trial has finished and another is part-way through (has a checkpoint).
    await waitFor('progress', () => {
      const statuses = readRunConfig(runDir).trials.map((t) => ({ id: t.id, status: readTrialStatus(runDir, t.id)?.status }));
      const finished = statuses.filter((t) => t.status === 'completed').length;
      const midway = statuses.some((t) => t.status === 'running' && existsSync(join(runDir, 'trials', t.id, 'checkpoint.json')));
      return finished >= 1 && midway ? true : undefined;
    });
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

    const resumed = labSync(['resume', runDir, '--progress', 'none', '--no-report']);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    for (const id of completedBefore) expect(readTrialStatus(runDir, id)).toEqual(before.get(id));
    const restarted = interrupted.map((id) => JSON.parse(readFileSync(join(runDir, 'trials', id, 'artifacts', 'final.json'), 'utf8')) as { attempt: number; startEpoch: number });
    expect(restarted.every((a) => a.attempt === 2)).toBe(true);
    expect(restarted.some((a) => a.startEpoch > 0)).toBe(true);

    const reference = await runExperiment(tiny, { runsDir, name: 'reference', workers: 0, overrides: { params: { epochs: 8 } }, progress: 'none', report: false, log: () => {} });
    expect(metricsWithoutTime(runDir)).toEqual(metricsWithoutTime(reference));

    const ls = await labHere(['ls', '--runs-dir', runsDir]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/_tiny\s+completed\s+6\/6 done/);
    const csv = await labHere(['export', runDir, '--csv']);
    expect(csv.code).toBe(0);
    expect(csv.stdout.trim().split('\r\n')).toHaveLength(1 + 6 * 8);
    const compare = await labHere(['compare', reference, runDir]);
    expect(compare.code).toBe(0);
    expect(compare.stdout).toContain('step=0.1: 0 (95 % CI 0 to 0)');
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
