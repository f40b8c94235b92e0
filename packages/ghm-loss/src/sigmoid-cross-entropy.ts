import * as tf from '@tensorflow/tfjs-core';

/**
 * Element-wise binary cross-entropy on logits, max(x, 0) − x·z + log(1 + e^−|x|).
 * Hand-written rather than tf.losses.sigmoidCrossEntropy because that op differentiates relu() and
 * abs() separately, which gives −z instead of σ(0) − z = 0.5 − z at a logit of exactly 0; the custom
 * gradient σ(x) − z is exact everywhere.
 */
export function sigmoidCrossEntropyElements(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  // customGrad passes (inputs..., save); its typing lumps them into one union, hence the casts.
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, z] = args as tf.Tensor[];
    const save = args[2] as tf.GradSaveFunc;
    save([x, z]);
    const value = tf.add(tf.sub(tf.relu(x), tf.mul(x, z)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sz] = saved;
        return [tf.mul(dy, tf.sub(tf.sigmoid(sx), sz)), tf.mul(dy, tf.neg(sx))];
      },
    };
  });
  return op(tf.cast(logits, 'float32'), tf.cast(targets, 'float32'));
}
