import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { withFrozenBatchNormStatistics } from './fit';
import { batchNormTraining, PyTorchBatchNorm } from './pytorch-batch-norm';

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

  it('backpropagates through the batch statistics: gradients equal tfjs autodiff of moments + batchNorm', () => {
    // The closed form is checked against tfjs-core's own autodiff of the textbook composition.
    let seed = 5;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const shape = [3, 2, 4, 5];
    const xv = Array.from({ length: 120 }, () => 2 * rand() + 0.3);
    const wv = Array.from({ length: 120 }, rand);
    const gv = Array.from({ length: 5 }, () => 1 + rand());
    const bv = Array.from({ length: 5 }, rand);
    const grads = (composed: boolean, withGamma: boolean) =>
      tf.tidy(() => {
        const w = tf.tensor(wv, shape);
        const f = (x: tf.Tensor, g: tf.Tensor | null, b: tf.Tensor) => {
          if (!composed) return tf.sum(tf.mul(w, batchNormTraining(x, g, b, 1e-5))) as tf.Scalar;
          const { mean, variance } = tf.moments(x, [0, 1, 2]);
          // Constant ones for "no γ": tfjs-core's stock batch-norm gradient throws on an absent scale.
          return tf.sum(tf.mul(w, tf.batchNorm(x, mean, variance, b, g ?? tf.ones([5]), 1e-5))) as tf.Scalar;
        };
        const inputs = withGamma ? [tf.tensor(xv, shape), tf.tensor(gv), tf.tensor(bv)] : [tf.tensor(xv, shape), tf.tensor(bv)];
        const g = tf.grads((...a: tf.Tensor[]) => (withGamma ? f(a[0], a[1], a[2]) : f(a[0], null, a[1])))(inputs);
        return g.map((t) => Array.from(t.dataSync()));
      });
    for (const withGamma of [true, false]) {
      const ours = grads(false, withGamma);
      const reference = grads(true, withGamma);
      expect(ours.length).toBe(reference.length);
      ours.forEach((g, i) => g.forEach((v, j) => expect(v).toBeCloseTo(reference[i][j], 4)));
    }
  });

  it('uses the fused kernels when a backend registers them, with the same results', () => {
    // Minimal JS versions of @lab/tfjs-train's kernels, written here from the formulas.
    const calls = { stats: 0, grad: 0 };
    const cpu = () => tf.findBackend('cpu') as unknown as { readSync(id: object): Float32Array; makeTensorInfo(s: number[], d: string, v: Float32Array): tf.TensorInfo };
    tf.registerKernel({
      kernelName: 'LabTfjsTrainBatchNormStats',
      backendName: 'cpu',
      kernelFunc: ({ inputs }) => {
        calls.stats++;
        const x = inputs.x as tf.TensorInfo;
        const v = cpu().readSync(x.dataId);
        const C = x.shape[x.shape.length - 1];
        const n = v.length / C;
        const out = new Float32Array(2 * C);
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let i = c; i < v.length; i += C) s += v[i];
          const m = s / n;
          let q = 0;
          for (let i = c; i < v.length; i += C) q += (v[i] - m) ** 2;
          out[c] = m;
          out[C + c] = q / n;
        }
        return cpu().makeTensorInfo([2, C], 'float32', out);
      },
    });
    tf.registerKernel({
      kernelName: 'LabTfjsTrainBatchNormTrainingGrad',
      backendName: 'cpu',
      kernelFunc: ({ inputs, attrs }) => {
        calls.grad++;
        const read = (k: string) => (inputs[k] ? cpu().readSync((inputs[k] as tf.TensorInfo).dataId) : null);
        const [dy, x, mean, variance, scale] = ['dy', 'x', 'mean', 'variance', 'scale'].map(read);
        const C = mean!.length;
        const n = x!.length / C;
        const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
        const dx = new Float32Array(x!.length);
        const dScale = new Float32Array(C);
        const dOffset = new Float32Array(C);
        for (let c = 0; c < C; c++) {
          const r = 1 / Math.sqrt(variance![c] + eps);
          const g = scale ? scale[c] : 1;
          let s1 = 0;
          let s2 = 0;
          for (let i = c; i < x!.length; i += C) {
            s1 += dy![i];
            s2 += dy![i] * (x![i] - mean![c]) * r;
          }
          dOffset[c] = s1;
          dScale[c] = s2;
          for (let i = c; i < x!.length; i += C) dx[i] = ((g * r) / n) * (n * dy![i] - s1 - (x![i] - mean![c]) * r * s2);
        }
        const shape = (inputs.x as tf.TensorInfo).shape;
        return [cpu().makeTensorInfo(shape, 'float32', dx), cpu().makeTensorInfo([C], 'float32', dScale), cpu().makeTensorInfo([C], 'float32', dOffset)];
      },
    });
    try {
      const m = model();
      const x = tf.tensor4d(values, [2, 1, 2, 2]);
      const y = tf.tidy(() => m.apply(x, { training: true }) as tf.Tensor);
      const expected = values.map((v, i) => (i % 2 === 0 ? (v - 2.5) / Math.sqrt(1.25 + 1e-5) : (v - 1) / Math.sqrt(1 + 1e-5)));
      Array.from(y.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
      expect(Array.from(m.getLayer('bn').getWeights()[3].dataSync())).toEqual([expect.closeTo(0.9 + 0.1 * (5 / 3), 6), expect.closeTo(0.9 + 0.1 * (4 / 3), 6)]);
      const w = tf.tensor4d([1, -2, 0.5, 3, -1, 2, 0, 1], [2, 1, 2, 2]);
      const dxFused = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(w, m.apply(xi, { training: true }) as tf.Tensor)))(x);
      expect(calls).toEqual({ stats: 2, grad: 1 });
      tf.unregisterKernel('LabTfjsTrainBatchNormStats', 'cpu');
      tf.unregisterKernel('LabTfjsTrainBatchNormTrainingGrad', 'cpu');
      const dxOps = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(w, m.apply(xi, { training: true }) as tf.Tensor)))(x);
      Array.from(dxFused.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(dxOps.dataSync()[i], 5));
      tf.dispose([x, y, w, dxFused, dxOps]);
      m.dispose();
    } finally {
      if (tf.getKernel('LabTfjsTrainBatchNormStats', 'cpu')) tf.unregisterKernel('LabTfjsTrainBatchNormStats', 'cpu');
      if (tf.getKernel('LabTfjsTrainBatchNormTrainingGrad', 'cpu')) tf.unregisterKernel('LabTfjsTrainBatchNormTrainingGrad', 'cpu');
    }
  });
});
