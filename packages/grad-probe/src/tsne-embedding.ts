import { TSNE } from '@saehrimnir/druidjs';
import { maxTrustworthinessK, trustworthinessFromDistances } from './trustworthiness';
import { cosineSimilarityMatrix } from './cosine-similarity';
import { assertVectors, type VectorLike } from './vector-math';

export interface TsneOptions {
  /**
   * Requested perplexity; clamped into [1, (n − 1)/3] with a warning (see `tsneEmbedding` for why
   * the upper bound itself is allowed). Default 30.
   */
  perplexity?: number;
  /** Seed of the initial layout; same seed ⇒ same map. Default 0. */
  seed?: number;
  /** Gradient-descent iterations. Default 1000. */
  iterations?: number;
  /** Step size (druid.js `epsilon`). Default 10. */
  learningRate?: number;
  /** Neighbourhood size of the trustworthiness score; clamped below n/2. Default 5. */
  trustworthinessK?: number;
}

export interface TsneEmbedding {
  /** One [x, y] per input vector, in input order. */
  points: [number, number][];
  perplexityRequested: number;
  perplexityUsed: number;
  /** Human-readable notes: clamped perplexity, zero vectors, clamped k. */
  warnings: string[];
  /**
   * sklearn trustworthiness of the map against the unit-normalised vectors, in [0, 1]. Always
   * defined here: sklearn needs 1 ≤ k < n/2, and k = 1 satisfies that for every n ≥ 3.
   */
  trustworthiness: number;
  trustworthinessK: number;
  /** Indices of zero vectors (kept at the origin of the unit sphere's space, i.e. distance 1 from all). */
  zeroRows: number[];
  seed: number;
  iterations: number;
}

/**
 * t-SNE map of gradient directions with druid.js. Vectors are normalised to unit length first
 * (the map shows directions, not magnitudes), so the input distance is 2 − 2·cosine; it is handed
 * to druid as a precomputed squared-distance matrix.
 *
 * Perplexity is clamped to at most (n − 1)/3, the bound itself included: bhtsne (and the R/Java
 * ports) reject only N − 1 < 3·perplexity, and FIt-SNE / Multicore-TSNE lower a larger value to
 * exactly (N − 1)/3, because exact t-SNE's neighbourhoods are the 3·perplexity nearest points and
 * those must exist among the n − 1 others. A value strictly below the bound cannot be required:
 * for n = 4 the bound is 1, and a perplexity below 1 is unattainable (perplexity = e^H with the
 * entropy H ≥ 0), so druid's bisection would run β to 0 and return uniform neighbourhoods.
 * Requests below 1 are raised to 1 for the same reason.
 *
 * Each row i of the matrix handed to druid is shifted by its smallest off-diagonal distance. The
 * conditional probabilities p_{j|i} ∝ exp(−β·d_ij) and their entropy are unchanged by a per-row
 * shift, but druid evaluates exp(−β·d_ij) unshifted: for nearly orthogonal gradients (all
 * d_ij ≈ 2, typical in high dimension) and a small perplexity the bisection drives β past
 * ~745/d_min, every term underflows to 0, the row is divided by a zero sum and the map is NaN.
 * Shifted, the nearest point always keeps weight exp(0) = 1. druid reads the matrix only to build
 * P, so the asymmetric shifted matrix is fine (P is symmetrised afterwards).
 *
 * Deterministic for a given seed (druid draws its initial layout from a seeded generator); druid
 * switches to its WASM kernel from 16 points, which may differ from the JS path in the last bits.
 * Fewer than 4 vectors throw: (n − 1)/3 < 1 leaves no valid perplexity.
 */
export function tsneEmbedding(vectors: readonly VectorLike[], options: TsneOptions = {}): TsneEmbedding {
  const where = 'grad-probe tsneEmbedding';
  assertVectors(vectors, `${where}(vectors)`, 4);
  const { perplexity = 30, seed = 0, iterations = 1000, learningRate = 10, trustworthinessK = 5 } = options;
  if (!(Number.isFinite(perplexity) && perplexity > 0)) throw new Error(`${where}: options.perplexity must be a positive number, got ${perplexity}`);
  if (!Number.isFinite(seed)) throw new Error(`${where}: options.seed must be a finite number, got ${seed}`);
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`${where}: options.iterations must be a positive integer, got ${iterations}`);
  if (!(Number.isFinite(learningRate) && learningRate > 0)) throw new Error(`${where}: options.learningRate must be a positive number, got ${learningRate}`);
  if (!Number.isInteger(trustworthinessK) || trustworthinessK < 1) throw new Error(`${where}: options.trustworthinessK must be a positive integer, got ${trustworthinessK}`);

  const n = vectors.length;
  const warnings: string[] = [];
  const maxPerplexity = (n - 1) / 3;
  const perplexityUsed = Math.min(Math.max(perplexity, 1), maxPerplexity);
  if (perplexityUsed < perplexity) {
    warnings.push(`perplexity ${perplexity} clamped to ${perplexityUsed.toFixed(3)} = (n − 1)/3 for n = ${n} vectors`);
  } else if (perplexityUsed > perplexity) {
    warnings.push(`perplexity ${perplexity} raised to 1 (a perplexity below 1 is unattainable)`);
  }

  const { matrix: cosines, norms, zeroRows } = cosineSimilarityMatrix(vectors);
  if (zeroRows.length > 0) {
    warnings.push(`${zeroRows.length} zero vector(s) have no direction (indices ${zeroRows.join(', ')}); they sit at distance 1 from every unit vector`);
  }
  // Squared distances ‖u_i − u_j‖² between unit vectors; a zero vector stays at the origin (its
  // cosines are 0, see cosineSimilarityMatrix).
  const unitSq = norms.map((norm) => (norm > 0 ? 1 : 0));
  const distances = cosines.map((row, i) =>
    Float64Array.from(row, (cos, j) => (i === j ? 0 : Math.max(0, unitSq[i] + unitSq[j] - 2 * cos))),
  );

  // Row-wise shift by the nearest distance: same p_{j|i}, no underflow in druid (see above).
  const shifted = distances.map((row, i) => {
    let nearest = Infinity;
    row.forEach((d, j) => {
      if (j !== i && d < nearest) nearest = d;
    });
    return Array.from(row, (d, j) => (j === i ? 0 : d - nearest));
  });
  const tsne = new TSNE(
    shifted,
    { perplexity: perplexityUsed, epsilon: learningRate, d: 2, metric: 'precomputed', seed: Math.floor(seed) },
  );
  const projection = tsne.transform(iterations) as number[][];
  const points = projection.map((row) => [row[0], row[1]] as [number, number]);
  if (!points.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y))) {
    // Not expected after the shift above; fail here with the cause rather than in trustworthiness.
    throw new Error(`${where}: druid.js t-SNE returned non-finite points for n = ${n}, perplexity ${perplexityUsed}, learningRate ${learningRate}`);
  }

  const kMax = maxTrustworthinessK(n);
  const k = Math.min(trustworthinessK, kMax);
  if (k < trustworthinessK) warnings.push(`trustworthiness k ${trustworthinessK} clamped to ${k} (sklearn requires k < n/2)`);
  const score = trustworthinessFromDistances(distances, points, k);

  return {
    points,
    perplexityRequested: perplexity,
    perplexityUsed,
    warnings,
    trustworthiness: score,
    trustworthinessK: k,
    zeroRows,
    seed: Math.floor(seed),
    iterations,
  };
}
