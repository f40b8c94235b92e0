// Cost of the gradient probes relative to training, on the same small conv model and data
// (54 samples of [32, 32, 1], 6 classes, batch 4 = 14 batches, as in the seed-001 experiment):
//   (1) probing one epoch: batchGradients over every batch + cosine matrix + t-SNE, vs one training epoch;
//   (2) per-sample gradient noise scale at batch 4 (4 backward passes of one sample + the estimator
//       with its 1000-replicate bootstrap) for every batch, vs one training epoch.
// Targets (issue 5): (1) ≤ 2×, (2) ≤ 3×.
// Run: node_modules/.bin/tsx bench/grad-probe.bench.ts [backend=cpu] [rounds=3]
// (plain tfjs-backend-wasm has no conv backprop kernels, so it cannot train this model.)
// The three variants run alternately (A, B, C, A, B, C, ...) and medians are reported, so that load
// from other processes on a shared machine hits all of them alike.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers'; // also registers the gradients
import { batchGradients, cosineSimilarityMatrix, gradientNoiseScale, perSampleGradients, tsneEmbedding } from '@lab/grad-probe';

const backendName = process.argv[2] ?? 'cpu';
const rounds = Number(process.argv[3] ?? 3);
await tf.setBackend(backendName);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function alternate(variants: Record<string, () => Promise<void>>, n: number): Promise<Record<string, number>> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let r = -1; r < n; r++) {
    for (const [name, f] of Object.entries(variants)) {
      const t0 = performance.now();
      await f();
      const dt = performance.now() - t0;
      if (r >= 0) times[name].push(dt);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

const model = tfl.sequential({
  layers: [
    tfl.layers.conv2d({ inputShape: [32, 32, 1], filters: 8, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.heNormal({ seed: 1 }) }),
    tfl.layers.maxPooling2d({ poolSize: 2 }),
    tfl.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.heNormal({ seed: 2 }) }),
    tfl.layers.maxPooling2d({ poolSize: 2 }),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 6, kernelInitializer: tfl.initializers.glorotNormal({ seed: 3 }) }),
  ],
});
const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
const parameterCount = variables.reduce((s, v) => s + v.size, 0);

const nSamples = 54;
const batchSize = 4;
const xs = tf.randomNormal([nSamples, 32, 32, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
const labels = Array.from({ length: nSamples }, (_, i) => i % 6);
const ys = tf.oneHot(tf.tensor1d(labels, 'int32'), 6) as tf.Tensor2D;
const batches = Array.from({ length: Math.ceil(nSamples / batchSize) }, (_, b) => {
  const start = b * batchSize;
  const size = Math.min(batchSize, nSamples - start);
  return { x: tf.slice(xs, [start, 0, 0, 0], [size, 32, 32, 1]), y: tf.slice(ys, [start, 0], [size, 6]) };
});
const samples = Array.from({ length: nSamples }, (_, i) => ({ x: tf.slice(xs, [i, 0, 0, 0], [1, 32, 32, 1]), y: tf.slice(ys, [i, 0], [1, 6]) }));
const loss = ({ x, y }: { x: tf.Tensor; y: tf.Tensor }) =>
  tf.tidy(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
const optimizer = tf.train.adam(1e-3);

const trainEpoch = async () => {
  for (const batch of batches) {
    const value = optimizer.minimize(() => loss(batch), true) as tf.Scalar;
    // A training loop logs its loss: reading it back is part of the step.
    await value.data();
    value.dispose();
  }
};
let lastTrust = 0;
const probeEpoch = async () => {
  const set = await batchGradients(variables, batches, loss);
  cosineSimilarityMatrix(set.gradients);
  lastTrust = tsneEmbedding(set.gradients, { seed: 1, iterations: 1000 }).trustworthiness;
};
let lastB: number | null = 0;
const perSampleGnsEpoch = async () => {
  for (let b = 0; b < batches.length; b++) {
    const group = samples.slice(b * batchSize, (b + 1) * batchSize);
    if (group.length < 2) continue;
    const set = await perSampleGradients(variables, group, loss);
    lastB = gradientNoiseScale(set.gradients, { bootstrap: 1000, seed: b }).bSimple;
  }
};

const tensorsBefore = tf.memory().numTensors;
const t = await alternate({ train: trainEpoch, probe: probeEpoch, perSampleGns: perSampleGnsEpoch }, rounds);
const probeRatio = t.probe / t.train;
const gnsRatio = t.perSampleGns / t.train;
console.log(`grad-probe bench: backend ${tf.getBackend()}, conv model ${parameterCount} parameters, ${nSamples} samples, batch ${batchSize} (${batches.length} batches), median of ${rounds} alternating rounds`);
console.log(`  training epoch                             ${t.train.toFixed(1)} ms`);
console.log(`  probe epoch (batch grads + cosine + t-SNE) ${t.probe.toFixed(1)} ms   ratio ${probeRatio.toFixed(2)}×  (target ≤ 2×) ${probeRatio <= 2 ? 'OK' : 'OVER'}`);
console.log(`  per-sample GNS at batch 4, whole epoch     ${t.perSampleGns.toFixed(1)} ms   ratio ${gnsRatio.toFixed(2)}×  (target ≤ 3×) ${gnsRatio <= 3 ? 'OK' : 'OVER'}`);
console.log(`  (last t-SNE trustworthiness ${lastTrust.toFixed(3)}, last B_simple ${lastB === null ? 'undefined (|G|² ≤ 0)' : lastB.toFixed(2)}; tensors leaked: ${tf.memory().numTensors - tensorsBefore - optimizerSlots()})`);

function optimizerSlots(): number {
  // Adam creates two moment variables per trainable variable on its first step (its
  // accumulated-power scalars already exist when it is constructed): state, not leaks.
  return 2 * variables.length;
}
