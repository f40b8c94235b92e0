import { describe, expect, it } from 'vitest';
import { normHistogram } from './norm-histogram';

describe('normHistogram', () => {
  it('bins values into equal-width bins, the last bin closed on the right', () => {
    const h = normHistogram([0, 1, 1.5, 2, 3.9, 4], 4);
    expect(h.edges).toEqual([0, 1, 2, 3, 4]);
    expect(h.counts).toEqual([1, 2, 1, 2]);
    expect(h).toMatchObject({ n: 6, min: 0, max: 4 });
  });

  it('accepts explicit edges (values outside are not counted) and equal values', () => {
    expect(normHistogram([0.5, 1, 7], [0, 1, 2]).counts).toEqual([1, 1]);
    const flat = normHistogram([2, 2, 2], 2);
    expect(flat.edges).toEqual([1.5, 2, 2.5]);
    expect(flat.counts).toEqual([0, 3]);
  });

  it('rejects bad input', () => {
    expect(() => normHistogram([], 3)).toThrow(/non-empty/);
    expect(() => normHistogram([1, NaN])).toThrow(/values\[1\] is not finite/);
    expect(() => normHistogram([1], [2, 1])).toThrow(/strictly increasing/);
    expect(() => normHistogram([1], 0)).toThrow(/bins/);
  });
});
