import { existsSync, mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fusedTiny } from '../fixtures/fused-experiment';
import { tiny } from '../fixtures/tiny-experiment';
import { compareRuns } from './compare-runs';
import { defineExperiment } from './define-experiment';
import { ChildProcessExecutor, InProcessExecutor, workerEnvironment, type Executor } from './executor';
import { exportCsv } from './export-csv';
import { InputError } from './input-error';
import { buildReport } from './report';
import { byTrialThenSeq, IncompleteMetricsError, listRuns, readMetrics, readRunConfig, readRunState, readTrialStatus } from './run-folder';
import { resumeRun, runExperiment } from './run-experiment';
import { summarizeRun, type RunSummary } from './summary';

const fixtureFile = resolve(__dirname, '../fixtures/tiny-experiment.ts');

function metricsWithoutTime(runDir: string) {
  return readMetrics(runDir)
    .map(({ time: _time, ...rest }) => rest)
    .sort(byTrialThenSeq);
}

const quiet = { progress: 'none' as const, log: () => {}, report: false };

describe('runExperiment in process', () => {
  it('runs every trial, records a crash with its stack, and the others go on', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-run-'));
    const runDir = await runExperiment(tiny, { runsDir, workers: 0, overrides: { params: { crashSeed: 1 } }, ...quiet });
    const config = readRunConfig(runDir);
    expect(config.trials).toHaveLength(6);
    expect(config.backend.name).toBe('none');
    expect(config.executor).toEqual({ kind: 'in-process', workers: 1 });
    expect(config.versions['@lab/experiment-runner']).toBe('0.1.0');
    expect(config.host.cpus).toBeGreaterThan(0);
    const failed = readTrialStatus(runDir, 'v0-s1')!;
    expect(failed.status).toBe('failed');
    expect(failed.error!.message).toBe('deliberate crash in seed 1');
    expect(failed.error!.stack).toContain('tiny-experiment.ts');
    expect(readTrialStatus(runDir, 'v1-s2')!.status).toBe('completed');
    expect(readRunState(runDir)!.status).toBe('failed');
    // 4 completed trials × 5 epochs + 1 line from each crashed trial before its crash.
    expect(readMetrics(runDir)).toHaveLength(4 * 5 + 2);
    expect(JSON.parse(readFileSync(join(runDir, 'trials', 'v0-s0', 'artifacts', 'final.json'), 'utf8')).attempt).toBe(1);
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as RunSummary;
    expect(summary.counts).toEqual({ total: 6, completed: 4, failed: 2, pending: 0 });
    expect(summary.variants.map((v) => v.n)).toEqual([2, 2]);
    expect(summary.variants[1].label).toBe('step=0.3');
    expect(summary.comparisons[0]).toMatchObject({ metric: 'score', a: 1, b: 0 });
    expect(summary.comparisons[0].result.n).toBe(2);
    // step 0.3 is exactly 3 × step 0.1 for the same seed: final score triples.
    const s0 = summary.trials.find((t) => t.id === 'v0-s0')!.final.score;
    expect(summary.trials.find((t) => t.id === 'v1-s0')!.final.score).toBeCloseTo(3 * s0, 12);

    const csv = exportCsv(runDir).split('\r\n');
    expect(csv[0]).toBe('trial,variant,seed,fold,step,seq,time,epoch,score,loss');
    expect(csv).toHaveLength(1 + 22 + 1);
    expect(csv[1]).toMatch(/^v0-s0,0,0,,0.1,0,\d{4}-/);

    const listed = listRuns(runsDir);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ name: 'tiny', status: 'failed', completed: 4, failed: 2, trials: 6 });
  });

  it('stops at the first failure with failFast, leaving the rest resumable', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-failfast-'));
    const runDir = await runExperiment(tiny, { runsDir, workers: 0, failFast: true, overrides: { params: { crashSeed: 0 } }, ...quiet });
    expect(readTrialStatus(runDir, 'v0-s0')!.status).toBe('failed');
    expect(readTrialStatus(runDir, 'v0-s1')).toBeUndefined();
    expect(readRunState(runDir)!.status).toBe('failed');
  });

  it("refuses a plan the experiment's checkPlan finds wrong, with an InputError naming the field, before any run folder exists", async () => {
    const seen: unknown[] = [];
    const checked = defineExperiment({
      name: 'checked',
      description: 'an experiment with its own plan check',
      hypotheses: [],
      params: { epochs: 3 },
      seeds: 2,
      backend: 'none',
      async checkPlan(plan) {
        seen.push(plan.trials.map((t) => t.params.epochs));
        return (plan.baseParams.epochs as number) >= 1 ? [] : [`params.epochs: expected a positive integer, got ${String(plan.baseParams.epochs)}`];
      },
      async trial() {
        throw new Error('no trial may run');
      },
    });
    const runsDir = join(mkdtempSync(join(tmpdir(), 'er-checkplan-')), 'runs');
    const run = runExperiment(checked, { runsDir, workers: 0, overrides: { params: { epochs: -1 } }, ...quiet });
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow('params.epochs: expected a positive integer, got -1');
    expect(seen).toEqual([[-1, -1]]);
    // Neither the run folder nor the folder of run folders was created.
    expect(existsSync(runsDir)).toBe(false);
  });

  it('resumes an interrupted run to exactly the metrics of an uninterrupted one', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-resume-'));
    const reference = await runExperiment(tiny, { runsDir, workers: 0, name: 'reference', ...quiet });
    const controller = new AbortController();
    const interrupting = defineExperiment({
      ...tiny,
      params: tiny.defaults,
      async trial(params, seed, ctx) {
        // Interrupt in the middle of the fourth trial, after its third epoch was logged and checkpointed.
        if (ctx.trialId === 'v1-s0') {
          const inner = { ...ctx, log: (m: Parameters<typeof ctx.log>[0]) => {
            ctx.log(m);
            if (m.epoch === 3) controller.abort(new Error('stop'));
          } };
          return tiny.trial(params, seed, inner);
        }
        return tiny.trial(params, seed, ctx);
      },
    });
    const runDir = await runExperiment(interrupting, { runsDir, workers: 0, signal: controller.signal, ...quiet });
    expect(readRunState(runDir)!.status).toBe('interrupted');
    expect(readTrialStatus(runDir, 'v1-s0')!.status).toBe('running');
    // The interrupted trial keeps its checkpoint; completed ones have none left (resume never reruns them).
    const checkpointFiles = (id: string) => readdirSync(join(runDir, 'trials', id)).filter((f) => f.startsWith('checkpoint'));
    expect(checkpointFiles('v1-s0')).toContain('checkpoint.json');
    expect(checkpointFiles('v0-s0')).toEqual([]);
    expect(readTrialStatus(runDir, 'v1-s1')).toBeUndefined();
    await resumeRun(runDir, [tiny], { workers: 0, ...quiet });
    expect(readRunState(runDir)!.status).toBe('completed');
    expect(readRunState(runDir)!.sessions).toHaveLength(2);
    expect(metricsWithoutTime(runDir)).toEqual(metricsWithoutTime(reference));
    // The interrupted trial restarted from its checkpoint (attempt 2); finished ones were not rerun.
    expect(readTrialStatus(runDir, 'v1-s0')!.attempt).toBe(2);
    expect(readTrialStatus(runDir, 'v0-s0')!.attempt).toBe(1);
    expect(checkpointFiles('v1-s0')).toEqual([]);
  });
});

/** `experiment` with its run aborted right after trial `trialId` logged epoch `epoch` on its first attempt. */
function interruptedAt(experiment: typeof tiny, trialId: string, epoch: number, controller: AbortController): typeof tiny {
  return defineExperiment({
    ...experiment,
    params: experiment.defaults,
    async trial(params, seed, ctx) {
      if (ctx.trialId !== trialId || ctx.attempt > 1) return experiment.trial(params, seed, ctx);
      const log: typeof ctx.log = (m) => {
        ctx.log(m);
        if (m.epoch === epoch) controller.abort(new Error('stop'));
      };
      return experiment.trial(params, seed, { ...ctx, log });
    },
  }) as typeof tiny;
}

/** tiny, checkpointing its state as bytes (a file beside checkpoint.json) as model trials do. */
const tinyBytes = defineExperiment({
  ...tiny,
  params: tiny.defaults,
  trial(params, seed, ctx) {
    const checkpoint = {
      save: (state: object | Uint8Array) => ctx.checkpoint.save(new TextEncoder().encode(JSON.stringify(state))),
      load: () => {
        const bytes = ctx.checkpoint.load() as Uint8Array | undefined;
        return bytes && JSON.parse(new TextDecoder().decode(bytes));
      },
    };
    return tiny.trial(params, seed, { ...ctx, checkpoint });
  },
}) as typeof tiny;

describe('resume with damaged state', () => {
  it('sets a checkpoint.json cut short aside, says so, and restarts that trial from scratch (old: "Unexpected end of JSON input")', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-resume-badjson-'));
    const reference = await runExperiment(tiny, { runsDir, workers: 0, name: 'reference', ...quiet });
    const controller = new AbortController();
    const runDir = await runExperiment(interruptedAt(tiny, 'v1-s0', 3, controller), { runsDir, workers: 0, signal: controller.signal, ...quiet });
    const path = join(runDir, 'trials', 'v1-s0', 'checkpoint.json');
    writeFileSync(path, readFileSync(path, 'utf8').slice(0, 15));
    const messages: string[] = [];
    await resumeRun(runDir, [tiny], { ...quiet, workers: 0, log: (m) => messages.push(m) });
    expect(readRunState(runDir)!.status).toBe('completed');
    expect(messages.filter((m) => m.startsWith('resume: trial v1-s0'))).toEqual([
      expect.stringMatching(new RegExp(`^resume: trial v1-s0: checkpoint ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid JSON \\(.+\\); the trial restarts from scratch \\(set aside: .*checkpoint\\.json\\.corrupt-`)),
    ]);
    // From scratch: epoch 0, and its metrics are exactly those of an uninterrupted run.
    expect(JSON.parse(readFileSync(join(runDir, 'trials', 'v1-s0', 'artifacts', 'final.json'), 'utf8'))).toMatchObject({ attempt: 2, startEpoch: 0 });
    expect(metricsWithoutTime(runDir)).toEqual(metricsWithoutTime(reference));
    expect(readdirSync(join(runDir, 'trials', 'v1-s0')).filter((f) => f.includes('.corrupt-'))).toHaveLength(1);
  });

  it('restarts a trial whose checkpoint bytes are truncated or missing from scratch, instead of failing it on every resume', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-resume-badbin-'));
    const reference = await runExperiment(tinyBytes, { runsDir, workers: 0, name: 'reference', ...quiet });
    for (const damage of ['truncate', 'remove'] as const) {
      const controller = new AbortController();
      const runDir = await runExperiment(interruptedAt(tinyBytes, 'v1-s0', 3, controller), { runsDir, workers: 0, signal: controller.signal, ...quiet });
      const dir = join(runDir, 'trials', 'v1-s0');
      const bin = join(dir, readdirSync(dir).find((f) => /^checkpoint-.*\.bin$/.test(f))!);
      if (damage === 'truncate') truncateSync(bin, 5);
      else writeFileSync(join(dir, 'checkpoint.json'), readFileSync(join(dir, 'checkpoint.json'), 'utf8').replace(/checkpoint-[^"]*\.bin/, 'checkpoint-gone.bin'));
      const messages: string[] = [];
      await resumeRun(runDir, [tinyBytes], { ...quiet, workers: 0, log: (m) => messages.push(m) });
      expect(readTrialStatus(runDir, 'v1-s0')!.status, damage).toBe('completed');
      const said = messages.find((m) => m.startsWith('resume: trial v1-s0'))!;
      expect(said, damage).toContain(damage === 'truncate' ? `checkpoint file ${bin} has 5 bytes` : `names ${join(dir, 'checkpoint-gone.bin')}, which cannot be read (ENOENT)`);
      expect(said).toContain('the trial restarts from scratch');
      expect(metricsWithoutTime(runDir), damage).toEqual(metricsWithoutTime(reference));
    }
  });

  it('keeps a damaged line of a completed trial through a resume, and the report names it and refuses until told otherwise', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-resume-badline-'));
    const controller = new AbortController();
    const runDir = await runExperiment(interruptedAt(tiny, 'v1-s0', 3, controller), { runsDir, workers: 0, signal: controller.signal, ...quiet });
    // Damage v0-s0's last epoch (epoch 5, its final value) in the middle of the file.
    const path = join(runDir, 'metrics.jsonl');
    const text = readFileSync(path, 'utf8').split('\n');
    const index = text.findIndex((l) => l.startsWith('{"trial":"v0-s0","seq":4,'));
    text[index] = text[index].slice(0, 40);
    writeFileSync(path, text.join('\n'));
    const messages: string[] = [];
    await resumeRun(runDir, [tiny], { ...quiet, workers: 0, report: true, log: (m) => messages.push(m) });
    expect(readRunState(runDir)!.status).toBe('completed');
    // The old resume rewrote metrics.jsonl without the line; now it is kept where it was, and named.
    expect(readFileSync(path, 'utf8').split('\n')[index]).toBe(text[index]);
    expect(messages.some((m) => m.startsWith(`resume: metrics line ${index + 1} kept as it is`) && m.includes('trial v0-s0'))).toBe(true);
    // The run's own report was refused (the run itself finished): said in the log.
    expect(messages.some((m) => m.startsWith('report not written: report: the metrics of completed trial v0-s0 are incomplete'))).toBe(true);
    await expect(buildReport(runDir, tiny)).rejects.toThrow(IncompleteMetricsError);
    await expect(buildReport(runDir, tiny)).rejects.toThrow(`${path}:${index + 1}: trial v0-s0: not valid JSON`);
    expect(() => exportCsv(runDir)).toThrow(/export: the metrics of completed trial v0-s0 are incomplete/);
    expect(() => compareRuns([runDir])).toThrow(IncompleteMetricsError);
    // Told to go on: the trial's final score is its epoch 4 value, and the report says so.
    const warnings: string[] = [];
    const summary = summarizeRun(runDir, { allowIncomplete: true, warn: (m) => warnings.push(m) });
    const trial = summary.trials.find((t) => t.id === 'v0-s0')!;
    expect(trial.incomplete).toEqual([expect.stringContaining(`metrics.jsonl:${index + 1}: trial v0-s0: not valid JSON`)]);
    expect(trial.final).toMatchObject({ score: readMetrics(runDir, { warn: () => {} }).find((l) => l.trial === 'v0-s0' && l.epoch === 4)!.score });
    expect(summary.metricsProblems).toHaveLength(1);
    expect(warnings).toEqual([expect.stringContaining('(allowed: incomplete trials are reported and flagged)')]);
    const md = readFileSync((await buildReport(runDir, tiny, { allowIncomplete: true, warn: () => {} })).markdownPath, 'utf8');
    expect(md).toContain('### Metrics lines that could not be used');
    expect(md).toContain('The metrics of 1 completed trial (v0-s0) are incomplete');
    expect(md).toContain('- 1 completed trial has incomplete metrics (v0-s0)');
    expect(exportCsv(runDir, { allowIncomplete: true, warn: () => {} }).split('\r\n')).toHaveLength(1 + 29 + 1);
  });
});

describe('executor interface', () => {
  it('runs every trial through a custom executor (a job queue, say) and records its kind', async () => {
    const inner = new InProcessExecutor(tiny);
    const jobs: string[] = [];
    const queue: Executor = {
      kind: 'test-queue',
      concurrency: 3,
      run: (job, events) => {
        jobs.push(job.trial.id);
        return inner.run(job, events);
      },
      close: async () => {},
    };
    const runDir = await runExperiment(tiny, { runsDir: mkdtempSync(join(tmpdir(), 'er-queue-')), executor: queue, ...quiet });
    expect(jobs.sort()).toEqual(['v0-s0', 'v0-s1', 'v0-s2', 'v1-s0', 'v1-s1', 'v1-s2']);
    expect(readRunConfig(runDir).executor).toEqual({ kind: 'test-queue', workers: 3 });
    expect(readRunState(runDir)!.status).toBe('completed');
  });
});

describe('backend', () => {
  it('initialises the chosen TF.js backend before the trials and records it in config.json', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const seen: string[] = [];
    const onCpu = defineExperiment({
      name: 'on-cpu',
      description: 'backend',
      hypotheses: [],
      params: {},
      seeds: 1,
      backend: 'cpu',
      async trial(_params, _seed, ctx) {
        seen.push(`${ctx.backend}/${tf.getBackend()}`);
        ctx.log({ sum: tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0]) });
      },
    });
    const runDir = await runExperiment(onCpu, { runsDir: mkdtempSync(join(tmpdir(), 'er-backend-')), workers: 0, ...quiet });
    expect(seen).toEqual(['cpu/cpu']);
    // @lab/tfjs-train is importable here (a dev dependency): its kernels are installed for cpu and recorded.
    const { native, ...backend } = readRunConfig(runDir).backend;
    expect(backend).toEqual({ preference: 'cpu', name: 'cpu', fastTraining: true, failures: [] });
    // Which native GEMM trained, or why none did (no C compiler), is recorded too.
    expect(native).toMatch(/^(native kernels on (onednn|openblas|builtin) SGEMM|no native kernels \(.+\))/);
    // And the threads those kernels computed with in this process (the run's trials ran here: workers 0).
    const { threadsPerWorker } = readRunConfig(runDir).execution!;
    expect(Number.isInteger(threadsPerWorker) && threadsPerWorker! >= 1).toBe(true);
    expect(readMetrics(runDir)[0].sum).toBe(6);
  });
});

describe('folds', () => {
  it('runs every variant × seed × fold, passes ctx.fold, and pairs comparisons by seed and fold', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-folds-'));
    const seen: string[] = [];
    const kfold = defineExperiment({
      name: 'kfold',
      description: 'folds',
      hypotheses: [],
      params: { shift: 0 },
      sweep: { list: [{ shift: 0 }, { shift: 1 }] },
      seeds: [5, 6],
      folds: 3,
      backend: 'none',
      async trial(params, seed, ctx) {
        seen.push(`${ctx.trialId}:${ctx.fold}/${ctx.folds}`);
        ctx.log({ acc: params.shift + seed + (ctx.fold ?? 0) / 10 });
      },
    });
    const runDir = await runExperiment(kfold, { runsDir, workers: 0, ...quiet });
    expect(seen).toHaveLength(2 * 2 * 3);
    expect(seen).toContain('v1-s6-f2:2/3');
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as RunSummary;
    expect(summary.variants.map((v) => [v.label, v.n])).toEqual([['shift=0', 6], ['shift=1', 6]]);
    // Every pair differs by exactly the shift: difference 1 with n = 6 pairs.
    expect(summary.comparisons[0].result.n).toBe(6);
    expect(summary.comparisons[0].result.diff).toBeCloseTo(1, 12);
  });
});

describe('exportCsv', () => {
  it('has every metric of every trial as a column, empty where a line lacks it, quoted per RFC 4180', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-csv-'));
    const mixed = defineExperiment({
      name: 'mixed',
      description: 'lines with different metrics',
      hypotheses: [],
      params: { tag: 'a' },
      sweep: { list: [{ tag: 'plain' }, { tag: 'with, comma "and quotes"' }] },
      seeds: [3],
      backend: 'none',
      async trial(params, seed, ctx) {
        ctx.log({ epoch: 1, loss: 0.5 });
        ctx.log({ epoch: 1, val_acc: 0.75, note: params.tag === 'plain' ? 'ok' : 'line\nbreak' });
        if (params.tag === 'plain') ctx.log({ gns: 12, ok: true, missing: null });
      },
    });
    const runDir = await runExperiment(mixed, { runsDir, workers: 0, ...quiet });
    const csv = exportCsv(runDir);
    const rows = csv.split('\r\n');
    expect(rows[0]).toBe('trial,variant,seed,fold,tag,seq,time,epoch,loss,val_acc,note,gns,ok,missing');
    expect(rows[1]).toMatch(/^v0-s3,0,3,,plain,0,[^,]+,1,0\.5,,,,,$/);
    expect(rows[2]).toMatch(/^v0-s3,0,3,,plain,1,[^,]+,1,,0\.75,ok,,,$/);
    expect(rows[3]).toMatch(/^v0-s3,0,3,,plain,2,[^,]+,,,,,12,true,$/);
    expect(rows[4]).toMatch(/^v1-s3,1,3,,"with, comma ""and quotes""",0,[^,]+,1,0\.5,,,,,$/);
    expect(csv).toMatch(/\r\nv1-s3,1,3,,"with, comma ""and quotes""",1,[^,]+,1,,0\.75,"line\nbreak",,,\r\n$/);
  });
});

describe('runExperiment with worker processes', () => {
  it('keepExecutor: one set of workers serves runs of different experiments one after another, then closes', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-shared-'));
    const fusedFile = resolve(__dirname, '../fixtures/fused-experiment.ts');
    const workers = new ChildProcessExecutor(2, { experimentFile: fusedFile });
    const pidsOf = (runDir: string) =>
      new Set(readRunConfig(runDir).trials.map((t) => (JSON.parse(readFileSync(join(runDir, 'trials', t.id, 'artifacts', 'final.json'), 'utf8')) as { pid: number }).pid));
    const shared = { executor: workers, keepExecutor: true, ...quiet };
    let first: string, between: string, last: string;
    try {
      first = await runExperiment(fusedTiny, { runsDir, ...shared });
      // Another experiment's trials on the same workers: each job names its own module file.
      between = await runExperiment(tiny, { runsDir, experimentFile: fixtureFile, ...shared });
      last = await runExperiment(fusedTiny, { runsDir, ...shared });
    } finally {
      await workers.close();
    }
    for (const runDir of [first, between, last]) expect(readRunState(runDir)!.status).toBe('completed');
    expect(readRunConfig(between).experiment.name).toBe('tiny');
    const firstPids = pidsOf(first);
    expect(firstPids.size).toBeGreaterThanOrEqual(1);
    expect(firstPids.size).toBeLessThanOrEqual(2);
    expect(firstPids.has(process.pid)).toBe(false);
    // The last run's trials ran in the very processes of the first run.
    expect([...pidsOf(last)].every((pid) => firstPids.has(pid))).toBe(true);
    // Closed: the workers have exited.
    await new Promise((r) => setTimeout(r, 300));
    for (const pid of firstPids) expect(() => process.kill(pid, 0)).toThrow();
  });

  it('runs trials in 2 child processes; a worker that dies fails only its trial', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-workers-'));
    const runDir = await runExperiment(tiny, { runsDir, workers: 2, experimentFile: fixtureFile, overrides: { params: { exitSeed: 2 }, seeds: 3 }, ...quiet });
    const config = readRunConfig(runDir);
    expect(config.executor).toEqual({ kind: 'child-process', workers: 2 });
    expect(config.experiment.file).toBe(fixtureFile);
    const statuses = Object.fromEntries(config.trials.map((t) => [t.id, readTrialStatus(runDir, t.id)!.status]));
    expect(statuses).toEqual({ 'v0-s0': 'completed', 'v0-s1': 'completed', 'v0-s2': 'failed', 'v1-s0': 'completed', 'v1-s1': 'completed', 'v1-s2': 'failed' });
    expect(readTrialStatus(runDir, 'v0-s2')!.error!.message).toMatch(/worker process exited during the trial \(exit code 7\)/);
    expect(existsSync(join(runDir, 'trials', 'v1-s1', 'figures', 'score.vl.json'))).toBe(true);
    // Two workers share the cores: each gets OMP_NUM_THREADS = cores / 2 unless the user set it.
    const final = JSON.parse(readFileSync(join(runDir, 'trials', 'v0-s0', 'artifacts', 'final.json'), 'utf8')) as { ompThreads: string | null };
    expect(final.ompThreads).toBe(workerEnvironment(2).OMP_NUM_THREADS);

    // The same sweep in process gives the same numbers: the cross-run comparison pairs seeds 0 and 1.
    const again = await runExperiment(tiny, { runsDir, workers: 0, overrides: { params: { exitSeed: 2 }, seeds: 3 }, ...quiet });
    const comparison = compareRuns([runDir, again]);
    expect(comparison.metric).toBe('score');
    expect(comparison.rows.map((r) => [r.variant, r.n])).toEqual([['step=0.1', 2], ['step=0.3', 2], ['step=0.1', 2], ['step=0.3', 2]]);
    expect(comparison.comparisons.map((c) => [c.variant, c.result.n, c.result.diff])).toEqual([['step=0.1', 2, 0], ['step=0.3', 2, 0]]);
  });
});

describe('native-kernel threads per worker', () => {
  it('records them, and a resume with another worker count gives its workers the recorded OMP_NUM_THREADS', async () => {
    // Only the user's own OMP_NUM_THREADS would override the runner's choice: the test needs it unset.
    const saved = process.env.OMP_NUM_THREADS;
    delete process.env.OMP_NUM_THREADS;
    try {
      const runsDir = mkdtempSync(join(tmpdir(), 'er-threads-'));
      const controller = new AbortController();
      // Interrupted as soon as the first trial completes: the rest is left to the resume.
      const progress = { start() {}, trialStarted() {}, trialProgress() {}, stop() {}, trialFinished: (_id: string, status: string) => status === 'completed' && controller.abort(new Error('stop')) };
      // 4 trials of 5 epochs of 40 ms: two run at once, and at most those two finish before the abort.
      const overrides = { params: { sleepMs: 40 }, seeds: 2 };
      const runDir = await runExperiment(tiny, { runsDir, workers: 2, experimentFile: fixtureFile, overrides, signal: controller.signal, ...quiet, progress });
      const recorded = Number(workerEnvironment(2).OMP_NUM_THREADS);
      expect(readRunConfig(runDir).execution).toEqual({ threadsPerWorker: recorded, fuse: 'off' });
      const ids = readRunConfig(runDir).trials.map((t) => t.id);
      const completedFirst = ids.filter((id) => readTrialStatus(runDir, id)?.status === 'completed');
      expect(completedFirst.length).toBeGreaterThanOrEqual(1);
      expect(completedFirst.length).toBeLessThan(ids.length);

      // One worker would get every core (cores / 1): on 2 or more cores, another OMP_NUM_THREADS than the run's first trials had.
      const messages: string[] = [];
      await resumeRun(runDir, undefined, { ...quiet, workers: 1, log: (m) => messages.push(m) });
      expect(readRunState(runDir)!.status).toBe('completed');
      expect(readRunConfig(runDir).executor).toEqual({ kind: 'child-process', workers: 1 });
      expect(readRunConfig(runDir).execution).toEqual({ threadsPerWorker: recorded, fuse: 'off' });
      const logged = ids.map((id) => JSON.parse(readFileSync(join(runDir, 'trials', id, 'artifacts', 'final.json'), 'utf8')).ompThreads as string);
      expect(logged).toEqual(ids.map(() => String(recorded)));
      const alone = Number(workerEnvironment(1).OMP_NUM_THREADS);
      if (alone !== recorded) {
        expect(messages).toContain(
          `resume: each of the 1 worker computes with ${recorded} native-kernel thread${recorded === 1 ? '' : 's'} (OMP_NUM_THREADS=${recorded}), as recorded when the run started, not the ${alone} that 1 worker would get: every trial of the run computes with the same thread count`,
        );
      }

      // The user's own OMP_NUM_THREADS still wins, with a warning naming both values.
      const again = await runExperiment(tiny, { runsDir, workers: 2, experimentFile: fixtureFile, overrides, ...quiet, signal: AbortSignal.abort() });
      process.env.OMP_NUM_THREADS = String(recorded + 1);
      const warned: string[] = [];
      await resumeRun(again, undefined, { ...quiet, workers: 2, log: (m) => warned.push(m) });
      expect(warned).toContain(
        `resume: warning: OMP_NUM_THREADS=${recorded + 1} is set, so each of the 2 workers will compute with ${recorded + 1} native-kernel threads, but this run's finished trials computed with ${recorded} (config.json execution.threadsPerWorker); numbers may differ from theirs (unset OMP_NUM_THREADS to keep ${recorded})`,
      );
      expect(JSON.parse(readFileSync(join(again, 'trials', 'v0-s0', 'artifacts', 'final.json'), 'utf8')).ompThreads).toBe(String(recorded + 1));
    } finally {
      if (saved === undefined) delete process.env.OMP_NUM_THREADS;
      else process.env.OMP_NUM_THREADS = saved;
    }
  });
});
