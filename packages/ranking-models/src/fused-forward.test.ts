import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradients
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it, vi } from 'vitest';
import { removeFastTraining } from '@lab/tfjs-train';
import { createAngleClassifier } from './angle-classifier';
import { createAngleRanker } from './angle-ranker';
import { fit, withFrozenBatchNormStatistics } from './fit';
import { applyModel, fusedUnitCount, hasFusedConvBatchNorm } from './fused-forward';
import { fusedKernelsForTests, relativeDiff } from './fused-kernels.test-util';
import { marginRankingLoss, pairScoresLoss } from './pair-losses';
import { randomPairs } from './pair-samplers';
import { PyTorchBatchNorm } from './pytorch-batch-norm';
import { allVariablesOf, trainableVariablesOf } from './trainable-model';
import { pairData } from './training-data';
import { barImages } from './toy-data.test-util';
import { createRandom } from './seeded-random';

const CONV_BATCH_NORM = 'LabConvBatchNorm';
const CONV_BATCH_NORM_GRAD = 'LabConvBatchNormGrad';
const { requireFused, install } = fusedKernelsForTests('fused-test');

const STEMS = [
  { name: 'small-input stem (3x3/1, no max-pool)', smallInputStem: true, widthMultiplier: 0.125 },
  { name: 'ImageNet stem (zero-padding + 7x7/2, max-pool)', smallInputStem: false, widthMultiplier: 0.0625 },
];

function classifier(smallInputStem: boolean, widthMultiplier: number) {
  return createAngleClassifier({ depth: 18, inputShape: [16, 16, 1], numClasses: 3, widthMultiplier, seed: 1, smallInputStem });
}

function randomBatch(batch: number, seed: number): { x: tf.Tensor4D; labels: tf.Tensor2D } {
  const random = createRandom(seed);
  const x = tf.tensor4d(Float32Array.from({ length: batch * 16 * 16 }, () => random() * 2 - 1), [batch, 16, 16, 1]);
  const labels = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 3), 'int32'), 3), 'float32') as tf.Tensor2D);
  return { x, labels };
}


function batchNormLayers(model: tfl.LayersModel): PyTorchBatchNorm[] {
  return model.layers.filter((l) => l instanceof PyTorchBatchNorm) as PyTorchBatchNorm[];
}

/** [movingMean, movingVariance] values of every PyTorchBatchNorm layer, by layer name. */
function movingStatistics(model: tfl.LayersModel): Map<string, [Float32Array, Float32Array]> {
  const out = new Map<string, [Float32Array, Float32Array]>();
  for (const layer of batchNormLayers(model)) {
    const weights = layer.getWeights();
    // gamma, beta, movingMean, movingVariance
    out.set(layer.name, [weights[2].dataSync() as Float32Array, weights[3].dataSync() as Float32Array]);
  }
  return out;
}

/** Counts calls of the fused kernels by wrapping the registered ones; returns the restore function. */
function countFusedCalls(): { counts: { forward: number; grad: number }; restore: () => void } {
  const backendName = tf.getBackend();
  const counts = { forward: 0, grad: 0 };
  const originals = [CONV_BATCH_NORM, CONV_BATCH_NORM_GRAD].map((name) => tf.getKernel(name, backendName)!);
  for (const config of originals) {
    tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel({
      ...config,
      kernelFunc: (args) => {
        if (config.kernelName === CONV_BATCH_NORM) counts.forward++;
        else counts.grad++;
        return config.kernelFunc(args);
      },
    });
  }
  return {
    counts,
    restore: () => {
      for (const config of originals) {
        tf.unregisterKernel(config.kernelName, backendName);
        tf.registerKernel(config);
      }
    },
  };
}

/** Logits and loss gradients of a fresh copy in training mode, by model.apply on the cpu backend. */
async function cpuReference(smallInputStem: boolean, widthMultiplier: number, x: tf.Tensor, labels: tf.Tensor) {
  await tf.setBackend('cpu');
  try {
    const model = classifier(smallInputStem, widthMultiplier).model;
    const variables = trainableVariablesOf(model);
    const [xc, lc] = [tf.tensor(x.dataSync(), x.shape), tf.tensor(labels.dataSync(), labels.shape)];
    const logits = tf.tidy(() => (model.apply(xc, { training: true }) as tf.Tensor).dataSync());
    const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(lc, model.apply(xc, { training: true }) as tf.Tensor) as tf.Scalar, variables);
    const result = { logits, grads: variables.map((v) => grads[v.name].dataSync()) };
    tf.dispose([xc, lc, value, ...Object.values(grads)]);
    model.dispose();
    return result;
  } finally {
    await tf.setBackend('wasm');
  }
}

describe('fused conv + batch norm forward of a ResNet-18', () => {
  it('fuses every conv of ResNet-18 (17 3x3/7x7 + 3 downsample), both stems', (ctx) => {
    requireFused(ctx);
    for (const stem of STEMS) {
      const model = classifier(stem.smallInputStem, stem.widthMultiplier).model;
      const convs = model.layers.filter((l) => l.getClassName() === 'Conv2D');
      expect(convs.length, stem.name).toBe(20);
      expect(fusedUnitCount(model), stem.name).toBe(20);
      const pads = model.layers.filter((l) => l.getClassName() === 'ZeroPadding2D');
      // ImageNet stem: conv1.pad, maxpool.pad and the three stride-2 3x3 convs' pads.
      expect(pads.length, stem.name).toBe(stem.smallInputStem ? 3 : 5);
      model.dispose();
    }
  });

  for (const stem of STEMS) {
    it(`training mode equals model.apply on a copy: outputs, gradients, moving statistics (${stem.name})`, async (ctx) => {
      requireFused(ctx);
      const tensorsBefore = tf.memory().numTensors;
      const { x, labels } = randomBatch(8, 11);
      // An independent reference: the unfused model on the cpu backend's stock kernels.
      const cpu = await cpuReference(stem.smallInputStem, stem.widthMultiplier, x, labels);
      const fused = classifier(stem.smallInputStem, stem.widthMultiplier).model;
      const plain = classifier(stem.smallInputStem, stem.widthMultiplier).model;
      const fusedVars = trainableVariablesOf(fused);
      const plainVars = trainableVariablesOf(plain);
      allVariablesOf(fused).forEach((v, i) => expect(Array.from(v.dataSync()), `same initial ${v.name}`).toEqual(Array.from(allVariablesOf(plain)[i].dataSync())));
      const { counts, restore } = countFusedCalls();
      try {
        // Forward outputs (one step of moving statistics each).
        const [a, b] = tf.tidy(() => [applyModel(fused, x, true).dataSync(), (plain.apply(x, { training: true }) as tf.Tensor).dataSync()]);
        expect(counts.forward, 'one fused op per conv').toBe(20);
        expect(relativeDiff(a, b), 'logits').toBeLessThan(1e-4);
        expect(relativeDiff(a, cpu.logits), 'logits vs cpu').toBeLessThan(1e-4);
        const statsFused = movingStatistics(fused);
        const statsPlain = movingStatistics(plain);
        expect(statsFused.size).toBe(20);
        for (const [name, [mean, variance]] of statsPlain) {
          const [fm, fv] = statsFused.get(name)!;
          expect(relativeDiff(fm, mean), `moving mean ${name}`).toBeLessThan(1e-5);
          expect(relativeDiff(fv, variance), `moving variance ${name}`).toBeLessThan(1e-5);
        }
        // Check the statistics moved at all (momentum 0.9 from 0 / 1).
        expect(Math.max(...Array.from(statsPlain.get('bn1')![0], Math.abs))).toBeGreaterThan(0);

        // Gradients of softmax cross-entropy w.r.t. every trainable variable.
        const loss = (logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
        const gf = tf.variableGrads(() => loss(applyModel(fused, x, true)), fusedVars);
        const gp = tf.variableGrads(() => loss(plain.apply(x, { training: true }) as tf.Tensor), plainVars);
        expect(counts.grad, 'one fused gradient op per conv').toBe(20);
        expect(Math.abs(gf.value.dataSync()[0] - gp.value.dataSync()[0])).toBeLessThan(1e-5 * Math.abs(gp.value.dataSync()[0]) + 1e-6);
        fusedVars.forEach((v, i) => {
          const w = plainVars[i];
          expect(relativeDiff(gf.grads[v.name].dataSync(), gp.grads[w.name].dataSync()), `gradient of ${v.name}`).toBeLessThan(1e-3);
          expect(relativeDiff(gf.grads[v.name].dataSync(), cpu.grads[i]), `gradient of ${v.name} vs cpu`).toBeLessThan(1e-3);
        });
        tf.dispose([gf.value, gp.value, ...Object.values(gf.grads), ...Object.values(gp.grads)]);
        // Moving statistics after the second training-mode pass agree too.
        const after = movingStatistics(fused);
        for (const [name, [mean, variance]] of movingStatistics(plain)) {
          expect(relativeDiff(after.get(name)![0], mean), `moving mean ${name} (2nd)`).toBeLessThan(1e-5);
          expect(relativeDiff(after.get(name)![1], variance), `moving variance ${name} (2nd)`).toBeLessThan(1e-5);
        }
      } finally {
        restore();
      }
      tf.dispose([x, labels]);
      fused.dispose();
      plain.dispose();
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    });
  }

  it('inference mode runs fused with the moving statistics: model.apply(x, { training: false })\'s outputs and gradients, statistics unchanged', (ctx) => {
    requireFused(ctx);
    const model = classifier(false, 0.0625).model;
    const { x, labels } = randomBatch(3, 12);
    // One training step first, so the moving statistics are not the initial 0 / 1.
    tf.tidy(() => applyModel(model, x, true));
    const statsBefore = movingStatistics(model);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const lossOf = (forward: () => tf.Tensor) => () => tf.losses.softmaxCrossEntropy(labels, forward()) as tf.Scalar;
    const { counts, restore } = countFusedCalls();
    try {
      const fusedOut = tf.tidy(() => applyModel(model, x, false).dataSync());
      const plainOut = tf.tidy(() => (model.apply(x, { training: false }) as tf.Tensor).dataSync());
      expect(relativeDiff(fusedOut, plainOut)).toBeLessThan(1e-4);
      expect(counts.forward).toBe(20);
      const fusedGrads = tf.variableGrads(lossOf(() => applyModel(model, x, false)), variables);
      const plainGrads = tf.variableGrads(lossOf(() => model.apply(x, { training: false }) as tf.Tensor), variables);
      expect(counts.grad).toBe(20);
      for (const v of variables) {
        expect(relativeDiff(fusedGrads.grads[v.name].dataSync(), plainGrads.grads[v.name].dataSync()), v.name).toBeLessThan(1e-3);
      }
      tf.dispose([fusedGrads.value, plainGrads.value, ...Object.values(fusedGrads.grads), ...Object.values(plainGrads.grads)]);
    } finally {
      restore();
    }
    const statsAfter = movingStatistics(model);
    for (const [name, [mean, variance]] of statsBefore) {
      expect(Array.from(statsAfter.get(name)![0]), `moving mean ${name}`).toEqual(Array.from(mean));
      expect(Array.from(statsAfter.get(name)![1]), `moving variance ${name}`).toEqual(Array.from(variance));
    }
    tf.dispose([x, labels]);
    model.dispose();
  });

  it('falls back to model.apply where the kernels are not registered (other backend, or removed)', async (ctx) => {
    requireFused(ctx);
    const model = classifier(true, 0.125).model;
    const { x, labels } = randomBatch(4, 13);
    const spy = vi.spyOn(model, 'apply');
    try {
      await tf.setBackend('cpu');
      expect(hasFusedConvBatchNorm(), 'registered for wasm only').toBe(false);
      const xCpu = tf.tensor(x.dataSync(), x.shape);
      tf.tidy(() => applyModel(model, xCpu, true));
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy.mock.calls[0][1]).toEqual({ training: true });
      xCpu.dispose();
      await tf.setBackend('wasm');

      removeFastTraining('wasm');
      expect(hasFusedConvBatchNorm()).toBe(false);
      const [a, b] = tf.tidy(() => [applyModel(model, x, true).dataSync(), (model.apply(x, { training: true }) as tf.Tensor).dataSync()]);
      expect(spy).toHaveBeenCalledTimes(3);
      expect(Array.from(a)).toEqual(Array.from(b));
    } finally {
      spy.mockRestore();
      await tf.setBackend('wasm');
      await install();
    }
    expect(hasFusedConvBatchNorm()).toBe(true);
    const spy2 = vi.spyOn(model, 'apply');
    tf.tidy(() => applyModel(model, x, true));
    expect(spy2, 'fused again once re-registered').not.toHaveBeenCalled();
    spy2.mockRestore();
    tf.dispose([x, labels]);
    model.dispose();
  });

  it('withFrozenBatchNormStatistics (momentum 1) leaves the moving statistics untouched on the fused path', (ctx) => {
    requireFused(ctx);
    const model = classifier(true, 0.125).model;
    const { x, labels } = randomBatch(4, 15);
    tf.tidy(() => applyModel(model, x, true)); // moves them off their initial 0 / 1
    const before = movingStatistics(model);
    const { counts, restore } = countFusedCalls();
    try {
      withFrozenBatchNormStatistics(model, () => tf.tidy(() => applyModel(model, x, true)));
    } finally {
      restore();
    }
    expect(counts.forward).toBe(20);
    for (const [name, [mean, variance]] of movingStatistics(model)) {
      expect(Array.from(mean), `moving mean ${name}`).toEqual(Array.from(before.get(name)![0]));
      expect(Array.from(variance), `moving variance ${name}`).toEqual(Array.from(before.get(name)![1]));
    }
    tf.dispose([x, labels]);
    model.dispose();
  });

  it('a few training steps with applyModel inside tf.variableGrads / tf.tidy leak no tensors', (ctx) => {
    requireFused(ctx);
    const model = classifier(false, 0.0625).model;
    const variables = trainableVariablesOf(model);
    // Batch 8: with 4 the 1x1 last stage's batch statistics make plain SGD oscillate (on either path).
    const { x, labels } = randomBatch(8, 14);
    const step = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, applyModel(model, x, true)) as tf.Scalar, variables);
        for (const v of variables) v.assign(tf.sub(v, tf.mul(grads[v.name], 0.01)));
        return value.dataSync()[0];
      });
    const first = step();
    const tensorsAfterFirst = tf.memory().numTensors;
    const losses = [first];
    for (let i = 0; i < 3; i++) losses.push(step());
    expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[3]).toBeLessThan(losses[0]);
    tf.dispose([x, labels]);
    model.dispose();
  });

  it('a short fit of a tiny ranker (pairs: two passes per step) matches the unfused path', async (ctx) => {
    requireFused(ctx);
    const data = barImages(12, 16, 3);
    const pairs = randomPairs(data.angles, 16, 5);
    const run = async (fusedPath: boolean) => {
      const ranker = createAngleRanker({ depth: 18, inputShape: [16, 16, 1], widthMultiplier: 0.0625, seed: 2, smallInputStem: true });
      const removed = fusedPath ? [] : [CONV_BATCH_NORM, CONV_BATCH_NORM_GRAD].map((name) => tf.getKernel(name, 'wasm')!);
      for (const config of removed) tf.unregisterKernel(config.kernelName, 'wasm');
      const { counts, restore } = fusedPath ? countFusedCalls() : { counts: { forward: 0, grad: 0 }, restore: () => {} };
      try {
        expect(hasFusedConvBatchNorm()).toBe(fusedPath);
        const before = tf.memory().numTensors;
        const history = await fit(ranker, {
          train: pairData(data.x, pairs),
          lossFn: pairScoresLoss((s1, s2, y) => marginRankingLoss(s1, s2, y, 1)),
          optimizer: { lr: 1e-3 },
          batchSize: 8,
          epochs: 1,
          seed: 1,
        });
        expect(tf.memory().numTensors, 'fit leaks nothing').toBe(before);
        // 2 steps × 2 sides × 20 convs forward and backward.
        if (fusedPath) expect(counts).toEqual({ forward: 80, grad: 80 });
        const weights = allVariablesOf(ranker.model).map((v) => v.dataSync() as Float32Array);
        const result = { loss: history.epochs[0].trainLoss, weights, names: allVariablesOf(ranker.model).map((v) => v.name) };
        ranker.dispose();
        return result;
      } finally {
        restore();
        for (const config of removed) tf.registerKernel(config);
      }
    };
    const fused = await run(true);
    const plain = await run(false);
    expect(Number.isFinite(fused.loss)).toBe(true);
    expect(Math.abs(fused.loss - plain.loss)).toBeLessThan(1e-4 * Math.abs(plain.loss) + 1e-6);
    fused.weights.forEach((w, i) => {
      // Two Adam steps of lr 1e-3 move a weight by at most ~2e-3: compare against that scale.
      const maxDiff = Math.max(...Array.from(w, (v, j) => Math.abs(v - plain.weights[i][j])));
      expect(maxDiff, `${fused.names[i]} after fit`).toBeLessThan(1e-4);
    });
    data.x.dispose();
  });
});
