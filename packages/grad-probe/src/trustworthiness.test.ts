import { describe, expect, it } from 'vitest';
import fixture from '../fixtures/trustworthiness.json';
import { trustworthiness } from './trustworthiness';

describe('trustworthiness (sklearn definition)', () => {
  it.each(fixture.cases.map((c) => [c.name, c] as const))('matches sklearn.manifold.trustworthiness (fixture checked against scikit-learn 1.2.1): %s', (_, c) => {
    expect(trustworthiness(c.high, c.low, c.k)).toBeCloseTo(c.expected, 12);
  });

  it('matches a case worked by hand', () => {
    // Points 0..5 on a line, embedded with the last two swapped (positions 0 1 2 3 5 4), k = 2.
    // Only point 3 gets an intruder: its embedded neighbours are 2 and 5, and 5 is 3's 4th
    // nearest neighbour in the original space (order 2, 4, 1, 5, 0 with ties by index), so the
    // penalty is 4 − 2 = 2 and T = 1 − 2/(6·2·(12 − 6 − 1))·2 = 1 − 4/60 = 0.9333…
    const high = [[0], [1], [2], [3], [4], [5]];
    const low = [[0], [1], [2], [3], [5], [4]];
    expect(trustworthiness(high, low, 2)).toBeCloseTo(1 - 4 / 60, 12);
    expect(trustworthiness(high, high, 2)).toBe(1);
  });

  it('rejects k ≥ n/2 like sklearn, and mismatched inputs', () => {
    const pts = [[0], [1], [2], [3], [4], [5]];
    expect(() => trustworthiness(pts, pts, 3)).toThrow(/k must be an integer with 1 ≤ k < n\/2/);
    expect(() => trustworthiness(pts, pts.slice(1), 2)).toThrow(/high has 6 points but low has 5/);
  });
});
