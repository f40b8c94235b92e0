import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { withFrozenBatchNormStatistics } from './fit';
import { PyTorchBatchNorm } from './pytorch-batch-norm';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function model() {
  const input = tfl.input({ shape: [1, 2, 2] });
  const output = new PyTorchBatchNorm({ momentum: 0.9, epsilon: 1e-5, name: 'bn' }).apply(input) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output });
}

// Two samples of [1, 2] positions × 2 channels: channel 0 holds 1, 2, 3, 4; channel 1 holds 0, 0, 2, 2.
const values = [1, 0, 2, 0, 3, 2, 4, 2];

describe('PyTorchBatchNorm (hand-worked, as torch.nn.BatchNorm2d(momentum=0.1, eps=1e-5))', () => {
  it('normalises with the biased batch variance and updates the running variance with the unbiased one', () => {
    const m = model();
    const x = tf.tensor4d(values, [2, 1, 2, 2]);
    const y = tf.tidy(() => m.apply(x, { training: true }) as tf.Tensor);
    // channel 0: mean 2.5, biased var 1.25, unbiased 5/3; channel 1: mean 1, biased var 1, unbiased 4/3.
    const expected = [1, 0, 2, 0, 3, 2, 4, 2].map((v, i) => (i % 2 === 0 ? (v - 2.5) / Math.sqrt(1.25 + 1e-5) : (v - 1) / Math.sqrt(1 + 1e-5)));
    Array.from(y.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    const [, , movingMean, movingVariance] = m.getLayer('bn').getWeights();
    // running = 0.9·running + 0.1·batch, from mean 0 / variance 1.
    expect(Array.from(movingMean.dataSync())).toEqual([expect.closeTo(0.25, 6), expect.closeTo(0.1, 6)]);
    expect(Array.from(movingVariance.dataSync())).toEqual([expect.closeTo(0.9 + 0.1 * (5 / 3), 6), expect.closeTo(0.9 + 0.1 * (4 / 3), 6)]);
    // Inference uses the running statistics.
    const z = tf.tidy(() => m.apply(x, { training: false }) as tf.Tensor);
    expect(z.dataSync()[0]).toBeCloseTo((1 - 0.25) / Math.sqrt(0.9 + 0.1 * (5 / 3) + 1e-5), 5);
    tf.dispose([x, y, z]);
    m.dispose();
  });

  it('trains without γ/β (scale: false, center: false), as BatchNorm2d(affine=False)', () => {
    const input = tfl.input({ shape: [1, 2, 2] });
    const bn = new PyTorchBatchNorm({ momentum: 0.9, epsilon: 1e-5, center: false, scale: false });
    const m = tfl.model({ inputs: input, outputs: bn.apply(input) as tfl.SymbolicTensor });
    const x = tf.tensor4d(values, [2, 1, 2, 2]);
    const y = tf.tidy(() => m.apply(x, { training: true }) as tf.Tensor);
    // channel 0: (v − 2.5)/√1.25; channel 1: (v − 1)/1 (epsilon aside).
    const expected = values.map((v, i) => (i % 2 === 0 ? (v - 2.5) / Math.sqrt(1.25 + 1e-5) : (v - 1) / Math.sqrt(1 + 1e-5)));
    Array.from(y.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    tf.dispose([x, y]);
    m.dispose();
  });

  it('withFrozenBatchNormStatistics runs training mode without moving the statistics', () => {
    const m = model();
    const x = tf.tensor4d(values, [2, 1, 2, 2]);
    const before = m.getLayer('bn').getWeights().map((w) => Array.from(w.dataSync()));
    tf.tidy(() => withFrozenBatchNormStatistics(m, () => m.apply(x, { training: true }) as tf.Tensor));
    expect(m.getLayer('bn').getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
    expect(m.getLayer('bn').getConfig().momentum).toBe(0.9);
    x.dispose();
    m.dispose();
  });

  it('withFrozenBatchNormStatistics also freezes batch norms inside a nested model', () => {
    const inner = model();
    const input = tfl.input({ shape: [1, 2, 2] });
    const outer = tfl.model({ inputs: input, outputs: inner.apply(input) as tfl.SymbolicTensor });
    const x = tf.tensor4d(values, [2, 1, 2, 2]);
    const before = inner.getLayer('bn').getWeights().map((w) => Array.from(w.dataSync()));
    tf.tidy(() => withFrozenBatchNormStatistics(outer, () => outer.apply(x, { training: true }) as tf.Tensor));
    expect(inner.getLayer('bn').getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
    // Without the wrapper the same call does move them (so the check above can fail).
    tf.tidy(() => outer.apply(x, { training: true }) as tf.Tensor);
    expect(inner.getLayer('bn').getWeights().map((w) => Array.from(w.dataSync()))).not.toEqual(before);
    x.dispose();
    outer.dispose();
  });

  it('serialises under its own class name and deserialises after registration', async () => {
    const m = model();
    expect(m.getLayer('bn').getClassName()).toBe('PyTorchBatchNorm');
    const copy = await tfl.models.modelFromJSON({ modelTopology: m.toJSON(null, false) as never });
    expect(copy.getLayer('bn')).toBeInstanceOf(PyTorchBatchNorm);
    m.dispose();
    copy.dispose();
  });
});
