import type { GradientSegment } from './gradients';
import { assertVectors, type VectorLike } from './vector-math';

export interface GradientSNRSegment {
  name: string;
  meanGSNR: number | null;
  parameters: number;
}

export interface GradientSNR {
  /** Mean over parameters of mean²/variance of the per-sample gradient; null when no parameter varies. */
  meanGSNR: number | null;
  /** Parameters included in the mean (those with non-zero variance across samples). */
  parameters: number;
  /** Parameters left out because every sample gave them the same gradient. */
  zeroVarianceParameters: number;
  /** Number of per-sample gradients. */
  n: number;
  /** Per variable, when `segments` were given. */
  perSegment?: GradientSNRSegment[];
}

/**
 * Gradient signal-to-noise ratio (Liu et al. 2020): for each parameter j, r_j = ḡ_j² / s_j²,
 * with ḡ_j the mean and s_j² the unbiased (n − 1) variance over samples; reported as the mean of
 * r_j over the parameters whose variance is non-zero. Pass `segments` (from a full-dimension
 * GradientSet) to also get the mean per variable. Meaningless on projected vectors.
 */
export function gradientSNR(perSampleGrads: readonly VectorLike[], options: { segments?: readonly GradientSegment[] } = {}): GradientSNR {
  const d = assertVectors(perSampleGrads, 'grad-probe gradientSNR(perSampleGrads)', 2);
  const n = perSampleGrads.length;
  const { segments } = options;
  if (segments) {
    const total = segments.reduce((s, seg) => s + seg.size, 0);
    if (total !== d) {
      throw new Error(`grad-probe gradientSNR: options.segments cover ${total} parameters but the vectors have ${d} (projected vectors have no per-variable layout)`);
    }
  }
  const mean = new Float64Array(d);
  for (const g of perSampleGrads) for (let j = 0; j < d; j++) mean[j] += g[j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  // Two passes (mean first, then squared deviations) avoid the cancellation of E[x²] − E[x]².
  const sqDev = new Float64Array(d);
  for (const g of perSampleGrads) {
    for (let j = 0; j < d; j++) {
      const dev = g[j] - mean[j];
      sqDev[j] += dev * dev;
    }
  }
  const summarise = (from: number, to: number) => {
    let sum = 0;
    let count = 0;
    for (let j = from; j < to; j++) {
      const variance = sqDev[j] / (n - 1);
      if (variance > 0) {
        sum += (mean[j] * mean[j]) / variance;
        count++;
      }
    }
    return { meanGSNR: count > 0 ? sum / count : null, parameters: count };
  };
  const all = summarise(0, d);
  const result: GradientSNR = { meanGSNR: all.meanGSNR, parameters: all.parameters, zeroVarianceParameters: d - all.parameters, n };
  if (segments) {
    result.perSegment = segments.map((seg) => ({ name: seg.name, ...summarise(seg.offset, seg.offset + seg.size) }));
  }
  return result;
}
