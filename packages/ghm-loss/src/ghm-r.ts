import * as tf from '@tensorflow/tfjs-core';
import { GHMBase, checkJSONType } from './ghm-base';
import type { GHMLossCallOptions } from './ghm-base';
import type { GHMStateJSON } from './gradient-density';
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
export class GHMR extends GHMBase {
  readonly mu: number;

  constructor({ mu = 0.02, bins = 10, momentum = 0, lossWeight = 1 }: GHMROptions = {}) {
    super('GHMR', bins, momentum, lossWeight, 1e3);
    if (typeof mu !== 'number' || !(mu > 0) || !Number.isFinite(mu)) {
      throw new Error(`GHMR: option "mu" must be a finite number > 0, got ${String(mu)}`);
    }
    this.mu = mu;
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
      // d is computed again here because the gradient norm above runs inside the no-gradient op:
      // this copy is the one the tape records, so the loss differentiates through it.
      const d = tf.sub(p32, t32);
      const asl1 = tf.reshape(tf.sub(tf.sqrt(tf.add(tf.square(d), mu2)), this.mu), [-1]);
      return tf.mul(tf.sum(tf.mul(factors, asl1)), this.lossWeight) as tf.Scalar;
    });
  }

  /**
   * A `(yTrue, yPred) => loss` function for tfjs-layers `model.compile({ loss })` (a linear output
   * layer: yPred are the predictions, yTrue the targets of the same shape). tfjs-layers also calls
   * the loss on validation data during fit(), which moves the EMA like a training batch.
   */
  asLayersLoss({ updateState = true }: GHMLossCallOptions = {}): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar {
    return (yTrue, yPred) => this.loss(yPred, yTrue, undefined, { updateState });
  }

  toJSON(): GHMRJSON {
    return {
      type: 'GHMR',
      config: { mu: this.mu, bins: this.bins, momentum: this.momentum, lossWeight: this.lossWeight },
      state: this.density.toJSON(),
    };
  }

  static fromJSON(json: GHMRJSON): GHMR {
    checkJSONType('GHMR', json);
    const loss = new GHMR(json.config);
    loss.density.load('GHMR', json.state);
    return loss;
  }
}
