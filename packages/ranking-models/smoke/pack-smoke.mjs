// Packed-tarball smoke test: run in an empty project where only @lab/ranking-models, its declared
// dependencies and @tensorflow/tfjs@4.22.0 are installed. Builds a tiny ResNet-18 angle
// classifier, trains it 2 epochs on toy data, saves and reloads it, and checks the results.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  AngleClassifier,
  accuracy,
  countTrainableParameters,
  createAngleClassifier,
  crossEntropyLoss,
  fit,
  loadModel,
  saveModel,
  tensorData,
} from '@lab/ranking-models';

await tf.setBackend('cpu');

// Toy data: class k has a bright quadrant k, over a little noise.
const n = 16;
const size = 8;
const labels = Array.from({ length: n }, (_, i) => i % 4);
const x = tf.tidy(() => {
  const noise = tf.randomUniform([n, size, size, 1], -0.1, 0.1, 'float32', 1);
  const masks = labels.map((k) => {
    const rows = tf.tensor1d(Array.from({ length: size }, (_, r) => ((r < size / 2 ? 0 : 2) <= k && k < (r < size / 2 ? 2 : 4) ? 1 : 0)));
    const cols = tf.tensor1d(Array.from({ length: size }, (_, c) => ((c < size / 2 ? 0 : 1) === k % 2 ? 1 : 0)));
    return tf.outerProduct(rows, cols).reshape([size, size, 1]);
  });
  return tf.add(tf.stack(masks), noise);
});
const y = tf.tensor1d(labels, 'int32');

const classifier = createAngleClassifier({ depth: 18, inputShape: [size, size, 1], widthMultiplier: 0.0625, smallInputStem: true, numClasses: 4, seed: 1 });
const before = tf.memory().numTensors;
const history = await fit(classifier, {
  train: tensorData(x, y),
  validation: tensorData(x, y),
  lossFn: crossEntropyLoss,
  optimizer: { lr: 1e-2, weightDecay: 1e-5, decoupled: true },
  batchSize: 8,
  epochs: 2,
  seed: 1,
});
if (history.epochs.length !== 2) throw new Error(`expected 2 epochs, got ${history.epochs.length}`);
for (const e of history.epochs) {
  if (!Number.isFinite(e.trainLoss) || !Number.isFinite(e.validation.loss)) throw new Error(`non-finite loss at epoch ${e.epoch}`);
}
if (tf.memory().numTensors !== before) throw new Error(`fit leaked ${tf.memory().numTensors - before} tensors`);

const dir = await mkdtemp(join(tmpdir(), 'ranking-models-smoke-'));
try {
  await saveModel(classifier, join(dir, 'model'));
  const loaded = new AngleClassifier(await loadModel(join(dir, 'model')));
  const a = classifier.predict(x).dataSync();
  const b = loaded.predict(x).dataSync();
  if (a.length !== n * 4 || a.some((v, i) => v !== b[i])) throw new Error('reloaded model predicts differently');
  const acc = accuracy(await loaded.predictClasses(x), labels);
  console.log(
    `pack-smoke ok: ${countTrainableParameters(classifier.model)} params, train loss ${history.epochs.map((e) => e.trainLoss.toFixed(3)).join(' -> ')}, ` +
      `best epoch ${history.bestEpoch}, accuracy ${acc.toFixed(2)}, save/load identical`,
  );
  loaded.dispose();
} finally {
  await rm(dir, { recursive: true, force: true });
}
