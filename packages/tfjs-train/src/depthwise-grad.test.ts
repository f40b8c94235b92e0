import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { convGeometry } from './conv-geometry';
import { makeDepthwiseBackpropFilterKernel, makeDepthwiseBackpropInputKernel } from './depthwise-grad';
import { dot, finiteDifference, randomInt, randomValues, relativeError, runOn, sampleIndices, seededRandom } from './test-support';

interface DepthwiseCase {
  xShape: [number, number, number, number];
  filterShape: [number, number, number, number];
  strides: [number, number];
  dilations: [number, number];
  pad: 'same' | 'valid' | number;
}

function randomCases(seed: number, count: number): DepthwiseCase[] {
  const rand = seededRandom(seed);
  const cases: DepthwiseCase[] = [];
  while (cases.length < count) {
    const dilated = rand() < 0.35;
    const padKind = randomInt(rand, 0, 2);
    const c: DepthwiseCase = {
      xShape: [randomInt(rand, 1, 3), randomInt(rand, 3, 9), randomInt(rand, 3, 9), randomInt(rand, 1, 4)],
      filterShape: [randomInt(rand, 1, 3), randomInt(rand, 1, 3), 0, randomInt(rand, 1, 2)],
      // tfjs-core allows strides > 1 or dilations > 1, not both at once.
      strides: dilated ? [1, 1] : [randomInt(rand, 1, 2), randomInt(rand, 1, 2)],
      dilations: dilated ? [randomInt(rand, 1, 2), randomInt(rand, 2, 3)] : [1, 1],
      pad: padKind === 0 ? 'same' : padKind === 1 ? 'valid' : randomInt(rand, 0, 1),
    };
    c.filterShape[2] = c.xShape[3];
    const g = convGeometry(c.xShape, c.filterShape, c.strides, c.dilations, c.pad, 'floor', true);
    if (g.outHeight >= 1 && g.outWidth >= 1) cases.push(c);
  }
  return cases;
}

async function runDirect(
  kernelFunc: tf.KernelFunc,
  inputs: Record<string, { values: Float32Array; shape: number[] }>,
  attrs: Record<string, unknown>,
): Promise<Float32Array> {
  await tf.setBackend('wasm');
  const backend = tf.findBackend('wasm')!;
  const tensors: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) tensors[k] = tf.tensor(v.values, v.shape, 'float32');
  const before = backend.numDataIds();
  const out = kernelFunc({ inputs: tensors as unknown as tf.NamedTensorInfoMap, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  const values = Float32Array.from(backend.readSync(out.dataId) as Float32Array);
  backend.disposeData(out.dataId);
  expect(backend.numDataIds()).toBe(before);
  tf.dispose(Object.values(tensors));
  await tf.setBackend('cpu');
  return values;
}

function data(c: DepthwiseCase, seed: number) {
  const rand = seededRandom(seed);
  const g = convGeometry(c.xShape, c.filterShape, c.strides, c.dilations, c.pad, 'floor', true);
  const dyShape = [g.batch, g.outHeight, g.outWidth, g.outChannels];
  return {
    rand,
    dyShape,
    x: randomValues(rand, tf.util.sizeFromShape(c.xShape)),
    w: randomValues(rand, tf.util.sizeFromShape(c.filterShape)),
    dy: randomValues(rand, tf.util.sizeFromShape(dyShape)),
  };
}

/** sum(depthwiseConv2d(x, w) * dy) on cpu; linear in x and w. */
function objective(c: DepthwiseCase, dy: Float32Array, x: Float32Array, w: Float32Array): number {
  return tf.tidy(() => {
    const y = tf.engine().runKernel(
      'DepthwiseConv2dNative',
      { x: tf.tensor(x, c.xShape), filter: tf.tensor(w, c.filterShape) },
      { strides: c.strides, pad: c.pad, dilations: c.dilations, dimRoundingMode: 'floor', dataFormat: 'NHWC' } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor;
    return dot(y.dataSync(), dy);
  });
}

beforeAll(async () => {
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
});

describe('depthwise gradients (wasm has neither kernel)', () => {
  it('DepthwiseConv2dNativeBackpropFilter matches the cpu kernel and finite differences', async () => {
    for (const [i, c] of randomCases(51, 16).entries()) {
      const { x, w, dy, dyShape, rand } = data(c, 800 + i);
      const attrs = { strides: c.strides, dilations: c.dilations, pad: c.pad, dimRoundingMode: 'floor', filterShape: c.filterShape };
      const inputs = { x: { values: x, shape: c.xShape }, dy: { values: dy, shape: dyShape } };
      const reference = await runOn('cpu', 'DepthwiseConv2dNativeBackpropFilter', inputs, attrs);
      const ours = await runDirect(makeDepthwiseBackpropFilterKernel(), inputs, attrs);
      const idx = sampleIndices(rand, w.length, 4);
      const numeric = finiteDifference((p) => objective(c, dy, x, p), w, idx, 0.5);
      expect(relativeError(idx.map((j) => ours[j]), numeric), `FD ${JSON.stringify(c)}`).toBeLessThan(1e-4);
      // The cpu backend's depthwise gradient kernels ignore dilations (tfjs-core never sends
      // them any: its depthwise gradient rejects dilation > 1), so dilated cases are checked
      // against finite differences only.
      if (c.dilations[0] === 1 && c.dilations[1] === 1) {
        expect(relativeError(ours, reference.values), JSON.stringify(c)).toBeLessThan(1e-5);
      }
    }
  });

  it('DepthwiseConv2dNativeBackpropInput matches the cpu kernel and finite differences', async () => {
    for (const [i, c] of randomCases(61, 16).entries()) {
      const { x, w, dy, dyShape, rand } = data(c, 900 + i);
      const attrs = { strides: c.strides, dilations: c.dilations, pad: c.pad, dimRoundingMode: 'floor', inputShape: c.xShape };
      const inputs = { dy: { values: dy, shape: dyShape }, filter: { values: w, shape: c.filterShape } };
      const reference = await runOn('cpu', 'DepthwiseConv2dNativeBackpropInput', inputs, attrs);
      const ours = await runDirect(makeDepthwiseBackpropInputKernel(), inputs, attrs);
      const idx = sampleIndices(rand, x.length, 4);
      const numeric = finiteDifference((p) => objective(c, dy, p, w), x, idx, 0.5);
      expect(relativeError(idx.map((j) => ours[j]), numeric), `FD ${JSON.stringify(c)}`).toBeLessThan(1e-4);
      // The cpu backend's depthwise gradient kernels ignore dilations (tfjs-core never sends
      // them any: its depthwise gradient rejects dilation > 1), so dilated cases are checked
      // against finite differences only.
      if (c.dilations[0] === 1 && c.dilations[1] === 1) {
        expect(relativeError(ours, reference.values), JSON.stringify(c)).toBeLessThan(1e-5);
      }
    }
  });
});
