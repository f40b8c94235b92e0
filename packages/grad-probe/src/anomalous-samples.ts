import { assertVectors, dot, squaredNorm, sumVectors, type VectorLike } from './vector-math';

export interface AnomalousSample {
  id: string | number;
  /** Position of the sample in the input. */
  index: number;
  /** Cosine between the sample's gradient and the mean gradient of all the other samples. */
  cosineToRest: number;
  /** (mean cosine − own cosine) / std of cosines: how much less aligned than typical. */
  cosineZScore: number;
  /** (own norm − mean norm) / std of norms. */
  normZScore: number;
  /** cosineZScore + normZScore: high when the gradient both disagrees and is large. */
  score: number;
}

function zScores(values: number[]): number[] {
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / n);
  return values.map((v) => (std > 0 ? (v - mean) / std : 0));
}

/**
 * Ranks samples by how much their gradient disagrees with the rest: the cosine to the
 * leave-one-out mean gradient (a mislabelled or corrupt sample pulls the other way) and the norm
 * z-score (it is also usually large). Both are turned into z-scores (population std) and added;
 * the `top` highest scores are returned with their ids. A zero gradient (or a zero leave-one-out
 * mean) has cosine 0. O(n·d).
 */
export function anomalousSamples(
  perSampleGrads: readonly VectorLike[],
  ids: readonly (string | number)[],
  options: { top?: number } = {},
): AnomalousSample[] {
  const where = 'grad-probe anomalousSamples';
  assertVectors(perSampleGrads, `${where}(perSampleGrads)`, 3);
  const n = perSampleGrads.length;
  if (!Array.isArray(ids) || ids.length !== n) {
    throw new Error(`${where}: ids must be an array with one id per gradient (${n}), got ${Array.isArray(ids) ? ids.length : typeof ids}`);
  }
  const { top = 5 } = options;
  if (!Number.isInteger(top) || top < 1) throw new Error(`${where}: options.top must be a positive integer, got ${top}`);

  const total = sumVectors(perSampleGrads);
  const totalSq = squaredNorm(total);
  const norms: number[] = [];
  const cosines: number[] = [];
  for (const g of perSampleGrads) {
    const gSq = squaredNorm(g);
    const gDotTotal = dot(g, total);
    // The rest is (total − g); its mean has the same direction, so the 1/(n−1) drops out.
    const dotRest = gDotTotal - gSq;
    const restSq = Math.max(0, totalSq - 2 * gDotTotal + gSq);
    const denom = Math.sqrt(gSq * restSq);
    norms.push(Math.sqrt(gSq));
    cosines.push(denom > 0 ? Math.max(-1, Math.min(1, dotRest / denom)) : 0);
  }
  const cosineZ = zScores(cosines).map((z) => -z);
  const normZ = zScores(norms);
  const ranked = perSampleGrads.map((_, i) => ({
    id: ids[i],
    index: i,
    cosineToRest: cosines[i],
    cosineZScore: cosineZ[i],
    normZScore: normZ[i],
    score: cosineZ[i] + normZ[i],
  }));
  ranked.sort((a, b) => b.score - a.score || a.index - b.index);
  return ranked.slice(0, top);
}
