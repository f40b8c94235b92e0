import { describe, expect, it } from 'vitest';
import { cosineSimilarityMatrix } from './cosine-similarity';
import { RandomProjection } from './random-projection';
import { SeededRandom } from './seeded-random';

/** 12 vectors in d = 3000 sharing a common direction in varying amounts, so cosines spread over (−1, 1). */
function correlatedVectors(d = 3000, n = 12): Float32Array[] {
  const rng = new SeededRandom(99);
  const common = Float32Array.from({ length: d }, () => rng.nextGaussian());
  return Array.from({ length: n }, (_, i) => {
    const weight = (i - n / 2) / 3;
    return Float32Array.from({ length: d }, (_, j) => weight * common[j] + rng.nextGaussian());
  });
}

describe('RandomProjection', () => {
  it.each(['gaussian', 'achlioptas', 'sparse'] as const)('keeps every pairwise cosine within 4/√k (%s, k = 512)', (distribution) => {
    const vectors = correlatedVectors();
    const k = 512;
    const projection = new RandomProjection({ k, seed: 1, distribution });
    const exact = cosineSimilarityMatrix(vectors).matrix;
    const projected = cosineSimilarityMatrix(projection.projectMany(vectors)).matrix;
    let maxError = 0;
    exact.forEach((row, i) => row.forEach((c, j) => (maxError = Math.max(maxError, Math.abs(c - projected[i][j])))));
    // JL: the cosine error has standard deviation about (1 − cos²)/√k ≤ 1/√k ≈ 0.044.
    expect(maxError).toBeLessThan(4 / Math.sqrt(k));
    expect(exact.flat().some((c) => c < -0.5)).toBe(true);
    expect(exact.flat().filter((c) => c < 0.99).some((c) => c > 0.5)).toBe(true);
  });

  it.each(['gaussian', 'sparse'] as const)('preserves squared norms on average (%s)', (distribution) => {
    const vectors = correlatedVectors(2000, 20);
    const projected = new RandomProjection({ k: 256, seed: 2, distribution }).projectMany(vectors);
    const ratios = vectors.map((v, i) => projected[i].reduce((s, x) => s + x * x, 0) / v.reduce((s, x) => s + x * x, 0));
    const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    expect(Math.abs(mean - 1)).toBeLessThan(0.1);
  });

  it.each(['gaussian', 'sparse'] as const)('is deterministic, independent of caching, of segmentation and of the input length (%s)', (distribution) => {
    const [v] = correlatedVectors(1000, 1);
    const a = new RandomProjection({ k: 64, seed: 5, distribution });
    const b = new RandomProjection({ k: 64, seed: 5, distribution, maxCachedEntries: 1 });
    const c = new RandomProjection({ k: 64, seed: 6, distribution });
    const pa = a.project(v);
    expect(Array.from(b.project(v))).toEqual(Array.from(pa));
    expect(Array.from(a.project(v))).toEqual(Array.from(pa));
    expect(Array.from(c.project(v))).not.toEqual(Array.from(pa));
    // Segments that straddle block boundaries (blockRows = 256) give the same projection.
    const segments = [v.subarray(0, 100), v.subarray(100, 700), v.subarray(700)];
    const ps = a.projectSegments(segments);
    pa.forEach((x, j) => expect(ps[j]).toBeCloseTo(x, 4));
    const pm = b.projectMany([v, v])[1];
    pa.forEach((x, j) => expect(pm[j]).toBeCloseTo(x, 4));
    // The matrix does not depend on d: zero-padding a vector does not change its projection.
    const padded = new Float32Array(1500);
    padded.set(v);
    a.project(padded).forEach((x, j) => expect(x).toBeCloseTo(pa[j], 4));
  });

  it('rejects bad options', () => {
    expect(() => new RandomProjection({ k: 0 })).toThrow(/options.k/);
    expect(() => new RandomProjection({ k: 4, distribution: 'dense' as 'gaussian' })).toThrow(/distribution/);
    expect(() => new RandomProjection({ k: 4, distribution: 'sparse', sparsity: 5 })).toThrow(/sparsity/);
    expect(new RandomProjection({ k: 4, distribution: 'sparse' }).toJSON()).toEqual({ k: 4, seed: 0, distribution: 'sparse', blockRows: 256, sparsity: 4 });
    expect(() => new RandomProjection({ k: 4 }).projectMany([new Float32Array(3), new Float32Array(2)])).toThrow(/vector 1 has length 2/);
  });
});
