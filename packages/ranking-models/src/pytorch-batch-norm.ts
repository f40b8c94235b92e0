import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type BatchNormalizationLayer = ReturnType<typeof tfl.layers.batchNormalization>;
type BatchNormalizationArgs = Parameters<typeof tfl.layers.batchNormalization>[0];
type CallKwargs = Parameters<BatchNormalizationLayer['call']>[1];
type Variable = { read(): tf.Tensor; write(value: tf.Tensor): void };

/** Fields of tfjs-layers' BatchNormalization that the subclass needs (protected/readonly there). */
interface BatchNormalizationInternals {
  axis: number;
  epsilon: number;
  momentum: number;
  /** null when the layer was built with scale: false / center: false. */
  gamma: Variable | null;
  beta: Variable | null;
  movingMean: Variable;
  movingVariance: Variable;
}

// tfjs-layers exports the BatchNormalization class only through its factory; take it from an instance.
const BatchNormalizationBase = tfl.layers.batchNormalization({}).constructor as new (
  args?: BatchNormalizationArgs,
) => BatchNormalizationLayer;

/**
 * tfjs-layers' BatchNormalization with PyTorch's BatchNorm2d training-mode update: the moving
 * variance is updated with the unbiased batch variance (× n/(n−1), n = values per channel), as
 * PyTorch does, while the batch itself is normalised with the biased variance (both frameworks).
 * Inference is unchanged. Serialises as `PyTorchBatchNorm` (registered with tf.serialization).
 */
export class PyTorchBatchNorm extends BatchNormalizationBase {
  static className = 'PyTorchBatchNorm';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor | tf.Tensor[] {
    if (!kwargs?.['training']) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const self = this as unknown as BatchNormalizationInternals;
      const input = Array.isArray(inputs) ? inputs[0] : inputs;
      const axis = self.axis >= 0 ? self.axis : self.axis + input.rank;
      if (axis !== input.rank - 1) {
        throw new Error(`PyTorchBatchNorm: only the last (channels) axis is supported, got axis ${self.axis} for rank ${input.rank}`);
      }
      const reductionAxes = Array.from({ length: input.rank - 1 }, (_, i) => i);
      const { mean, variance } = tf.moments(input, reductionAxes);
      const normalised = tf.batchNorm(input, mean, variance, self.beta?.read(), self.gamma?.read(), self.epsilon);
      const n = input.size / input.shape[axis];
      const unbiasedVariance = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
      // Same form as tfjs-layers' update, so momentum 1 (used to freeze the statistics) is exact.
      const decay = 1 - self.momentum;
      const update = (moving: Variable, batch: tf.Tensor) =>
        tf.tidy(() => {
          const old = moving.read();
          moving.write(tf.sub(old, tf.mul(tf.sub(old, batch), decay)));
        });
      update(self.movingMean, mean);
      update(self.movingVariance, unbiasedVariance);
      return normalised;
    });
  }
}

/**
 * Registers `PyTorchBatchNorm` for model deserialisation. Idempotent; runs when this module loads
 * and again from `loadModel`, so a bundler dropping module-level statements cannot break loading.
 */
export function registerPyTorchBatchNorm(): void {
  tf.serialization.registerClass(PyTorchBatchNorm as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
}
registerPyTorchBatchNorm();

/** The class, for `instanceof` checks on layers of built or loaded models. */
export const BatchNormalizationLayerClass = BatchNormalizationBase;
