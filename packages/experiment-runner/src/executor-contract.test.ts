// One contract for every executor (local, bullmq, slurm), against real servers this file starts on
// loopback in a temp folder and stops: short fake trials that append each start to a log, so the
// tests count executions.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BullMQExecutor } from './bullmq-executor';
import type { Experiment } from './define-experiment';
import type { Executor, TrialJob } from './executor';
import { loadExperiment } from './load-experiment';
import { planRun } from './plan';
import { formatRunListing, listRuns, readRunConfig, readTrialStatus, readMetrics } from './run-folder';
import { resumeRun, runExperiment } from './run-experiment';
import { startRedis, startSlurm } from './scale-out-test-servers';
import { SlurmExecutor } from './slurm-executor';

const here = dirname(fileURLToPath(import.meta.url));
const labBin = join(here, '..', 'bin', 'lab.mjs');
const root = mkdtempSync(join(tmpdir(), 'lab-contract-'));
const fixture = join(root, 'contract.ts');
// An ES module project, as a lab checkout is (tsx would otherwise load the fixture as CommonJS).
writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
writeFileSync(
  fixture,
  `import { appendFileSync } from 'node:fs';
import { defineExperiment } from ${JSON.stringify(join(here, 'define-experiment.ts'))};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export default defineExperiment({
  name: 'contract',
  description: 'short fake trials for the executor contract',
  hypotheses: [],
  backend: 'none',
  params: { log: '', ms: 150, slowSeed: -1, slowMs: 4000, failSeed: -1 },
  seeds: 4,
  dataFingerprint: () => 'data-v1',
  async trial(p, seed, ctx) {
    appendFileSync(p.log, \`start \${seed} \${ctx.trialId} \${process.pid} \${process.ppid}\\n\`);
    // A tiny real fit (seeded least squares by gradient descent): its numbers must not depend on where it ran.
    let state = seed + 1;
    const rand = () => (state = (state * 16807) % 2147483647) / 2147483647;
    const xs = Array.from({ length: 32 }, rand);
    const ys = xs.map((x) => 3 * x + 0.5 + (rand() - 0.5) * 0.1);
    let w = 0, b = 0;
    for (let epoch = 0; epoch < 3; epoch++) {
      for (let i = 0; i < 100; i++) {
        let gw = 0, gb = 0;
        xs.forEach((x, j) => { const e = w * x + b - ys[j]; gw += e * x; gb += e; });
        w -= (0.5 * gw) / xs.length; b -= (0.5 * gb) / xs.length;
      }
      const loss = xs.reduce((s, x, j) => s + (w * x + b - ys[j]) ** 2, 0) / xs.length;
      ctx.log({ epoch, loss, w });
      await sleep((seed === p.slowSeed ? p.slowMs : p.ms) / 3);
    }
    ctx.artifact('fit.json', { w, b });
    if (seed === p.failSeed) throw new Error(\`seed \${seed} fails on purpose\`);
    appendFileSync(p.log, \`done \${seed} \${ctx.trialId}\\n\`);
  },
});
`,
);

const redis = await startRedis(join(root, 'redis'));
const slurm = await startSlurm(join(root, 'slurm'));
if (slurm.ok) process.env.SLURM_CONF = slurm.value.conf;
const experiment: Experiment = await loadExperiment(fixture, 'contract');
const children = new Set<ChildProcess>();

afterAll(async () => {
  await Promise.all([...children].map(stop));
  if (redis.ok) await redis.stop();
  if (slurm.ok) await slurm.stop();
  rmSync(root, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function lab(args: string[]): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [labBin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  children.add(child);
  child.once('exit', () => children.delete(child));
  return Object.assign(child, { output: () => output });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

async function until<T>(what: string, get: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = get();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const exitOf = (child: ChildProcess) => new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));

/** Executions per seed, from the trials' append-only log. */
function starts(log: string): Map<number, { count: number; pid: number; ppid: number }> {
  const counts = new Map<number, { count: number; pid: number; ppid: number }>();
  if (!existsSync(log)) return counts;
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const [word, seed, , pid, ppid] = line.split(' ');
    if (word !== 'start') continue;
    const previous = counts.get(Number(seed));
    counts.set(Number(seed), { count: (previous?.count ?? 0) + 1, pid: Number(pid), ppid: Number(ppid) });
  }
  return counts;
}

let queueCount = 0;
type Kind = 'local' | 'bullmq' | 'slurm';
const skipReason: Record<Kind, string | undefined> = {
  local: undefined,
  bullmq: redis.ok ? undefined : redis.reason,
  slurm: slurm.ok ? undefined : slurm.reason,
};

/** Per test: a log, a runs folder, a queue of its own and (bullmq) worker processes. */
async function setup(kind: Kind, options: { workers?: number; attempts?: number } = {}) {
  const dir = mkdtempSync(join(root, `${kind}-`));
  const log = join(dir, 'executions.log');
  const queueName = `contract-${++queueCount}`;
  const workers: ReturnType<typeof lab>[] = [];
  if (kind === 'bullmq' && redis.ok) {
    for (let i = 0; i < (options.workers ?? 2); i++) workers.push(lab(['worker', '--queue', redis.value.url, '--queue-name', queueName, '--root', root, '--lock-ms', '2000']));
    await Promise.all(workers.map((w) => until(`worker ready (${w.output()})`, () => /waiting for trials/.test(w.output()))));
  }
  const executor = (): Executor | undefined => {
    if (kind === 'bullmq' && redis.ok) return new BullMQExecutor({ queueUrl: redis.value.url, queueName, experiment, projectRoot: root, attempts: options.attempts ?? 2, backoffMs: 100 });
    if (kind === 'slurm') return new SlurmExecutor({ experiment, pollMs: 300, throttle: 4, attempts: options.attempts ?? 2 });
    return undefined;
  };
  const cliExecutor = kind === 'bullmq' && redis.ok ? ['--executor', 'bullmq', '--queue', redis.value.url, '--queue-name', queueName, '--root', root] : kind === 'slurm' ? ['--executor', 'slurm'] : ['--workers', '2'];
  return { dir, log, runsDir: join(dir, 'runs'), workers, executor, cliExecutor, stopWorkers: () => Promise.all(workers.map(stop)) };
}

const quiet = { progress: 'none' as const, report: false, log: () => {} };

let reference: Map<string, unknown> | undefined;
/** The metrics of the same plan run in this process: every executor must give exactly these numbers. */
async function referenceNumbers(): Promise<Map<string, unknown>> {
  if (reference) return reference;
  const dir = mkdtempSync(join(root, 'reference-'));
  const runDir = await runExperiment(experiment, { runsDir: dir, workers: 0, experimentFile: fixture, overrides: { params: { log: join(dir, 'log'), ms: 0 } }, ...quiet });
  reference = numbers(runDir);
  return reference;
}

const numbers = (runDir: string) => new Map(readMetrics(runDir).map((l) => [`${l.trial}#${l.seq}`, { epoch: l.epoch, loss: l.loss, w: l.w }]));

describe.each(['local', 'bullmq', 'slurm'] as const)('the %s executor', (kind) => {
  const reason = skipReason[kind];
  const runs = reason ? it.skip : it;
  // Queues and clusters only: local executors have no queue to enqueue twice and do not retry, so
  // these are not declared for them (a skipped test would count as one that could not run).
  const remoteOnly = kind === 'local' ? () => {} : runs;
  const suffix = reason ? ` (skipped: ${reason})` : '';

  runs(`runs every trial to completion, with the same numbers as in this process${suffix}`, async () => {
    const t = await setup(kind);
    try {
      const executor = t.executor();
      const runDir = await runExperiment(experiment, { runsDir: t.runsDir, workers: 2, ...(executor ? { executor } : {}), experimentFile: fixture, overrides: { params: { log: t.log } }, ...quiet });
      const config = readRunConfig(runDir);
      for (const trial of config.trials) {
        expect(readTrialStatus(runDir, trial.id)?.status, JSON.stringify(readTrialStatus(runDir, trial.id)?.error)).toBe('completed');
        expect(JSON.parse(readFileSync(join(runDir, 'trials', trial.id, 'artifacts', 'fit.json'), 'utf8'))).toHaveProperty('w');
      }
      expect([...starts(t.log).values()].map((s) => s.count)).toEqual([1, 1, 1, 1]);
      expect(numbers(runDir)).toEqual(await referenceNumbers());
      if (kind !== 'local') {
        expect(config.executor.kind).toBe(kind);
        expect(readTrialStatus(runDir, config.trials[0]!.id)?.ranOn?.host).toBeTruthy();
        expect(formatRunListing(listRuns(t.runsDir)[0]!)).toMatch(new RegExp(`executor ${kind} on \\S+`));
        // Nothing but the coordinator's merge reaches the run's own files: no scratch copy of a trial's lines.
        expect(readMetrics(runDir)).toHaveLength(12);
      }
    } finally {
      await t.stopWorkers();
    }
  });

  runs(`kill -9 of the process running a trial: the trial runs again and completes${kind === 'local' ? ' (on lab resume: local executors do not retry)' : ''}${suffix}`, async () => {
    const t = await setup(kind);
    try {
      const executor = t.executor();
      const params = { log: t.log, slowSeed: 1, slowMs: 3000 };
      const running = runExperiment(experiment, { runsDir: t.runsDir, workers: 2, ...(executor ? { executor } : {}), experimentFile: fixture, overrides: { params, seeds: 2 }, ...quiet });
      const slow = await until('the slow trial to start', () => starts(t.log).get(1));
      // bullmq: the `lab worker` holding the job's lock (the trial's parent); slurm, local: the trial's own process.
      process.kill(kind === 'bullmq' ? slow.ppid : slow.pid, 'SIGKILL');
      let runDir = await running;
      if (kind === 'local') runDir = await resumeRun(runDir, [experiment], { workers: 1, ...quiet });
      for (const trial of readRunConfig(runDir).trials) expect(readTrialStatus(runDir, trial.id)?.status).toBe('completed');
      expect(starts(t.log).get(1)?.count).toBe(2);
      expect(starts(t.log).get(0)?.count).toBe(1);
    } finally {
      await t.stopWorkers();
    }
  });

  runs(`kill -9 of the coordinator: lab resume executes no finished trial again${suffix}`, async () => {
    const t = await setup(kind, { workers: 1 });
    try {
      const coordinator = lab(['run', fixture, ...t.cliExecutor, '--runs-dir', t.runsDir, '--set', `log=${t.log}`, '--set', 'ms=900', '--progress', 'none', '--no-report']);
      const runDir = await until('the run folder', () => /run folder: (.*)/.exec(coordinator.output())?.[1]?.trim(), 30_000);
      const finished = await until('a finished trial', () => {
        const done = readRunConfig(runDir).trials.filter((trial) => readTrialStatus(runDir, trial.id)?.status === 'completed');
        return done.length ? done : undefined;
      });
      coordinator.kill('SIGKILL');
      await exitOf(coordinator);
      const resume = lab(['resume', runDir, '--progress', 'none', '--no-report']);
      expect(await exitOf(resume), resume.output()).toBe(0);
      for (const trial of readRunConfig(runDir).trials) expect(readTrialStatus(runDir, trial.id)?.status).toBe('completed');
      for (const trial of finished) expect(starts(t.log).get(trial.seed)?.count, `trial ${trial.id}`).toBe(1);
    } finally {
      await t.stopWorkers();
    }
  });

  remoteOnly(`a duplicate enqueue of a trial is ignored${suffix}`, async () => {
    const t = await setup(kind, { workers: 1 });
    try {
      const runDir = join(t.dir, 'runs', '20250101_000000_dup');
      mkdirSync(runDir, { recursive: true });
      const trial = planRun(experiment, { params: { log: t.log } }).trials[0]!;
      const job: TrialJob = { runDir, trial, experimentName: 'contract', experimentFile: fixture, backend: 'none', attempt: 1 };
      // bullmq: two coordinators enqueue the same trial (the queue drops the second by its job id); slurm: one, twice.
      const first = t.executor()!;
      const second = kind === 'bullmq' ? t.executor()! : first;
      const events = { signal: new AbortController().signal };
      const outcomes = await Promise.all([first.run(job, events), second.run(structuredClone(job), events)]);
      await Promise.all([first.close(), second.close()]);
      expect(outcomes.map((o) => o.status)).toEqual(['completed', 'completed']);
      expect(starts(t.log).get(trial.seed)?.count).toBe(1);
      // One coordinator merges once; two coordinators never share a run folder (its run lock), so only then.
      if (first === second) expect(readMetrics(runDir)).toHaveLength(3);
    } finally {
      await t.stopWorkers();
    }
  });

  remoteOnly(`a failing trial is retried up to its limit, then marked failed${suffix}`, async () => {
    const t = await setup(kind, { attempts: 2 });
    try {
      const executor = t.executor();
      const runDir = await runExperiment(experiment, { runsDir: t.runsDir, ...(executor ? { executor } : {}), experimentFile: fixture, overrides: { params: { log: t.log, failSeed: 1 }, seeds: 2 }, ...quiet });
      const [ok, failing] = readRunConfig(runDir).trials;
      expect(readTrialStatus(runDir, ok!.id)?.status).toBe('completed');
      const status = readTrialStatus(runDir, failing!.id);
      expect(status?.status).toBe('failed');
      expect(status?.error?.message).toMatch(/fails on purpose/);
      expect(starts(t.log).get(1)?.count).toBe(2);
    } finally {
      await t.stopWorkers();
    }
  });
});
