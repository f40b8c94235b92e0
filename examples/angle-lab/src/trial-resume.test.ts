import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineExperiment, readMetrics, readRunState, readTrialStatus, resumeRun, runExperiment, type Experiment, type TrialContext } from '@lab/experiment-runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClassifierEvaluation } from './classifier-trial';
import { frequencyLossExperiment } from './experiment-frequency-loss';
import { rankerGradientsExperiment } from './experiment-ranker-gradients';
import type { RankerProbes } from './ranker-trial';
import { simulateDataset } from './simulator';

// Unfused unless a test says otherwise: it interrupts one trial mid-training while the other has not
// started (fused, both stop together: the last describe block).
const quiet = { progress: 'none' as const, log: () => {}, report: false, workers: 0, backend: 'cpu' as const, fuse: 'off' as const };
const folders: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  folders.push(dir);
  return dir;
};
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** The run's metrics lines without time and `together` (which says how a trial ran, not what it computed). */
function metricsWithoutTime(runDir: string) {
  return readMetrics(runDir)
    .map(({ time: _time, together: _together, ...rest }) => rest)
    .sort((a, b) => (a.trial === b.trial ? (a.seq as number) - (b.seq as number) : String(a.trial) < String(b.trial) ? -1 : 1));
}

const artifact = <T>(runDir: string, trial: string, name: string) => JSON.parse(readFileSync(join(runDir, 'trials', trial, 'artifacts', name), 'utf8')) as T;

/**
 * The experiment with its trial wrapped: aborts the run right after `trialId` logged epoch
 * `abortAfter` on its first attempt, and records the epochs each attempt logged.
 */
function interrupting(experiment: Experiment, trialId: string, abortAfter: number, controller: AbortController, logged: Map<string, number[]>): Experiment {
  return defineExperiment({
    ...experiment,
    params: experiment.defaults,
    trial: (params, seed, ctx: TrialContext) => {
      const key = `${ctx.trialId}#${ctx.attempt}`;
      const log: TrialContext['log'] = (metrics) => {
        ctx.log(metrics);
        if (typeof metrics.epoch === 'number' && 'train_loss' in metrics) {
          logged.set(key, [...(logged.get(key) ?? []), metrics.epoch]);
          if (ctx.trialId === trialId && ctx.attempt === 1 && metrics.epoch === abortAfter) controller.abort(new Error('test: interrupt'));
        }
      };
      return experiment.trial(params, seed, { ...ctx, log });
    },
  }) as unknown as Experiment;
}

function checkpointBytes(runDir: string, trialId: string): number {
  const dir = join(runDir, 'trials', trialId);
  const file = readdirSync(dir).find((f) => /^checkpoint-.*\.bin$/.test(f));
  return file ? statSync(join(dir, file)).size : 0;
}

// Smaller than the tiny scale (featureSize 32, width 1/8) to keep this test fast: it trains each trial twice.
const NARROW = { featureSize: 16, width: 0.0625, smallInputStem: true };
// The trials read their own simulated recordings and feature cache, so the test needs nothing generated before.
const DATA = { data: '', cacheDir: '' };
beforeAll(async () => {
  DATA.data = tempDir('angle-lab-resume-data-');
  DATA.cacheDir = tempDir('angle-lab-resume-cache-');
  await simulateDataset({ root: DATA.data, materials: ['plastic'], frequenciesHz: [1000, 3000] });
});

/** One GHM classifier variant, 1 seed × 2 folds × 3 epochs (a function: DATA is filled in beforeAll). */
const ghmClassifierOverrides = () => ({
  params: { ...NARROW, ...DATA, batchSize: 8, epochs: 3, loss: 'ghm', input: '1000Hz' },
  sweep: { list: [{}] },
  seeds: 1,
  folds: 2,
});

describe('a trial killed mid-training resumes from its last epoch checkpoint', () => {
  it('classifier with GHM: interrupted after epoch 1, resumed, equals an uninterrupted run', async () => {
    const runsDir = tempDir('angle-lab-resume-');
    const overrides = ghmClassifierOverrides();
    const reference = await runExperiment(frequencyLossExperiment as unknown as Experiment, { runsDir, name: 'reference', overrides, ...quiet });
    expect(readRunState(reference)!.status).toBe('completed');

    const controller = new AbortController();
    const logged = new Map<string, number[]>();
    const wrapped = interrupting(frequencyLossExperiment as unknown as Experiment, 'v0-s0-f0', 1, controller, logged);
    const runDir = await runExperiment(wrapped, { runsDir, name: 'interrupted', overrides, signal: controller.signal, ...quiet });
    expect(readRunState(runDir)!.status).toBe('interrupted');
    expect(readTrialStatus(runDir, 'v0-s0-f0')!.status).toBe('running');
    const bytes = checkpointBytes(runDir, 'v0-s0-f0');
    console.log(`classifier checkpoint (ResNet-18, width 1/16, GHM): ${bytes} bytes`);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(4_000_000);

    await resumeRun(runDir, [wrapped], { ...quiet });
    expect(readRunState(runDir)!.status).toBe('completed');
    expect(readTrialStatus(runDir, 'v0-s0-f0')!.attempt).toBe(2);
    // The first attempt stopped right after epoch 1; the second went on from epoch 2, not from 1.
    expect(logged.get('v0-s0-f0#1')).toEqual([1]);
    expect(logged.get('v0-s0-f0#2')).toEqual([2, 3]);
    expect(logged.get('v0-s0-f1#1')).toEqual([1, 2, 3]);

    expect(metricsWithoutTime(runDir)).toEqual(metricsWithoutTime(reference));
    for (const trial of ['v0-s0-f0', 'v0-s0-f1']) {
      const a = artifact<ClassifierEvaluation>(runDir, trial, 'evaluation.json');
      const b = artifact<ClassifierEvaluation>(reference, trial, 'evaluation.json');
      const { ghm: ghmA, ...restA } = a;
      const { ghm: ghmB, ...restB } = b;
      expect(restA).toEqual(restB);
      expect(ghmA!.records.map((r) => r.epoch)).toEqual([1, 2, 3]);
      // Counts, EMA, weights and the running per-bin totals: all exactly as in the uninterrupted run.
      expect(ghmA).toEqual(ghmB);
    }
  });

  it('ranker: interrupted after epoch 1, resumed, equals an uninterrupted run (probes included)', async () => {
    const runsDir = tempDir('angle-lab-resume-ranker-');
    const overrides = {
      params: {
        ...NARROW,
        ...DATA,
        validationFraction: 0.25,
        epochs: 2,
        probeEvery: 1,
        pairsPerEpoch: 8,
        probeBatches: 2,
        probePairs: 4,
        gnsBootstrap: 10,
        tsne: false,
      },
      sweep: { list: [{}] },
      seeds: 1,
    };
    const reference = await runExperiment(rankerGradientsExperiment as unknown as Experiment, { runsDir, name: 'reference', overrides, ...quiet });
    expect(readRunState(reference)!.status).toBe('completed');
    const controller = new AbortController();
    const logged = new Map<string, number[]>();
    const wrapped = interrupting(rankerGradientsExperiment as unknown as Experiment, 'v0-s0', 1, controller, logged);
    const runDir = await runExperiment(wrapped, { runsDir, name: 'interrupted', overrides, signal: controller.signal, ...quiet });
    expect(readRunState(runDir)!.status).toBe('interrupted');
    const bytes = checkpointBytes(runDir, 'v0-s0');
    console.log(`ranker checkpoint (ResNet-18, width 1/16, probes): ${bytes} bytes`);
    expect(bytes).toBeLessThan(4_000_000);
    await resumeRun(runDir, [wrapped], { ...quiet });
    expect(readRunState(runDir)!.status).toBe('completed');
    expect(logged.get('v0-s0#2')).toEqual([2]);
    expect(metricsWithoutTime(runDir)).toEqual(metricsWithoutTime(reference));
    const a = artifact<RankerProbes>(runDir, 'v0-s0', 'probes.json');
    const b = artifact<RankerProbes>(reference, 'v0-s0', 'probes.json');
    expect(a.probes.map((p) => p.epoch)).toEqual([1, 2]);
    expect(a).toEqual(b);
  });
});

describe('fused trials interrupted and resumed', () => {
  it('two GHM classifiers trained as one group on wasm, interrupted after epoch 1 and resumed fused, equal the trials run alone without interruption', async () => {
    const runsDir = tempDir('angle-lab-resume-fused-');
    const overrides = ghmClassifierOverrides();
    // wasm: where @lab/tfjs-train's grouped kernels run (or, without a C compiler, the split they fall back to).
    const wasm = { ...quiet, backend: 'wasm' as const };
    const reference = await runExperiment(frequencyLossExperiment as unknown as Experiment, { runsDir, name: 'reference', overrides, ...wasm });
    expect(readTrialStatus(reference, 'v0-s0-f0')!.fusedWith).toBeUndefined();

    const controller = new AbortController();
    const logged = new Map<string, number[]>();
    const wrapped = interrupting(frequencyLossExperiment as unknown as Experiment, 'v0-s0-f0', 1, controller, logged);
    const runDir = await runExperiment(wrapped, { runsDir, name: 'interrupted', overrides, signal: controller.signal, ...wasm, fuse: 2 });
    expect(readRunState(runDir)!.status).toBe('interrupted');
    for (const trial of ['v0-s0-f0', 'v0-s0-f1']) {
      expect(readTrialStatus(runDir, trial)!.status, trial).toBe('running');
      expect(checkpointBytes(runDir, trial), `${trial} checkpoint`).toBeGreaterThan(0);
    }

    // The recorded --fuse 2 regroups the two unfinished trials.
    await resumeRun(runDir, [wrapped], { ...wasm, fuse: undefined });
    expect(readRunState(runDir)!.status).toBe('completed');
    expect(readTrialStatus(runDir, 'v0-s0-f0')!.fusedWith).toEqual(['v0-s0-f1']);
    expect(readTrialStatus(runDir, 'v0-s0-f1')!.fusedWith).toEqual(['v0-s0-f0']);
    // Each went on from its own checkpoint: no epoch of the first trial was trained twice.
    expect(logged.get('v0-s0-f0#1')).toEqual([1]);
    expect(logged.get('v0-s0-f0#2')).toEqual([2, 3]);
    expect(logged.get('v0-s0-f1#2')!.at(-1)).toBe(3);

    expect(metricsWithoutTime(runDir)).toEqual(metricsWithoutTime(reference));
    for (const trial of ['v0-s0-f0', 'v0-s0-f1']) {
      // Accuracies, confusion matrices, the selected epoch and every GHM bin statistic.
      expect(artifact<ClassifierEvaluation>(runDir, trial, 'evaluation.json'), trial).toEqual(artifact<ClassifierEvaluation>(reference, trial, 'evaluation.json'));
    }
  });
});
