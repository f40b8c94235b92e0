import { describe, expect, it } from 'vitest';
import { adjacentAnglePairs, allPairsInBatch, randomPairs } from './pair-samplers';

describe('pair samplers', () => {
  it('allPairsInBatch: every i<j pair with different angles, y = sign(angle_a − angle_b)', () => {
    // angles 0, 36, 0, 72: pairs (0,1) y=−1, (0,3) y=−1, (1,2) y=+1, (1,3) y=−1, (2,3) y=−1; (0,2) is equal, excluded.
    expect(allPairsInBatch([0, 36, 0, 72])).toEqual([
      { a: 0, b: 1, y: -1 },
      { a: 0, b: 3, y: -1 },
      { a: 1, b: 2, y: 1 },
      { a: 1, b: 3, y: -1 },
      { a: 2, b: 3, y: -1 },
    ]);
    expect(allPairsInBatch([5, 5, 5])).toEqual([]);
  });

  it('randomPairs is seeded, excludes equal angles and has correct targets', () => {
    const angles = [0, 0, 36, 72, 108, 108, 144, 180];
    const p1 = randomPairs(angles, 200, 3);
    expect(randomPairs(angles, 200, 3)).toEqual(p1);
    expect(randomPairs(angles, 200, 4)).not.toEqual(p1);
    expect(p1).toHaveLength(200);
    for (const { a, b, y } of p1) {
      expect(angles[a]).not.toBe(angles[b]);
      expect(y).toBe(Math.sign(angles[a] - angles[b]));
    }
    // Both orders occur, so targets are not all one sign.
    expect(new Set(p1.map((p) => p.y)).size).toBe(2);
    expect(() => randomPairs([1, 1], 1, 0)).toThrow(/two different/);
  });

  it('adjacentAnglePairs keeps only neighbouring angles', () => {
    // distinct sorted angles 0 < 36 < 72; adjacent: (0,36) and (36,72); (0,72) is not.
    const angles = [0, 72, 36, 0];
    expect(adjacentAnglePairs(angles)).toEqual([
      { a: 1, b: 2, y: 1 },
      { a: 2, b: 3, y: 1 },
      { a: 0, b: 2, y: -1 },
    ].sort((p, q) => p.a - q.a || p.b - q.b));
    const sampled = adjacentAnglePairs([0, 36, 72, 108, 0, 36, 72, 108], { count: 5, seed: 9 });
    expect(sampled).toHaveLength(5);
    expect(adjacentAnglePairs([0, 36, 72, 108, 0, 36, 72, 108], { count: 5, seed: 9 })).toEqual(sampled);
    const all = [0, 36, 72, 108, 0, 36, 72, 108];
    for (const { a, b, y } of sampled) {
      expect(Math.abs(all[a] - all[b])).toBe(36);
      expect(y).toBe(Math.sign(all[a] - all[b]));
    }
  });
});
