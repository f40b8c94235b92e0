import { SeededRandom } from './seeded-random';
import { assertVectors, gramMatrix, squaredNorm, sumVectors, type VectorLike } from './vector-math';

/** A 95 % interval; for `bSimple`, null stands for +∞ (see GNSEstimate.bSimple). */
export interface GNSInterval {
  low: number | null;
  high: number | null;
}

export interface GNSBootstrap {
  trSigma: GNSInterval;
  gSquared: GNSInterval;
  bSimple: GNSInterval;
  replicates: number;
  seed: number;
  /** How many replicates had |G|² ≤ 0 (their B_simple counts as +∞ in the percentiles). */
  nonPositiveGSquared: number;
}

/**
 * The gradient noise scale B_simple = tr(Σ)/|G|² of McCandlish et al. (2018), dimensionless:
 * roughly the batch size above which larger batches stop paying off.
 */
export interface GNSEstimate {
  method: 'per-sample' | 'two-batch';
  /** per-sample: number of per-sample gradients; two-batch: the big batch size. */
  n: number;
  /** Unbiased estimate of tr(Σ), the summed per-parameter variance of one sample's gradient. */
  trSigma: number;
  /** Unbiased estimate of |G|², the squared norm of the true (full-data) gradient. Can be ≤ 0. */
  gSquared: number;
  /** tr(Σ)/|G|², or null when |G|² ≤ 0 (the ratio is then undefined; read it as +∞). Never NaN. */
  bSimple: number | null;
  /** True when the |G|² estimate is ≤ 0 (noise swamps the signal at this sample size). */
  negativeGSquared: boolean;
  /** Percentile bootstrap over samples (per-sample method only; null otherwise or when disabled). */
  ci95: GNSBootstrap | null;
}

export interface GradientNoiseScaleOptions {
  /** Bootstrap replicates for ci95; 0 disables it. Default 1000. */
  bootstrap?: number;
  /** Seed of the bootstrap resampling. Default 0. */
  seed?: number;
}

function ratio(trSigma: number, gSquared: number): number | null {
  return gSquared > 0 ? trSigma / gSquared : null;
}

/** The estimate record shared by both estimators: the ratio is null, never NaN, when |G|² ≤ 0. */
function estimate(method: GNSEstimate['method'], n: number, trSigma: number, gSquared: number, ci95: GNSBootstrap | null): GNSEstimate {
  return { method, n, trSigma, gSquared, bSimple: ratio(trSigma, gSquared), negativeGSquared: !(gSquared > 0), ci95 };
}

/** Unbiased estimators from B per-sample gradients (DESIGN.md, McCandlish et al. App. A). */
function perSampleMoments(meanSampleNormSq: number, meanGradientNormSq: number, n: number): { trSigma: number; gSquared: number } {
  return {
    trSigma: (n / (n - 1)) * (meanSampleNormSq - meanGradientNormSq),
    gSquared: (n * meanGradientNormSq - meanSampleNormSq) / (n - 1),
  };
}

/** numpy-style linear-interpolation percentile of a sorted array; +∞ propagates. */
function percentile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const frac = pos - lo;
  if (frac === 0 || lo === hi) return sorted[lo];
  if (!Number.isFinite(sorted[lo]) || !Number.isFinite(sorted[hi])) return Infinity;
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

function interval(values: number[]): GNSInterval {
  const sorted = [...values].sort((a, b) => a - b);
  const finiteOrNull = (x: number) => (Number.isFinite(x) ? x : null);
  return { low: finiteOrNull(percentile(sorted, 0.025)), high: finiteOrNull(percentile(sorted, 0.975)) };
}

/**
 * Gradient noise scale from per-sample gradients g_1..g_n (n ≥ 2), with mean ḡ:
 *   tr(Σ) = n/(n−1)·(mean‖g_i‖² − ‖ḡ‖²),  |G|² = (n‖ḡ‖² − mean‖g_i‖²)/(n−1),  B_simple = tr(Σ)/|G|².
 * Both estimators are unbiased; their ratio is not, and it is undefined when |G|² ≤ 0, which
 * happens on small, noisy data: then `bSimple` is null and `negativeGSquared` is true.
 *
 * Pass per-sample gradients. Mean gradients of batches of b samples (e.g. `batchGradients` at
 * batch 4) are also i.i.d. draws, but with covariance Σ/b: the estimator then returns tr(Σ)/b and a
 * B_simple b times too small. For those, use `gradientNoiseScaleTwoBatch` (small = the batch
 * gradients, big = their mean) or multiply `trSigma` by b.
 *
 * ci95 resamples the n gradients with replacement. It works on the n × n Gram matrix, so the
 * cost is O(n²·d) once plus O(n²) per replicate. Projected gradients (RandomProjection) keep
 * inner products in expectation, so the estimators stay unbiased on them.
 */
export function gradientNoiseScale(perSampleGrads: readonly VectorLike[], options: GradientNoiseScaleOptions = {}): GNSEstimate {
  const where = 'grad-probe gradientNoiseScale(perSampleGrads)';
  assertVectors(perSampleGrads, where, 2);
  const { bootstrap = 1000, seed = 0 } = options;
  if (!Number.isInteger(bootstrap) || bootstrap < 0) {
    throw new Error(`grad-probe gradientNoiseScale: options.bootstrap must be a non-negative integer, got ${bootstrap}`);
  }
  const n = perSampleGrads.length;

  let meanSampleNormSq: number;
  let meanGradientNormSq: number;
  let gram: Float64Array[] | null = null;
  if (bootstrap > 0) {
    gram = gramMatrix(perSampleGrads);
    let diag = 0;
    let total = 0;
    for (let i = 0; i < n; i++) {
      diag += gram[i][i];
      for (let j = 0; j < n; j++) total += gram[i][j];
    }
    meanSampleNormSq = diag / n;
    meanGradientNormSq = total / (n * n);
  } else {
    meanSampleNormSq = perSampleGrads.reduce((s, g) => s + squaredNorm(g), 0) / n;
    meanGradientNormSq = squaredNorm(sumVectors(perSampleGrads)) / (n * n);
  }
  const { trSigma, gSquared } = perSampleMoments(meanSampleNormSq, meanGradientNormSq, n);

  let ci95: GNSBootstrap | null = null;
  if (gram) {
    const rng = new SeededRandom(seed);
    const counts = new Float64Array(n);
    const trs: number[] = [];
    const gs: number[] = [];
    const bs: number[] = [];
    let nonPositive = 0;
    for (let r = 0; r < bootstrap; r++) {
      counts.fill(0);
      for (let i = 0; i < n; i++) counts[rng.nextInt(n)] += 1;
      let diag = 0;
      let total = 0;
      for (let i = 0; i < n; i++) {
        const ci = counts[i];
        if (ci === 0) continue;
        diag += ci * gram[i][i];
        let row = 0;
        for (let j = 0; j < n; j++) row += counts[j] * gram[i][j];
        total += ci * row;
      }
      const m = perSampleMoments(diag / n, total / (n * n), n);
      trs.push(m.trSigma);
      gs.push(m.gSquared);
      if (m.gSquared <= 0) nonPositive++;
      bs.push(m.gSquared > 0 ? m.trSigma / m.gSquared : Infinity);
    }
    ci95 = {
      trSigma: interval(trs),
      gSquared: interval(gs),
      bSimple: interval(bs),
      replicates: bootstrap,
      seed,
      nonPositiveGSquared: nonPositive,
    };
  }

  return estimate('per-sample', n, trSigma, gSquared, ci95);
}

export interface TwoBatchInput {
  smallBatchSize: number;
  bigBatchSize: number;
  /** ‖G_small‖² of one or more small-batch mean gradients (averaged before use). */
  smallNormsSq: readonly number[];
  /** ‖G_big‖² of the big-batch mean gradient. */
  bigNormSq: number;
}

/**
 * The two-point unbiased estimators of McCandlish et al. (2018, App. A.1), from the squared norms
 * of mean gradients over batches of two sizes b < B:
 *   |G|² = (B‖G_B‖² − b‖G_b‖²)/(B − b),  tr(Σ) = (‖G_b‖² − ‖G_B‖²)/(1/b − 1/B).
 * With b = 1 and the per-sample norms this reduces exactly to `gradientNoiseScale`.
 * No interval is computed (ci95 is null): one big batch gives no spread to resample.
 */
export function gradientNoiseScaleTwoBatch(input: TwoBatchInput): GNSEstimate {
  const where = 'grad-probe gradientNoiseScaleTwoBatch';
  if (input == null || typeof input !== 'object') throw new Error(`${where}: expected an options object`);
  const { smallBatchSize: b, bigBatchSize: B, smallNormsSq, bigNormSq } = input;
  if (!(Number.isFinite(b) && b > 0)) throw new Error(`${where}: smallBatchSize must be a positive number, got ${b}`);
  if (!(Number.isFinite(B) && B > b)) throw new Error(`${where}: bigBatchSize must be a number larger than smallBatchSize (${b}), got ${B}`);
  if (!Array.isArray(smallNormsSq) || smallNormsSq.length === 0 || !smallNormsSq.every((x) => Number.isFinite(x) && x >= 0)) {
    throw new Error(`${where}: smallNormsSq must be a non-empty array of finite non-negative numbers`);
  }
  if (!(Number.isFinite(bigNormSq) && bigNormSq >= 0)) throw new Error(`${where}: bigNormSq must be a finite non-negative number, got ${bigNormSq}`);
  const smallNormSq = smallNormsSq.reduce((s, x) => s + x, 0) / smallNormsSq.length;
  const gSquared = (B * bigNormSq - b * smallNormSq) / (B - b);
  const trSigma = (smallNormSq - bigNormSq) / (1 / b - 1 / B);
  return estimate('two-batch', B, trSigma, gSquared, null);
}

export interface GNSHistoryEntry {
  /** The caller's step label (e.g. epoch); defaults to the update count. */
  step: number;
  trSigma: number;
  gSquared: number;
  bSimple: number | null;
  bSimpleLow: number | null;
  bSimpleHigh: number | null;
  negativeGSquared: boolean;
  trSigmaEma: number;
  gSquaredEma: number;
  bSimpleEma: number | null;
}

export interface GNSTrackerStats {
  decay: number;
  updates: number;
  trSigmaEma: number;
  gSquaredEma: number;
  /** Ratio of the two EMAs (null when the |G|² EMA is ≤ 0 or nothing was recorded). */
  bSimple: number | null;
  negativeGSquared: boolean;
  last: GNSHistoryEntry | null;
}

export interface GNSTrackerJSON {
  decay: number;
  updates: number;
  trSigmaAccumulator: number;
  gSquaredAccumulator: number;
  history: GNSHistoryEntry[];
}

/**
 * Exponential moving averages of tr(Σ) and |G|² kept separately (averaging the ratio would be
 * biased and blow up whenever |G|² nears 0), with Adam-style bias correction (divide by 1 − decayᵗ)
 * so early values are not pulled towards 0. The correction cancels in the ratio.
 */
export class GNSTracker {
  readonly decay: number;
  private updates = 0;
  private trSigmaAccumulator = 0;
  private gSquaredAccumulator = 0;
  private readonly history: GNSHistoryEntry[] = [];

  constructor(options: { decay?: number } = {}) {
    const { decay = 0.9 } = options;
    if (!(Number.isFinite(decay) && decay >= 0 && decay < 1)) {
      throw new Error(`grad-probe GNSTracker: options.decay must be in [0, 1), got ${decay}`);
    }
    this.decay = decay;
  }

  update(estimate: Pick<GNSEstimate, 'trSigma' | 'gSquared'> & Partial<GNSEstimate>, step?: number): this {
    if (estimate == null || !Number.isFinite(estimate.trSigma) || !Number.isFinite(estimate.gSquared)) {
      throw new Error('grad-probe GNSTracker.update: estimate must have finite trSigma and gSquared');
    }
    if (step !== undefined && !Number.isFinite(step)) {
      throw new Error(`grad-probe GNSTracker.update: step must be a finite number, got ${step}`);
    }
    this.updates += 1;
    this.trSigmaAccumulator = this.decay * this.trSigmaAccumulator + (1 - this.decay) * estimate.trSigma;
    this.gSquaredAccumulator = this.decay * this.gSquaredAccumulator + (1 - this.decay) * estimate.gSquared;
    const { trSigmaEma, gSquaredEma } = this.emas();
    this.history.push({
      step: step ?? this.updates,
      trSigma: estimate.trSigma,
      gSquared: estimate.gSquared,
      bSimple: ratio(estimate.trSigma, estimate.gSquared),
      bSimpleLow: estimate.ci95?.bSimple.low ?? null,
      bSimpleHigh: estimate.ci95?.bSimple.high ?? null,
      negativeGSquared: !(estimate.gSquared > 0),
      trSigmaEma,
      gSquaredEma,
      bSimpleEma: ratio(trSigmaEma, gSquaredEma),
    });
    return this;
  }

  stats(): GNSTrackerStats {
    const { trSigmaEma, gSquaredEma } = this.emas();
    return {
      decay: this.decay,
      updates: this.updates,
      trSigmaEma,
      gSquaredEma,
      bSimple: this.updates > 0 ? ratio(trSigmaEma, gSquaredEma) : null,
      negativeGSquared: this.updates > 0 && !(gSquaredEma > 0),
      last: this.history.length > 0 ? { ...this.history[this.history.length - 1] } : null,
    };
  }

  toJSON(): GNSTrackerJSON {
    return {
      decay: this.decay,
      updates: this.updates,
      trSigmaAccumulator: this.trSigmaAccumulator,
      gSquaredAccumulator: this.gSquaredAccumulator,
      history: this.history.map((h) => ({ ...h })),
    };
  }

  /** Restores a tracker saved with toJSON (e.g. when a run resumes). */
  static fromJSON(json: GNSTrackerJSON): GNSTracker {
    if (json == null || !Number.isInteger(json.updates) || !Array.isArray(json.history)) {
      throw new Error('grad-probe GNSTracker.fromJSON: expected the object produced by GNSTracker.toJSON()');
    }
    const tracker = new GNSTracker({ decay: json.decay });
    tracker.updates = json.updates;
    tracker.trSigmaAccumulator = json.trSigmaAccumulator;
    tracker.gSquaredAccumulator = json.gSquaredAccumulator;
    tracker.history.push(...json.history.map((h) => ({ ...h })));
    return tracker;
  }

  private emas(): { trSigmaEma: number; gSquaredEma: number } {
    if (this.updates === 0) return { trSigmaEma: 0, gSquaredEma: 0 };
    const correction = 1 - this.decay ** this.updates;
    return { trSigmaEma: this.trSigmaAccumulator / correction, gSquaredEma: this.gSquaredAccumulator / correction };
  }
}
