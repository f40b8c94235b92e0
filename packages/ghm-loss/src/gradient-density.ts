import * as tf from '@tensorflow/tfjs-core';

/** Plain-JSON snapshot of a GHM loss after its latest call (see README "Reading stats()"). */
export interface GHMStats {
  /** Bin edges as float32 values: i / bins, last edge + 1e-6 (GHM-R: 1e3). Length bins + 1. */
  edges: number[];
  /** Valid samples (elements for GHM-C / GHM-R) that fell in each bin in the latest call. */
  counts: number[];
  /** EMA of the counts (momentum > 0) after the latest call; all zeros when momentum is 0. */
  accumulator: number[];
  /** GHM weight given to every sample of bin i in the latest call (0 where the bin was empty). */
  binWeights: number[];
  /** Non-empty bins in the latest call (the `n` the weights were divided by). */
  nonEmptyBins: number;
  /**
   * Mean GHM weight given to the samples that fell in bin i, over all calls since construction or
   * reset(): Σ counts·binWeights / Σ counts (0 where no sample ever fell in the bin).
   */
  meanWeightPerBin: number[];
  /** Samples that fell in each bin, summed over all calls since construction or reset(). */
  cumulativeCounts: number[];
  /** The normaliser `tot` of the latest call: max(#valid, 1) (GHM-R: max(Σ weights, 1)). */
  total: number;
  /** Calls that updated the state since construction or reset(). */
  calls: number;
}

/** Serialisable state so that a checkpointed run can resume with the same EMA. */
export interface GHMStateJSON {
  accumulator: number[];
  calls: number;
  /** Running per-bin totals behind `stats().cumulativeCounts` / `meanWeightPerBin` (absent in older JSON: zeros). */
  cumulativeCounts?: number[];
  cumulativeWeighted?: number[];
}

/**
 * float32 bin edges i / bins with the last edge raised to `lastEdge`, as mmdetection builds them
 * (`torch.arange(bins + 1).float() / bins` is float32 arithmetic, so we round through Math.fround).
 */
export function binEdges(bins: number, lastEdge: number): Float32Array {
  const edges = new Float32Array(bins + 1);
  for (let i = 0; i <= bins; i++) edges[i] = i / bins;
  edges[bins] = lastEdge;
  return edges;
}

export function checkBins(owner: string, bins: unknown): number {
  if (typeof bins !== 'number' || !Number.isInteger(bins) || bins < 1) {
    throw new Error(`${owner}: option "bins" must be an integer >= 1, got ${String(bins)}`);
  }
  return bins;
}

export function checkMomentum(owner: string, momentum: unknown): number {
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum < 1)) {
    throw new Error(`${owner}: option "momentum" must be a number in [0, 1), got ${String(momentum)}`);
  }
  return momentum;
}

export function checkLossWeight(owner: string, lossWeight: unknown): number {
  if (typeof lossWeight !== 'number' || !Number.isFinite(lossWeight)) {
    throw new Error(`${owner}: option "lossWeight" must be a finite number, got ${String(lossWeight)}`);
  }
  return lossWeight;
}

/**
 * The gradient-density state shared by GHMC, GHMSoftmax and GHMR: bin edges, the EMA accumulator and
 * the latest call's statistics. Everything lives in non-trainable tf.Variables so that a loss call
 * never waits for the device; only stats() / toJSON() read values back to the host.
 */
export class GradientDensity {
  readonly edges: Float32Array;
  private calls = 0;
  private vars: {
    accumulator: tf.Variable;
    counts: tf.Variable;
    binWeights: tf.Variable;
    cumulativeCounts: tf.Variable;
    cumulativeWeighted: tf.Variable;
    total: tf.Variable;
  } | null = null;
  private pendingState: GHMStateJSON | null = null;

  constructor(
    readonly bins: number,
    readonly momentum: number,
    lastEdge: number,
  ) {
    this.edges = binEdges(bins, lastEdge);
  }

  /** Created on first use, not in the constructor, so that the caller may pick a backend first. */
  private variables() {
    if (this.vars === null) {
      const zeros = () => tf.tidy(() => tf.variable(tf.zeros([this.bins]), false));
      this.vars = {
        accumulator: zeros(),
        counts: zeros(),
        binWeights: zeros(),
        cumulativeCounts: zeros(),
        cumulativeWeighted: zeros(),
        total: tf.tidy(() => tf.variable(tf.scalar(0), false)),
      };
      if (this.pendingState !== null) {
        const { accumulator, cumulativeCounts, cumulativeWeighted } = this.pendingState;
        const vars = this.vars;
        tf.tidy(() => {
          vars.accumulator.assign(tf.tensor1d(accumulator, 'float32'));
          if (cumulativeCounts) vars.cumulativeCounts.assign(tf.tensor1d(cumulativeCounts, 'float32'));
          if (cumulativeWeighted) vars.cumulativeWeighted.assign(tf.tensor1d(cumulativeWeighted, 'float32'));
        });
        this.pendingState = null;
      }
    }
    return this.vars;
  }

  /**
   * Per-element factor w / tot for the harmonized loss Σ (w / tot) · L, computed from the detached
   * gradient norm `g` (flat, float32) and the per-element `weights` (flat; > 0 marks valid).
   * `totFromWeightSum` selects GHM-R's tot = max(Σ weights, 1) instead of max(#valid, 1).
   * Must run where no gradient is recorded (inside a customGrad forward pass): the state updates are
   * side effects.
   */
  factors(g: tf.Tensor1D, weights: tf.Tensor1D, totFromWeightSum: boolean, update: boolean): tf.Tensor1D {
    const vars = this.variables();
    const previous = vars.accumulator as tf.Tensor as tf.Tensor1D;
    const bins = this.bins;
    // mmdetection bins with `g >= edges[i] & g < edges[i + 1]` over a loop of bins. Here each element
    // gets its bin index directly, floor(g · bins), corrected by one comparison with the float32
    // edges on each side so that the result is exactly mmdetection's; the counts come from a
    // bincount. O(K) work, no [K, bins] broadcast and no readback to the host.
    const lowerEdges = tf.tensor1d(this.edges.subarray(0, bins), 'float32');
    const upperEdges = tf.tensor1d(this.edges.subarray(1), 'float32');
    const guess = tf.clipByValue(tf.cast(tf.floor(tf.mul(g, bins)), 'int32'), 0, bins - 1) as tf.Tensor1D;
    const index = tf.add(
      tf.sub(guess, tf.cast(tf.less(g, tf.gather(lowerEdges, guess)), 'int32')),
      tf.cast(tf.greaterEqual(g, tf.gather(upperEdges, guess)), 'int32'),
    ) as tf.Tensor1D;
    // g outside [edges[0], edges[bins]) (negative, NaN, or ≥ the last edge) belongs to no bin.
    const inRange = tf.logicalAnd(tf.greaterEqual(g, this.edges[0]), tf.less(g, this.edges[bins]));
    const valid = tf.logicalAnd(tf.greater(weights, 0), inRange);
    const validF = tf.cast(valid, 'float32') as tf.Tensor1D;
    const safeIndex = tf.clipByValue(index, 0, bins - 1) as tf.Tensor1D;
    const counts = tf.denseBincount(safeIndex, validF, bins);
    const total = tf.maximum(
      totFromWeightSum ? tf.sum(tf.where(tf.greater(weights, 0), weights, tf.zerosLike(weights))) : tf.sum(validF),
      1,
    ) as tf.Scalar;
    const nonEmpty = tf.greater(counts, 0);
    let density: tf.Tensor1D = counts;
    let accumulator: tf.Tensor1D | null = null;
    if (this.momentum > 0) {
      // mmdetection updates the EMA only for bins that received samples in this call.
      const m = this.momentum;
      accumulator = tf.where(nonEmpty, tf.add(tf.mul(previous, m), tf.mul(counts, 1 - m)), previous);
      density = accumulator;
    }
    const nonEmptyBins = tf.maximum(tf.sum(tf.cast(nonEmpty, 'float32')), 1);
    // The maximum() only guards the branch that where() discards (empty bins), so no inf is made.
    const binWeights = tf.div(
      tf.where(nonEmpty, tf.div(total, tf.maximum(density, 1e-12)), tf.zerosLike(density)),
      nonEmptyBins,
    ) as tf.Tensor1D;
    const perElement = tf.mul(tf.gather(binWeights, safeIndex), validF) as tf.Tensor1D;
    if (update) {
      if (accumulator !== null) vars.accumulator.assign(accumulator);
      vars.counts.assign(counts);
      vars.binWeights.assign(binWeights);
      vars.total.assign(total);
      vars.cumulativeCounts.assign(tf.add(vars.cumulativeCounts, counts));
      vars.cumulativeWeighted.assign(tf.add(vars.cumulativeWeighted, tf.mul(counts, binWeights)));
      this.calls += 1;
    }
    return tf.div(perElement, total);
  }

  stats(): GHMStats {
    const edges = Array.from(this.edges);
    const zeros = () => new Array<number>(this.bins).fill(0);
    if (this.vars === null) {
      const accumulator = this.pendingState ? [...this.pendingState.accumulator] : zeros();
      return {
        edges,
        counts: zeros(),
        accumulator,
        binWeights: zeros(),
        nonEmptyBins: 0,
        meanWeightPerBin: zeros(),
        cumulativeCounts: zeros(),
        total: 0,
        calls: this.calls,
      };
    }
    const v = this.vars;
    const counts = Array.from(v.counts.dataSync());
    const cumulativeCounts = Array.from(v.cumulativeCounts.dataSync());
    const cumulativeWeighted = v.cumulativeWeighted.dataSync();
    return {
      edges,
      counts,
      accumulator: Array.from(v.accumulator.dataSync()),
      binWeights: Array.from(v.binWeights.dataSync()),
      nonEmptyBins: counts.filter((c) => c > 0).length,
      meanWeightPerBin: cumulativeCounts.map((c, i) => (c > 0 ? cumulativeWeighted[i] / c : 0)),
      cumulativeCounts,
      total: v.total.dataSync()[0],
      calls: this.calls,
    };
  }

  reset(): void {
    if (this.vars !== null) {
      for (const v of Object.values(this.vars)) v.dispose();
      this.vars = null;
    }
    this.pendingState = null;
    this.calls = 0;
  }

  dispose(): void {
    this.reset();
  }

  toJSON(): GHMStateJSON {
    if (this.vars !== null) {
      return {
        accumulator: Array.from(this.vars.accumulator.dataSync()),
        calls: this.calls,
        cumulativeCounts: Array.from(this.vars.cumulativeCounts.dataSync()),
        cumulativeWeighted: Array.from(this.vars.cumulativeWeighted.dataSync()),
      };
    }
    if (this.pendingState !== null) return structuredClone(this.pendingState);
    const zeros = () => new Array<number>(this.bins).fill(0);
    return { accumulator: zeros(), calls: this.calls, cumulativeCounts: zeros(), cumulativeWeighted: zeros() };
  }

  /** Restores the EMA accumulator, call count and running per-bin totals (the latest call's own statistics are not restored). */
  load(owner: string, state: GHMStateJSON): void {
    if (
      state === null ||
      typeof state !== 'object' ||
      !Array.isArray(state.accumulator) ||
      state.accumulator.length !== this.bins ||
      !state.accumulator.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)
    ) {
      throw new Error(`${owner}.fromJSON: field "state.accumulator" must be ${this.bins} finite non-negative numbers`);
    }
    if (typeof state.calls !== 'number' || !Number.isInteger(state.calls) || state.calls < 0) {
      throw new Error(`${owner}.fromJSON: field "state.calls" must be a non-negative integer`);
    }
    for (const field of ['cumulativeCounts', 'cumulativeWeighted'] as const) {
      const values = state[field];
      if (values === undefined) continue;
      if (!Array.isArray(values) || values.length !== this.bins || !values.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)) {
        throw new Error(`${owner}.fromJSON: field "state.${field}" must be ${this.bins} finite non-negative numbers`);
      }
    }
    this.reset();
    this.pendingState = {
      accumulator: [...state.accumulator],
      calls: state.calls,
      ...(state.cumulativeCounts ? { cumulativeCounts: [...state.cumulativeCounts] } : {}),
      ...(state.cumulativeWeighted ? { cumulativeWeighted: [...state.cumulativeWeighted] } : {}),
    };
    this.calls = state.calls;
  }
}
