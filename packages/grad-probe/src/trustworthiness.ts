import { assertVectors, type VectorLike } from './vector-math';

function squaredDistances(points: readonly VectorLike[], where: string): Float64Array[] {
  const n = points.length;
  const d = assertVectors(points, where);
  const dist = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      const a = points[i];
      const b = points[j];
      for (let c = 0; c < d; c++) {
        const diff = a[c] - b[c];
        s += diff * diff;
      }
      dist[i][j] = s;
      dist[j][i] = s;
    }
  }
  return dist;
}

/** The other points ordered by increasing distance from i; ties go to the lower index. */
function neighbourOrder(dist: Float64Array[], i: number): number[] {
  const others: number[] = [];
  for (let j = 0; j < dist.length; j++) if (j !== i) others.push(j);
  return others.sort((a, b) => dist[i][a] - dist[i][b] || a - b);
}

/** Largest k that sklearn accepts for n points (it requires k < n / 2). */
export function maxTrustworthinessK(n: number): number {
  return Math.ceil(n / 2) - 1;
}

/**
 * Trustworthiness from precomputed squared distances in the original space (the ranking is what
 * matters, so squared or not makes no difference). See `trustworthiness`.
 */
export function trustworthinessFromDistances(highSquaredDistances: Float64Array[], low: readonly VectorLike[], k: number): number {
  const where = 'grad-probe trustworthiness';
  const n = highSquaredDistances.length;
  if (low.length !== n) throw new Error(`${where}: high has ${n} points but low has ${low.length}`);
  if (!Number.isInteger(k) || k < 1 || k >= n / 2) {
    throw new Error(`${where}: k must be an integer with 1 ≤ k < n/2 = ${n / 2} (sklearn's condition), got ${k}`);
  }
  const lowDist = squaredDistances(low, `${where}(low)`);
  let penalty = 0;
  for (let i = 0; i < n; i++) {
    const rank = new Int32Array(n);
    neighbourOrder(highSquaredDistances, i).forEach((j, r) => {
      rank[j] = r + 1;
    });
    for (const j of neighbourOrder(lowDist, i).slice(0, k)) {
      penalty += Math.max(0, rank[j] - k);
    }
  }
  return 1 - (2 / (n * k * (2 * n - 3 * k - 1))) * penalty;
}

/**
 * Trustworthiness of an embedding, scikit-learn's definition (sklearn.manifold.trustworthiness,
 * Euclidean metric, Venna & Kaski 2001):
 *   T(k) = 1 − 2 / (n·k·(2n − 3k − 1)) · Σ_i Σ_{j ∈ N_i^k} max(0, r(i, j) − k)
 * where N_i^k are the k nearest neighbours of i in the embedding and r(i, j) is the rank of j
 * among i's neighbours in the original space (1 = nearest). 1 means every embedded neighbour
 * is a true neighbour. Ties are broken by index (sklearn's are arbitrary). Requires k < n/2.
 */
export function trustworthiness(high: readonly VectorLike[], low: readonly VectorLike[], k = 5): number {
  const where = 'grad-probe trustworthiness';
  if (!Array.isArray(high) || !Array.isArray(low) || high.length < 3) {
    throw new Error(`${where}: high and low must be arrays of at least 3 points`);
  }
  return trustworthinessFromDistances(squaredDistances(high, `${where}(high)`), low, k);
}
