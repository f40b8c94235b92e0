import type { KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { allocFloat32, float32View } from './backend-access';

/**
 * Kernel names of batch normalisation in training mode as two fused passes, looked up by name
 * (no import) by layers that normalise with batch statistics, e.g. @lab/ranking-models'
 * PyTorchBatchNorm, which falls back to tfjs ops where they are not registered. Composing the
 * same thing from tfjs ops (moments, batchNorm and the gradients of both) takes ~15 kernel
 * dispatches and as many passes over the activation per layer and direction.
 *
 * `LabTfjsTrainBatchNormStats`: x [..., C] -> [2, C] = [mean, biased variance] over all leading axes.
 * `LabTfjsTrainBatchNormTrainingGrad`: dy, x [..., C], mean, variance, scale [C] (scale optional:
 *   1), attr varianceEpsilon -> [dx, dScale [C], dOffset [C]], the gradient of
 *   y = (x - mean) * r * scale + offset with r = 1/sqrt(variance + eps) THROUGH the batch
 *   statistics (mean and variance are functions of x):
 *     S1 = sum(dy), S2 = sum(dy * (x - mean)),  dOffset = S1,  dScale = S2 * r,
 *     dx = scale * r * (dy - S1 / N - (x - mean) * r^2 * S2 / N),  N = values per channel.
 */
export const BATCH_NORM_STATS = 'LabTfjsTrainBatchNormStats';
export const BATCH_NORM_TRAINING_GRAD = 'LabTfjsTrainBatchNormTrainingGrad';

/** Mean and biased variance per channel, two passes in float64 (no cancellation from E[x²] − E[x]²). */
export function batchNormStats(x: Float32Array, channels: number, out: Float32Array): void {
  const C = channels;
  const n = x.length / C;
  const sum = new Float64Array(C);
  for (let base = 0; base < x.length; base += C) for (let c = 0; c < C; c++) sum[c] += x[base + c];
  const mean = new Float64Array(C);
  for (let c = 0; c < C; c++) mean[c] = sum[c] / n;
  const sq = new Float64Array(C);
  for (let base = 0; base < x.length; base += C) {
    for (let c = 0; c < C; c++) {
      const d = x[base + c] - mean[c];
      sq[c] += d * d;
    }
  }
  for (let c = 0; c < C; c++) {
    out[c] = mean[c];
    out[C + c] = sq[c] / n;
  }
}

export function batchNormTrainingGrad(
  dy: Float32Array,
  x: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  scale: Float32Array | null,
  epsilon: number,
  dx: Float32Array,
  dScale: Float32Array,
  dOffset: Float32Array,
): void {
  const C = mean.length;
  const n = x.length / C;
  const s1 = new Float64Array(C);
  const s2 = new Float64Array(C);
  for (let base = 0; base < x.length; base += C) {
    for (let c = 0; c < C; c++) {
      const d = dy[base + c];
      s1[c] += d;
      s2[c] += d * (x[base + c] - mean[c]);
    }
  }
  // dx = a * dy + b * (x - mean) + k per channel. (x - mean) is kept rather than folding b * mean
  // into k: with |mean| >> std the folded form loses digits to cancellation.
  const a = new Float32Array(C);
  const b = new Float32Array(C);
  const k = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const r = 1 / Math.sqrt(variance[c] + epsilon);
    const g = scale == null ? 1 : scale[c];
    dOffset[c] = s1[c];
    dScale[c] = s2[c] * r;
    a[c] = g * r;
    b[c] = (-g * r * r * r * s2[c]) / n;
    k[c] = -g * r * (s1[c] / n);
  }
  for (let base = 0; base < x.length; base += C) {
    for (let c = 0; c < C; c++) dx[base + c] = a[c] * dy[base + c] + b[c] * (x[base + c] - mean[c]) + k[c];
  }
}

function channelsOf(kernel: string, x: TensorInfo): number {
  if (x.dtype !== 'float32' || x.shape.length < 2) {
    throw new Error(`@lab/tfjs-train ${kernel}: expected a float32 x of rank >= 2 (channels last), got ${x.dtype} [${x.shape}]`);
  }
  return x.shape[x.shape.length - 1];
}

function checkPerChannel(kernel: string, name: string, t: TensorInfo | undefined, C: number): void {
  if (t == null) return;
  const size = t.shape.reduce((p, d) => p * d, 1);
  if (size !== C || t.dtype !== 'float32') {
    throw new Error(`@lab/tfjs-train ${kernel}: input '${name}' must be float32 with ${C} values (one per channel), got ${t.dtype} [${t.shape}]`);
  }
}

/** Signatures of the two passes; native/fast-conv.c exports drop-in versions. */
export type BatchNormStatsFn = typeof batchNormStats;
export type BatchNormTrainingGradFn = typeof batchNormTrainingGrad;

const makeStatsKernel = (stats: BatchNormStatsFn): KernelFunc => ({ inputs, backend: backendAny }) => {
  const backend = backendAny as KernelBackend;
  const { x } = inputs as { x: TensorInfo };
  const C = channelsOf(BATCH_NORM_STATS, x);
  const out = allocFloat32(backend, [2, C]);
  stats(float32View(backend, x), C, float32View(backend, out));
  return out;
};

const makeTrainingGradKernel = (grad: BatchNormTrainingGradFn): KernelFunc => ({ inputs, backend: backendAny, attrs }) => {
  const backend = backendAny as KernelBackend;
  const { dy, x, mean, variance, scale } = inputs as Record<string, TensorInfo | undefined>;
  if (x == null || dy == null || mean == null || variance == null) {
    throw new Error(`@lab/tfjs-train ${BATCH_NORM_TRAINING_GRAD}: inputs dy, x, mean and variance are required`);
  }
  const C = channelsOf(BATCH_NORM_TRAINING_GRAD, x);
  if (dy.shape.join() !== x.shape.join() || dy.dtype !== 'float32') {
    throw new Error(`@lab/tfjs-train ${BATCH_NORM_TRAINING_GRAD}: dy [${dy.shape}] must be float32 with the shape of x [${x.shape}]`);
  }
  checkPerChannel(BATCH_NORM_TRAINING_GRAD, 'mean', mean, C);
  checkPerChannel(BATCH_NORM_TRAINING_GRAD, 'variance', variance, C);
  checkPerChannel(BATCH_NORM_TRAINING_GRAD, 'scale', scale, C);
  const epsilon = Number((attrs as { varianceEpsilon?: number }).varianceEpsilon);
  if (!(epsilon >= 0)) throw new Error(`@lab/tfjs-train ${BATCH_NORM_TRAINING_GRAD}: attr varianceEpsilon must be >= 0, got ${String(epsilon)}`);
  const dx = allocFloat32(backend, [...x.shape]);
  const dScale = allocFloat32(backend, [C]);
  const dOffset = allocFloat32(backend, [C]);
  grad(
    float32View(backend, dy),
    float32View(backend, x),
    float32View(backend, mean),
    float32View(backend, variance),
    scale != null ? float32View(backend, scale) : null,
    epsilon,
    float32View(backend, dx),
    float32View(backend, dScale),
    float32View(backend, dOffset),
  );
  return [dx, dScale, dOffset];
};

/** `stats` replaces the JS pass (e.g. with the native one); same arguments and results. */
export function batchNormStatsConfig(backendName: string, stats: BatchNormStatsFn = batchNormStats): KernelConfig {
  return { kernelName: BATCH_NORM_STATS, backendName, kernelFunc: makeStatsKernel(stats) };
}

/** `grad` replaces the JS pass (e.g. with the native one); same arguments and results. */
export function batchNormTrainingGradConfig(backendName: string, grad: BatchNormTrainingGradFn = batchNormTrainingGrad): KernelConfig {
  return { kernelName: BATCH_NORM_TRAINING_GRAD, backendName, kernelFunc: makeTrainingGradKernel(grad) };
}
