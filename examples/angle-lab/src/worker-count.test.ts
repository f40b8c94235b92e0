/**
 * "One seed and one backend give the same numbers twice, whatever the worker count and thread count":
 * one tiny real experiment run with 1 worker (2 native-kernel threads) and with 2 workers (1 thread
 * each) gives exactly the same per-epoch losses and accuracies. The built-in GEMM of @lab/tfjs-train
 * is forced (LAB_TFJS_TRAIN_GEMM=builtin, inherited by the worker processes): it blocks independently
 * of the thread count; oneDNN and OpenBLAS, used where installed, do not promise that.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BullMQExecutor, readMetrics, readRunConfig, readRunState, readTrialStatus, runExperiment, SlurmExecutor, startQueueWorker, type Experiment, type Executor } from '@lab/experiment-runner';
// The runner's test helpers that start Redis and a one-node Slurm cluster in temp folders (not part of its public API).
import { startRedis, startSlurm } from '../../../packages/experiment-runner/src/scale-out-test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { materialExperiment } from './experiment-material';
import { scaleOverrides } from './scales';
import { simulateDataset } from './simulator';

const tmp = mkdtempSync(join(tmpdir(), 'angle-lab-worker-count-'));
const saved = { OMP_NUM_THREADS: process.env.OMP_NUM_THREADS, LAB_TFJS_TRAIN_GEMM: process.env.LAB_TFJS_TRAIN_GEMM };
const restore = (name: keyof typeof saved) => {
  if (saved[name] === undefined) delete process.env[name];
  else process.env[name] = saved[name];
};

beforeAll(async () => {
  await simulateDataset({ root: join(tmp, 'data'), materials: ['plastic'], frequenciesHz: [1000] });
  // Worker processes inherit the environment of this one.
  process.env.LAB_TFJS_TRAIN_GEMM = 'builtin';
});
afterAll(() => {
  restore('OMP_NUM_THREADS');
  restore('LAB_TFJS_TRAIN_GEMM');
  rmSync(tmp, { recursive: true, force: true });
});

/** The run's metrics lines without their time stamps, in trial and line order. */
function metricsWithoutTime(runDir: string) {
  return readMetrics(runDir)
    .map(({ time: _time, ...rest }) => rest)
    .sort((a, b) => (a.trial === b.trial ? (a.seq as number) - (b.seq as number) : String(a.trial) < String(b.trial) ? -1 : 1));
}

/** The material experiment at the tiny scale (1 seed × 2 folds × 2 epochs), plastic only: 2 trials. */
async function run(workers: number, threads: number, executor?: Executor): Promise<string> {
  // Set explicitly (the runner gives workers cores / workers otherwise), so the test means the same on any machine.
  process.env.OMP_NUM_THREADS = String(threads);
  const name = executor ? executor.kind : `workers-${workers}`;
  const overrides = scaleOverrides('material', 'tiny', { data: join(tmp, 'data'), cacheDir: join(tmp, `cache-${name}`) });
  return runExperiment(materialExperiment as unknown as Experiment, {
    runsDir: join(tmp, 'runs'),
    name,
    workers,
    ...(executor ? { executor } : {}),
    backend: 'wasm',
    overrides: { ...overrides, sweep: { list: [{ material: 'plastic' }] } },
    progress: 'none',
    log: () => {},
    report: false,
  });
}

describe('the worker count does not change the numbers', () => {
  it('1 worker × 2 threads (the two trials fused) and 2 workers × 1 thread (each alone) give exactly the same per-epoch metrics (built-in GEMM)', async () => {
    const one = await run(1, 2);
    const two = await run(2, 1);
    for (const [runDir, workers, threads] of [[one, 1, 2], [two, 2, 1]] as const) {
      expect(readRunState(runDir)!.status).toBe('completed');
      const config = readRunConfig(runDir);
      expect(config.trials.map((t) => t.id)).toEqual(['v0-s0-f0', 'v0-s0-f1']);
      expect(config.executor).toEqual({ kind: 'child-process', workers });
      expect(config.execution).toEqual({ threadsPerWorker: threads, fuse: 'auto' });
      // One worker trains both trials fused (one group); two workers train one each: the numbers below must not care.
      expect(readTrialStatus(runDir, 'v0-s0-f0')!.fusedWith).toEqual(workers === 1 ? ['v0-s0-f1'] : undefined);
      // The native kernels trained on the built-in GEMM (or, without a C compiler, none did: the test then checks the JS kernels).
      expect(config.backend.native).toMatch(/^(native kernels on builtin SGEMM|no native kernels)/);
    }
    const a = metricsWithoutTime(one);
    const b = metricsWithoutTime(two);
    // Per epoch: train_loss, val_loss, val_acc; per trial: test_acc, best_epoch, best_val_acc.
    expect(a.filter((l) => 'train_loss' in l)).toHaveLength(2 * 2);
    expect(b).toEqual(a);
    const evaluation = (runDir: string, trial: string) => JSON.parse(readFileSync(join(runDir, 'trials', trial, 'artifacts', 'evaluation.json'), 'utf8')) as unknown;
    for (const trial of ['v0-s0-f0', 'v0-s0-f1']) expect(evaluation(two, trial)).toEqual(evaluation(one, trial));
  });
});

describe('queue and cluster executors give the same numbers', () => {
  it('the same tiny experiment through BullMQ (a Redis server and a lab worker on this machine) equals the local run', async (ctx) => {
    const redis = await startRedis(join(tmp, 'redis'));
    if (!redis.ok) return ctx.skip(`no Redis server: ${redis.reason}`);
    const repo = join(import.meta.dirname, '..', '..', '..');
    const worker = await startQueueWorker({ queueUrl: redis.value.url, queueName: 'lab-numbers', root: repo, log: () => {} });
    const executor = new BullMQExecutor({ queueUrl: redis.value.url, queueName: 'lab-numbers', experiment: materialExperiment as unknown as Experiment, projectRoot: repo, attempts: 1 });
    try {
      const queued = await run(1, 1, executor);
      const local = await run(0, 1);
      expect(readRunState(queued)!.status).toBe('completed');
      expect(readRunConfig(queued).executor.kind).toBe('bullmq');
      expect(readTrialStatus(queued, 'v0-s0-f0')!.ranOn?.executor).toBe('bullmq');
      expect(metricsWithoutTime(queued).filter((l) => 'train_loss' in l)).toHaveLength(2 * 2);
      expect(metricsWithoutTime(queued)).toEqual(metricsWithoutTime(local));
    } finally {
      await worker.close();
      await redis.stop();
    }
  });

  it('the same tiny experiment as a Slurm array job (a one-node cluster on this machine) equals the local run', async (ctx) => {
    const slurm = await startSlurm(join(tmp, 'slurm'));
    if (!slurm.ok) return ctx.skip(`no Slurm cluster: ${slurm.reason}`);
    const saved = process.env.SLURM_CONF;
    process.env.SLURM_CONF = slurm.value.conf;
    try {
      const clustered = await run(1, 1, new SlurmExecutor({ experiment: materialExperiment as unknown as Experiment, pollMs: 300, attempts: 1 }));
      const local = await run(0, 1);
      expect(readRunState(clustered)!.status).toBe('completed');
      expect(readTrialStatus(clustered, 'v0-s0-f1')!.ranOn?.executor).toBe('slurm');
      expect(metricsWithoutTime(clustered)).toEqual(metricsWithoutTime(local));
    } finally {
      if (saved === undefined) delete process.env.SLURM_CONF;
      else process.env.SLURM_CONF = saved;
      await slurm.stop();
    }
  });
});
