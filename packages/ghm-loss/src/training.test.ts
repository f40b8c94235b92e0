import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { GHMSoftmax, softmaxCrossEntropy } from './index';

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
