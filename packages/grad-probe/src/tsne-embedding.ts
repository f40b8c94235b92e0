import { TSNE } from '@saehrimnir/druidjs';
import { maxTrustworthinessK, trustworthinessFromDistances } from './trustworthiness';
import { cosineSimilarityMatrix } from './cosine-similarity';
import { assertVectors, type VectorLike } from './vector-math';

export interface TsneOptions {
  /** Requested perplexity; clamped to (n − 1)/3 with a warning. Default 30. */
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
  /** sklearn trustworthiness of the map against the unit-normalised vectors, in [0, 1]. */
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
 * to druid as a precomputed squared-distance matrix. Perplexity above (n − 1)/3 makes the
 * neighbourhoods span more points than exist (bhtsne/openTSNE reject it), so it is clamped and
 * the result says so. Deterministic for a given seed (druid draws its initial layout from a seeded
 * generator); druid switches to its WASM kernel from 16 points, which may differ from the JS path
 * in the last bits.
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
  const perplexityUsed = Math.min(perplexity, maxPerplexity);
  if (perplexityUsed < perplexity) {
    warnings.push(`perplexity ${perplexity} clamped to ${perplexityUsed.toFixed(3)} = (n − 1)/3 for n = ${n} vectors`);
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

  const tsne = new TSNE(
    distances.map((row) => Array.from(row)),
    { perplexity: perplexityUsed, epsilon: learningRate, d: 2, metric: 'precomputed', seed: Math.floor(seed) },
  );
  const projection = tsne.transform(iterations) as number[][];
  const points = projection.map((row) => [row[0], row[1]] as [number, number]);

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
