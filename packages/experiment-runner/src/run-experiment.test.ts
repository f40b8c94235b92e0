import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tiny } from '../fixtures/tiny-experiment';
import { compareRuns } from './compare-runs';
import { defineExperiment } from './define-experiment';
import { InProcessExecutor, workerEnvironment, type Executor } from './executor';
import { exportCsv } from './export-csv';
import { byTrialThenSeq, listRuns, readMetrics, readRunConfig, readRunState, readTrialStatus } from './run-folder';
import { resumeRun, runExperiment } from './run-experiment';
import type { RunSummary } from './summary';

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
