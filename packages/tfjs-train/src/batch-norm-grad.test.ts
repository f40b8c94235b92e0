import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-layers registers tfjs-core's stock gradients (Sum, Mul, ...) in Node.
import '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BATCH_NORM_GRAD_SUMS, batchNormGradSumsConfig, fusedBatchNormGradConfig } from './batch-norm-grad';
import { dot, randomValues, relativeError, seededRandom } from './test-support';

const stockGradient = tf.getGradient('FusedBatchNorm')!;

interface Inputs {
  x: tf.Tensor;
  mean: tf.Tensor;
  variance: tf.Tensor;
  offset: tf.Tensor;
  scale: tf.Tensor;
  dy: tf.Tensor;
}

function makeInputs(seed: number, xShape: number[], channelShape: number[]): Inputs {
  const rand = seededRandom(seed);
  const c = tf.util.sizeFromShape(channelShape);
  return {
    x: tf.tensor(randomValues(rand, tf.util.sizeFromShape(xShape)), xShape),
    mean: tf.tensor(randomValues(rand, c), channelShape),
    variance: tf.tensor(randomValues(rand, c).map((v) => 0.5 + Math.abs(v)), channelShape),
    offset: tf.tensor(randomValues(rand, c), channelShape),
    scale: tf.tensor(randomValues(rand, c), channelShape),
    dy: tf.tensor(randomValues(rand, tf.util.sizeFromShape(xShape)), xShape),
  };
}

/** Gradients of sum(batchNorm(x, mean, variance, offset, scale) * dy) w.r.t. all five inputs. */
function batchNormGrads(v: Inputs, eps: number): Float32Array[] {
  return tf.tidy(() => {
    const f = (x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, offset: tf.Tensor, scale: tf.Tensor) =>
      tf.sum(tf.mul(tf.batchNorm(x, mean, variance, offset, scale, eps), v.dy));
    const grads = tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([v.x, v.mean, v.variance, v.offset, v.scale]);
    return grads.map((g) => g.dataSync() as Float32Array);
  });
}

function objective(v: Inputs, eps: number, which: keyof Inputs, values: Float32Array): number {
  return tf.tidy(() => {
    const args = { ...v, [which]: tf.tensor(values, v[which].shape) };
    const y = tf.batchNorm(args.x, args.mean, args.variance, args.offset, args.scale, eps);
    return dot(y.dataSync(), v.dy.dataSync());
  });
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

afterAll(() => {
  tf.registerGradient(stockGradient);
});

describe('FusedBatchNorm gradient', () => {
  it('equals the stock gradient for NHWC input with per-channel statistics, on cpu and wasm', async () => {
    for (const backendName of ['cpu', 'wasm']) {
      await tf.setBackend(backendName);
      const v = makeInputs(5, [2, 5, 3, 4], [4]);
      tf.registerGradient(stockGradient);
      const stock = batchNormGrads(v, 1e-3);
      tf.registerGradient(fusedBatchNormGradConfig);
      const before = tf.memory().numTensors;
      const ours = batchNormGrads(v, 1e-3);
      expect(tf.memory().numTensors).toBe(before);
      for (let i = 0; i < 5; i++) expect(relativeError(ours[i], stock[i]), `${backendName} input ${i}`).toBeLessThan(1e-5);
      tf.dispose(Object.values(v));
    }
    await tf.setBackend('cpu');
  });

  it('gives the same gradients through the fused per-channel sums kernel, on cpu and wasm', async () => {
    for (const backendName of ['cpu', 'wasm']) {
      await tf.setBackend(backendName);
      const v = makeInputs(9, [3, 4, 5, 6], [6]);
      tf.registerGradient(stockGradient);
      const stock = batchNormGrads(v, 1e-3);
      tf.registerGradient(fusedBatchNormGradConfig);
      tf.registerKernel(batchNormGradSumsConfig(backendName));
      try {
        const before = tf.memory().numTensors;
        const ours = batchNormGrads(v, 1e-3);
        expect(tf.memory().numTensors).toBe(before);
        for (let i = 0; i < 5; i++) expect(relativeError(ours[i], stock[i]), `${backendName} input ${i}`).toBeLessThan(1e-5);
      } finally {
        tf.unregisterKernel(BATCH_NORM_GRAD_SUMS, backendName);
      }
      tf.dispose(Object.values(v));
    }
    await tf.setBackend('cpu');
  });

  it('agrees with finite differences for every input, including a rank-2 input the stock gradient cannot handle', () => {
    tf.registerGradient(fusedBatchNormGradConfig);
    for (const [xShape, channelShape] of [
      [[3, 4, 2, 3], [3]],
      [[6, 5], [5]],
      [[2, 3, 3, 2], [2, 3, 3, 2]],
    ] as const) {
      const v = makeInputs(17, [...xShape], [...channelShape]);
      const eps = 1e-3;
      const analytic = batchNormGrads(v, eps);
      const rand = seededRandom(3);
      (['x', 'mean', 'variance', 'offset', 'scale'] as const).forEach((name, k) => {
        const base = v[name].dataSync() as Float32Array;
        for (let t = 0; t < 3; t++) {
          const j = Math.floor(rand() * base.length);
          const h = 1e-2;
          const plus = Float32Array.from(base);
          const minus = Float32Array.from(base);
          plus[j] += h;
          minus[j] -= h;
          const numeric = (objective(v, eps, name, plus) - objective(v, eps, name, minus)) / (2 * h);
          // Central difference of a smooth function in float32: error ~ h^2 and rounding.
          expect(Math.abs(analytic[k][j] - numeric), `${name}[${j}] shape ${xShape}`).toBeLessThan(2e-3 * (1 + Math.abs(numeric)));
        }
      });
      tf.dispose(Object.values(v));
    }
  });

  it('trains through tf.moments like a layers BatchNormalization in training mode (stock vs ours)', () => {
    const v = makeInputs(23, [4, 6, 6, 3], [3]);
    const lossGrads = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const { mean, variance } = tf.moments(xVar, [0, 1, 2]);
          return tf.sum(tf.mul(tf.batchNorm(xVar, mean, variance, offsetVar, scaleVar, 1e-5), v.dy)) as tf.Scalar;
        }, [xVar, offsetVar, scaleVar]);
        return [value.dataSync()[0], ...Object.values(grads).map((g) => g.dataSync() as Float32Array)] as const;
      });
    const xVar = tf.variable(v.x);
    const offsetVar = tf.variable(v.offset);
    const scaleVar = tf.variable(v.scale);
    tf.registerGradient(stockGradient);
    const stock = lossGrads();
    tf.registerGradient(fusedBatchNormGradConfig);
    const ours = lossGrads();
    expect(ours[0]).toBeCloseTo(stock[0], 4);
    for (let i = 1; i < stock.length; i++) expect(relativeError(ours[i] as Float32Array, stock[i] as Float32Array)).toBeLessThan(1e-4);
    tf.dispose([xVar, offsetVar, scaleVar, ...Object.values(v)]);
  });
});
