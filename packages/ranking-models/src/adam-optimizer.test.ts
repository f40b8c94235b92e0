import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradients
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
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
