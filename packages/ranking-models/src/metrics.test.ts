import { describe, expect, it } from 'vitest';
import cases from '../fixtures/rank_correlations.json';
import {
  accuracy,
  averageRanks,
  confusionMatrix,
  kendallTau,
  pairwiseAngleAccuracy,
  perClassRecall,
  spearmanRho,
} from './metrics';

describe('classification metrics (hand-worked)', () => {
  const labels = [0, 0, 1, 1, 2, 2, 2];
  const predicted = [0, 1, 1, 1, 2, 0, 2];

  it('accuracy: 5 of 7 correct', () => {
    expect(accuracy(predicted, labels)).toBeCloseTo(5 / 7, 12);
    expect(accuracy([], [])).toBeNaN();
  });

  it('confusionMatrix rows are true classes, columns predictions', () => {
    expect(confusionMatrix(labels, predicted, 3)).toEqual([
      [1, 1, 0],
      [0, 2, 0],
      [1, 0, 2],
    ]);
    expect(() => confusionMatrix([3], [0], 3)).toThrow(/labels\[0\]/);
  });

  it('perClassRecall: 1/2, 2/2, 2/3; NaN for an empty class', () => {
    const recall = perClassRecall(confusionMatrix(labels, predicted, 4));
    expect(recall.slice(0, 3)).toEqual([0.5, 1, 2 / 3]);
    expect(recall[3]).toBeNaN();
  });
});

describe('pairwiseAngleAccuracy (hand-worked)', () => {
  it('classifier: p[true] > p[other] over samples of either class, ties count 1/2', () => {
    const probabilities = [
      [0.6, 0.3, 0.1], // class 0
      [0.5, 0.4, 0.1], // class 1
      [0.2, 0.2, 0.6], // class 2
      [0.3, 0.3, 0.4], // class 0
    ];
    const { accuracy: acc, count } = pairwiseAngleAccuracy({ probabilities, labels: [0, 1, 2, 0] });
    // (0,1): s0 right, s1 wrong (0.4 < 0.5), s3 tie (0.3 = 0.3) → 1.5 / 3
    expect(acc[0][1]).toBeCloseTo(0.5, 12);
    expect(acc[1][0]).toBeCloseTo(0.5, 12);
    // (0,2): s0 right, s2 right, s3 wrong (0.3 < 0.4) → 2 / 3
    expect(acc[0][2]).toBeCloseTo(2 / 3, 12);
    // (1,2): s1 right, s2 right → 1
    expect(acc[1][2]).toBe(1);
    expect(count).toEqual([
      [0, 3, 3],
      [3, 0, 2],
      [3, 2, 0],
    ]);
    expect(acc[1][1]).toBeNaN();
  });

  it('ranker: fraction of (a-sample, b-sample) pairs with score_a < score_b for a < b', () => {
    const { accuracy: acc, count } = pairwiseAngleAccuracy({ scores: [0.1, 0.5, 0.3, 0.9], labels: [0, 0, 1, 2] });
    // (0,1): (0.1 < 0.3) right, (0.5 < 0.3) wrong → 1/2; (0,2): both right; (1,2): right.
    expect(acc[0][1]).toBe(0.5);
    expect(acc[0][2]).toBe(1);
    expect(acc[2][1]).toBe(1);
    expect(count[0][1]).toBe(2);
    expect(count[1][2]).toBe(1);
    // A class with no samples gives NaN, not 0.
    const sparse = pairwiseAngleAccuracy({ scores: [1, 2], labels: [0, 2] }, 4);
    expect(sparse.accuracy[0][2]).toBe(1);
    expect(sparse.accuracy[0][1]).toBeNaN();
  });
});

describe('rank correlations', () => {
  it('kendallTau by hand: x = [1,2,3], y = [1,3,2] → (2 − 1)/3', () => {
    expect(kendallTau([1, 2, 3], [1, 3, 2])).toBeCloseTo(1 / 3, 12);
    expect(kendallTau([1, 2, 3], [3, 2, 1])).toBe(-1);
    expect(kendallTau([1, 1, 1], [1, 2, 3])).toBeNaN();
  });

  it('spearmanRho by hand: ranks [1,2,3] vs [1,3,2] → 1 − 6·2/(3·8) = 0.5', () => {
    expect(spearmanRho([10, 20, 30], [1, 3, 2])).toBeCloseTo(0.5, 12);
  });

  it('kendallTau (tau-b), spearmanRho and average ranks match SciPy, with ties (fixtures/make_rank_correlations.py)', () => {
    for (const c of cases) {
      expect(kendallTau(c.x, c.y)).toBeCloseTo(c.kendall_tau_b, 12);
      expect(spearmanRho(c.x, c.y)).toBeCloseTo(c.spearman_rho, 12);
      expect(averageRanks(c.x)).toEqual(c.average_ranks_x);
    }
  });
});
