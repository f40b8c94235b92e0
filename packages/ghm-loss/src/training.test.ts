import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { GHMC, GHMR, GHMSoftmax, sigmoidBinaryCrossEntropy, softmaxCrossEntropy } from './index';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Three Gaussian blobs in 2-D (seeded): 3 classes, 60 samples. */
function blobs(): { x: tf.Tensor2D; labels: tf.Tensor1D } {
  return tf.tidy(() => {
    const centres = tf.tensor2d([[2, 0], [-1, 1.7], [-1, -1.7]]);
    const labels = tf.tensor1d(Array.from({ length: 60 }, (_, i) => i % 3), 'int32');
    const x = tf.add(tf.gather(centres, labels), tf.randomNormal([60, 2], 0, 0.6, 'float32', 42)) as tf.Tensor2D;
    return { x, labels };
  });
}

function accuracy(logits: tf.Tensor2D, labels: tf.Tensor1D): number {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')).dataSync()[0]);
}

describe('training with GHMSoftmax', () => {
  it('optimizer.minimize on a tiny linear classifier lowers the cross-entropy and fits the blobs', () => {
    const { x, labels } = blobs();
    const w = tf.variable(tf.randomNormal([2, 3], 0, 0.1, 'float32', 1));
    const b = tf.variable(tf.zeros([3]));
    const ghm = new GHMSoftmax();
    const optimizer = tf.train.adam(0.05);
    const logits = () => tf.add(tf.matMul(x, w), b) as tf.Tensor2D;
    const ceBefore = tf.tidy(() => softmaxCrossEntropy(logits(), labels).dataSync()[0]);
    optimizer.minimize(() => ghm.loss(logits(), labels));
    // After the first step (Adam slots and GHM state exist) a step must not leave tensors behind.
    const afterFirst = tf.memory().numTensors;
    for (let step = 1; step < 80; step++) {
      optimizer.minimize(() => ghm.loss(logits(), labels));
    }
    expect(tf.memory().numTensors).toBe(afterFirst);
    const ceAfter = tf.tidy(() => softmaxCrossEntropy(logits(), labels).dataSync()[0]);
    expect(ceAfter).toBeLessThan(ceBefore * 0.5);
    expect(tf.tidy(() => accuracy(logits(), labels))).toBeGreaterThan(0.9);
    expect(ghm.stats().calls).toBe(80);
    ghm.dispose();
    optimizer.dispose();
    tf.dispose([x, labels, w, b]);
  });

  for (const from of ['probs', 'logits'] as const) {
    it(`model.compile({ loss: ghm.asLayersLoss({ from: '${from}' }) }) and fit() train`, async () => {
      const { x, labels } = blobs();
      const yOneHot = tf.oneHot(labels, 3);
      const model = tfl.sequential({
        layers: [
          tfl.layers.dense({ inputShape: [2], units: 8, activation: 'tanh', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
          tfl.layers.dense({
            units: 3,
            activation: from === 'probs' ? 'softmax' : 'linear',
            kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
          }),
        ],
      });
      const ghm = new GHMSoftmax();
      model.compile({ optimizer: tf.train.adam(0.05), loss: ghm.asLayersLoss({ from }) });
      const history = await model.fit(x, yOneHot, { epochs: 25, batchSize: 20, shuffle: false, verbose: 0 });
      const losses = history.history.loss as number[];
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
      const out = model.predict(x) as tf.Tensor2D;
      expect(accuracy(out, labels)).toBeGreaterThan(0.9);
      expect(ghm.stats().calls).toBe(25 * 3);
      ghm.dispose();
      model.dispose();
      tf.dispose([x, labels, yOneHot, out]);
    });
  }

  it('the probs adapter equals loss() on the logits behind those probabilities', () => {
    tf.tidy(() => {
      const logits = tf.randomNormal([16, 6], 0, 2, 'float32', 3) as tf.Tensor2D;
      const labels = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 6), 'int32');
      const a = new GHMSoftmax();
      const b = new GHMSoftmax();
      const viaAdapter = a.asLayersLoss()(tf.oneHot(labels, 6), tf.softmax(logits)).dataSync()[0];
      const direct = b.loss(logits, labels).dataSync()[0];
      expect(viaAdapter).toBeCloseTo(direct, 4);
      expect(a.stats().counts).toEqual(b.stats().counts);
      // class ids as [N, 1] floats (sparse targets) work too
      const sparse = b.asLayersLoss({ from: 'logits', updateState: false })(tf.reshape(tf.cast(labels, 'float32'), [16, 1]), logits);
      expect(sparse.dataSync()[0]).toBeGreaterThan(0);
      a.dispose();
      b.dispose();
    });
  });
});

describe('training with GHMC and GHMR', () => {
  /** Two seeded 2-D blobs; the binary target is the blob (as a [60, 1] column). */
  function binaryBlobs(): { x: tf.Tensor2D; y: tf.Tensor2D } {
    return tf.tidy(() => {
      const side = tf.tensor2d(Array.from({ length: 60 }, (_, i) => [i % 2]), [60, 1]);
      const x = tf.add(tf.mul(tf.sub(side, 0.5), 3), tf.randomNormal([60, 2], 0, 0.7, 'float32', 21)) as tf.Tensor2D;
      return { x, y: side as tf.Tensor2D };
    });
  }

  it('GHMC: optimizer.minimize fits a logistic regression; the layers adapter trains a sigmoid model', async () => {
    const { x, y } = binaryBlobs();
    const w = tf.variable(tf.zeros([2, 1]));
    const b = tf.variable(tf.zeros([1]));
    const logits = () => tf.add(tf.matMul(x, w), b);
    const ghm = new GHMC({ momentum: 0.75 });
    const optimizer = tf.train.adam(0.1);
    const bceBefore = tf.tidy(() => sigmoidBinaryCrossEntropy(logits(), y).dataSync()[0]);
    for (let step = 0; step < 40; step++) optimizer.minimize(() => ghm.loss(logits(), y));
    const bceAfter = tf.tidy(() => sigmoidBinaryCrossEntropy(logits(), y).dataSync()[0]);
    expect(bceAfter).toBeLessThan(bceBefore * 0.5);
    expect(ghm.stats().calls).toBe(40);

    const model = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [2], units: 1, activation: 'sigmoid', kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) })],
    });
    const layersGhm = new GHMC();
    model.compile({ optimizer: tf.train.adam(0.1), loss: layersGhm.asLayersLoss() });
    const history = await model.fit(x, y, { epochs: 15, batchSize: 30, shuffle: false, verbose: 0 });
    const losses = history.history.loss as number[];
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    expect(layersGhm.stats().calls).toBe(15 * 2);
    // the probs adapter equals loss() on the logits behind those probabilities
    tf.tidy(() => {
      const z = tf.tensor2d([[-3], [0.2], [1.5], [4]]);
      const t = tf.tensor2d([[0], [1], [1], [0]]);
      const viaAdapter = new GHMC().asLayersLoss()(t, tf.sigmoid(z)).dataSync()[0];
      expect(viaAdapter).toBeCloseTo(new GHMC().loss(z, t).dataSync()[0], 5);
    });
    for (const d of [ghm, layersGhm, optimizer, model]) d.dispose();
    tf.dispose([x, y, w, b]);
  });

  it('GHMR: optimizer.minimize and the layers adapter fit a linear regression', async () => {
    const { x, target } = tf.tidy(() => {
      const inputs = tf.randomNormal([60, 2], 0, 1, 'float32', 31) as tf.Tensor2D;
      const clean = tf.add(tf.matMul(inputs, tf.tensor2d([[1.5], [-2]])), 0.5);
      return { x: inputs, target: tf.add(clean, tf.randomNormal([60, 1], 0, 0.05, 'float32', 32)) as tf.Tensor2D };
    });
    const w = tf.variable(tf.zeros([2, 1]));
    const b = tf.variable(tf.zeros([1]));
    const ghm = new GHMR({ momentum: 0.7 });
    const optimizer = tf.train.adam(0.1);
    const mse = () => tf.tidy(() => tf.mean(tf.square(tf.sub(tf.add(tf.matMul(x, w), b), target))).dataSync()[0]);
    const before = mse();
    for (let step = 0; step < 60; step++) optimizer.minimize(() => ghm.loss(tf.add(tf.matMul(x, w), b), target));
    expect(mse()).toBeLessThan(before * 0.1);

    const model = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [2], units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) })],
    });
    const layersGhm = new GHMR();
    model.compile({ optimizer: tf.train.adam(0.1), loss: layersGhm.asLayersLoss() });
    const history = await model.fit(x, target, { epochs: 20, batchSize: 30, shuffle: false, verbose: 0 });
    const losses = history.history.loss as number[];
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    expect(layersGhm.stats().calls).toBe(20 * 2);
    for (const d of [ghm, layersGhm, optimizer, model]) d.dispose();
    tf.dispose([x, target, w, b]);
  });
});
