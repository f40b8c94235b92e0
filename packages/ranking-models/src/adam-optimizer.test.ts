import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradients
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import reference from '../fixtures/adam.json';
import { AdamOptimizer } from './adam-optimizer';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** w0 = 1, loss = gradScale·0.5·w², lr 0.1, wd 0.5, three steps. */
function trajectory(decoupled: boolean, gradScale: number): number[] {
  const w = tf.tidy(() => tf.variable(tf.scalar(1)));
  const optimizer = new AdamOptimizer([w], { lr: 0.1, weightDecay: 0.5, decoupled });
  const out: number[] = [];
  for (let step = 0; step < 3; step++) {
    const { value, grads } = tf.variableGrads(() => tf.mul(tf.square(w), 0.5 * gradScale) as tf.Scalar, [w]);
    optimizer.applyGradients([grads[w.name]]);
    tf.dispose([value, grads]);
    out.push(w.dataSync()[0]);
  }
  expect(optimizer.step).toBe(3);
  optimizer.dispose();
  w.dispose();
  return out;
}

describe('AdamOptimizer on a 1-parameter problem', () => {
  it('L2 (PyTorch Adam weight_decay): worked by hand, then NumPy for later steps', () => {
    const before = tf.memory().numTensors;
    const w = trajectory(false, 1);
    // Step 1 by hand: g = w + wd·w = 1.5; m̂ = 1.5, v̂ = 2.25 → w = 1 − 0.1·1.5/(1.5 + 1e-8) ≈ 0.9.
    expect(w[0]).toBeCloseTo(0.9, 6);
    reference.L2.forEach((expected, i) => expect(w[i]).toBeCloseTo(expected, 6));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('AdamW (decoupled): worked by hand, then NumPy for later steps', () => {
    const w = trajectory(true, 1);
    // Step 1 by hand: w ← 1·(1 − 0.1·0.5) = 0.95; g = 1, m̂ = 1, v̂ = 1 → w = 0.95 − 0.1 = 0.85.
    expect(w[0]).toBeCloseTo(0.85, 6);
    reference.AdamW.forEach((expected, i) => expect(w[i]).toBeCloseTo(expected, 6));
  });

  it('with zero loss gradient the two variants differ exactly as documented', () => {
    // AdamW: m = v = 0, so only the decay acts: w = 0.95ᵗ.
    expect(trajectory(true, 0)).toEqual(reference.AdamW_zero_grad.map((x) => expect.closeTo(x, 6)));
    // L2: the decay is a gradient, normalised by Adam: the first step moves by lr: w = 0.9.
    const l2 = trajectory(false, 0);
    expect(l2[0]).toBeCloseTo(0.9, 6);
    reference.L2_zero_grad.forEach((expected, i) => expect(l2[i]).toBeCloseTo(expected, 6));
  });

  it('state round-trips: continuing from a copied state gives the same next step', () => {
    const run = (restore: boolean) => {
      const w = tf.variable(tf.tensor1d([1, -2]));
      const opt = new AdamOptimizer([w], { lr: 0.05, weightDecay: 0.1 });
      const grad = tf.tensor1d([0.3, -0.7]);
      opt.applyGradients([grad]);
      opt.applyGradients([grad]);
      let target = opt;
      if (restore) {
        const state = opt.getState();
        target = new AdamOptimizer([w], { lr: 0.05, weightDecay: 0.1 });
        target.setState(state);
        tf.dispose([...state.firstMoments, ...state.secondMoments]);
        opt.dispose();
      }
      target.applyGradients([grad]);
      const out = Array.from(w.dataSync());
      tf.dispose([w, grad]);
      target.dispose();
      return out;
    };
    expect(run(true)).toEqual(run(false));
  });

  it('rejects bad options and mismatched gradients', () => {
    const w = tf.variable(tf.scalar(1));
    expect(() => new AdamOptimizer([w], { lr: 0 })).toThrow(/lr/);
    const opt = new AdamOptimizer([w], { lr: 0.1 });
    expect(() => opt.applyGradients([])).toThrow(/expected 1 gradients/);
    opt.dispose();
    w.dispose();
  });
});

/** @lab/tfjs-train's fused Adam kernel name; this package looks it up by string only. */
const FUSED_ADAM_KERNEL = 'LabFusedAdam';

interface AdamAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  decoupled: boolean;
  step: number;
}

/** The parts of the cpu backend the test kernel touches. */
interface CpuBackend {
  readSync(dataId: object): Float32Array;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

/**
 * A stand-in for @lab/tfjs-train's kernel, written here from PyTorch's documented algorithm
 * (bias-corrected m̂, v̂, float64 intermediates) so the op path is checked against an
 * independent implementation. Counts its calls.
 */
function registerTestFusedAdam(): { calls: number } {
  const counter = { calls: 0 };
  tf.registerKernel({
    kernelName: FUSED_ADAM_KERNEL,
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      counter.calls++;
      const cpu = backend as unknown as CpuBackend;
      const { weights, gradient, firstMoment, secondMoment } = inputs as Record<string, tf.TensorInfo>;
      const a = attrs as unknown as AdamAttrs;
      const [w, g, m, v] = [weights, gradient, firstMoment, secondMoment].map((x) => cpu.readSync(x.dataId));
      const n = w.length;
      const [wOut, mOut, vOut] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
      for (let i = 0; i < n; i++) {
        let gi = g[i];
        let wi = w[i];
        if (a.decoupled) wi -= a.lr * a.weightDecay * wi;
        else gi += a.weightDecay * wi;
        mOut[i] = a.beta1 * m[i] + (1 - a.beta1) * gi;
        vOut[i] = a.beta2 * v[i] + (1 - a.beta2) * gi * gi;
        const mHat = mOut[i] / (1 - Math.pow(a.beta1, a.step));
        const vHat = vOut[i] / (1 - Math.pow(a.beta2, a.step));
        wOut[i] = wi - (a.lr * mHat) / (Math.sqrt(vHat) + a.epsilon);
      }
      return [wOut, mOut, vOut].map((values) => cpu.makeTensorInfo([...weights.shape], 'float32', values));
    },
  });
  return counter;
}

describe('AdamOptimizer with a fused kernel registered for the backend', () => {
  afterEach(() => {
    if (tf.getKernel(FUSED_ADAM_KERNEL, 'cpu') != null) tf.unregisterKernel(FUSED_ADAM_KERNEL, 'cpu');
  });

  const shapes = [[3, 5], [7], []];
  /** Three steps on three variables with fixed pseudo-random weights and gradients. */
  function run(decoupled: boolean): { w: number[][]; m: number[][]; v: number[][] } {
    const values = (seed: number, n: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3));
    const vars = shapes.map((s, k) => tf.tidy(() => tf.variable(tf.tensor(values(k, tf.util.sizeFromShape(s)), s))));
    const optimizer = new AdamOptimizer(vars, { lr: 0.01, weightDecay: 0.05, decoupled });
    for (let step = 0; step < 3; step++) {
      const grads = shapes.map((s, k) => tf.tensor(values(10 * step + k + 3, tf.util.sizeFromShape(s)), s));
      optimizer.applyGradients(grads);
      tf.dispose(grads);
    }
    const state = optimizer.getState();
    const out = {
      w: vars.map((x) => Array.from(x.dataSync())),
      m: state.firstMoments.map((x) => Array.from(x.dataSync())),
      v: state.secondMoments.map((x) => Array.from(x.dataSync())),
    };
    tf.dispose([...vars, ...state.firstMoments, ...state.secondMoments]);
    optimizer.dispose();
    return out;
  }

  /** max |a − b| / max |b| per tensor: rounding is relative to the tensor's scale where m cancels. */
  function worstScaledError(a: number[][], b: number[][]): number {
    return Math.max(
      ...a.map((x, k) => {
        const scale = Math.max(...b[k].map(Math.abs));
        return Math.max(...x.map((xi, i) => Math.abs(xi - b[k][i]))) / scale;
      }),
    );
  }

  for (const [variant, decoupled] of [['L2', false], ['AdamW', true]] as const) {
    it(`${variant}: uses the kernel once per variable and step, and matches the op path over 3 steps`, () => {
      const before = tf.memory().numTensors;
      const opPath = run(decoupled);
      const counter = registerTestFusedAdam();
      const fused = run(decoupled);
      expect(counter.calls).toBe(shapes.length * 3);
      expect(tf.memory().numTensors).toBe(before);
      for (const key of ['w', 'm', 'v'] as const) {
        expect(worstScaledError(fused[key], opPath[key]), key).toBeLessThan(1e-6);
      }
    });
  }

  it('keeps the op path for non-float32 gradients and once the kernel is unregistered', () => {
    const counter = registerTestFusedAdam();
    const w = tf.tidy(() => tf.variable(tf.tensor1d([1, 2])));
    const optimizer = new AdamOptimizer([w], { lr: 0.1 });
    const intGradient = tf.tensor1d([1, 1], 'int32');
    optimizer.applyGradients([intGradient]);
    expect(counter.calls).toBe(0);
    const floatGradient = tf.tensor1d([1, 1]);
    optimizer.applyGradients([floatGradient]);
    expect(counter.calls).toBe(1);
    tf.unregisterKernel(FUSED_ADAM_KERNEL, 'cpu');
    optimizer.applyGradients([floatGradient]);
    expect(counter.calls).toBe(1);
    tf.dispose([w, intGradient, floatGradient]);
    optimizer.dispose();
  });
});
