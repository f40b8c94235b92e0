import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createAngleClassifier } from './angle-classifier';
import { createAngleRanker } from './angle-ranker';
import { fit, type FitHistory, type LossFn } from './fit';
import { FusedTrainingGroup } from './fused-training-group';
import { hasFusedConvBatchNorm } from './fused-forward';
import { fusedKernelsForTests, relativeDiff } from './fused-kernels.test-util';
import { crossEntropyLoss, marginRankingLoss, pairScoresLoss } from './pair-losses';
import { randomPairs } from './pair-samplers';
import { allVariablesOf, type TrainableModel } from './trainable-model';
import { pairData, tensorData, type TrainingData } from './training-data';
import { barImages, quadrantImages } from './toy-data.test-util';

const { requireFused } = fusedKernelsForTests('group-test');

/** What a trial is made of: a model from its seed, its own data, loss and epochs. */
interface TrialSetup {
  model: () => TrainableModel;
  train: TrainingData;
  validation: TrainingData;
  lossFn: () => LossFn;
  epochs: number;
  seed: number;
  lr: number;
}

interface TrialResult {
  history: FitHistory;
  weights: Float32Array[];
  lossCalls: number;
}

/** A loss with state, as GHM has: counts the training calls it saw (fit must give each member only its own). */
function countingLoss(inner: LossFn): { lossFn: LossFn; calls: () => number } {
  let calls = 0;
  return {
    lossFn: (output, target, context) => {
      if (context.training) calls++;
      return inner(output, target, context);
    },
    calls: () => calls,
  };
}

async function train(setup: TrialSetup, model: TrainableModel, stepper?: ReturnType<FusedTrainingGroup['join']>, lossFn?: ReturnType<typeof countingLoss>): Promise<TrialResult> {
  const loss = lossFn ?? countingLoss(setup.lossFn());
  const history = await fit(model, {
    train: setup.train,
    validation: setup.validation,
    lossFn: loss.lossFn,
    optimizer: { lr: setup.lr, weightDecay: 1e-4 },
    batchSize: 4,
    epochs: setup.epochs,
    seed: setup.seed,
    ...(stepper ? { stepper } : {}),
  });
  const weights = allVariablesOf(model.model).map((v) => Float32Array.from(v.dataSync() as Float32Array));
  return { history, weights, lossCalls: loss.calls() };
}

async function alone(setups: TrialSetup[]): Promise<TrialResult[]> {
  const results: TrialResult[] = [];
  for (const setup of setups) {
    const model = setup.model();
    results.push(await train(setup, model));
    model.model.dispose();
  }
  return results;
}

async function fused(setups: TrialSetup[]): Promise<{ results: TrialResult[]; group: FusedTrainingGroup }> {
  const group = new FusedTrainingGroup(setups.length);
  const models = setups.map((s) => s.model());
  const results = await Promise.all(
    setups.map((setup, i) => {
      const loss = countingLoss(setup.lossFn());
      return train(setup, models[i], group.join(i, models[i], loss.lossFn), loss);
    }),
  );
  for (const m of models) m.model.dispose();
  return { results, group };
}


/**
 * Same epochs, selected epoch, optimiser steps and loss calls; losses, metrics and every weight
 * (moving statistics too) within 1e-5, or bit-identical with `exact` (the fused kernels compute
 * each group as its call alone; everything else in a fused step runs per model).
 */
function expectSameTrial(got: TrialResult, expected: TrialResult, label: string, exact = true): void {
  if (exact) {
    expect(got.history.epochs.map(({ seconds: _s, ...r }) => r), label).toEqual(expected.history.epochs.map(({ seconds: _s, ...r }) => r));
    got.weights.forEach((w, i) => expect(w, `${label} weight ${i} bit-identical`).toEqual(expected.weights[i]));
  }
  expect(got.history.epochs.length, label).toBe(expected.history.epochs.length);
  expect(got.history.bestEpoch, label).toBe(expected.history.bestEpoch);
  expect(got.history.optimizerSteps, label).toBe(expected.history.optimizerSteps);
  expect(got.lossCalls, label).toBe(expected.lossCalls);
  got.history.epochs.forEach((record, e) => {
    const want = expected.history.epochs[e];
    expect(relativeDiff([record.trainLoss], [want.trainLoss]), `${label} epoch ${e + 1} train loss`).toBeLessThan(1e-5);
    for (const [name, value] of Object.entries(want.validation ?? {})) {
      expect(relativeDiff([record.validation![name]], [value]), `${label} epoch ${e + 1} validation ${name}`).toBeLessThan(1e-5);
    }
  });
  got.weights.forEach((w, i) => expect(relativeDiff(w, expected.weights[i]), `${label} weight ${i}`).toBeLessThan(1e-5));
}

function classifierTrial(seed: number, items: number, epochs: number): TrialSetup {
  const data = quadrantImages(items, 16, 100 + seed);
  const labels = tf.tensor1d(data.labels, 'int32');
  const validation = quadrantImages(8, 16, 200 + seed);
  return {
    model: () => createAngleClassifier({ depth: 18, inputShape: [16, 16, 1], numClasses: 4, widthMultiplier: 0.0625, seed, smallInputStem: true }),
    train: tensorData(data.x, labels),
    validation: tensorData(validation.x, tf.tensor1d(validation.labels, 'int32')),
    lossFn: () => (output, target) => crossEntropyLoss(output, target),
    epochs,
    seed,
    lr: 1e-3 * seed,
  };
}

function rankerTrial(seed: number): TrialSetup {
  const clips = barImages(12, 16, 300 + seed);
  const pairs = randomPairs(clips.angles, 16, seed);
  const validationPairs = randomPairs(clips.angles, 8, seed + 50);
  return {
    model: () => createAngleRanker({ depth: 18, inputShape: [16, 16, 1], widthMultiplier: 0.0625, seed, smallInputStem: true }),
    train: pairData(clips.x, pairs),
    validation: pairData(clips.x, validationPairs),
    lossFn: () => pairScoresLoss((s1, s2, y) => marginRankingLoss(s1, s2, y, 0.1)),
    epochs: 2,
    seed,
    lr: 1e-3,
  };
}

describe('FusedTrainingGroup: K trials trained as one computation equal the K trials alone', () => {
  it('classifiers with their own seeds, data sizes, learning rates and epoch counts (fused kernels on wasm)', async (ctx) => {
    requireFused(ctx);
    const before = tf.memory().numTensors;
    // 10, 10 and 9 items: the last batches (2, 2 and 1 rows) differ in shape, and the third trial trains one epoch less.
    const setups = [classifierTrial(1, 10, 3), classifierTrial(2, 10, 3), classifierTrial(3, 9, 2)];
    const expected = await alone(setups);
    const { results, group } = await fused(setups);
    results.forEach((r, i) => expectSameTrial(r, expected[i], `trial ${i}`));
    const stats = group.stats();
    expect(stats.fusedSteps).toBeGreaterThan(0);
    // 3 + 3 steps per epoch for the first two, 3 for the third: every full batch of epochs 1-2 is fused.
    expect(stats.memberStepsFused + stats.memberStepsAlone).toBe(3 * 3 + 3 * 3 + 3 * 2);
    expect(stats.memberStepsFused).toBeGreaterThanOrEqual(2 * 3 * 2 + 2);
    expect(tf.memory().numTensors - before, 'only the setups\' data tensors remain').toBe(0 + setupTensors(setups));
  });

  it('rankers on pair batches (each side of a pair through its own grouped pass, as the ranker alone does)', async (ctx) => {
    requireFused(ctx);
    const setups = [rankerTrial(1), rankerTrial(2)];
    const expected = await alone(setups);
    const { results, group } = await fused(setups);
    results.forEach((r, i) => expectSameTrial(r, expected[i], `ranker ${i}`));
    expect(group.stats().memberStepsFused).toBe(2 * 2 * 4);
  });

  it('without the fused kernels (the cpu backend) each model runs on its own rows and the results are the same', async () => {
    await tf.setBackend('cpu');
    try {
      expect(hasFusedConvBatchNorm()).toBe(false);
      const setups = [classifierTrial(4, 8, 1), classifierTrial(5, 8, 1)];
      const expected = await alone(setups);
      const { results, group } = await fused(setups);
      results.forEach((r, i) => expectSameTrial(r, expected[i], `cpu trial ${i}`));
      expect(group.stats().fusedSteps).toBe(2);
    } finally {
      await tf.setBackend('wasm');
    }
  });

  it('a member that leaves before training (its trial failed early) does not hold the others', async () => {
    const setups = [classifierTrial(6, 8, 1), classifierTrial(7, 8, 1)];
    const expected = await alone([setups[0]]);
    const group = new FusedTrainingGroup(3);
    const model = setups[0].model();
    const run = train(setups[0], model, group.join(0, model, setups[0].lossFn()));
    group.leave(2);
    group.leave(1);
    const [result] = await Promise.all([run]);
    expectSameTrial({ ...result, lossCalls: expected[0].lossCalls }, expected[0], 'remaining member');
    expect(group.stats()).toMatchObject({ size: 3, fusedSteps: 0, memberStepsAlone: 2 });
    model.model.dispose();
  });

  it('rejects a second join of one member and an index outside the group', () => {
    const group = new FusedTrainingGroup(2);
    const model = classifierTrial(8, 4, 1).model();
    group.join(0, model, (o, t) => crossEntropyLoss(o, t));
    expect(() => group.join(0, model, (o, t) => crossEntropyLoss(o, t))).toThrow(/member 0 has already joined/);
    expect(() => group.join(2, model, (o, t) => crossEntropyLoss(o, t))).toThrow(/member index must be an integer in 0..1, got 2/);
    expect(() => new FusedTrainingGroup(0)).toThrow(/size must be a positive integer/);
    model.model.dispose();
  });
});

/** Tensors the setups hold (their data), which stay alive for the whole test. */
function setupTensors(setups: TrialSetup[]): number {
  return setups.length * 4;
}
