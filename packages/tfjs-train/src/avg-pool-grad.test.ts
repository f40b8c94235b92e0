import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { avgPoolGradConfig, makeAvgPoolGradKernel } from './avg-pool-grad';
import { dot, randomValues, relativeError, runOn, seededRandom } from './test-support';
import { removeFastTraining, useFastTraining } from './use-fast-training';

type Pad = 'same' | 'valid' | number;
const BACKENDS = ['cpu', 'wasm'] as const;

async function avgPoolForward(backendName: string, x: Float32Array, shape: number[], filterSize: number[], strides: number[], pad: Pad, dimRoundingMode?: string) {
  return runOn(backendName, 'AvgPool', { x: { values: x, shape } }, { filterSize, strides, pad, ...(dimRoundingMode ? { dimRoundingMode } : {}) });
}

/** Our kernel called directly on `backendName`, checking that it leaves no buffer behind. */
async function ourGrad(backendName: string, shape: number[], dy: Float32Array, dyShape: number[], attrs: Record<string, unknown>) {
  const previous = tf.getBackend();
  await tf.setBackend(backendName);
  const backend = tf.findBackend(backendName)!;
  const xt = tf.zeros(shape);
  const dyt = tf.tensor(dy, dyShape);
  const before = backend.numDataIds();
  const out = makeAvgPoolGradKernel()({ inputs: { dy: dyt, input: xt }, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  const values = Float32Array.from(backend.readSync(out.dataId) as Float32Array);
  backend.disposeData(out.dataId);
  expect(backend.numDataIds()).toBe(before);
  tf.dispose([xt, dyt]);
  await tf.setBackend(previous);
  return values;
}

/**
 * d/dx sum(avgPool(x) * dy) by central finite differences of the backend's own forward AvgPool, at
 * every element of x. The function is linear in x, so with eps = 0.5 the difference is exact up to
 * float32 rounding of the forward outputs (summed in float64).
 */
async function finiteDifferenceGrad(backendName: string, shape: number[], dy: Float32Array, filterSize: number[], strides: number[], pad: Pad, dimRoundingMode?: string) {
  const x = randomValues(seededRandom(5), tf.util.sizeFromShape(shape));
  const f = async (p: Float32Array) => dot((await avgPoolForward(backendName, p, shape, filterSize, strides, pad, dimRoundingMode)).values, dy);
  const eps = 0.5;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const plus = Float32Array.from(x);
    const minus = Float32Array.from(x);
    plus[i] += eps;
    minus[i] -= eps;
    out[i] = ((await f(plus)) - (await f(minus))) / (2 * eps);
  }
  return out;
}

beforeAll(async () => {
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
});

describe('AvgPoolGrad', () => {
  it('divides each window by the cells inside the image, as the forward does; the stock kernels divide by the whole window', async () => {
    // x 3x3, 3x3 pool, stride 2, SAME: 2x2 outputs, one padded row/column before and after. Each
    // window keeps 2x2 cells of the image (worked by hand), so the forward is the mean of 4 values:
    // x = 1..9 gives [3, 4, 6, 7] on both backends. With dy = 1, cell (r, c) lies in as many windows
    // as [1, 2, 1][r] * [1, 2, 1][c], each passing back 1/4.
    const x = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const attrs = { filterSize: [3, 3], strides: [2, 2], pad: 'same' };
    const dy = new Float32Array([1, 1, 1, 1]);
    const multiplicity = [1, 2, 1, 2, 4, 2, 1, 2, 1];
    for (const backendName of BACKENDS) {
      expect(Array.from((await avgPoolForward(backendName, x, [1, 3, 3, 1], [3, 3], [2, 2], 'same')).values), backendName).toEqual([3, 4, 6, 7]);
      const inputs = { dy: { values: dy, shape: [1, 2, 2, 1] }, input: { values: x, shape: [1, 3, 3, 1] } };
      // The stock kernels (4.22.0) divide by 9: the border gradients are 4/9 of the true ones.
      const stock = (await runOn(backendName, 'AvgPoolGrad', inputs, attrs)).values;
      multiplicity.forEach((m, i) => expect(stock[i], `${backendName} stock ${i}`).toBeCloseTo(m / 9, 6));
      const ours = await ourGrad(backendName, [1, 3, 3, 1], dy, [1, 2, 2, 1], attrs);
      expect(Array.from(ours), backendName).toEqual(multiplicity.map((m) => m / 4));
    }
  });

  const cases: { shape: number[]; filterSize: number[]; strides: number[]; pad: Pad; dimRoundingMode?: string; only?: 'cpu' }[] = [
    { shape: [2, 5, 6, 3], filterSize: [2, 2], strides: [1, 1], pad: 'valid' },
    { shape: [2, 7, 5, 3], filterSize: [3, 3], strides: [2, 2], pad: 'valid' },
    { shape: [2, 5, 6, 3], filterSize: [3, 3], strides: [1, 1], pad: 'same' },
    { shape: [2, 7, 6, 3], filterSize: [3, 3], strides: [2, 2], pad: 'same' },
    { shape: [3, 6, 5, 2], filterSize: [3, 2], strides: [2, 1], pad: 'same' },
    // Explicit padding.
    { shape: [2, 5, 5, 2], filterSize: [3, 3], strides: [2, 2], pad: 1 },
    // Ceil rounding: the last window reaches past the padding (the forward's dimRoundingMode is not passed to
    // the gradient). cpu only: the stock wasm forward (XNNPACK, 4.22.0) fills a 3x3 of the 4x4 output here
    // and leaves the rest 0, so there is no forward to differentiate.
    { shape: [2, 6, 6, 2], filterSize: [3, 3], strides: [2, 2], pad: 1, dimRoundingMode: 'ceil', only: 'cpu' },
  ];
  for (const backendName of BACKENDS) {
    for (const { only, ...c } of cases) {
      if (only && only !== backendName) continue;
      it(`on ${backendName} equals finite differences of the forward tf.avgPool: ${JSON.stringify(c)}`, async () => {
        const y = await avgPoolForward(backendName, new Float32Array(tf.util.sizeFromShape(c.shape)), c.shape, c.filterSize, c.strides, c.pad, c.dimRoundingMode);
        const dy = randomValues(seededRandom(c.shape[1] * 31 + c.shape[2]), y.values.length);
        const reference = await finiteDifferenceGrad(backendName, c.shape, dy, c.filterSize, c.strides, c.pad, c.dimRoundingMode);
        const ours = await ourGrad(backendName, c.shape, dy, y.shape, { filterSize: c.filterSize, strides: c.strides, pad: c.pad });
        expect(relativeError(ours, reference)).toBeLessThan(1e-5);
        if (c.pad === 'same') {
          // The stock kernel is off at the border by far more than rounding (the case the kernel exists for).
          const stock = (await runOn(backendName, 'AvgPoolGrad', { dy: { values: dy, shape: y.shape }, input: { values: new Float32Array(reference.length), shape: c.shape } }, { filterSize: c.filterSize, strides: c.strides, pad: c.pad })).values;
          expect(relativeError(stock, reference)).toBeGreaterThan(0.05);
        }
      });
    }
  }

  it('is what tf.grad uses once registered, and frees what it makes', async () => {
    for (const backendName of BACKENDS) {
      await tf.setBackend(backendName);
      const stock = tf.getKernel('AvgPoolGrad', backendName)!;
      tf.unregisterKernel('AvgPoolGrad', backendName);
      tf.registerKernel(avgPoolGradConfig(backendName));
      try {
        const shape = [2, 7, 6, 3];
        const x = tf.tensor4d(randomValues(seededRandom(9), tf.util.sizeFromShape(shape)), shape as [number, number, number, number]);
        const dyValues = randomValues(seededRandom(10), 2 * 4 * 3 * 3);
        const dy = tf.tensor4d(dyValues, [2, 4, 3, 3]);
        const before = tf.memory().numTensors;
        const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(v as tf.Tensor4D, 3, 2, 'same'), dy)))(x);
        expect(tf.memory().numTensors).toBe(before + 1);
        const reference = await finiteDifferenceGrad(backendName, shape, dyValues, [3, 3], [2, 2], 'same');
        expect(relativeError(g.dataSync() as Float32Array, reference), backendName).toBeLessThan(1e-5);
        tf.dispose([x, dy, g]);
      } finally {
        tf.unregisterKernel('AvgPoolGrad', backendName);
        tf.registerKernel(stock);
      }
    }
    await tf.setBackend('cpu');
  });

  it('is installed by useFastTraining on wasm and cpu: tf.grad of a same-padded avgPool is then right', async () => {
    const shape = [2, 5, 7, 3];
    const x = randomValues(seededRandom(21), tf.util.sizeFromShape(shape));
    const dyValues = randomValues(seededRandom(22), 2 * 3 * 4 * 3);
    for (const backendName of BACKENDS) {
      await tf.setBackend(backendName);
      await useFastTraining(backendName, { native: 'off', batchNormGradient: false });
      try {
        const xt = tf.tensor4d(x, shape as [number, number, number, number]);
        const dy = tf.tensor4d(dyValues, [2, 3, 4, 3]);
        const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(v as tf.Tensor4D, 3, 2, 'same'), dy)))(xt);
        const reference = await finiteDifferenceGrad(backendName, shape, dyValues, [3, 3], [2, 2], 'same');
        expect(relativeError(g.dataSync() as Float32Array, reference), backendName).toBeLessThan(1e-5);
        tf.dispose([xt, dy, g]);
      } finally {
        removeFastTraining(backendName);
      }
    }
    await tf.setBackend('cpu');
  });
});
