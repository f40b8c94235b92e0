import * as tf from '@tensorflow/tfjs-core';
import { GradientDensity, checkBins, checkLossWeight, checkMomentum } from './gradient-density';
import type { GHMStateJSON, GHMStats } from './gradient-density';
import type { GHMLossCallOptions } from './ghm-softmax';
import { harmonizedFactors } from './harmonize';
import { checkTensor, elementWeights, sameShape } from './tensor-checks';

export interface GHMROptions {
  /** Authentic smooth-L1 parameter μ. Default 0.02. */
  mu?: number;
  /** Number of bins over g ∈ [0, 1); the last edge is 1e3. Default 10. */
  bins?: number;
  /** EMA momentum of the per-bin counts; 0 (mmdetection's default) uses this batch's counts. */
  momentum?: number;
  /** Multiplies the loss. Default 1. */
  lossWeight?: number;
}

export interface GHMRJSON {
  type: 'GHMR';
  config: Required<GHMROptions>;
  state: GHMStateJSON;
}

/**
 * GHM-R (mmdetection `GHMR`): ASL1 = sqrt(d² + μ²) − μ with d = pred − target,
 * g = |d| / sqrt(d² + μ²); loss = lossWeight · Σ w · ASL1 / tot with tot = max(Σ weights, 1).
 */
export class GHMR {
  readonly mu: number;
  readonly bins: number;
  readonly momentum: number;
  readonly lossWeight: number;
  private readonly density: GradientDensity;

  constructor({ mu = 0.02, bins = 10, momentum = 0, lossWeight = 1 }: GHMROptions = {}) {
    if (typeof mu !== 'number' || !(mu > 0) || !Number.isFinite(mu)) {
      throw new Error(`GHMR: option "mu" must be a finite number > 0, got ${String(mu)}`);
    }
    this.mu = mu;
    this.bins = checkBins('GHMR', bins);
    this.momentum = checkMomentum('GHMR', momentum);
    this.lossWeight = checkLossWeight('GHMR', lossWeight);
    this.density = new GradientDensity(this.bins, this.momentum, 1e3);
  }

  /**
   * @param pred predictions, any shape.
   * @param target same shape.
   * @param weights optional, shape of pred or [N]: > 0 marks valid elements and tot = max(Σ weights, 1)
   *   (as mmdetection); the magnitudes do not otherwise scale the loss.
   */
  loss(pred: tf.Tensor, target: tf.Tensor, weights?: tf.Tensor, options: GHMLossCallOptions = {}): tf.Scalar {
    const p = checkTensor('GHMR.loss', 'pred', pred);
    const t = checkTensor('GHMR.loss', 'target', target);
    if (!sameShape(p.shape, t.shape)) {
      throw new Error(`GHMR.loss: "target" must have the shape of pred [${p.shape}], got [${t.shape}]`);
    }
    const update = options.updateState ?? true;
    const mu2 = this.mu * this.mu;
    return tf.tidy(() => {
      const w = elementWeights('GHMR.loss', weights, p.shape);
      const p32 = tf.cast(p, 'float32');
      const t32 = tf.cast(t, 'float32');
      const factors = harmonizedFactors(
        this.density,
        (a, b) => {
          const d = tf.sub(a, b);
          return tf.div(tf.abs(d), tf.sqrt(tf.add(tf.square(d), mu2)));
        },
        p32,
        t32,
        w,
        true,
        update,
      );
      const d = tf.sub(p32, t32);
      const asl1 = tf.reshape(tf.sub(tf.sqrt(tf.add(tf.square(d), mu2)), this.mu), [-1]);
      return tf.mul(tf.sum(tf.mul(factors, asl1)), this.lossWeight) as tf.Scalar;
    });
  }

  stats(): GHMStats {
    return this.density.stats();
  }

  reset(): void {
    this.density.reset();
  }

  dispose(): void {
    this.density.dispose();
  }

  toJSON(): GHMRJSON {
    return {
      type: 'GHMR',
      config: { mu: this.mu, bins: this.bins, momentum: this.momentum, lossWeight: this.lossWeight },
      state: this.density.toJSON(),
    };
  }

  static fromJSON(json: GHMRJSON): GHMR {
    if (json === null || typeof json !== 'object' || json.type !== 'GHMR') {
      throw new Error('GHMR.fromJSON: field "type" must be "GHMR"');
    }
    const loss = new GHMR(json.config);
    loss.density.load('GHMR', json.state);
    return loss;
  }
}
