import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradients
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAngleClassifier } from './angle-classifier';
import { fit, type EpochRecord, type FitHistory, type FitOptions } from './fit';
import { fitStateFromBytes, fitStateToBytes, type FitResumeState } from './fit-resume';
import { accuracy } from './metrics';
import { crossEntropyLoss } from './pair-losses';
import { allVariablesOf, asTrainable, type TrainableModel } from './trainable-model';
import { tensorData } from './training-data';
import { quadrantImages } from './toy-data.test-util';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A small dense net with batch norm (moving statistics are non-trainable variables). */
function smallNet(seed: number): TrainableModel {
  return asTrainable(
    tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [3], units: 6, kernelInitializer: tfl.initializers.glorotUniform({ seed }) }),
        tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 }),
        tfl.layers.activation({ activation: 'relu' }),
        tfl.layers.dense({ units: 2, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
      ],
    }),
  );
}

const withoutSeconds = (records: EpochRecord[]) => records.map(({ seconds: _seconds, ...rest }) => rest);
const comparable = (h: FitHistory) => ({ ...h, epochs: withoutSeconds(h.epochs) });
const weightsOf = (model: TrainableModel) => allVariablesOf(model.model).map((v) => Array.from(v.dataSync()));

interface Outcome {
  history: FitHistory;
  weights: number[][];
}

/** N epochs straight. */
async function straight(build: () => TrainableModel, options: Omit<FitOptions, 'hooks'>): Promise<Outcome> {
  const model = build();
  try {
    const history = await fit(model, options);
    return { history, weights: weightsOf(model) };
  } finally {
    model.model.dispose();
  }
}

/**
 * k epochs, a snapshot through bytes, everything disposed, a model rebuilt from the same seed,
 * then the remaining epochs from the snapshot.
 */
async function interrupted(build: () => TrainableModel, options: Omit<FitOptions, 'hooks'>, k: number): Promise<Outcome & { bytes: number; tensorsLeft: number }> {
  let bytes: Uint8Array | undefined;
  const first = build();
  await fit(first, { ...options, epochs: k, hooks: { afterEpoch: (ctx) => void (ctx.epoch === k && (bytes = fitStateToBytes(ctx.snapshot(), { note: 'extra' }))) } });
  first.model.dispose();
  const { state, extra } = fitStateFromBytes(bytes!);
  expect(extra).toEqual({ note: 'extra' });
  const second = build();
  const before = tf.memory().numTensors;
  const epochsSeen: number[] = [];
  const history = await fit(second, { ...options, resume: state, hooks: { beforeEpoch: ({ epoch }) => void epochsSeen.push(epoch) } });
  const tensorsLeft = tf.memory().numTensors - before;
  expect(epochsSeen).toEqual(Array.from({ length: options.epochs - k }, (_, i) => k + 1 + i));
  const weights = weightsOf(second);
  second.model.dispose();
  return { history, weights, bytes: bytes!.length, tensorsLeft };
}

describe('fit resume', () => {
  it('k epochs + snapshot + rebuild + resume = N epochs straight (dense net with batch norm, restoreBest, early stopping)', async () => {
    const x = tf.randomNormal([20, 3], 0, 1, 'float32', 7);
    const y = tf.tidy(() => tf.cast(tf.greater(tf.sum(x, 1), 0), 'int32'));
    const xVal = tf.randomNormal([12, 3], 0, 1, 'float32', 8);
    const yVal = tf.tidy(() => tf.cast(tf.greater(tf.sum(xVal, 1), 0), 'int32'));
    const options: Omit<FitOptions, 'hooks'> = {
      train: tensorData(x, y),
      validation: tensorData(xVal, yVal),
      lossFn: crossEntropyLoss,
      optimizer: { lr: 0.05, weightDecay: 1e-3 },
      batchSize: 3,
      epochs: 6,
      seed: 11,
      restoreBest: true,
      earlyStopping: { patience: 10 },
    };
    const reference = await straight(() => smallNet(5), options);
    for (const k of [1, 3, 5]) {
      const resumed = await interrupted(() => smallNet(5), options, k);
      expect(comparable(resumed.history), `k = ${k}`).toEqual(comparable(reference.history));
      expect(resumed.weights, `k = ${k}`).toEqual(reference.weights);
      expect(resumed.tensorsLeft, `k = ${k}`).toBe(0);
    }
    expect(reference.history.restoredBest).toBe(true);
    expect(reference.history.optimizerSteps).toBe(6 * 7);
    tf.dispose([x, y, xVal, yVal]);
  });

  it('the same on a tiny ResNet-18 classifier (conv batch norm, moving statistics), through bytes', async () => {
    const train = quadrantImages(16, 8, 1);
    const val = quadrantImages(8, 8, 2);
    const yTrain = tf.tensor1d(train.labels, 'int32');
    const yVal = tf.tensor1d(val.labels, 'int32');
    const build = () => createAngleClassifier({ depth: 18, inputShape: [8, 8, 1], smallInputStem: true, widthMultiplier: 0.0625, numClasses: 4, seed: 3 });
    const options: Omit<FitOptions, 'hooks'> = {
      train: tensorData(train.x, yTrain),
      validation: tensorData(val.x, yVal),
      lossFn: crossEntropyLoss,
      optimizer: { lr: 1e-2, weightDecay: 1e-5 },
      batchSize: 4,
      epochs: 3,
      seed: 2,
      validationMetrics: (logits, labels) => ({ accuracy: accuracy(Array.from(tf.argMax(logits, 1).dataSync()), Array.from(labels.dataSync())) }),
      monitor: { metric: 'accuracy' },
      restoreBest: true,
    };
    const reference = await straight(build, options);
    const resumed = await interrupted(build, options, 1);
    expect(comparable(resumed.history)).toEqual(comparable(reference.history));
    expect(resumed.weights).toEqual(reference.weights);
    expect(resumed.tensorsLeft).toBe(0);
    // weights + best weights + two Adam moments (trainable variables only) + a small header.
    const all = reference.weights.reduce((s, w) => s + w.length, 0);
    expect(resumed.bytes).toBeGreaterThan(4 * 2 * all);
    expect(resumed.bytes).toBeLessThan(4 * 4 * all + 4096);
    tf.dispose([train.x, val.x, yTrain, yVal]);
  });

  it('bytes keep NaN, Infinity and float32 values exactly; bad input and mismatched models are named', async () => {
    const state: FitResumeState = {
      epoch: 1,
      history: {
        epochs: [{ epoch: 1, trainLoss: 0.5, validation: { loss: NaN, score: -Infinity }, seconds: 0.1 }],
        bestEpoch: 1,
        bestValue: NaN,
        monitor: { metric: 'loss', mode: 'min', on: 'validation' },
        optimizerSteps: 4,
      },
      earlyStopping: { best: Infinity, epochsWithoutImprovement: 0 },
      weights: [new Float32Array([1.5, -2, 3e-7]), new Float32Array([])],
      optimizer: { step: 4, firstMoments: [new Float32Array([0.1])], secondMoments: [new Float32Array([Math.PI])] },
    };
    const bytes = fitStateToBytes(state);
    const back = fitStateFromBytes(bytes);
    expect(back.state).toEqual(state);
    expect(back.extra).toBeNull();
    // An unaligned copy still decodes.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(fitStateFromBytes(shifted.subarray(1)).state).toEqual(state);
    expect(() => fitStateFromBytes(new Uint8Array(4))).toThrow(/fitStateFromBytes: input is too short/);
    expect(() => fitStateFromBytes(bytes.subarray(0, bytes.length - 4))).toThrow(/runs past the end/);
    // A file cut short says by how much.
    expect(() => fitStateFromBytes(bytes.subarray(0, bytes.length - 6))).toThrow(`the bytes are cut short (${bytes.length - 6} of the ${bytes.length} bytes the header describes)`);

    const net = smallNet(1);
    const x = tf.zeros([4, 3]);
    const y = tf.tensor1d([0, 1, 0, 1], 'int32');
    const base: FitOptions = { train: tensorData(x, y), lossFn: crossEntropyLoss, optimizer: { lr: 0.1 }, batchSize: 2, epochs: 3 };
    const before = tf.memory().numTensors;
    const trainMonitor = { ...state, history: { ...state.history, monitor: { metric: 'loss', mode: 'min' as const, on: 'train' as const } } };
    await expect(fit(net, { ...base, resume: state })).rejects.toThrow(/resume was taken monitoring/);
    await expect(fit(net, { ...base, resume: trainMonitor })).rejects.toThrow(/options\.resume\.weights must hold 8 Float32Arrays/);
    await expect(fit(net, { ...base, resume: { ...trainMonitor, epoch: 4 } })).rejects.toThrow(/resume\.epoch must be an integer in 1\.\.3/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
    net.model.dispose();
  });
});
