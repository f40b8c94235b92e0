import * as tf from '@tensorflow/tfjs-core';
import { GHMBase, PROB_EPSILON, checkFrom, checkJSONType } from './ghm-base';
import type { GHMLossCallOptions, LayersLossOptions } from './ghm-base';
import type { GHMStateJSON } from './gradient-density';
import { harmonizedFactors } from './harmonize';
import { sigmoidCrossEntropyElements } from './sigmoid-cross-entropy';
import { checkTensor, elementWeights, sameShape, toOneHot } from './tensor-checks';

export interface GHMCOptions {
  /** Number of equal-width bins over g ∈ [0, 1]. Default 10. */
  bins?: number;
  /** EMA momentum of the per-bin counts; 0 (mmdetection's default) uses this batch's counts. */
  momentum?: number;
  /** Multiplies the loss. Default 1. */
  lossWeight?: number;
}

export interface GHMCJSON {
  type: 'GHMC';
  config: Required<GHMCOptions>;
  state: GHMStateJSON;
}

/**
 * GHM-C (mmdetection `GHMC`, use_sigmoid): per-element sigmoid binary cross-entropy with
 * g = |σ(x) − target|; loss = lossWeight · Σ w · BCE / tot with tot = max(#valid elements, 1).
 */
export class GHMC extends GHMBase {
  constructor({ bins = 10, momentum = 0, lossWeight = 1 }: GHMCOptions = {}) {
    super('GHMC', bins, momentum, lossWeight, 1 + 1e-6);
  }

  /**
   * @param logits any shape, e.g. [N, C].
   * @param targets binary (or soft) targets of the same shape, or, for logits [N, C], class ids [N]
   *   expanded to one-hot; ids outside [0, C) give an all-negative row (background), as in mmdetection.
   * @param weights optional, shape of logits or [N]; a validity mask (> 0 counts, 0 ignores), as
   *   mmdetection's label_weight: its magnitude does not scale the loss.
   */
  loss(logits: tf.Tensor, targets: tf.Tensor, weights?: tf.Tensor, options: GHMLossCallOptions = {}): tf.Scalar {
    const x = checkTensor('GHMC.loss', 'logits', logits);
    const t = checkTensor('GHMC.loss', 'targets', targets);
    const update = options.updateState ?? true;
    return tf.tidy(() => {
      let target: tf.Tensor;
      if (sameShape(t.shape, x.shape)) target = tf.cast(t, 'float32');
      else if (x.rank === 2 && t.rank === 1) target = toOneHot('GHMC.loss', t, x.shape[0]!, x.shape[1]!, 'targets');
      else throw new Error(`GHMC.loss: "targets" must have the shape of logits [${x.shape}] or be class ids [${x.shape[0]}], got [${t.shape}]`);
      const w = elementWeights('GHMC.loss', weights, x.shape);
      const logits32 = tf.cast(x, 'float32');
      const factors = harmonizedFactors(
        this.density,
        (z, y) => tf.abs(tf.sub(tf.sigmoid(z), y)),
        logits32,
        target,
        w,
        false,
        update,
      );
      const bce = tf.reshape(sigmoidCrossEntropyElements(logits32, target), [-1]);
      return tf.mul(tf.sum(tf.mul(factors, bce)), this.lossWeight) as tf.Scalar;
    });
  }

  /**
   * A `(yTrue, yPred) => loss` function for tfjs-layers `model.compile({ loss })`. yTrue: binary (or
   * soft) targets shaped like yPred. yPred: probabilities by default (a sigmoid output layer); they
   * become logits as log(p) − log(1 − p) with p clipped to [1e-7, 1 − 1e-7], whose sigmoid is p
   * again, so g and the BCE are unchanged. tfjs-layers also calls the loss on validation data
   * during fit(), which moves the EMA like a training batch.
   */
  asLayersLoss({ from = 'probs', updateState = true }: LayersLossOptions = {}): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar {
    checkFrom('GHMC', from);
    return (yTrue, yPred) =>
      tf.tidy(() => {
        let logits = yPred;
        if (from === 'probs') {
          const p = tf.clipByValue(yPred, PROB_EPSILON, 1 - PROB_EPSILON);
          logits = tf.sub(tf.log(p), tf.log1p(tf.neg(p)));
        }
        return this.loss(logits, yTrue, undefined, { updateState });
      });
  }

  toJSON(): GHMCJSON {
    return {
      type: 'GHMC',
      config: { bins: this.bins, momentum: this.momentum, lossWeight: this.lossWeight },
      state: this.density.toJSON(),
    };
  }

  static fromJSON(json: GHMCJSON): GHMC {
    checkJSONType('GHMC', json);
    const loss = new GHMC(json.config);
    loss.density.load('GHMC', json.state);
    return loss;
  }
}
