import { assertVectors, gramMatrix, type VectorLike } from './vector-math';

export interface CosineSimilarityResult {
  /** n × n cosines in [−1, 1]; every entry in a zero vector's row and column is 0 (diagonal too). */
  matrix: number[][];
  /** Indices of the zero vectors (norm exactly 0), whose direction is undefined. */
  zeroRows: number[];
  /** The L2 norm of each vector. */
  norms: number[];
}

/**
 * Cosine similarity between every pair of vectors (batch or sample gradients), in float64.
 * A zero vector has no direction: its cosine with anything, itself included, is defined as 0 and
 * its index is listed in `zeroRows`, so a heat map shows it as neutral rather than as NaN.
 */
export function cosineSimilarityMatrix(vectors: readonly VectorLike[]): CosineSimilarityResult {
  assertVectors(vectors, 'grad-probe cosineSimilarityMatrix(vectors)');
  const gram = gramMatrix(vectors);
  const norms = gram.map((row, i) => Math.sqrt(row[i]));
  const zeroRows = norms.flatMap((norm, i) => (norm === 0 ? [i] : []));
  const matrix = gram.map((row, i) =>
    Array.from(row, (g, j) => {
      if (norms[i] === 0 || norms[j] === 0) return 0;
      if (i === j) return 1;
      // Rounding can push |cos| a hair past 1.
      return Math.max(-1, Math.min(1, g / (norms[i] * norms[j])));
    }),
  );
  return { matrix, zeroRows, norms };
}
