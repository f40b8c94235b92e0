// Float64 accumulation over Float32 gradient vectors: the GNS estimators subtract nearly equal
// quantities, so sums are kept in double precision throughout.

export type VectorLike = Float32Array | Float64Array | ArrayLike<number>;

export function dot(a: VectorLike, b: VectorLike): number {
  let s = 0;
  const n = a.length;
  for (let i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

export function squaredNorm(a: VectorLike): number {
  let s = 0;
  const n = a.length;
  for (let i = 0; i < n; i++) s += a[i] * a[i];
  return s;
}

/** Element-wise sum of equally long vectors, in float64. */
export function sumVectors(vectors: readonly VectorLike[]): Float64Array {
  const d = vectors[0].length;
  const sum = new Float64Array(d);
  for (const v of vectors) {
    for (let i = 0; i < d; i++) sum[i] += v[i];
  }
  return sum;
}

/**
 * Throws unless `vectors` is a non-empty list of equally long, finite numeric vectors.
 * `where` names the function and argument for the error message.
 */
export function assertVectors(vectors: readonly VectorLike[], where: string, minCount = 1): number {
  if (!Array.isArray(vectors)) {
    throw new Error(`${where}: expected an array of Float32Array vectors, got ${typeof vectors}`);
  }
  if (vectors.length < minCount) {
    throw new Error(`${where}: expected at least ${minCount} vector(s), got ${vectors.length}`);
  }
  const d = vectors[0]?.length;
  if (typeof d !== 'number' || d === 0) {
    throw new Error(`${where}: vector 0 must be a non-empty numeric array`);
  }
  vectors.forEach((v, i) => {
    if (v == null || v.length !== d) {
      throw new Error(`${where}: vector ${i} has length ${v?.length}, expected ${d} (all vectors must have the same length)`);
    }
    for (let j = 0; j < d; j++) {
      if (!Number.isFinite(v[j])) {
        throw new Error(`${where}: vector ${i} has a non-finite value (${v[j]}) at index ${j}`);
      }
    }
  });
  return d;
}

/** Gram matrix G[i][j] = v_i · v_j (symmetric, float64). */
export function gramMatrix(vectors: readonly VectorLike[]): Float64Array[] {
  const n = vectors.length;
  const gram = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const g = dot(vectors[i], vectors[j]);
      gram[i][j] = g;
      gram[j][i] = g;
    }
  }
  return gram;
}
