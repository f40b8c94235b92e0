import * as tf from '@tensorflow/tfjs-core';

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function checkTensor(owner: string, field: string, x: unknown): tf.Tensor {
  if (!(x instanceof tf.Tensor)) {
    throw new Error(`${owner}: "${field}" must be a tf.Tensor, got ${x === null ? 'null' : typeof x}`);
  }
  if (x.isDisposed) throw new Error(`${owner}: "${field}" is a disposed tensor`);
  return x;
}

/** Logits of shape [N, C] with C >= 1. */
export function checkLogits2d(owner: string, logits: unknown): tf.Tensor2D {
  const t = checkTensor(owner, 'logits', logits);
  if (t.rank !== 2) throw new Error(`${owner}: "logits" must be rank 2 [N, C], got shape [${t.shape}]`);
  if ((t.shape[1] ?? 0) < 1) throw new Error(`${owner}: "logits" must have at least one class column, got shape [${t.shape}]`);
  return t as tf.Tensor2D;
}

/**
 * Class ids [N] (int32, or float holding integers) or one-hot rows [N, C] become float32 one-hot
 * [N, C]. Ids outside [0, C) give an all-zero row (tf.oneHot's behaviour), which callers treat as
 * "ignored" (softmax losses) or "background" (GHM-C, as mmdetection's _expand_onehot_labels does).
 */
export function toOneHot(owner: string, labels: unknown, n: number, classes: number, field = 'labels'): tf.Tensor2D {
  const t = checkTensor(owner, field, labels);
  if (t.rank === 1 || (t.rank === 2 && t.shape[1] === 1 && classes !== 1)) {
    if (t.shape[0] !== n) {
      throw new Error(`${owner}: "${field}" must hold ${n} class ids (one per row of logits), got shape [${t.shape}]`);
    }
    return tf.tidy(() => {
      const ids = t.dtype === 'int32' ? tf.reshape(t, [n]) : tf.cast(tf.round(tf.reshape(t, [n])), 'int32');
      return tf.cast(tf.oneHot(ids as tf.Tensor1D, classes), 'float32') as tf.Tensor2D;
    });
  }
  if (t.rank === 2) {
    if (t.shape[0] !== n || t.shape[1] !== classes) {
      throw new Error(`${owner}: one-hot "${field}" must have shape [${n}, ${classes}] like logits, got [${t.shape}]`);
    }
    return tf.cast(t, 'float32') as tf.Tensor2D;
  }
  throw new Error(`${owner}: "${field}" must be class ids [N] or one-hot [N, C], got shape [${t.shape}]`);
}

/** Per-sample weights [N] (or none: all ones), float32. */
export function sampleWeights(owner: string, weights: unknown, n: number): tf.Tensor1D {
  if (weights === undefined || weights === null) return tf.ones([n], 'float32') as tf.Tensor1D;
  const t = checkTensor(owner, 'weights', weights);
  if (!(t.rank === 1 && t.shape[0] === n) && !(t.rank === 2 && t.shape[0] === n && t.shape[1] === 1)) {
    throw new Error(`${owner}: "weights" must be per-sample [${n}], got shape [${t.shape}]`);
  }
  return tf.cast(tf.reshape(t, [n]), 'float32') as tf.Tensor1D;
}

/**
 * `weights` with the rows that carry no label (all-zero one-hot rows: ignored ids) set to 0, so
 * that they count neither in the loss nor in its normaliser.
 */
export function labelledWeights(weights: tf.Tensor1D, oneHot: tf.Tensor2D): tf.Tensor1D {
  return tf.where(tf.greater(tf.sum(oneHot, 1), 0), weights, tf.zerosLike(weights));
}

/**
 * Element weights shaped like `shape`: either that shape or [N] (one weight per sample, broadcast
 * over the remaining axes, as mmdetection expands label weights).
 */
export function elementWeights(owner: string, weights: unknown, shape: readonly number[]): tf.Tensor {
  if (weights === undefined || weights === null) return tf.ones(shape as number[], 'float32');
  const t = checkTensor(owner, 'weights', weights);
  if (sameShape(t.shape, shape)) return tf.cast(t, 'float32');
  const n = shape[0];
  if (t.rank === 1 && n !== undefined && t.shape[0] === n) {
    const perSample = tf.reshape(tf.cast(t, 'float32'), [n, ...shape.slice(1).map(() => 1)]);
    return tf.mul(perSample, tf.ones(shape as number[], 'float32'));
  }
  throw new Error(`${owner}: "weights" must have shape [${shape}] or [${shape[0]}], got [${t.shape}]`);
}
