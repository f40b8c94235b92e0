import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  GHMC,
  GHMR,
  GHMSoftmax,
  focalLoss,
  sigmoidBinaryCrossEntropy,
  sigmoidFocalLoss,
  softmaxCrossEntropy,
} from './index';
import type { GHMStats } from './index';

// Reference values from fixtures/make_ghm_fixtures.py (NumPy float64, written from the formulas).
const fixtures = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'ghm_fixtures.json'), 'utf8'));

interface Expected {
  loss: number;
  grad: number[][];
  counts: number[];
  accumulator: number[];
  binWeights: number[];
  nonEmptyBins: number;
  total: number;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 1e-4, abs = 1e-6): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const tol = abs + rel * Math.abs(expected[i]);
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
      throw new Error(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`);
    }
  }
}

/** Loss and gradient w.r.t. `x` of `f`, read back to plain numbers. */
function lossAndGrad(f: (x: tf.Tensor) => tf.Scalar, x: tf.Tensor): { loss: number; grad: number[] } {
  const { value, grad } = tf.valueAndGrad(f)(x);
  const out = { loss: value.dataSync()[0], grad: Array.from(grad.dataSync()) };
  value.dispose();
  grad.dispose();
  return out;
}

function expectState(stats: GHMStats, exp: Expected, what: string): void {
  expect(stats.counts, `${what}: counts`).toEqual(exp.counts);
  expect(stats.nonEmptyBins, `${what}: nonEmptyBins`).toBe(exp.nonEmptyBins);
  expect(stats.total, `${what}: total`).toBeCloseTo(exp.total, 5);
  expectClose(stats.accumulator, exp.accumulator, `${what}: accumulator`, 1e-5);
  expectClose(stats.binWeights, exp.binWeights, `${what}: binWeights`, 1e-5);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('GHMSoftmax against the NumPy reference', () => {
  for (const seq of fixtures.softmax) {
    it(`${seq.name}: loss, gradient and EMA state per call`, () => {
      const ghm = new GHMSoftmax({ bins: seq.bins, momentum: seq.momentum, lossWeight: seq.lossWeight });
      seq.calls.forEach((call: Expected & { logits: number[][]; labels: number[]; weights: number[] }, k: number) => {
        const logits = tf.tensor2d(call.logits);
        const labels = tf.tensor1d(call.labels, 'int32');
        const weights = tf.tensor1d(call.weights);
        const got = lossAndGrad((x) => ghm.loss(x as tf.Tensor2D, labels, weights), logits);
        expectClose([got.loss], [call.loss], `call ${k} loss`, 1e-5);
        expectClose(got.grad, call.grad.flat(), `call ${k} grad`);
        expectState(ghm.stats(), call, `call ${k}`);
        tf.dispose([logits, labels, weights]);
      });
      expect(ghm.stats().calls).toBe(seq.calls.length);
      ghm.dispose();
    });
  }

  it('one-hot labels give the same loss and state as class ids', () => {
    const seq = fixtures.softmax[1];
    const byId = new GHMSoftmax({ bins: seq.bins, momentum: seq.momentum, lossWeight: seq.lossWeight });
    const byOneHot = new GHMSoftmax({ bins: seq.bins, momentum: seq.momentum, lossWeight: seq.lossWeight });
    for (const call of seq.calls) {
      tf.tidy(() => {
        const logits = tf.tensor2d(call.logits);
        const ids = tf.tensor1d(call.labels, 'int32');
        const oneHot = tf.cast(tf.oneHot(ids, logits.shape[1]), 'float32') as tf.Tensor2D;
        expect(byOneHot.loss(logits, oneHot).dataSync()[0]).toBeCloseTo(byId.loss(logits, ids).dataSync()[0], 6);
        expect(byOneHot.stats().counts).toEqual(call.counts);
      });
    }
    byId.dispose();
    byOneHot.dispose();
  });
});

describe('GHMC against the NumPy reference', () => {
  for (const seq of fixtures.ghmc) {
    it(`${seq.name}: loss, gradient and EMA state per call`, () => {
      const ghm = new GHMC({ bins: seq.bins, momentum: seq.momentum, lossWeight: seq.lossWeight });
      seq.calls.forEach((call: Expected & { logits: number[][]; targets: number[] | number[][]; weights: number[] | number[][] }, k: number) => {
        const logits = tf.tensor2d(call.logits);
        const targets = seq.intLabels ? tf.tensor1d(call.targets as number[], 'int32') : tf.tensor2d(call.targets as number[][]);
        const weights = seq.intLabels ? tf.tensor1d(call.weights as number[]) : tf.tensor2d(call.weights as number[][]);
        const got = lossAndGrad((x) => ghm.loss(x, targets, weights), logits);
        expectClose([got.loss], [call.loss], `call ${k} loss`, 1e-5);
        expectClose(got.grad, call.grad.flat(), `call ${k} grad`);
        expectState(ghm.stats(), call, `call ${k}`);
        tf.dispose([logits, targets, weights]);
      });
      ghm.dispose();
    });
  }
});

describe('GHMR against the NumPy reference', () => {
  for (const seq of fixtures.ghmr) {
    it(`${seq.name}: loss, gradient and EMA state per call`, () => {
      const ghm = new GHMR({ mu: seq.mu, bins: seq.bins, momentum: seq.momentum, lossWeight: seq.lossWeight });
      seq.calls.forEach((call: Expected & { pred: number[][]; target: number[][]; weights: number[][] }, k: number) => {
        const pred = tf.tensor2d(call.pred);
        const target = tf.tensor2d(call.target);
        const weights = tf.tensor2d(call.weights);
        const got = lossAndGrad((x) => ghm.loss(x, target, weights), pred);
        expectClose([got.loss], [call.loss], `call ${k} loss`, 1e-5);
        // ASL1 near d = 0 loses digits in float32 (sqrt(d² + μ²) − μ), hence the looser relative bound.
        expectClose(got.grad, call.grad.flat(), `call ${k} grad`, 1e-3);
        expectState(ghm.stats(), call, `call ${k}`);
        tf.dispose([pred, target, weights]);
      });
      ghm.dispose();
    });
  }
});

describe('baselines against the NumPy reference', () => {
  const b = fixtures.baselines;
  const logits = () => tf.tensor2d(b.logits);
  const labels = () => tf.tensor1d(b.labels, 'int32');

  it('softmaxCrossEntropy (mean over valid samples; label -1 ignored)', () => {
    tf.tidy(() => {
      const got = lossAndGrad((x) => softmaxCrossEntropy(x as tf.Tensor2D, labels()), logits());
      expectClose([got.loss], [b.ce.loss], 'loss', 1e-5);
      expectClose(got.grad, b.ce.grad.flat(), 'grad');
    });
  });

  it('softmaxCrossEntropy with label smoothing and per-sample weights', () => {
    tf.tidy(() => {
      const weights = tf.tensor1d(b.weights);
      const opts = { labelSmoothing: b.ceSmoothWeighted.labelSmoothing, weights };
      const got = lossAndGrad((x) => softmaxCrossEntropy(x as tf.Tensor2D, labels(), opts), logits());
      expectClose([got.loss], [b.ceSmoothWeighted.loss], 'loss', 1e-5);
      expectClose(got.grad, b.ceSmoothWeighted.grad.flat(), 'grad');
    });
  });

  it('focalLoss (softmax) with scalar and per-class alpha', () => {
    tf.tidy(() => {
      const scalarAlpha = lossAndGrad((x) => focalLoss(x as tf.Tensor2D, labels(), { gamma: 2, alpha: 0.25 }), logits());
      expectClose([scalarAlpha.loss], [b.focal.loss], 'loss', 1e-5);
      expectClose(scalarAlpha.grad, b.focal.grad.flat(), 'grad', 1e-3, 1e-5);
      const opts = { gamma: b.focalPerClass.gamma, alpha: b.focalPerClass.alpha, weights: tf.tensor1d(b.weights) };
      const perClass = lossAndGrad((x) => focalLoss(x as tf.Tensor2D, labels(), opts), logits());
      expectClose([perClass.loss], [b.focalPerClass.loss], 'loss', 1e-5);
      expectClose(perClass.grad, b.focalPerClass.grad.flat(), 'grad', 1e-3, 1e-5);
    });
  });

  it('sigmoidBinaryCrossEntropy and sigmoidFocalLoss', () => {
    const s = b.sigmoid;
    tf.tidy(() => {
      const x = tf.tensor2d(s.logits);
      const t = tf.tensor2d(s.targets);
      const bce = lossAndGrad((z) => sigmoidBinaryCrossEntropy(z, t), x);
      expectClose([bce.loss], [s.bce.loss], 'bce loss', 1e-5);
      expectClose(bce.grad, s.bce.grad.flat(), 'bce grad');
      const weights = tf.tensor2d(s.weights);
      const wbce = lossAndGrad((z) => sigmoidBinaryCrossEntropy(z, t, { weights }), x);
      expectClose([wbce.loss], [s.bceWeighted.loss], 'weighted bce loss', 1e-5);
      expectClose(wbce.grad, s.bceWeighted.grad.flat(), 'weighted bce grad');
      const fl = lossAndGrad((z) => sigmoidFocalLoss(z, t, { gamma: 2, alpha: 0.25 }), x);
      expectClose([fl.loss], [s.focal.loss], 'focal loss', 1e-5);
      expectClose(fl.grad, s.focal.grad.flat(), 'focal grad', 1e-3, 1e-5);
    });
  });
});
