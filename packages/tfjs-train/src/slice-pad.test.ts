import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { copyBox, makePadKernel, makeSliceKernel } from './slice-pad';
import { randomInt, randomValues, seededRandom } from './test-support';

const failIfCalled: tf.KernelFunc = () => {
  throw new Error('fallback called');
};

/** Runs a kernel function directly on a backend; returns values and shape, frees everything. */
function runDirect(backendName: string, kernelFunc: tf.KernelFunc, x: tf.Tensor, attrs: Record<string, unknown>) {
  const backend = tf.findBackend(backendName)!;
  const out = kernelFunc({ inputs: { x }, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  const values = Array.from(backend.readSync(out.dataId) as Float32Array);
  const shape = [...out.shape];
  backend.disposeData(out.dataId);
  return { values, shape };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.setBackend('wasm');
});

describe('copyBox', () => {
  it('copies a box between arrays of different shapes (worked by hand)', () => {
    // src 3x4 = [[0..3],[4..7],[8..11]]; box rows 1-2, cols 1-2 -> dst 2x3 at (0, 1).
    const src = Float32Array.from({ length: 12 }, (_, i) => i);
    const dst = new Float32Array(6);
    copyBox(src, [3, 4], [1, 1], dst, [2, 3], [0, 1], [2, 2]);
    expect(Array.from(dst)).toEqual([0, 5, 6, 0, 9, 10]);
    copyBox(src, [3, 4], [0, 0], dst, [2, 3], [0, 0], [0, 3]);
    expect(Array.from(dst)).toEqual([0, 5, 6, 0, 9, 10]);
  });
});

describe('Slice and PadV2 by run copies', () => {
  it('Slice matches the cpu backend on random shapes of rank 1-5, on wasm and cpu', async () => {
    const rand = seededRandom(21);
    for (let i = 0; i < 40; i++) {
      const rank = randomInt(rand, 1, 5);
      const shape = Array.from({ length: rank }, () => randomInt(rand, 1, 6));
      const begin = shape.map((d) => randomInt(rand, 0, d - 1));
      // -1 means "to the end", as tf.slice allows.
      const size = shape.map((d, a) => (rand() < 0.2 ? -1 : randomInt(rand, 0, d - begin[a])));
      const values = randomValues(rand, shape.reduce((p, d) => p * d, 1));
      await tf.setBackend('cpu');
      const reference = tf.tidy(() => {
        const y = tf.slice(tf.tensor(values, shape), begin, size);
        return { values: Array.from(y.dataSync()), shape: y.shape };
      });
      for (const backendName of ['wasm', 'cpu']) {
        await tf.setBackend(backendName);
        const x = tf.tensor(values, shape);
        const ours = runDirect(backendName, makeSliceKernel(failIfCalled), x, { begin, size });
        x.dispose();
        expect(ours, `${backendName} shape ${shape} begin ${begin} size ${size}`).toEqual(reference);
      }
    }
  });

  it('PadV2 matches the cpu backend, with a constant value', async () => {
    const rand = seededRandom(22);
    for (let i = 0; i < 30; i++) {
      const rank = randomInt(rand, 1, 4);
      const shape = Array.from({ length: rank }, () => randomInt(rand, 1, 5));
      const paddings = shape.map(() => [randomInt(rand, 0, 2), randomInt(rand, 0, 2)] as [number, number]);
      const constantValue = i % 3 === 0 ? 0 : -1.5;
      const values = randomValues(rand, shape.reduce((p, d) => p * d, 1));
      await tf.setBackend('cpu');
      const reference = tf.tidy(() => {
        const y = tf.pad(tf.tensor(values, shape), paddings, constantValue);
        return { values: Array.from(y.dataSync()), shape: y.shape };
      });
      await tf.setBackend('wasm');
      const x = tf.tensor(values, shape);
      expect(runDirect('wasm', makePadKernel(failIfCalled), x, { paddings, constantValue })).toEqual(reference);
      x.dispose();
    }
  });

  it('hands int32 tensors to the stock kernel', async () => {
    await tf.setBackend('wasm');
    let calls = 0;
    const stockSlice = tf.getKernel('Slice', 'wasm')!.kernelFunc;
    const fallback: tf.KernelFunc = (args) => {
      calls++;
      return stockSlice(args);
    };
    const x = tf.tensor([1, 2, 3, 4], [2, 2], 'int32');
    const out = runDirect('wasm', makeSliceKernel(fallback), x, { begin: [1, 0], size: [1, 2] });
    expect(out).toEqual({ values: [3, 4], shape: [1, 2] });
    expect(calls).toBe(1);
    x.dispose();
  });
});
