import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeMaxPoolGradKernel } from './max-pool-grad';
import { dot, randomInt, relativeError, runOn, seededRandom } from './test-support';

type Pad = 'same' | 'valid' | number;

async function maxPoolForward(backendName: string, x: Float32Array, shape: number[], filterSize: number[], strides: number[], pad: Pad) {
  return runOn(backendName, 'MaxPool', { x: { values: x, shape } }, { filterSize, strides, pad, dimRoundingMode: 'floor' });
}

async function ourGrad(x: Float32Array, shape: number[], dy: Float32Array, dyShape: number[], attrs: Record<string, unknown>) {
  await tf.setBackend('wasm');
  const backend = tf.findBackend('wasm')!;
  const xt = tf.tensor(x, shape);
  const dyt = tf.tensor(dy, dyShape);
  const before = backend.numDataIds();
  const out = makeMaxPoolGradKernel()({ inputs: { dy: dyt, input: xt, output: dyt }, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  const values = Float32Array.from(backend.readSync(out.dataId) as Float32Array);
  backend.disposeData(out.dataId);
  expect(backend.numDataIds()).toBe(before + 0);
  tf.dispose([xt, dyt]);
  await tf.setBackend('cpu');
  return values;
}

/** Distinct values (a shuffled grid, spacing 0.01) so a small perturbation never changes an argmax. */
function distinctValues(rand: () => number, size: number, negativeOnly = false): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = (negativeOnly ? -(i + 1) : i - size / 2) * 0.01;
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

beforeAll(async () => {
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
});

describe('MaxPoolGrad', () => {
  it('fixes the stock wasm kernel, which loses the gradient of all-negative windows', async () => {
    // x = -1..-9 in a 3x3 map, 3x3 pool, stride 2, SAME (pad 1 before): the four windows' maxima
    // are -1, -2, -4, -5 at flat indices 0, 1, 3, 4 (worked by hand).
    const x = new Float32Array([-1, -2, -3, -4, -5, -6, -7, -8, -9]);
    const attrs = { filterSize: [3, 3], strides: [2, 2], pad: 'same', dimRoundingMode: 'floor' };
    const dy = new Float32Array([1, 1, 1, 1]);
    const inputs = {
      dy: { values: dy, shape: [1, 2, 2, 1] },
      input: { values: x, shape: [1, 3, 3, 1] },
      output: { values: new Float32Array([-1, -2, -4, -5]), shape: [1, 2, 2, 1] },
    };
    const expected = [1, 1, 0, 1, 1, 0, 0, 0, 0];
    expect(Array.from((await runOn('cpu', 'MaxPoolGrad', inputs, attrs)).values)).toEqual(expected);
    // The stock wasm kernel (4.22.0) sends everything to index 0.
    expect(Array.from((await runOn('wasm', 'MaxPoolGrad', inputs, attrs)).values)).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(await ourGrad(x, [1, 3, 3, 1], dy, [1, 2, 2, 1], attrs))).toEqual(expected);
  });

  it('matches the cpu kernel on random shapes, strides and paddings (including all-negative inputs)', async () => {
    const rand = seededRandom(71);
    for (let i = 0; i < 20; i++) {
      const shape = [randomInt(rand, 1, 3), randomInt(rand, 2, 9), randomInt(rand, 2, 9), randomInt(rand, 1, 5)];
      const filterSize = [randomInt(rand, 1, 3), randomInt(rand, 1, 3)];
      const strides = [randomInt(rand, 1, 3), randomInt(rand, 1, 2)];
      const padKind = randomInt(rand, 0, 2);
      const pad: Pad = padKind === 0 ? 'same' : padKind === 1 ? 'valid' : randomInt(rand, 0, 1);
      if (filterSize[0] > shape[1] + 2 * (typeof pad === 'number' ? pad : 0) || filterSize[1] > shape[2] + 2 * (typeof pad === 'number' ? pad : 0)) continue;
      const x = distinctValues(rand, tf.util.sizeFromShape(shape), i % 3 === 0);
      const y = await maxPoolForward('cpu', x, shape, filterSize, strides, pad);
      if (y.values.length === 0) continue;
      const dy = Float32Array.from({ length: y.values.length }, () => rand() * 2 - 1);
      const attrs = { filterSize, strides, pad, dimRoundingMode: 'floor' };
      const reference = await runOn('cpu', 'MaxPoolGrad', { dy: { values: dy, shape: y.shape }, input: { values: x, shape }, output: y }, attrs);
      const ours = await ourGrad(x, shape, dy, y.shape, attrs);
      expect(relativeError(ours, reference.values), JSON.stringify({ shape, filterSize, strides, pad })).toBeLessThan(1e-6);
    }
  });

  it('agrees with finite differences of sum(maxPool(x) * dy)', async () => {
    const rand = seededRandom(81);
    const shape = [2, 7, 6, 3];
    const filterSize = [3, 3];
    const strides = [2, 2];
    const x = distinctValues(rand, tf.util.sizeFromShape(shape), true);
    const y = await maxPoolForward('cpu', x, shape, filterSize, strides, 'same');
    const dy = Float32Array.from({ length: y.values.length }, () => rand() * 2 - 1);
    const ours = await ourGrad(x, shape, dy, y.shape, { filterSize, strides, pad: 'same', dimRoundingMode: 'floor' });
    const eps = 1e-3;
    for (let k = 0; k < 12; k++) {
      const j = Math.floor(rand() * x.length);
      const plus = Float32Array.from(x);
      const minus = Float32Array.from(x);
      plus[j] += eps;
      minus[j] -= eps;
      const fPlus = dot((await maxPoolForward('cpu', plus, shape, filterSize, strides, 'same')).values, dy);
      const fMinus = dot((await maxPoolForward('cpu', minus, shape, filterSize, strides, 'same')).values, dy);
      expect(ours[j]).toBeCloseTo((fPlus - fMinus) / (2 * eps), 3);
    }
  });
});
