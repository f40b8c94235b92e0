import * as tf from '@tensorflow/tfjs-core';
import type { GradientDensity } from './gradient-density';

/**
 * Runs `density.factors` on g = gradNorm(a, b) inside a customGrad forward pass. Ops inside a kernel's
 * forward pass are not recorded on the gradient tape, so the GHM weights are constants in the
 * backward pass (mmdetection's `.detach()`), the binning ops need no registered gradients, and the
 * backward pass only adds zeros for the inputs.
 */
export function harmonizedFactors(
  density: GradientDensity,
  gradNorm: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  a: tf.Tensor,
  b: tf.Tensor,
  weights: tf.Tensor,
  totFromWeightSum: boolean,
  update: boolean,
): tf.Tensor1D {
  // customGrad passes (inputs..., save); its typing lumps them into one union, hence the casts.
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, y, w] = args as tf.Tensor[];
    const g = tf.reshape(gradNorm(x, y), [-1]) as tf.Tensor1D;
    return {
      value: density.factors(g, tf.reshape(w, [-1]) as tf.Tensor1D, totFromWeightSum, update),
      gradFunc: () => [tf.zerosLike(x), tf.zerosLike(y), tf.zerosLike(w)],
    };
  });
  return op(a, b, weights) as tf.Tensor1D;
}
