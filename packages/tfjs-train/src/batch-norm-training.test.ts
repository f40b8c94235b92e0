import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BATCH_NORM_STATS,
  BATCH_NORM_TRAINING_GRAD,
  batchNormStats,
  batchNormStatsConfig,
  batchNormTrainingGrad,
  batchNormTrainingGradConfig,
  type BatchNormStatsFn,
  type BatchNormTrainingGradFn,
} from './batch-norm-training';
import { loadNativeKernels } from './native-addon';
import { randomValues, relativeError, seededRandom } from './test-support';

const EPS = 1e-5;

/** float64 two-pass mean and biased variance per channel, written out independently of the kernel. */
function referenceStats(x: Float32Array, C: number): { mean: number[]; variance: number[] } {
  const n = x.length / C;
  const mean = Array.from({ length: C }, (_, c) => {
    let s = 0;
    for (let i = c; i < x.length; i += C) s += x[i];
    return s / n;
  });
  const variance = mean.map((m, c) => {
    let s = 0;
    for (let i = c; i < x.length; i += C) s += (x[i] - m) ** 2;
    return s / n;
  });
  return { mean, variance };
}

/**
 * Gradients of sum(w · BN(x)) with batch statistics, by tfjs-core's own autodiff of the
 * composition moments + batchNorm on the cpu backend (stock gradients: nothing of this package
 * is registered in this file outside the kernels under test).
 */
function autodiffReference(x: tf.Tensor, gamma: tf.Tensor | null, beta: tf.Tensor, w: tf.Tensor) {
  let result: { dx: Float32Array; dGamma: Float32Array | null; dBeta: Float32Array } | undefined;
  tf.tidy(() => {
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const f = (xi: tf.Tensor, gi: tf.Tensor | null, bi: tf.Tensor) => {
      const { mean, variance } = tf.moments(xi, axes);
      // A constant scale of ones stands in for "no scale": tfjs-core's stock batch-norm
      // gradient clones an absent scale input and throws.
      return tf.sum(tf.mul(w, tf.batchNorm(xi, mean, variance, bi, gi ?? tf.ones([xi.shape[xi.rank - 1]]), EPS)));
    };
    const inputs = gamma != null ? [x, gamma, beta] : [x, beta];
    const grads = tf.grads((...args: tf.Tensor[]) => (gamma != null ? f(args[0], args[1], args[2]) : f(args[0], null, args[1])) as tf.Scalar)(inputs);
    const dx = grads[0].dataSync() as Float32Array;
    result = {
      dx: Float32Array.from(dx),
      dGamma: gamma != null ? Float32Array.from(grads[1].dataSync()) : null,
      dBeta: Float32Array.from(grads[gamma != null ? 2 : 1].dataSync()),
    };
  });
  return result!;
}

const implementations: Array<{ name: string; stats: () => BatchNormStatsFn | null; grad: () => BatchNormTrainingGradFn | null }> = [];
let nativeStats: BatchNormStatsFn | null = null;
let nativeGrad: BatchNormTrainingGradFn | null = null;

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
  const native = await loadNativeKernels();
  if (native.ok) {
    nativeStats = native.kernels.batchNormStats;
    nativeGrad = native.kernels.batchNormTrainingGrad;
  } else if (process.env.LAB_TFJS_TRAIN_EXPECT_NATIVE === '1') {
    throw new Error(`native kernels did not build: ${native.reason}`);
  }
});
implementations.push({ name: 'js', stats: () => batchNormStats, grad: () => batchNormTrainingGrad });
implementations.push({ name: 'native', stats: () => nativeStats, grad: () => nativeGrad });

async function withKernels<T>(backendName: string, stats: BatchNormStatsFn, grad: BatchNormTrainingGradFn, fn: () => T): Promise<T> {
  await tf.setBackend(backendName);
  tf.registerKernel(batchNormStatsConfig(backendName, stats));
  tf.registerKernel(batchNormTrainingGradConfig(backendName, grad));
  try {
    return fn();
  } finally {
    tf.unregisterKernel(BATCH_NORM_STATS, backendName);
    tf.unregisterKernel(BATCH_NORM_TRAINING_GRAD, backendName);
  }
}

for (const impl of implementations) {
  describe(`batch-norm training kernels (${impl.name})`, () => {
    it('statistics match a float64 two-pass reference, also with |mean| >> std', async (ctx) => {
      const stats = impl.stats();
      if (stats == null) return ctx.skip();
      const rand = seededRandom(3);
      for (const [shape, offset] of [
        [[3, 5, 4, 7], 0],
        [[2, 6, 6, 3], 1000],
        [[9, 1], 0],
      ] as Array<[number[], number]>) {
        const x = randomValues(rand, shape.reduce((a, b) => a * b)).map((v) => v + offset);
        const C = shape[shape.length - 1];
        for (const backendName of ['cpu', 'wasm']) {
          const out = await withKernels(backendName, stats, batchNormTrainingGrad, () => {
            const input = tf.tensor(x, shape);
            const result = tf.engine().runKernel(BATCH_NORM_STATS, { x: input }) as tf.Tensor;
            const values = Float32Array.from(result.dataSync());
            tf.dispose([input, result]);
            return values;
          });
          const ref = referenceStats(x, C);
          expect(relativeError(out.subarray(0, C), ref.mean), `${backendName} mean ${shape}`).toBeLessThan(1e-6);
          // Variance relative to its own scale: a one-pass E[x²] − E[x]² would fail this at offset 1000.
          expect(relativeError(out.subarray(C), ref.variance), `${backendName} variance ${shape}+${offset}`).toBeLessThan(1e-5);
        }
      }
    });

    it('the gradient through the batch statistics matches tfjs autodiff of moments + batchNorm', async (ctx) => {
      const grad = impl.grad();
      const stats = impl.stats();
      if (grad == null || stats == null) return ctx.skip();
      const rand = seededRandom(11);
      for (const [i, shape] of [[4, 3, 5, 6], [2, 7, 3], [5, 2]].entries()) {
        const C = shape[shape.length - 1];
        const xv = randomValues(rand, shape.reduce((a, b) => a * b)).map((v) => 3 * v + 0.5);
        const wv = randomValues(rand, xv.length);
        const gv = randomValues(rand, C).map((v) => v + 1.5);
        const bv = randomValues(rand, C);
        for (const withScale of [true, false]) {
          await tf.setBackend('cpu');
          const x = tf.tensor(xv, shape);
          const w = tf.tensor(wv, shape);
          const gamma = withScale ? tf.tensor(gv) : null;
          const beta = tf.tensor(bv);
          const ref = autodiffReference(x, gamma, beta, w);
          const ref64 = referenceStats(xv, C);
          for (const backendName of ['cpu', 'wasm']) {
            const [dx, dScale, dOffset] = await withKernels(backendName, stats, grad, () => {
              const inputs: tf.NamedTensorMap = {
                dy: tf.tensor(wv, shape),
                x: tf.tensor(xv, shape),
                mean: tf.tensor(ref64.mean),
                variance: tf.tensor(ref64.variance),
              };
              if (withScale) inputs.scale = tf.tensor(gv);
              const outs = tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD, inputs, { varianceEpsilon: EPS }) as tf.Tensor[];
              const values = outs.map((t) => Float32Array.from(t.dataSync()));
              tf.dispose([...outs, ...Object.values(inputs)]);
              return values;
            });
            const what = `${backendName} case ${i} scale=${withScale}`;
            expect(relativeError(dx, ref.dx), `dx ${what}`).toBeLessThan(1e-4);
            expect(relativeError(dOffset, ref.dBeta), `dOffset ${what}`).toBeLessThan(1e-4);
            // Without a scale, dScale is still reported (the caller ignores it): sum(dy * x̂).
            if (withScale) expect(relativeError(dScale, ref.dGamma!), `dScale ${what}`).toBeLessThan(1e-4);
          }
          tf.dispose([x, w, beta, ...(gamma ? [gamma] : [])]);
        }
      }
    });
  });
}

describe('batch-norm training kernels: bad input', () => {
  it('names the input and what was expected', async () => {
    await withKernels('cpu', batchNormStats, batchNormTrainingGrad, () => {
      const x = tf.zeros([2, 3, 4]);
      expect(() => tf.engine().runKernel(BATCH_NORM_STATS, { x: tf.zeros([4]) })).toThrow(/rank >= 2/);
      expect(() =>
        tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD, { dy: x, x, mean: tf.zeros([3]), variance: tf.zeros([4]) }, { varianceEpsilon: EPS }),
      ).toThrow(/input 'mean' must be float32 with 4 values/);
      expect(() =>
        tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD, { dy: tf.zeros([2, 3, 5]), x, mean: tf.zeros([4]), variance: tf.zeros([4]) }, { varianceEpsilon: EPS }),
      ).toThrow(/dy \[2,3,5\] must be float32 with the shape of x/);
      x.dispose();
    });
  });
});
