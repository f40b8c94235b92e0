import { describe, expect, it } from 'vitest';
import { cosineSimilarityMatrix } from './cosine-similarity';

describe('cosineSimilarityMatrix', () => {
  it('matches cosines worked by hand and sets zero vectors to 0', () => {
    const { matrix, zeroRows, norms } = cosineSimilarityMatrix([
      Float32Array.of(1, 0),
      Float32Array.of(0, 2),
      Float32Array.of(3, 3),
      Float32Array.of(-1, 0),
      Float32Array.of(0, 0),
    ]);
    const h = Math.SQRT1_2;
    const expected = [
      [1, 0, h, -1, 0],
      [0, 1, h, 0, 0],
      [h, h, 1, -h, 0],
      [-1, 0, -h, 1, 0],
      [0, 0, 0, 0, 0],
    ];
    matrix.forEach((row, i) => row.forEach((c, j) => expect(c).toBeCloseTo(expected[i][j], 12)));
    expect(zeroRows).toEqual([4]);
    expect(norms.map((n) => n.toFixed(6))).toEqual(['1.000000', '2.000000', (3 * Math.SQRT2).toFixed(6), '1.000000', '0.000000']);
    expect(JSON.stringify(matrix)).not.toMatch(/NaN|null/);
  });

  it('rejects mismatched or non-finite vectors', () => {
    expect(() => cosineSimilarityMatrix([Float32Array.of(1, 2), Float32Array.of(1)])).toThrow(/cosineSimilarityMatrix.*vector 1/);
    expect(() => cosineSimilarityMatrix([Float32Array.of(1, Infinity)])).toThrow(/non-finite/);
    expect(() => cosineSimilarityMatrix([])).toThrow(/at least 1/);
  });
});
