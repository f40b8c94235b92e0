import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradients
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate, fit, type FitOptions, type LossContext, type LossFn } from './fit';
import { crossEntropyLoss } from './pair-losses';
import { asTrainable } from './trainable-model';
import { tensorData } from './training-data';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A small dense net with batch norm: fast, yet exercises every path of the loop. */
function smallNet(seed: number) {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [3], units: 6, kernelInitializer: tfl.initializers.glorotUniform({ seed }) }),
      tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 }),
      tfl.layers.activation({ activation: 'relu' }),
      tfl.layers.dense({ units: 2, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
  return asTrainable(model);
}

function toyData(seed: number, n = 20) {
  const x = tf.randomNormal([n, 3], 0, 1, 'float32', seed);
  const y = tf.tidy(() => tf.cast(tf.greater(tf.sum(x, 1), 0), 'int32'));
  return { x, y, data: tensorData(x, y) };
}

function movingStats(net: ReturnType<typeof smallNet>): number[] {
  return net.model.layers[1].getWeights().slice(2).flatMap((w) => Array.from(w.dataSync()));
}

describe('fit loop (small dense net)', () => {
  it('calls hooks with epoch, batch, variables, batch tensors and gradients; lossOn leaves BN statistics alone', async () => {
    const net = smallNet(1);
    const { x, y, data } = toyData(1);
    const events: string[] = [];
    let probeChecked = false;
    await fit(net, {
      train: data,
      lossFn: crossEntropyLoss,
      optimizer: { lr: 0.01 },
      batchSize: 8,
      epochs: 2,
      shuffle: false,
      hooks: {
        beforeEpoch: ({ epoch }) => void events.push(`before-epoch ${epoch}`),
        beforeBatch: (ctx) => {
          events.push(`before-batch ${ctx.epoch}.${ctx.batchIndex} [${ctx.indices.join(',')}]`);
          expect(ctx.batchesPerEpoch).toBe(3);
          expect((ctx.input as tf.Tensor).shape).toEqual([ctx.indices.length, 3]);
          expect(ctx.target.shape).toEqual([ctx.indices.length]);
          if (!probeChecked) {
            // A gradient probe: gradients of the batch loss in training mode, moving statistics untouched.
            const stats = movingStats(net);
            const { value, grads } = tf.variableGrads(() => ctx.lossOn(ctx.input, ctx.target), ctx.variables);
            expect(Object.keys(grads)).toHaveLength(ctx.variables.length);
            expect(movingStats(net)).toEqual(stats);
            tf.dispose([value, grads]);
            probeChecked = true;
          }
        },
        afterBatch: (ctx) => {
          expect(ctx.gradients.map((g) => g.shape)).toEqual(ctx.variables.map((v) => v.shape));
          expect(Number.isFinite(ctx.loss)).toBe(true);
        },
        afterEpoch: ({ epoch, record }) => void events.push(`after-epoch ${epoch} ${record.epoch}`),
      },
    });
    expect(events).toEqual([
      'before-epoch 1',
      'before-batch 1.0 [0,1,2,3,4,5,6,7]',
      'before-batch 1.1 [8,9,10,11,12,13,14,15]',
      'before-batch 1.2 [16,17,18,19]',
      'after-epoch 1 1',
      'before-epoch 2',
      'before-batch 2.0 [0,1,2,3,4,5,6,7]',
      'before-batch 2.1 [8,9,10,11,12,13,14,15]',
      'before-batch 2.2 [16,17,18,19]',
      'after-epoch 2 2',
    ]);
    expect(probeChecked).toBe(true);
    tf.dispose([x, y]);
    net.model.dispose();
  });

  it('the training step updates batch-norm moving statistics; validation does not', async () => {
    const net = smallNet(2);
    const { x, y, data } = toyData(2);
    const initial = movingStats(net);
    let afterTraining: number[] = [];
    await fit(net, {
      train: data,
      validation: data,
      lossFn: crossEntropyLoss,
      optimizer: { lr: 0.01 },
      batchSize: 20,
      epochs: 1,
      hooks: { afterBatch: () => void (afterTraining = movingStats(net)) },
    });
    expect(afterTraining).not.toEqual(initial);
    expect(movingStats(net)).toEqual(afterTraining);
    tf.dispose([x, y]);
    net.model.dispose();
  });

  it('same seed ⇒ same history; another shuffle seed ⇒ another one', async () => {
    const run = async (shuffleSeed: number) => {
      const net = smallNet(3);
      const { x, y, data } = toyData(3);
      const history = await fit(net, { train: data, lossFn: crossEntropyLoss, optimizer: { lr: 0.05, weightDecay: 1e-3 }, batchSize: 4, epochs: 3, seed: shuffleSeed });
      tf.dispose([x, y]);
      net.model.dispose();
      return history.epochs.map((e) => e.trainLoss);
    };
    const a = await run(1);
    expect(await run(1)).toEqual(a);
    expect(await run(2)).not.toEqual(a);
  });

  it('picks the best epoch, stops early after `patience` epochs without improvement and restores the best weights', async () => {
    const net = smallNet(4);
    const { x, y, data } = toyData(4);
    const scripted = [0.5, 0.9, 0.7, 0.6, 0.95, 0.99];
    let evaluation = 0;
    let weightsAtEpoch2: number[][] = [];
    const options: FitOptions = {
      train: data,
      validation: data,
      lossFn: crossEntropyLoss,
      optimizer: { lr: 0.05 },
      batchSize: 5,
      epochs: 6,
      validationMetrics: () => ({ score: scripted[evaluation++] }),
      monitor: { metric: 'score' },
      earlyStopping: { patience: 2 },
      restoreBest: true,
      hooks: {
        afterEpoch: ({ epoch }) => {
          if (epoch === 2) weightsAtEpoch2 = net.model.getWeights().map((w) => Array.from(w.dataSync()));
        },
      },
    };
    const before = tf.memory().numTensors;
    const history = await fit(net, options);
    expect(tf.memory().numTensors).toBe(before);
    // 0.5, 0.9 (best), 0.7, 0.6 → two epochs without improvement → stop after epoch 4.
    expect(history.epochs.map((e) => e.validation!.score)).toEqual([0.5, 0.9, 0.7, 0.6]);
    expect(history.monitor).toEqual({ metric: 'score', mode: 'max', on: 'validation' });
    expect(history.bestEpoch).toBe(2);
    expect(history.bestValue).toBe(0.9);
    expect(history.stoppedEarly).toBe(true);
    expect(history.restoredBest).toBe(true);
    // Every weight, batch-norm moving statistics included, is back at its epoch-2 value.
    expect(net.model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(weightsAtEpoch2);
    expect(history.epochs[0].validation!.loss).toBeGreaterThan(0);
    tf.dispose([x, y]);
    net.model.dispose();
  });

  it('works with any loss function of (output, target) and stops on request', async () => {
    const net = smallNet(5);
    const { x, y, data } = toyData(5);
    // A squared error on one-hot targets stands in for any plug-in loss (focal, GHM …).
    const squaredError = (logits: tf.Tensor, labels: tf.Tensor) =>
      tf.tidy(() => tf.mean(tf.square(tf.sub(tf.softmax(logits), tf.oneHot(tf.cast(labels, 'int32'), 2)))) as tf.Scalar);
    const history = await fit(net, {
      train: data,
      lossFn: squaredError,
      optimizer: { lr: 0.05 },
      batchSize: 10,
      epochs: 5,
      hooks: {
        afterEpoch: ({ epoch, requestStop }) => {
          if (epoch === 2) requestStop();
        },
      },
    });
    expect(history.epochs).toHaveLength(2);
    expect(history.stoppedEarly).toBe(false);
    tf.dispose([x, y]);
    net.model.dispose();
  });

  it('rejects bad options with messages naming the field', async () => {
    const net = smallNet(6);
    const { x, y, data } = toyData(6);
    const base = { train: data, lossFn: crossEntropyLoss, optimizer: { lr: 0.01 }, batchSize: 4, epochs: 1 };
    await expect(fit(net, { ...base, batchSize: 0 })).rejects.toThrow(/batchSize/);
    await expect(fit(net, { ...base, monitor: { metric: 'accuracy' } })).rejects.toThrow(/validation/);
    await expect(fit(net, { ...base, validation: data, monitor: { metric: 'accuracy' } })).rejects.toThrow(/accuracy/);
    tf.dispose([x, y]);
    net.model.dispose();
  });
});

/**
 * A stand-in for a stateful loss such as GHMSoftmax: cross-entropy plus a counter of state updates.
 * Like GHM's `updateState` (default true), a call without a context counts as an update, which is
 * how a loss written for the two-argument interface would behave.
 */
function countingLoss() {
  const calls: string[] = [];
  let updates = 0;
  const lossFn: LossFn = (output, target, ctx?: LossContext) => {
    calls.push(ctx?.phase ?? 'none');
    if (ctx?.training ?? true) updates++;
    return crossEntropyLoss(output, target);
  };
  return { lossFn, calls, updates: () => updates };
}

describe('fit: loss context', () => {
  it('a stateful loss moves only on training steps, not on validation or gradient probes', async () => {
    const net = smallNet(7);
    const { x, y, data } = toyData(7);
    const loss = countingLoss();
    let probes = 0;
    const history = await fit(net, {
      train: data,
      validation: data,
      lossFn: loss.lossFn,
      optimizer: { lr: 0.01 },
      batchSize: 8,
      epochs: 2,
      hooks: {
        beforeBatch: (ctx) => {
          // Probes in both batch-norm modes: neither may update the loss state.
          for (const training of [true, false]) {
            const { value, grads } = tf.variableGrads(() => ctx.lossOn(ctx.input, ctx.target, { training }), ctx.variables);
            tf.dispose([value, grads]);
            probes++;
          }
        },
      },
    });
    // 20 items in batches of 8: 3 steps and 3 validation batches per epoch.
    expect(history.optimizerSteps).toBe(6);
    expect(loss.updates()).toBe(6);
    const count = (phase: string) => loss.calls.filter((c) => c === phase).length;
    expect(count('train')).toBe(6);
    expect(count('validation')).toBe(6);
    expect(count('probe')).toBe(probes);
    expect(probes).toBe(12);
    expect(count('none')).toBe(0);
    tf.dispose([x, y]);
    net.model.dispose();
  });

  it('evaluate calls the loss with { training: false, phase: "validation" }', async () => {
    const net = smallNet(8);
    const { x, y, data } = toyData(8);
    const contexts: LossContext[] = [];
    const result = await evaluate(net, data, {
      lossFn: (output, target, ctx) => {
        contexts.push({ ...ctx });
        return crossEntropyLoss(output, target);
      },
      batchSize: 8,
    });
    expect(result.loss).toBeGreaterThan(0);
    expect(contexts).toEqual(Array.from({ length: 3 }, () => ({ training: false, phase: 'validation' })));
    tf.dispose([x, y]);
    net.model.dispose();
  });

  it('evaluate forwards many mini-batches at once yet takes the loss per mini-batch, as one forward per mini-batch does', async () => {
    const net = smallNet(10);
    const { x, y, data } = toyData(10, 150);
    // A loss that depends on which rows share its batch (as GHM's does): the batch's largest output scales it.
    const batchDependent: LossFn = (output, target) => tf.div(crossEntropyLoss(output, target), tf.add(tf.max(tf.abs(output)), 1));
    const result = await evaluate(net, data, { lossFn: batchDependent, batchSize: 3, metrics: (output) => ({ rows: output.shape[0] }) });
    // The reference: each mini-batch of 3 on its own (50 of them, 21 per pass above: passes of 21, 21 and 8).
    let sum = 0;
    for (let start = 0; start < 150; start += 3) {
      const batch = data.batch([start, start + 1, start + 2]);
      sum += tf.tidy(() => batchDependent(net.forward(batch.input as tf.Tensor, { training: false }), batch.target, { training: false, phase: 'validation' }).dataSync()[0]) * 3;
      tf.dispose([batch.input as tf.Tensor, batch.target]);
    }
    expect(result.loss).toBeCloseTo(sum / 150, 6);
    expect(result.rows).toBe(150);
    tf.dispose([x, y]);
    net.model.dispose();
  });

  it('validationLossFn replaces lossFn for validation', async () => {
    const net = smallNet(9);
    const { x, y, data } = toyData(9);
    const loss = countingLoss();
    const history = await fit(net, {
      train: data,
      validation: data,
      lossFn: loss.lossFn,
      validationLossFn: () => tf.scalar(7),
      optimizer: { lr: 0.01 },
      batchSize: 10,
      epochs: 2,
    });
    expect(history.epochs.map((e) => e.validation!.loss)).toEqual([7, 7]);
    expect(loss.calls).toEqual(['train', 'train', 'train', 'train']);
    tf.dispose([x, y]);
    net.model.dispose();
  });
});

describe('fit: best epoch on ties', () => {
  // Scripted per-epoch validation values: validation is one batch (5 items ≤ batchSize), so the
  // validation loss function and the metrics function are each called once per epoch.
  async function runScripted(scores: number[], losses: number[], monitor: FitOptions['monitor']) {
    const net = smallNet(10);
    const { x, y, data } = toyData(10);
    const { x: xVal, y: yVal, data: validation } = toyData(11, 5);
    let lossCall = 0;
    let metricCall = 0;
    const weightsByEpoch: number[][][] = [];
    const history = await fit(net, {
      train: data,
      validation,
      lossFn: crossEntropyLoss,
      validationLossFn: () => tf.scalar(losses[lossCall++]),
      validationMetrics: () => ({ accuracy: scores[metricCall++] }),
      monitor,
      optimizer: { lr: 0.05 },
      batchSize: 20,
      epochs: scores.length,
      restoreBest: true,
      hooks: { afterEpoch: () => void weightsByEpoch.push(net.model.getWeights().map((w) => Array.from(w.dataSync()))) },
    });
    const restored = net.model.getWeights().map((w) => Array.from(w.dataSync()));
    tf.dispose([x, y, xVal, yVal]);
    net.model.dispose();
    return { history, restored, weightsByEpoch };
  }

  it('equal accuracy: the lower validation loss wins, then the earlier epoch; those weights are restored', async () => {
    // Epochs 2, 3, 4 tie at 0.8; 3 and 4 also tie on loss (0.7 < 0.9) → epoch 3.
    // Epoch 5 has the lowest loss but a lower accuracy, so it does not count.
    const { history, restored, weightsByEpoch } = await runScripted([0.5, 0.8, 0.8, 0.8, 0.6], [1.0, 0.9, 0.7, 0.7, 0.1], { metric: 'accuracy' });
    expect(history.bestEpoch).toBe(3);
    expect(history.bestValue).toBe(0.8);
    expect(restored).toEqual(weightsByEpoch[2]);
    expect(restored).not.toEqual(weightsByEpoch[1]);
  });

  it('a tie with a higher validation loss keeps the earlier epoch; min mode ties likewise', async () => {
    const max = await runScripted([0.8, 0.8, 0.7], [0.5, 0.6, 0.1], { metric: 'accuracy' });
    expect(max.history.bestEpoch).toBe(1);
    // Monitoring an error rate (min): epochs 2 and 3 tie at 0.2, epoch 3 has the lower loss.
    const min = await runScripted([0.3, 0.2, 0.2], [0.5, 0.6, 0.4], { metric: 'accuracy', mode: 'min' });
    expect(min.history.bestEpoch).toBe(3);
    // Monitoring the loss itself: an exact tie keeps the earlier epoch.
    const loss = await runScripted([0.1, 0.2, 0.3], [0.5, 0.4, 0.4], { metric: 'loss' });
    expect(loss.history.bestEpoch).toBe(2);
  });
});
