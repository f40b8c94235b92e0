import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradients
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAngleClassifier } from './angle-classifier';
import { createAngleRanker } from './angle-ranker';
import { fit } from './fit';
import { accuracy, kendallTau } from './metrics';
import { randomPairs } from './pair-samplers';
import { crossEntropyLoss, marginRankingLoss, pairScoresLoss } from './pair-losses';
import { pairData, tensorData } from './training-data';
import { barImages, quadrantImages } from './toy-data.test-util';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Tiny settings: the cpu backend's Conv2DBackpropFilter is very slow, so inputs are 8×8 and
// widths 1/16 or 1/32 of ResNet-18's; the layout (stem, 4 stages of BasicBlocks, BN) is the real one.
// Training budgets were chosen so that the thresholds also hold for neighbouring model seeds
// (classifier seeds 3–5: best accuracy ≥ 0.94; ranker seeds 4–6: τ ≥ 0.91), not just for the one used.
const tiny = { depth: 18 as const, inputShape: [8, 8, 1] as [number, number, number], smallInputStem: true };

describe('fit', () => {
  it('a tiny ResNet-18 classifier learns a separable toy problem to > 90 % without leaking tensors', async () => {
    const train = quadrantImages(32, 8, 1);
    const val = quadrantImages(32, 8, 2);
    const yTrain = tf.tensor1d(train.labels, 'int32');
    const yVal = tf.tensor1d(val.labels, 'int32');
    const classifier = createAngleClassifier({ ...tiny, widthMultiplier: 0.0625, numClasses: 4, seed: 3 });
    const bnMeanBefore = Array.from(classifier.model.getLayer('bn1').getWeights()[2].dataSync());
    const tensorsAtEpochEnd: number[] = [];
    const before = tf.memory().numTensors;
    const history = await fit(classifier, {
      train: tensorData(train.x, yTrain),
      validation: tensorData(val.x, yVal),
      lossFn: crossEntropyLoss,
      optimizer: { lr: 1e-2, weightDecay: 1e-5 },
      batchSize: 8,
      epochs: 3,
      seed: 1,
      validationMetrics: (logits, labels) => ({
        accuracy: accuracy(Array.from(tf.argMax(logits, 1).dataSync()), Array.from(labels.dataSync())),
      }),
      monitor: { metric: 'accuracy' },
      hooks: { afterEpoch: () => void tensorsAtEpochEnd.push(tf.memory().numTensors) },
    });
    // No tensor is left behind by an epoch, nor by fit as a whole.
    expect(new Set(tensorsAtEpochEnd).size).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    const best = history.epochs[history.bestEpoch - 1].validation!.accuracy;
    expect(best).toBeGreaterThan(0.9);
    expect(history.epochs[history.epochs.length - 1].trainLoss).toBeLessThan(history.epochs[0].trainLoss);
    expect(history.optimizerSteps).toBe(3 * 4);
    // Batch norm ran in training mode: its moving mean moved away from its initial zeros.
    const bnMeanAfter = Array.from(classifier.model.getLayer('bn1').getWeights()[2].dataSync());
    expect(bnMeanAfter).not.toEqual(bnMeanBefore);
    // Inference mode: a sample's prediction does not depend on the rest of the batch.
    const batchLogits = classifier.predict(val.x);
    const oneLogits = classifier.predict(tf.slice(val.x, [3, 0, 0, 0], [1, 8, 8, 1]));
    expect(Array.from(oneLogits.dataSync())).toEqual(Array.from(batchLogits.dataSync()).slice(12, 16).map((v) => expect.closeTo(v, 5)));
    tf.dispose([train.x, val.x, yTrain, yVal, batchLogits, oneLogits]);
    classifier.dispose();
  });

  it('a tiny ranker trained on pairs with margin ranking loss orders clips by angle (Kendall τ > 0.8)', async () => {
    const train = barImages(24, 8, 5);
    const test = barImages(24, 8, 6);
    const ranker = createAngleRanker({ ...tiny, widthMultiplier: 0.03125, seed: 4 });
    const pairs = randomPairs(train.angles, 48, 7);
    const history = await fit(ranker, {
      train: pairData(train.x, pairs),
      lossFn: pairScoresLoss((s1, s2, y) => marginRankingLoss(s1, s2, y, 1)),
      optimizer: { lr: 1e-2, weightDecay: 1e-5 },
      batchSize: 8,
      epochs: 4,
      seed: 2,
    });
    expect(history.monitor.on).toBe('train');
    const scores = ranker.predict(test.x);
    const tau = kendallTau(Array.from(scores.dataSync()), test.angles);
    expect(tau).toBeGreaterThan(0.8);
    tf.dispose([train.x, test.x, scores]);
    ranker.dispose();
  });
});
