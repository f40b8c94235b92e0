import * as tf from '@tensorflow/tfjs-core';
import { GHMBase, PROB_EPSILON, checkFrom, checkJSONType } from './ghm-base';
import type { GHMLossCallOptions, LayersLossOptions } from './ghm-base';
import type { GHMStateJSON } from './gradient-density';
import { checkLogits2d, labelledWeights, sampleWeights, toOneHot } from './tensor-checks';

export interface GHMSoftmaxOptions {
  /** Number of equal-width bins over g ∈ [0, 1]. Default 10. */
  bins?: number;
  /** EMA momentum of the per-bin counts (the lab's "alpha"); 0 uses this batch's counts. Default 0.75. */
  momentum?: number;
  /** Multiplies the loss. Default 1. */
  lossWeight?: number;
}

export interface GHMSoftmaxJSON {
  type: 'GHMSoftmax';
  config: Required<GHMSoftmaxOptions>;
  state: GHMStateJSON;
}

/**
 * Softmax GHM for single-label multi-class classification: g = 1 − p_target with p = softmax(logits),
 * binned as mmdetection's GHM-C, and loss = lossWeight · Σ_i w_i · CE_i / tot.
 */
export class GHMSoftmax extends GHMBase {
  constructor({ bins = 10, momentum = 0.75, lossWeight = 1 }: GHMSoftmaxOptions = {}) {
    super('GHMSoftmax', bins, momentum, lossWeight, 1 + 1e-6);
  }

  /**
   * @param logits [N, C] unnormalised scores.
   * @param labels class ids [N] (int32; ids outside [0, C) are ignored) or one-hot [N, C] (rows that
   *   sum to 1; all-zero rows are ignored).
   * @param weights optional per-sample [N]; like mmdetection's label_weight it is a validity mask
   *   (> 0 counts, 0 ignores); its magnitude does not scale the loss.
   */
  loss(logits: tf.Tensor2D, labels: tf.Tensor1D | tf.Tensor2D, weights?: tf.Tensor1D, options: GHMLossCallOptions = {}): tf.Scalar {
    const x = checkLogits2d('GHMSoftmax.loss', logits);
    const [n, classes] = x.shape;
    const update = options.updateState ?? true;
    return tf.tidy(() => {
      const oneHot = toOneHot('GHMSoftmax.loss', labels, n, classes);
      const w = labelledWeights(sampleWeights('GHMSoftmax.loss', weights, n), oneHot);
      return this.harmonizedCrossEntropy(tf.cast(x, 'float32'), oneHot, w, update);
    });
  }

  /**
   * The whole loss as one custom op: the forward pass computes log-softmax once and reuses it for g,
   * the binning and the cross-entropy; the backward pass is the closed form
   * ∂L/∂z = lossWeight · (w / tot) · (softmax(z) − y). This halves the cost against composing
   * tape-recorded ops, and keeps the GHM weights out of the gradient by construction. Labels and
   * weights are data: they receive zero gradients.
   */
  private harmonizedCrossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D, weights: tf.Tensor1D, update: boolean): tf.Scalar {
    const density = this.density;
    const lossWeight = this.lossWeight;
    // customGrad passes (inputs..., save); its typing lumps them into one union, hence the casts.
    const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [z, y, w] = args as tf.Tensor[];
      const save = args[3] as tf.GradSaveFunc;
      const logp = tf.logSoftmax(z);
      const p = tf.exp(logp);
      const g = tf.clipByValue(tf.sub(1, tf.sum(tf.mul(p, y), 1)), 0, 1) as tf.Tensor1D;
      const scale = tf.mul(density.factors(g, w as tf.Tensor1D, false, update), lossWeight);
      const crossEntropy = tf.neg(tf.sum(tf.mul(logp, y), 1));
      save([p, y, scale]);
      return {
        value: tf.sum(tf.mul(scale, crossEntropy)) as tf.Scalar,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sp, sy, sscale] = saved;
          const dz = tf.mul(tf.mul(tf.sub(sp, sy), tf.reshape(sscale, [-1, 1])), dy);
          return [dz, tf.zerosLike(sy), tf.zerosLike(sscale)];
        },
      };
    });
    return op(logits, oneHot, weights);
  }

  /**
   * A `(yTrue, yPred) => loss` function for tfjs-layers `model.compile({ loss })`. yTrue: one-hot
   * [N, C] or class ids [N] / [N, 1]. yPred: probabilities by default (a softmax output layer); they
   * become logits as log(clip(p, 1e-7, 1)), whose softmax is p again, so g and CE are unchanged.
   * Note that tfjs-layers also calls the loss on validation data during fit(); pass
   * `updateState: false` to a second adapter used for evaluation if that must not move the EMA.
   */
  asLayersLoss({ from = 'probs', updateState = true }: LayersLossOptions = {}): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar {
    checkFrom('GHMSoftmax', from);
    return (yTrue, yPred) =>
      tf.tidy(() => {
        const logits = from === 'probs' ? tf.log(tf.clipByValue(yPred, PROB_EPSILON, 1)) : yPred;
        return this.loss(logits as tf.Tensor2D, yTrue as tf.Tensor2D, undefined, { updateState });
      });
  }

  toJSON(): GHMSoftmaxJSON {
    return {
      type: 'GHMSoftmax',
      config: { bins: this.bins, momentum: this.momentum, lossWeight: this.lossWeight },
      state: this.density.toJSON(),
    };
  }

  static fromJSON(json: GHMSoftmaxJSON): GHMSoftmax {
    checkJSONType('GHMSoftmax', json);
    const loss = new GHMSoftmax(json.config);
    loss.density.load('GHMSoftmax', json.state);
    return loss;
  }
}
