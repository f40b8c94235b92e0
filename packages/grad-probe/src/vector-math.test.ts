import { describe, expect, it } from 'vitest';
import { assertVectors, dot, gramMatrix } from './vector-math';

function randomVectors(n: number, d: number, seed: number): Float32Array[] {
  let state = seed;
  const next = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, next));
}

describe('gramMatrix', () => {
  it('gives the hand-worked Gram matrix of three 2-vectors', () => {
    const gram = gramMatrix([Float32Array.of(1, 2), Float32Array.of(3, 4), Float32Array.of(5, 6)]);
    expect(gram.map((row) => Array.from(row))).toEqual([
      [5, 11, 17],
      [11, 25, 39],
      [17, 39, 61],
    ]);
  });

  it('equals pairwise dot products bit for bit, blocks of four and the rows after them', () => {
    for (const n of [1, 3, 4, 5, 8, 9, 13]) {
      const vectors = randomVectors(n, 257, n);
      const gram = gramMatrix(vectors);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) expect(gram[i][j], `n=${n} [${i}][${j}]`).toBe(dot(vectors[i], vectors[j]));
      }
    }
  });
});

describe('assertVectors', () => {
  it('names the vector and index of a non-finite value', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const vectors = randomVectors(3, 10, 1);
      vectors[2][7] = bad;
      expect(() => assertVectors(vectors, 'f(v)')).toThrow(`f(v): vector 2 has a non-finite value (${bad}) at index 7`);
    }
  });

  it('accepts large finite values, whose squares would overflow', () => {
    expect(assertVectors([Float64Array.of(1e300, -1e300), Float64Array.of(0, 1)], 'f(v)')).toBe(2);
  });
});
