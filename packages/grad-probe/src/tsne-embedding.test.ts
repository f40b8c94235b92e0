import { describe, expect, it } from 'vitest';
import { SeededRandom } from './seeded-random';
import { trustworthiness } from './trustworthiness';
import { tsneEmbedding } from './tsne-embedding';

/** Three well-separated blobs of `perBlob` points in 20 dimensions (directions differ by blob). */
function blobs(perBlob: number, seed = 1): { vectors: Float32Array[]; labels: number[] } {
  const rng = new SeededRandom(seed);
  const d = 20;
  const centres = [0, 1, 2].map((c) => Float32Array.from({ length: d }, (_, j) => (j % 3 === c ? 5 : 0) + (j < 3 ? 1 : 0)));
  const vectors: Float32Array[] = [];
  const labels: number[] = [];
  centres.forEach((centre, c) => {
    for (let i = 0; i < perBlob; i++) {
      vectors.push(Float32Array.from(centre, (x) => x + 0.3 * rng.nextGaussian()));
      labels.push(c);
    }
  });
  return { vectors, labels };
}

const dist2 = (a: [number, number], b: [number, number]) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2;

describe('tsneEmbedding', () => {
  it('separates three well-separated blobs (trustworthiness > 0.9, every nearest neighbour from the same blob)', () => {
    const { vectors, labels } = blobs(15);
    const result = tsneEmbedding(vectors, { perplexity: 5, seed: 3, iterations: 500 });
    expect(result.points).toHaveLength(45);
    expect(result.trustworthiness).toBeGreaterThan(0.9);
    expect(result.trustworthinessK).toBe(5);
    expect(result.perplexityUsed).toBe(5);
    expect(result.warnings).toEqual([]);
    result.points.forEach((p, i) => {
      let best = -1;
      result.points.forEach((q, j) => {
        if (j !== i && (best < 0 || dist2(p, q) < dist2(p, result.points[best]))) best = j;
      });
      expect(labels[best]).toBe(labels[i]);
    });
    // The returned score is sklearn's trustworthiness of the map against the unit vectors.
    const unit = vectors.map((v) => {
      const n = Math.hypot(...v);
      return Float64Array.from(v, (x) => x / n);
    });
    expect(result.trustworthiness).toBeCloseTo(trustworthiness(unit, result.points, 5), 10);
  });

  it('is deterministic for a seed and changes with it (JS path, n < 16, and WASM path, n ≥ 16)', () => {
    for (const perBlob of [4, 8]) {
      const { vectors } = blobs(perBlob, 2);
      const a = tsneEmbedding(vectors, { perplexity: 3, seed: 7, iterations: 200 });
      const b = tsneEmbedding(vectors, { perplexity: 3, seed: 7, iterations: 200 });
      const c = tsneEmbedding(vectors, { perplexity: 3, seed: 8, iterations: 200 });
      expect(b.points).toEqual(a.points);
      expect(c.points).not.toEqual(a.points);
    }
  });

  it('clamps perplexity to (n − 1)/3 and k below n/2, and says so', () => {
    const { vectors } = blobs(4);
    const result = tsneEmbedding(vectors, { seed: 1, iterations: 100 });
    expect(result.perplexityRequested).toBe(30);
    expect(result.perplexityUsed).toBeCloseTo(11 / 3, 12);
    expect(result.trustworthinessK).toBe(5);
    expect(result.warnings.join(' ')).toMatch(/perplexity 30 clamped to 3.667/);
    const tiny = tsneEmbedding(vectors.slice(0, 6), { seed: 1, iterations: 50 });
    expect(tiny.trustworthinessK).toBe(2);
    expect(tiny.warnings.join(' ')).toMatch(/k 5 clamped to 2/);
  });

  it('ignores vector length (directions only) and reports zero vectors instead of producing NaN', () => {
    const { vectors } = blobs(4, 5);
    // Powers of two scale exactly in floating point, so the unit vectors are bit-identical.
    const scaled = vectors.map((v, i) => Float32Array.from(v, (x) => x * 2 ** ((i % 4) - 1)));
    const a = tsneEmbedding(vectors, { perplexity: 3, seed: 1, iterations: 150 });
    const b = tsneEmbedding(scaled, { perplexity: 3, seed: 1, iterations: 150 });
    expect(b.points).toEqual(a.points);
    const withZero = [...vectors, new Float32Array(vectors[0].length)];
    const z = tsneEmbedding(withZero, { perplexity: 3, seed: 1, iterations: 150 });
    expect(z.zeroRows).toEqual([12]);
    expect(z.warnings.join(' ')).toMatch(/1 zero vector/);
    expect(z.points.flat().every(Number.isFinite)).toBe(true);
  });

  it('maps 4 nearly orthogonal high-dimensional vectors to finite points with a trustworthiness (perplexity 1, k 1)', () => {
    // Regression: random directions in 5000 dimensions are all at squared distance ≈ 2 ± 0.03, so
    // at perplexity 1 druid's β bisection underflowed every exp(−β·d) to 0 and divided by 0 (NaN map,
    // then trustworthiness threw on the NaN points).
    const rng = new SeededRandom(11);
    const vectors = Array.from({ length: 4 }, () => Float32Array.from({ length: 5000 }, () => rng.nextGaussian()));
    const result = tsneEmbedding(vectors, { seed: 0, iterations: 200 });
    expect(result.perplexityUsed).toBe(1);
    expect(result.points.flat().every(Number.isFinite)).toBe(true);
    expect(result.trustworthinessK).toBe(1);
    const unit = vectors.map((v) => {
      const n = Math.hypot(...v);
      return Float64Array.from(v, (x) => x / n);
    });
    expect(result.trustworthiness).toBeCloseTo(trustworthiness(unit, result.points, 1), 10);
    expect(result.warnings.join(' ')).toMatch(/perplexity 30 clamped to 1\.000 .*k 5 clamped to 1/);
  });

  it('gives finite points for every small n and dimension tried (n = 4…9, d = 3…3000, near-duplicates)', () => {
    const rng = new SeededRandom(12);
    for (const d of [3, 300, 3000]) {
      for (let n = 4; n <= 9; n++) {
        const base = Float32Array.from({ length: d }, () => rng.nextGaussian());
        const random = Array.from({ length: n }, () => Float32Array.from({ length: d }, () => rng.nextGaussian()));
        // Directions within 1e-3 of one another: distances ~1e-6, the other extreme of scale.
        const close = Array.from({ length: n }, () => Float32Array.from(base, (x) => x + 1e-3 * rng.nextGaussian()));
        for (const vectors of [random, close]) {
          const result = tsneEmbedding(vectors, { seed: n, iterations: 60 });
          expect(result.points.flat().every(Number.isFinite)).toBe(true);
          expect(result.trustworthiness).toBeGreaterThanOrEqual(0);
          expect(result.trustworthiness).toBeLessThanOrEqual(1);
          expect(result.perplexityUsed).toBeLessThanOrEqual((n - 1) / 3);
        }
      }
    }
  });

  it('raises a perplexity below 1 (unattainable) to 1 and says so', () => {
    const { vectors } = blobs(4);
    const result = tsneEmbedding(vectors, { perplexity: 0.5, seed: 1, iterations: 50 });
    expect(result.perplexityUsed).toBe(1);
    expect(result.warnings.join(' ')).toMatch(/perplexity 0.5 raised to 1/);
  });

  it('rejects too few vectors and bad options', () => {
    const { vectors } = blobs(4);
    expect(() => tsneEmbedding(vectors.slice(0, 3))).toThrow(/tsneEmbedding.*at least 4/);
    expect(() => tsneEmbedding(vectors, { perplexity: 0 })).toThrow(/perplexity/);
    expect(() => tsneEmbedding(vectors, { iterations: 1.5 })).toThrow(/iterations/);
  });
});
