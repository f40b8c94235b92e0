import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradients
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import fixture from '../fixtures/pair_losses.json';
import { crossEntropyLoss, logisticPairLoss, marginRankingLoss, pairScoresLoss } from './pair-losses';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function lossAndGrads(loss: (s1: tf.Tensor, s2: tf.Tensor) => tf.Scalar) {
  const s1 = tf.tensor1d(fixture.s1);
  const s2 = tf.tensor1d(fixture.s2);
  const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => loss(a, b))([s1, s2]);
  const result = { loss: value.dataSync()[0], g1: Array.from(grads[0].dataSync()), g2: Array.from(grads[1].dataSync()) };
  tf.dispose([s1, s2, value, ...grads]);
  return result;
}

function expectClose(actual: number[], expected: number[], digits = 6) {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i], digits));
}

describe('pair losses (fixtures from fixtures/make_pair_losses.py)', () => {
  it('marginRankingLoss matches PyTorch semantics and its gradients, for margins 0, 0.5, 10', () => {
    const before = tf.memory().numTensors;
    const y = tf.tensor1d(fixture.y);
    for (const ref of fixture.margin) {
      const got = lossAndGrads((a, b) => marginRankingLoss(a, b, y, ref.margin));
      expect(got.loss).toBeCloseTo(ref.loss, 5);
      expectClose(got.g1, ref.grad_s1);
      expectClose(got.g2, ref.grad_s2);
    }
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('marginRankingLoss by hand: s1=2, s2=1, y=1 → max(0, −1+m)', () => {
    const [s1, s2, y] = [tf.tensor1d([2]), tf.tensor1d([1]), tf.tensor1d([1])];
    expect(marginRankingLoss(s1, s2, y, 0).dataSync()[0]).toBe(0);
    expect(marginRankingLoss(s1, s2, y, 10).dataSync()[0]).toBeCloseTo(9, 6);
    expect(marginRankingLoss(s1, s2, tf.neg(y), 0).dataSync()[0]).toBeCloseTo(1, 6);
    tf.dispose([s1, s2, y]);
  });

  it('logisticPairLoss (RankNet) matches NumPy value and gradients', () => {
    const y = tf.tensor1d(fixture.y);
    const got = lossAndGrads((a, b) => logisticPairLoss(a, b, y));
    expect(got.loss).toBeCloseTo(fixture.logistic.loss, 5);
    expectClose(got.g1, fixture.logistic.grad_s1);
    expectClose(got.g2, fixture.logistic.grad_s2);
    y.dispose();
  });

  it('pairScoresLoss reads column 0 as s1 and column 1 as s2', () => {
    const out = tf.tensor2d([[2, 1], [0, 3]]);
    const y = tf.tensor1d([1, 1]);
    // margin 1: pair 1 → max(0, −1 + 1) = 0; pair 2 → max(0, 3 + 1) = 4; mean 2.
    const loss = pairScoresLoss((a, b, t) => marginRankingLoss(a, b, t, 1))(out, y);
    expect(loss.dataSync()[0]).toBeCloseTo(2, 6);
    tf.dispose([out, y, loss]);
  });

  it('crossEntropyLoss by hand: logits [0, ln 3] label 1 → ln(4/3); label 0 → ln 4', () => {
    const logits = tf.tensor2d([[0, Math.log(3)], [0, Math.log(3)]]);
    const labels = tf.tensor1d([1, 0], 'int32');
    const loss = crossEntropyLoss(logits, labels);
    expect(loss.dataSync()[0]).toBeCloseTo((Math.log(4 / 3) + Math.log(4)) / 2, 6);
    tf.dispose([logits, labels, loss]);
  });

  it('rejects mismatched sizes', () => {
    const [a, b] = [tf.tensor1d([1, 2]), tf.tensor1d([1])];
    expect(() => marginRankingLoss(a, b, a)).toThrow(/same number of elements/);
    tf.dispose([a, b]);
  });
});
