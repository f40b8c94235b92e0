import { describe, expect, it } from 'vitest';
import fixture from '../fixtures/stats-fixture.json';
import { describeComparison, describeMeanCI, formatMeanCI, formatNumber, formatP, meanCI95, pairedComparison, pairedTTest, signFlipPermutationTest, wilcoxonSignedRank } from './stats';

describe('meanCI95', () => {
  it('matches a hand-worked t-interval', () => {
    // values 1..5: mean 3, sd = sqrt(2.5) = 1.5811, sem = 0.7071, t(0.975, 4) = 2.7764
    // half-width = 2.7764 × 0.7071 = 1.9632
    const ci = meanCI95([1, 2, 3, 4, 5]);
    expect(ci.mean).toBe(3);
    expect(ci.sd).toBeCloseTo(1.5811, 4);
    expect(ci.halfWidth).toBeCloseTo(1.9632, 4);
    expect(ci.n).toBe(5);
  });

  it('has no interval for one value, and names bad input', () => {
    expect(meanCI95([0.7])).toMatchObject({ n: 1, mean: 0.7, lo: null, hi: null });
    expect(() => meanCI95([1, Number.NaN])).toThrow(/values\[1\]/);
    expect(() => meanCI95([])).toThrow(/non-empty/);
  });

  for (const c of fixture.cases) {
    it(`matches SciPy's t.interval for ${c.name}`, () => {
      const ci = meanCI95(c.a);
      expect(ci.mean).toBeCloseTo(c.meanA, 12);
      expect(ci.sd!).toBeCloseTo(c.sdA, 12);
      expect(ci.lo!).toBeCloseTo(c.ciA[0], 9);
      expect(ci.hi!).toBeCloseTo(c.ciA[1], 9);
    });
  }
});

describe('zero spread and single values', () => {
  it('says n = 1 has no CI, and gives equal values an exact zero-width interval named as such', () => {
    expect(describeMeanCI(meanCI95([0.7]))).toBe('0.7 (n = 1: no CI from a single value)');
    // 0.1 + 0.1 + 0.1 = 0.30000000000000004: the plain formula leaves sd ≈ 1.6e-17, not 0.
    const ci = meanCI95([0.1, 0.1, 0.1]);
    expect(ci).toMatchObject({ n: 3, mean: 0.1, sd: 0, lo: 0.1, hi: 0.1, halfWidth: 0, allEqual: true });
    expect(describeMeanCI(ci)).toBe('0.1 ± 0 (n = 3, all values equal: no spread observed, so the zero-width CI says little)');
    expect(meanCI95([0.1, 0.2]).allEqual).toBeUndefined();
  });

  it('calls n = 2 identical differences degenerate, not significant (t would be ∞, p = 0)', () => {
    // Differences 0.84 − 0.83 and 0.80 − 0.79: both 0.01 on paper, different in the last bits.
    const r = pairedComparison([0.84, 0.8], [0.83, 0.79]);
    expect(r).toMatchObject({ n: 2, allDifferencesEqual: true, ci95: null, tTest: null, wilcoxon: null, permutation: null });
    expect(r.diff).toBeCloseTo(0.01, 12);
    const text = describeComparison(r, { a: 'A', b: 'B', metric: 'acc' });
    expect(text).toBe('A − B on acc = 0.01: all 2 paired differences are equal (d = 0.01), so their spread is zero and no test is possible; no verdict of significance at n = 2.');
    expect(text).not.toMatch(/significant at the/);
    expect(pairedTTest([0.01, 0.01, 0.01])).toBeNull();
  });

  it('treats all-zero differences the same way, and still tests differences that vary', () => {
    const same = pairedComparison([0.5, 0.6, 0.7], [0.5, 0.6, 0.7]);
    expect(same).toMatchObject({ diff: 0, allDifferencesEqual: true, tTest: null });
    expect(describeComparison(same, { a: 'A', b: 'B', metric: 'acc' })).toContain('all 3 paired differences are equal (d = 0)');
    const varied = pairedComparison([1.1, 1.2], [1, 1]);
    expect(varied.allDifferencesEqual).toBe(false);
    // d = 0.1, 0.2: mean 0.15, sd 0.0707, t = 0.15 / 0.05 = 3, df 1: p = 2 · (1/2 − atan(3)/π) = 0.2048.
    expect(varied.tTest!.t).toBeCloseTo(3, 9);
    expect(varied.tTest!.p).toBeCloseTo(1 - (2 / Math.PI) * Math.atan(3), 9);
  });
});

describe('pairedComparison against SciPy', () => {
  for (const c of fixture.cases) {
    it(c.name, () => {
      const r = pairedComparison(c.a, c.b);
      expect(r.n).toBe(c.a.length);
      expect(r.diff).toBeCloseTo(c.diff, 12);
      expect(r.ci95![0]).toBeCloseTo(c.diffCi[0], 9);
      expect(r.ci95![1]).toBeCloseTo(c.diffCi[1], 9);
      expect(r.tTest!.t).toBeCloseTo(c.t, 9);
      expect(r.tTest!.p).toBeCloseTo(c.tP, 9);
      expect(r.wilcoxon!.statistic).toBe(c.wilcoxonStatistic);
      expect(r.wilcoxon!.p).toBeCloseTo(c.wilcoxonP, 12);
      expect(r.wilcoxon!.exact).toBe(true);
      expect(r.permutation!.p).toBeCloseTo(c.permutationP, 12);
      expect(r.permutation!.exact).toBe(true);
    });
  }

  it('rejects unpaired input naming the lengths', () => {
    expect(() => pairedComparison([1, 2], [1])).toThrow(/lengths 2 and 1/);
  });
});

describe('rank and permutation tests', () => {
  it('exact Wilcoxon p by hand: n = 4, all positive', () => {
    // Only the all-plus pattern of 2^4 has W− = 0: one-sided 1/16, two-sided 2/16 = 0.125.
    expect(wilcoxonSignedRank([1, 2, 3, 4])).toMatchObject({ statistic: 0, p: 0.125, exact: true });
  });

  it("uses the normal approximation above n = 50, matching SciPy's", () => {
    const { d, statistic, p } = fixture.wilcoxonApprox;
    const w = wilcoxonSignedRank(d)!;
    expect(w.exact).toBe(false);
    expect(w.statistic).toBe(statistic);
    // The erf approximation used there is good to about 1e-7.
    expect(w.p).toBeCloseTo(p, 6);
  });

  it("uses a seeded Monte Carlo above n = 16, close to SciPy's exact p", () => {
    const { a, b, p } = fixture.permutationExact20;
    const diffs = a.map((v, i) => v - b[i]);
    const p1 = signFlipPermutationTest(diffs, { seed: 3 });
    expect(signFlipPermutationTest(diffs, { seed: 3 })).toEqual(p1);
    expect(p1).toMatchObject({ exact: false, resamples: 20_000 });
    // Standard error of a Monte Carlo p near 0.04 from 20 000 resamples: about 0.0014; allow 4 of them.
    expect(Math.abs(p1!.p - p)).toBeLessThan(0.006);
    expect(pairedComparison(a, b, { seed: 3 }).permutation).toEqual(p1);
  });
});

describe('sentences from numbers', () => {
  it('says "not significant at n = 5" and why the rank test cannot help', () => {
    const c = fixture.cases[0];
    const text = describeComparison(pairedComparison(c.a, c.b), { a: 'GHM', b: 'CE', metric: 'val_acc' });
    expect(text).toContain('GHM − CE on val_acc = 0.022');
    expect(text).toContain('not significant at n = 5');
    expect(text).toContain('cannot reach p < 0.05');
  });

  it('counts only non-zero differences for the signed-rank floor', () => {
    // Differences 0.1..0.5 and one 0: the t-test is clear, but 5 non-zero differences give at best
    // an exact signed-rank p of 2 / 2^5 = 0.0625 (the 6 pairs alone would allow 2 / 2^6 = 0.031).
    const r = pairedComparison([1.1, 1.2, 1.3, 1.4, 1.5, 1], [1, 1, 1, 1, 1, 1]);
    expect(r.wilcoxon).toMatchObject({ nonZero: 5, p: 0.0625 });
    const text = describeComparison(r, { a: 'A', b: 'B', metric: 'acc' });
    expect(text).toContain('A is higher, significant at the 5 % level (n = 6); the signed-rank test cannot reach p < 0.05 with 5 non-zero differences of 6 pairs.');
  });

  it('says when the rank test does not confirm a significant t-test', () => {
    // Differences 2 (×5) and −0.1 (×3). SciPy: ttest_1samp p = 0.01603, wilcoxon W = 6, p = 0.1015625
    // (13 of the 256 sign patterns have W ≤ 6 with ranks 2, 2, 2, 6, 6, 6, 6, 6).
    const r = pairedComparison([3, 3, 3, 3, 3, 0.9, 0.9, 0.9], [1, 1, 1, 1, 1, 1, 1, 1]);
    expect(r.tTest!.p).toBeCloseTo(0.016030593076210495, 9);
    expect(r.wilcoxon).toMatchObject({ statistic: 6, p: 0.1015625, exact: true });
    expect(describeComparison(r, { a: 'A', b: 'B', metric: 'acc' })).toMatch(/A is higher, significant at the 5 % level \(n = 8\), although the rank test does not confirm it\.$/);
  });

  it('says when only the rank test finds a difference (an outlier inflates the t-test variance)', () => {
    // Differences 0.1 (×7) and 10. SciPy: ttest_1samp p = 0.3156, wilcoxon W = 0, p = 0.0078125.
    const r = pairedComparison([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 10], [0, 0, 0, 0, 0, 0, 0, 0]);
    expect(r.tTest!.p).toBeCloseTo(0.3156062212881543, 9);
    expect(r.wilcoxon).toMatchObject({ statistic: 0, p: 0.0078125 });
    expect(describeComparison(r, { a: 'A', b: 'B', metric: 'acc' })).toMatch(
      /: not significant at n = 8, although the signed-rank test, which is robust to outlying pairs, gives p < 0\.05\.$/,
    );
  });

  it('reports a significant difference with its direction', () => {
    const c = fixture.cases[1];
    const text = describeComparison(pairedComparison(c.a, c.b), { a: 'A', b: 'B', metric: 'acc' });
    expect(text).toMatch(/A is higher, significant at the 5 % level \(n = 8\)/);
  });

  it('formats p-values without rounding across the threshold, and CIs with n', () => {
    expect(formatP(0.0497)).toBe('p = 0.0497');
    expect(formatP(0.0004)).toBe('p < 0.001');
    expect(formatP(0.234)).toBe('p = 0.23');
    expect(describeMeanCI(meanCI95([1, 2, 3, 4, 5]))).toBe('3 ± 1.96 (95 % CI, n = 5)');
    expect(describeComparison(pairedComparison([1], [0]), { a: 'x', b: 'y', metric: 'm' })).toContain('cannot be tested with n = 1 pair');
  });
});

describe('formatMeanCI', () => {
  it('gives the compact table-cell form: mean ± half-width, nothing else', () => {
    // [1, 2, 3]: mean 2, sd 1, t(0.975, 2) = 4.302653 → half-width 4.302653 / √3 = 2.48414 (worked by hand).
    expect(formatMeanCI(meanCI95([1, 2, 3]))).toBe(`${formatNumber(2)} ± ${formatNumber(2.48414)}`);
    expect(formatMeanCI(meanCI95([0.5]))).toBe(formatNumber(0.5));
  });
});
