// Runs in an empty project where only the packed @lab/ghm-loss, its dependencies and
// @tensorflow/tfjs@4.22.0 are installed: trains a tiny classifier with GHMSoftmax and checks that
// the cross-entropy falls, then does the same through model.compile/fit.
import * as tf from '@tensorflow/tfjs';
import { GHMSoftmax, softmaxCrossEntropy } from '@lab/ghm-loss';

await tf.setBackend('cpu');

// Three seeded Gaussian blobs in 2-D, 60 samples.
const labels = tf.tensor1d(Array.from({ length: 60 }, (_, i) => i % 3), 'int32');
const centres = tf.tensor2d([[2, 0], [-1, 1.7], [-1, -1.7]]);
const x = tf.add(tf.gather(centres, labels), tf.randomNormal([60, 2], 0, 0.6, 'float32', 7));

// 1. optimizer.minimize with a linear model.
const w = tf.variable(tf.randomNormal([2, 3], 0, 0.1, 'float32', 1));
const b = tf.variable(tf.zeros([3]));
const logits = () => tf.add(tf.matMul(x, w), b);
const ghm = new GHMSoftmax({ bins: 10, momentum: 0.75 });
const optimizer = tf.train.adam(0.05);
const before = tf.tidy(() => softmaxCrossEntropy(logits(), labels).dataSync()[0]);
for (let step = 0; step < 60; step++) optimizer.minimize(() => ghm.loss(logits(), labels));
const after = tf.tidy(() => softmaxCrossEntropy(logits(), labels).dataSync()[0]);
if (!(after < 0.5 * before)) throw new Error(`pack-smoke: cross-entropy did not fall enough (${before} -> ${after})`);
const stats = ghm.stats();
if (stats.calls !== 60 || stats.counts.reduce((s, c) => s + c, 0) !== 60 || JSON.stringify(stats).length < 10) {
  throw new Error(`pack-smoke: unexpected stats ${JSON.stringify(stats)}`);
}

// 2. tfjs-layers: a softmax output layer, so the adapter takes probabilities.
const model = tf.sequential({
  layers: [
    tf.layers.dense({ inputShape: [2], units: 8, activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  ],
});
const layersGhm = new GHMSoftmax();
model.compile({ optimizer: tf.train.adam(0.05), loss: layersGhm.asLayersLoss({ from: 'probs' }) });
const history = await model.fit(x, tf.oneHot(labels, 3), { epochs: 20, batchSize: 20, shuffle: false, verbose: 0 });
const losses = history.history.loss;
if (!(losses[losses.length - 1] < 0.5 * losses[0])) throw new Error(`pack-smoke: fit() loss did not fall (${losses})`);

console.log(
  `pack-smoke ok: GHMSoftmax minimize CE ${before.toFixed(3)} -> ${after.toFixed(3)}, ` +
    `fit loss ${losses[0].toFixed(3)} -> ${losses[losses.length - 1].toFixed(3)}, non-empty bins ${stats.nonEmptyBins}`,
);
