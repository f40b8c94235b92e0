import * as tf from '@tensorflow/tfjs-core';
import { sigmoidCrossEntropyElements } from './sigmoid-cross-entropy';
import { checkLogits2d, checkTensor, elementWeights, labelledWeights, sameShape, sampleWeights, toOneHot } from './tensor-checks';

/*
 * Every baseline reduces as Σ wᵢ·Lᵢ / max(#{wᵢ > 0}, 1): the plain mean without weights, 0 (not NaN)
 * for an empty or fully masked batch, and the same normaliser as GHM's tot, so that GHM with one bin
 * equals the baseline cross-entropy exactly.
 */
function weightedMean(losses: tf.Tensor, weights: tf.Tensor): tf.Scalar {
  const counted = tf.sum(tf.cast(tf.greater(weights, 0), 'float32'));
  return tf.div(tf.sum(tf.mul(losses, weights)), tf.maximum(counted, 1)) as tf.Scalar;
}

export interface SoftmaxCrossEntropyOptions {
  /** ε in [0, 1): targets become (1 − ε)·onehot + ε / C (PyTorch's label_smoothing). Default 0. */
  labelSmoothing?: number;
  /** Per-sample weights [N] (0 ignores a sample). */
  weights?: tf.Tensor1D;
}

/**
 * Multi-class softmax cross-entropy on logits [N, C]; labels are class ids [N] (ids outside [0, C)
 * are ignored) or one-hot [N, C] (all-zero rows are ignored). Returns Σ wᵢ·CEᵢ / #{wᵢ > 0}.
 */
export function softmaxCrossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D | tf.Tensor2D,
  { labelSmoothing = 0, weights }: SoftmaxCrossEntropyOptions = {},
): tf.Scalar {
  const x = checkLogits2d('softmaxCrossEntropy', logits);
  if (typeof labelSmoothing !== 'number' || !(labelSmoothing >= 0 && labelSmoothing < 1)) {
    throw new Error(`softmaxCrossEntropy: option "labelSmoothing" must be in [0, 1), got ${String(labelSmoothing)}`);
  }
  const [n, classes] = x.shape;
  return tf.tidy(() => {
    const oneHot = toOneHot('softmaxCrossEntropy', labels, n, classes);
    const w = labelledWeights(sampleWeights('softmaxCrossEntropy', weights, n), oneHot);
    const ce = tf.losses.softmaxCrossEntropy(oneHot, tf.cast(x, 'float32'), undefined, labelSmoothing, tf.Reduction.NONE);
    return weightedMean(ce, w);
  });
}

export interface SigmoidBinaryCrossEntropyOptions {
  /** Element weights, shape of logits or [N] (one per sample). */
  weights?: tf.Tensor;
}

/** Element-wise sigmoid binary cross-entropy on logits; returns Σ w·BCE / #{w > 0}. */
export function sigmoidBinaryCrossEntropy(
  logits: tf.Tensor,
  targets: tf.Tensor,
  { weights }: SigmoidBinaryCrossEntropyOptions = {},
): tf.Scalar {
  const x = checkTensor('sigmoidBinaryCrossEntropy', 'logits', logits);
  const t = checkTensor('sigmoidBinaryCrossEntropy', 'targets', targets);
  if (!sameShape(x.shape, t.shape)) {
    throw new Error(`sigmoidBinaryCrossEntropy: "targets" must have the shape of logits [${x.shape}], got [${t.shape}]`);
  }
  return tf.tidy(() => {
    const w = elementWeights('sigmoidBinaryCrossEntropy', weights, x.shape);
    return weightedMean(sigmoidCrossEntropyElements(x, t), w);
  });
}

export interface FocalLossOptions {
  /** Focusing parameter γ ≥ 0. Default 2. */
  gamma?: number;
  /**
   * Class weight α: one number for all classes, or one per class (α_y of the true class is used).
   * Default 0.25 (RetinaNet's value); with one number and softmax it only scales the loss.
   */
  alpha?: number | number[];
  /** Per-sample weights [N] (0 ignores a sample). */
  weights?: tf.Tensor1D;
}

/**
 * Multi-class SOFTMAX focal loss (the variant used for angle classification; Lin et al. 2017
 * generalised to one label per sample): FLᵢ = −α_{yᵢ}·(1 − p_{yᵢ})^γ·log p_{yᵢ} with p = softmax(logits).
 * Returns Σ wᵢ·FLᵢ / #{wᵢ > 0}. γ = 0 and α = 1 give softmaxCrossEntropy. For the per-element
 * sigmoid variant see sigmoidFocalLoss.
 */
export function focalLoss(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D | tf.Tensor2D,
  { gamma = 2, alpha = 0.25, weights }: FocalLossOptions = {},
): tf.Scalar {
  const x = checkLogits2d('focalLoss', logits);
  const [n, classes] = x.shape;
  if (typeof gamma !== 'number' || !(gamma >= 0) || !Number.isFinite(gamma)) {
    throw new Error(`focalLoss: option "gamma" must be a finite number >= 0, got ${String(gamma)}`);
  }
  const alphas = typeof alpha === 'number' ? new Array<number>(classes).fill(alpha) : alpha;
  if (!Array.isArray(alphas) || alphas.length !== classes || !alphas.every((a) => typeof a === 'number' && Number.isFinite(a))) {
    throw new Error(`focalLoss: option "alpha" must be a finite number or ${classes} finite numbers (one per class)`);
  }
  return tf.tidy(() => {
    const oneHot = toOneHot('focalLoss', labels, n, classes);
    const w = labelledWeights(sampleWeights('focalLoss', weights, n), oneHot);
    const logp = tf.logSoftmax(tf.cast(x, 'float32'));
    const logpTarget = tf.sum(tf.mul(logp, oneHot), 1);
    const alphaTarget = tf.sum(tf.mul(oneHot, tf.tensor2d(alphas, [1, classes], 'float32')), 1);
    const modulating = gamma === 0 ? tf.onesLike(logpTarget) : tf.pow(tf.sub(1, tf.exp(logpTarget)), gamma);
    const fl = tf.neg(tf.mul(tf.mul(alphaTarget, modulating), logpTarget));
    return weightedMean(fl, w);
  });
}

export interface SigmoidFocalLossOptions {
  /** Focusing parameter γ ≥ 0. Default 2. */
  gamma?: number;
  /** Weight of positives (negatives get 1 − α); a negative value disables it. Default 0.25. */
  alpha?: number;
  /** Element weights, shape of logits or [N]. */
  weights?: tf.Tensor;
}

/**
 * Per-element SIGMOID focal loss (RetinaNet; torchvision.ops.sigmoid_focal_loss with mean reduction):
 * FL = α_t·(1 − p_t)^γ·BCE with p_t = p·t + (1 − p)(1 − t), α_t = α·t + (1 − α)(1 − t).
 */
export function sigmoidFocalLoss(
  logits: tf.Tensor,
  targets: tf.Tensor,
  { gamma = 2, alpha = 0.25, weights }: SigmoidFocalLossOptions = {},
): tf.Scalar {
  const x = checkTensor('sigmoidFocalLoss', 'logits', logits);
  const t = checkTensor('sigmoidFocalLoss', 'targets', targets);
  if (!sameShape(x.shape, t.shape)) {
    throw new Error(`sigmoidFocalLoss: "targets" must have the shape of logits [${x.shape}], got [${t.shape}]`);
  }
  if (typeof gamma !== 'number' || !(gamma >= 0) || !Number.isFinite(gamma)) {
    throw new Error(`sigmoidFocalLoss: option "gamma" must be a finite number >= 0, got ${String(gamma)}`);
  }
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha > 1) {
    throw new Error(`sigmoidFocalLoss: option "alpha" must be a number <= 1 (negative disables), got ${String(alpha)}`);
  }
  return tf.tidy(() => {
    const w = elementWeights('sigmoidFocalLoss', weights, x.shape);
    const x32 = tf.cast(x, 'float32');
    const t32 = tf.cast(t, 'float32');
    const p = tf.sigmoid(x32);
    const bce = sigmoidCrossEntropyElements(x32, t32);
    const pT = tf.add(tf.mul(p, t32), tf.mul(tf.sub(1, p), tf.sub(1, t32)));
    let fl = gamma === 0 ? bce : tf.mul(bce, tf.pow(tf.sub(1, pT), gamma));
    if (alpha >= 0) fl = tf.mul(fl, tf.add(tf.mul(t32, alpha), tf.mul(tf.sub(1, t32), 1 - alpha)));
    return weightedMean(fl, w);
  });
}
