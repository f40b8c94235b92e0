import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { conv2dDilatedGradConfig } from './conv2d-dilated-grad';
import { removeFastTraining, useFastTraining } from './use-fast-training';
import { dot, randomValues, relativeError, sampleIndices, seededRandom } from './test-support';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

interface Case {
  xShape: [number, number, number, number];
  filterShape: [number, number, number, number];
  dilations: [number, number];
  pad: Pad;
}

const cases: Case[] = [
  { xShape: [2, 8, 7, 3], filterShape: [3, 3, 3, 4], dilations: [2, 2], pad: 'valid' },
  { xShape: [2, 7, 9, 3], filterShape: [3, 2, 3, 4], dilations: [2, 3], pad: 'same' },
  { xShape: [3, 6, 6, 2], filterShape: [2, 3, 2, 3], dilations: [3, 1], pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
];

const stockGradient = tf.getGradient('Conv2D')!;

beforeAll(async () => {
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
});

afterEach(() => {
  tf.registerGradient(stockGradient);
});

function forward(c: Case, x: Float32Array, w: Float32Array): Float32Array {
  return tf.tidy(() => tf.conv2d(tf.tensor4d(x, c.xShape), tf.tensor4d(w, c.filterShape), 1, c.pad, 'NHWC', c.dilations).dataSync() as Float32Array);
}

/**
 * Central differences of sum(conv2d(x, w) * dy), the forward run by the backend in use, at `indices`
 * of x (or of w). Linear in each argument, so eps = 0.5 is exact up to float32 rounding of the outputs.
 */
function finiteDifferences(c: Case, x: Float32Array, w: Float32Array, dy: Float32Array, of: 'x' | 'w', indices: number[]): number[] {
  const eps = 0.5;
  return indices.map((i) => {
    const at = (delta: number) => {
      const p = Float32Array.from(of === 'x' ? x : w);
      p[i] += delta;
      return dot(of === 'x' ? forward(c, p, w) : forward(c, x, p), dy);
    };
    return (at(eps) - at(-eps)) / (2 * eps);
  });
}

describe('Conv2D gradient with dilation', () => {
  it("is refused by tfjs-core's own gradient (4.22.0)", () => {
    const c = cases[0];
    expect(() =>
      tf.tidy(() => tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, c.pad, 'NHWC', c.dilations)))([tf.ones(c.xShape), tf.ones(c.filterShape)])),
    ).toThrow(/dilation rates greater than 1 are not yet supported in gradients/);
  });

  for (const backendName of ['cpu', 'wasm'] as const) {
    it(`on ${backendName}: tf.grads of a dilated conv2d equal finite differences of the forward, for x and the filter`, async () => {
      await tf.setBackend(backendName);
      // wasm has no stock Conv2DBackpropFilter; cpu keeps its stock Conv2DBackpropInput either way.
      if (backendName === 'wasm') await useFastTraining('wasm', { native: 'off', batchNormGradient: false });
      tf.registerGradient(conv2dDilatedGradConfig);
      try {
        for (const [k, c] of cases.entries()) {
          const rand = seededRandom(40 + k);
          const x = randomValues(rand, tf.util.sizeFromShape(c.xShape));
          const w = randomValues(rand, tf.util.sizeFromShape(c.filterShape));
          const outShape = tf.tidy(() => tf.conv2d(tf.zeros(c.xShape) as tf.Tensor4D, tf.zeros(c.filterShape) as tf.Tensor4D, 1, c.pad, 'NHWC', c.dilations).shape);
          const dyValues = randomValues(rand, tf.util.sizeFromShape(outShape));
          const xt = tf.tensor4d(x, c.xShape);
          const wt = tf.tensor4d(w, c.filterShape);
          const dy = tf.tensor(dyValues, outShape);
          const before = tf.memory().numTensors;
          const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, c.pad, 'NHWC', c.dilations), dy)))([xt, wt]);
          expect(tf.memory().numTensors, 'only the two gradients are left').toBe(before + 2);
          expect(gx.shape).toEqual(c.xShape);
          expect(gw.shape).toEqual(c.filterShape);
          const gxv = gx.dataSync();
          const gwv = gw.dataSync();
          const xi = sampleIndices(rand, x.length, 40);
          const wi = Array.from({ length: w.length }, (_, i) => i);
          const label = `${backendName} ${JSON.stringify(c)}`;
          expect(relativeError(xi.map((i) => gxv[i]), finiteDifferences(c, x, w, dyValues, 'x', xi)), label).toBeLessThan(1e-5);
          expect(relativeError(Array.from(gwv), finiteDifferences(c, x, w, dyValues, 'w', wi)), label).toBeLessThan(1e-5);
          tf.dispose([xt, wt, dy, gx, gw]);
        }
      } finally {
        if (backendName === 'wasm') removeFastTraining('wasm');
        await tf.setBackend('cpu');
      }
    });
  }

  it("at dilation 1 gives exactly tfjs-core's gradient", () => {
    const c: Case = { xShape: [2, 7, 6, 3], filterShape: [3, 3, 3, 4], dilations: [1, 1], pad: 'same' };
    const rand = seededRandom(3);
    const x = tf.tensor4d(randomValues(rand, tf.util.sizeFromShape(c.xShape)), c.xShape);
    const w = tf.tensor4d(randomValues(rand, tf.util.sizeFromShape(c.filterShape)), c.filterShape);
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, [2, 1], c.pad)));
    const stock = tf.grads(f)([x, w]);
    tf.registerGradient(conv2dDilatedGradConfig);
    const ours = tf.grads(f)([x, w]);
    expect(Array.from(ours[0].dataSync())).toEqual(Array.from(stock[0].dataSync()));
    expect(Array.from(ours[1].dataSync())).toEqual(Array.from(stock[1].dataSync()));
    tf.dispose([x, w, ...stock, ...ours]);
  });
});
