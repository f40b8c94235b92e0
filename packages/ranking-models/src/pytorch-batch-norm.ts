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
      const n = input.size / input.shape[axis];
      // Same form as tfjs-layers' update, so momentum 1 (used to freeze the statistics) is exact.
      const decay = 1 - self.momentum;
      const update = (moving: Variable, batch: tf.Tensor) =>
        tf.tidy(() => {
          const old = moving.read();
          moving.write(tf.sub(old, tf.mul(tf.sub(old, batch), decay)));
        });
      return batchNormTraining(input, self.gamma?.read() ?? null, self.beta?.read() ?? null, self.epsilon, (mean, variance) => {
        update(self.movingMean, mean);
        update(self.movingVariance, n > 1 ? tf.mul(variance, n / (n - 1)) : variance);
      });
    });
  }
}

/**
 * Kernel names of @lab/tfjs-train's fused batch-norm passes (BATCH_NORM_STATS and
 * BATCH_NORM_TRAINING_GRAD there), looked up by string so this package does not depend on it:
 * where they are registered for the current backend the layer runs one pass for the statistics
 * and one for the gradient instead of ~15 tfjs ops per direction.
 */
const BATCH_NORM_STATS_KERNEL = 'LabTfjsTrainBatchNormStats';
const BATCH_NORM_TRAINING_GRAD_KERNEL = 'LabTfjsTrainBatchNormTrainingGrad';

function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) != null;
}

/**
 * y = (x − mean) / sqrt(variance + ε) · γ + β with the batch's own mean and biased variance over
 * every axis but the last, as one differentiable op whose gradient is the closed form through
 * the batch statistics (the moments are not taped):
 *   dβ = Σdy,  dγ = Σdy·x̂,  dx = γ·r/N · (N·dy − Σdy − x̂·Σdy·x̂),  x̂ = (x − mean)·r,  r = 1/sqrt(variance + ε).
 * `onStatistics` receives the batch mean and biased variance during the forward pass, for the
 * moving statistics: it runs inside the op, where nothing is recorded for the gradient (moving
 * averages updated outside would be taped, and every taped op clones its saved inputs).
 */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor | null,
  beta: tf.Tensor | null,
  epsilon: number,
  onStatistics?: (mean: tf.Tensor, variance: tf.Tensor) => void,
): tf.Tensor {
  const channels = x.shape[x.rank - 1];
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const fused = x.dtype === 'float32' && hasKernel(BATCH_NORM_STATS_KERNEL) && hasKernel(BATCH_NORM_TRAINING_GRAD_KERNEL);
  const params = [gamma, beta].filter((t): t is tf.Tensor => t != null);
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [xIn, ...rest] = args.slice(0, -1) as tf.Tensor[];
    const g = gamma != null ? rest[0] : null;
    const b = beta != null ? rest[gamma != null ? 1 : 0] : null;
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    if (fused) {
      const stats = tf.engine().runKernel(BATCH_NORM_STATS_KERNEL, { x: xIn }) as tf.Tensor;
      [mean, variance] = tf.unstack(stats, 0);
    } else {
      ({ mean, variance } = tf.moments(xIn, axes));
    }
    const y = tf.batchNorm(xIn, mean, variance, b ?? undefined, g ?? undefined, epsilon);
    onStatistics?.(mean, variance);
    save([xIn, mean, variance, ...(g != null ? [g] : [])]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, v, gs] = saved;
        let dx: tf.Tensor;
        let dGamma: tf.Tensor;
        let dBeta: tf.Tensor;
        if (fused) {
          const inputs: tf.NamedTensorMap = { dy, x: xs, mean: m, variance: v };
          if (gs != null) inputs.scale = gs;
          [dx, dGamma, dBeta] = tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD_KERNEL, inputs, { varianceEpsilon: epsilon }) as tf.Tensor[];
        } else {
          const n = xs.size / channels;
          const r = tf.rsqrt(tf.add(v, epsilon));
          const xHat = tf.mul(tf.sub(xs, m), r);
          dBeta = tf.sum(dy, axes);
          dGamma = tf.sum(tf.mul(dy, xHat), axes);
          const scaleR = gs != null ? tf.mul(gs, r) : r;
          dx = tf.mul(tf.div(scaleR, n), tf.sub(tf.sub(tf.mul(dy, n), dBeta), tf.mul(xHat, dGamma)));
        }
        const grads = [dx];
        if (gamma != null) grads.push(tf.reshape(dGamma, gamma.shape));
        if (beta != null) grads.push(tf.reshape(dBeta, beta.shape));
        return grads;
      },
    };
  });
  return op(x, ...params);
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
