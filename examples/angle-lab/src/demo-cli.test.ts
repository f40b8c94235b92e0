/**
 * The demo's command line and its failure modes: bad options and data refused before any work (exit 2),
 * failed trials told with their reason (exit 1), Ctrl-C (exit 130, resumable, index written), a full
 * disk, and an index that lists every run in the output folder. Tiny data and tiny trials throughout.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineExperiment, readRunState } from '@lab/experiment-runner';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runDemo, type DemoOptions } from './demo';
import { main } from './main';
import { simulateDataset } from './simulator';

const example = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'angle-lab-demo-cli-'));
const cacheDir = join(tmp, 'cache');

/** Runs the demo CLI in this process, capturing what it prints. */
async function demoHere(args: string[]) {
  let stdout = '';
  let stderr = '';
  const log = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void (stdout += `${parts.join(' ')}\n`));
  const info = vi.spyOn(console, 'info').mockImplementation((...parts: unknown[]) => void (stdout += `${parts.join(' ')}\n`));
  const error = vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void (stderr += `${parts.join(' ')}\n`));
  try {
    const code = await main(['node', 'main.ts', 'demo', ...args]);
    return { code, stdout, stderr };
  } finally {
    log.mockRestore();
    info.mockRestore();
    error.mockRestore();
  }
}

/** The demo CLI as a separate process (what `pnpm demo` runs), for signals and exit codes. */
function demoProcess(args: string[]) {
  // LAB_TFJS_TRAIN_NATIVE=off: the tiny trials need no compiled kernels, and the test does not wait for a build.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'demo', ...args], {
    cwd: example,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LAB_TFJS_TRAIN_NATIVE: 'off', NO_COLOR: '1' },
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (output.stdout += d));
  child.stderr.on('data', (d) => (output.stderr += d));
  const exit = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, output, exit };
}

async function waitFor(what: string, probe: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const runFolders = (out: string) => (existsSync(out) ? readdirSync(out).filter((f) => /^\d{8}_\d{6}_/.test(f)) : []);

/** A folder in which this process cannot create anything (a read-only folder; as root, which ignores modes, /sys), if there is one. */
function readOnlyFolder(): string | undefined {
  const dir = join(tmp, 'read-only');
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o555);
  for (const candidate of [dir, '/sys']) {
    try {
      rmdirSync(mkdtempSync(join(candidate, 'probe-')));
    } catch {
      return candidate;
    }
  }
  return undefined;
}

let oneTake: string;
let threeTakes: string;
let frequencies: string;
beforeAll(async () => {
  // plastic and box at 1000 Hz, two angles: what `--only material` needs.
  const two = { materials: ['plastic', 'box'], frequenciesHz: [1000], anglesDeg: [0, 90] };
  oneTake = join(tmp, 'one-take');
  threeTakes = join(tmp, 'three-takes');
  frequencies = join(tmp, 'frequencies');
  await simulateDataset({ root: oneTake, ...two, takes: 1 });
  await simulateDataset({ root: threeTakes, ...two, takes: 3 });
  await simulateDataset({ root: frequencies, materials: ['plastic'], frequenciesHz: [500, 1000, 3000], anglesDeg: [0, 90], takes: 3 });
});

describe('demo CLI: options are checked before any work, naming the option, the path and what was expected', () => {
  it('exits 2 on each bad option, creating nothing', async () => {
    const out = join(tmp, 'never-created');
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const cases: [string[], string][] = [
      [['--workers', '-1'], '--workers: expected a non-negative integer (0 runs trials in this process), got -1'],
      [['--workers', 'two'], '--workers: expected a non-negative integer (0 runs trials in this process), got two'],
      [['--manifest', tmp], `--manifest: ${tmp} is a folder; expected a CSV file with the columns path,material,freq_hz,angle_deg`],
      [['--manifest', join(tmp, 'nope.csv')], `--manifest: ${join(tmp, 'nope.csv')} does not exist; expected a CSV file`],
      [['--data', file], `--data: ${file} is a file; expected a folder of recordings`],
      [['--out', file], `--out: ${file} is a file; expected a folder for the run folders and the index page`],
      [['--out', join(file, 'runs')], `--out: cannot create ${join(file, 'runs')}: ${file} is a file`],
      [['--scale', 'huge'], '--scale: expected one of tiny, demo, full, got "huge"'],
      [['--only', 'frequency-loss,nope'], '--only: unknown experiment(s) nope; expected some of frequency-loss'],
      [['--data', oneTake, '--manifest', file], '--data and --manifest: give one of them, not both'],
    ];
    for (const [args, message] of cases) {
      const result = await demoHere([...args, ...(args.includes('--out') ? [] : ['--out', out])]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toContain(`angle-lab: ${message}`);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('says a read-only --out is not writable (not ENOENT after the feature pass)', async (ctx) => {
    const readOnly = readOnlyFolder();
    if (!readOnly) return ctx.skip();
    const out = join(readOnly, 'runs');
    const result = await demoHere(['--data', threeTakes, '--out', out, '--only', 'material']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`--out: cannot create ${out.replace(/[/\\]/g, '.')}: ${readOnly.replace(/[/\\]/g, '.')} is not writable \\((EACCES|EPERM|EROFS)`));
    expect(result.stdout).not.toContain('features:');
  });

  it('refuses data too small for the folds (a 1-take class) with exit 2, naming folds, before any run folder exists', async () => {
    const out = join(tmp, 'one-take-runs');
    const result = await demoHere(['--scale', 'tiny', '--data', oneTake, '--only', 'material', '--out', out, '--workers', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('angle-lab: experiment material: folds: 2 folds need at least 2 takes in every angle class, but plastic at 1000Hz has only 1 take at 0°, 1 take at 90°');
    expect(result.stdout).not.toContain('features:');
    expect(runFolders(out)).toEqual([]);
  });
});

describe('runDemo', () => {
  const quick = defineExperiment({
    name: 'quick',
    description: 'A trial that logs one line, or fails on demand',
    hypotheses: [],
    params: { data: '', manifest: '', cacheDir: '', featureSize: 16, epochs: 1, fail: '' },
    seeds: 2,
    backend: 'none',
    async trial(params, _seed, ctx) {
      if (params.fail) throw Object.assign(new Error(params.fail), { code: params.fail.split(':')[0] });
      ctx.log({ epoch: 1, score: 1 });
    },
  });
  const options = (out: string, more: Partial<DemoOptions> = {}): DemoOptions => ({
    scale: 'tiny',
    data: threeTakes,
    out,
    cacheDir,
    progress: 'none',
    log: () => {},
    warn: () => {},
    ...more,
  });

  it('tells why trials failed (a full disk names the run folder) and gives exit code 1', async () => {
    const out = join(tmp, 'failing');
    const warnings: string[] = [];
    const result = await runDemo(
      options(out, {
        warn: (m) => warnings.push(m),
        experiments: [{ experiment: quick }, { experiment: quick, overrides: { params: { fail: 'ENOSPC: no space left on device, write' } } }],
      }),
    );
    expect(result.exitCode).toBe(1);
    expect(result.runs.map((r) => r.status)).toEqual(['completed', 'failed']);
    const failedRun = result.runs[1].runDir;
    expect(result.runs[1].failures).toEqual([`2 trials failed (v0-s0, v0-s1): ${failedRun}: no space left on the device (ENOSPC: no space left on device, write)`]);
    expect(warnings).toEqual([`  quick: ${result.runs[1].failures[0]}`]);
    const index = readFileSync(result.indexMarkdown, 'utf8');
    expect(index).toMatch(/\| quick \|[^\n]*\| completed \| 2\/2 \|/);
    expect(index).toMatch(/\| quick \|[^\n]*\| failed \| 0\/2 \(2 failed\) \|/);
  });

  it('on abort (Ctrl-C) marks the running experiment interrupted, starts no other, writes the index and gives 130', async () => {
    const out = join(tmp, 'aborted');
    const controller = new AbortController();
    const result = await runDemo(
      options(out, {
        signal: controller.signal,
        onRunDir: () => controller.abort(new Error('interrupted by SIGINT')),
        experiments: [{ experiment: quick }, { experiment: quick }],
      }),
    );
    expect(result.exitCode).toBe(130);
    expect(result.runs).toHaveLength(1);
    const runDir = result.runs[0].runDir;
    expect(result.interrupted).toEqual({ experiment: 'quick', runDir, notStarted: ['quick'] });
    expect(readRunState(runDir)!.status).toBe('interrupted');
    expect(readFileSync(result.indexMarkdown, 'utf8')).toMatch(/\| quick \|[^\n]*\| interrupted \| 0\/2 \|/);
  });

  it('a second demo into the same --out keeps the first one\'s runs in the index, and lists an unreadable run folder with the reason', async () => {
    const out = join(tmp, 'twice');
    const first = await runDemo(options(out, { experiments: [{ experiment: quick }] }));
    mkdirSync(join(out, '20200101_000000_broken'));
    writeFileSync(join(out, '20200101_000000_broken', 'config.json'), '{"id": ');
    const second = await runDemo(options(out, { experiments: [{ experiment: quick, overrides: { seeds: 1 } }] }));
    const index = readFileSync(second.indexMarkdown, 'utf8');
    const html = readFileSync(second.indexHtml, 'utf8');
    for (const run of [...first.runs, ...second.runs]) {
      const id = run.runDir.split(/[\\/]/).pop()!;
      expect(index).toContain(`[HTML](${id}/report.html)`);
      expect(html).toContain(`href="${id}/report.html"`);
    }
    expect(index).toContain('Runs in this folder: 3 (1 from this demo, marked *)');
    expect(index).toMatch(/\| 20200101_000000_broken \| – \| – \| unreadable: [^\n]*config\.json is not valid JSON/);
  });
});

describe('demo CLI as a process', () => {
  it('Ctrl-C: says what was interrupted and how to resume it, marks the run interrupted, writes the index, exits 130', async () => {
    const out = join(tmp, 'sigint');
    // Groups of 4 fused trials, one after another: the first group finishes long before the last.
    const demo = demoProcess(['--scale', 'tiny', '--data', frequencies, '--only', 'frequency-loss', '--out', out, '--workers', '0', '--fuse', '4']);
    try {
      await waitFor('the first finished trial', () => /1\/24 trials done/.test(demo.output.stderr));
      demo.child.kill('SIGINT');
      expect(await demo.exit).toBe(130);
    } finally {
      demo.child.kill('SIGKILL');
    }
    const [id] = runFolders(out);
    const runDir = join(out, id);
    expect(demo.output.stderr).toContain(`SIGINT: stopping frequency-loss (run folder ${runDir})`);
    expect(demo.output.stderr).toContain(`Resume it with:  pnpm lab resume ${runDir}`);
    expect(readRunState(runDir)!.status).toBe('interrupted');
    expect(readFileSync(join(out, 'index.md'), 'utf8')).toMatch(/\| frequency-loss \|[^\n]*\| interrupted \| \d+\/24 \|/);
  });

  it('a full disk: exit 1, and the console says ENOSPC and where', async (ctx) => {
    // A 200 KB tmpfs fills up at the first checkpoint; mounting one needs root, so elsewhere this is skipped.
    const disk = join(tmp, 'full');
    mkdirSync(disk);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=200k', 'tmpfs', disk]).status !== 0) return ctx.skip();
    try {
      const demo = demoProcess(['--scale', 'tiny', '--data', threeTakes, '--only', 'material', '--out', join(disk, 'runs'), '--workers', '0']);
      expect(await demo.exit).toBe(1);
      const [id] = runFolders(join(disk, 'runs'));
      expect(demo.output.stderr).toContain(`material: 4 trials failed (v0-s0-f0, v0-s0-f1, v1-s0-f0, v1-s0-f1): ${join(disk, 'runs', id)}: no space left on the device (ENOSPC`);
    } finally {
      spawnSync('umount', [disk]);
    }
  });
});

afterAll(() => {
  try {
    chmodSync(join(tmp, 'read-only'), 0o755);
  } catch {
    // not created
  }
  rmSync(tmp, { recursive: true, force: true });
});
