// Random convolution cases and helpers shared by the conv kernel tests (not exported from the barrel).
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { convGeometry } from './conv-geometry';
import { dot, randomInt, randomValues, seededRandom } from './test-support';

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

export interface ConvCase {
  xShape: [number, number, number, number];
  filterShape: [number, number, number, number];
  strides: [number, number];
  dilations: [number, number];
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Random channels-last convolutions with odd sizes, batch > 1, every padding kind. */
export function randomCases(seed: number, count: number, withDilation: boolean): ConvCase[] {
  const rand = seededRandom(seed);
  const cases: ConvCase[] = [];
  while (cases.length < count) {
    const kH = randomInt(rand, 1, 3);
    const kW = randomInt(rand, 1, 3);
    const strides: [number, number] = withDilation ? [1, 1] : [randomInt(rand, 1, 2), randomInt(rand, 1, 2)];
    const dilations: [number, number] = withDilation ? [randomInt(rand, 1, 2), randomInt(rand, 1, 3)] : [1, 1];
    const padKind = randomInt(rand, 0, 3);
    let pad: Pad = padKind === 0 ? 'same' : padKind === 1 ? 'valid' : padKind === 2 ? randomInt(rand, 0, 2) : [
      [0, 0],
      [randomInt(rand, 0, 2), randomInt(rand, 0, 2)],
      [randomInt(rand, 0, 2), randomInt(rand, 0, 2)],
      [0, 0],
    ];
    if (withDilation && typeof pad === 'number') pad = 'same';
    const c: ConvCase = {
      xShape: [randomInt(rand, 1, 3), randomInt(rand, 3, 9), randomInt(rand, 3, 9), randomInt(rand, 1, 5)],
      filterShape: [kH, kW, 0, randomInt(rand, 1, 4)],
      strides,
      dilations,
      pad,
      dimRoundingMode: typeof pad === 'number' ? 'floor' : undefined,
    };
    c.filterShape[2] = c.xShape[3];
    const g = convGeometry(c.xShape, c.filterShape, c.strides, c.dilations, c.pad, c.dimRoundingMode, false);
    if (g.outHeight >= 1 && g.outWidth >= 1) cases.push(c);
  }
  return cases;
}

/**
 * Random stride-1 convolutions that the native direct path takes when forced: output channels a
 * multiple of 8 (8-32), 1-17 input channels, maps from 1x1 up, every padding kind, kernels 1-3 on
 * each axis (1x1 'same' is pointwise and stays a plain GEMM).
 */
export function directCases(seed: number, count: number): ConvCase[] {
  const rand = seededRandom(seed);
  return randomCases(seed, count, false).map((c) => {
    const xShape: ConvCase['xShape'] = [c.xShape[0], randomInt(rand, 1, 9), randomInt(rand, 1, 9), randomInt(rand, 1, 17)];
    const filterShape: ConvCase['filterShape'] = [c.filterShape[0], c.filterShape[1], xShape[3], 8 * randomInt(rand, 1, 4)];
    const candidate: ConvCase = { ...c, xShape, filterShape, strides: [1, 1] };
    const g = convGeometry(xShape, filterShape, [1, 1], [1, 1], candidate.pad, candidate.dimRoundingMode, false);
    // Too small for a 'valid' window: pad it instead.
    return g.outHeight >= 1 && g.outWidth >= 1 ? candidate : { ...candidate, pad: 'same', dimRoundingMode: undefined };
  });
}

export function describeCase(c: ConvCase): string {
  return `x=${c.xShape} w=${c.filterShape} s=${c.strides} d=${c.dilations} pad=${JSON.stringify(c.pad)}`;
}

/** Calls a kernel function directly on a backend and checks it frees every intermediate. */
export async function runDirect(
  backendName: string,
  kernelFunc: tf.KernelFunc,
  inputs: Record<string, { values: Float32Array; shape: number[] }>,
  attrs: Record<string, unknown>,
): Promise<{ values: Float32Array; shape: number[] }> {
  await tf.setBackend(backendName);
  const backend = tf.findBackend(backendName)!;
  const tensors: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) tensors[k] = tf.tensor(v.values, v.shape, 'float32');
  const before = backend.numDataIds();
  const out = kernelFunc({ inputs: tensors as unknown as tf.NamedTensorInfoMap, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  const values = Float32Array.from(backend.readSync(out.dataId) as Float32Array);
  const shape = [...out.shape];
  backend.disposeData(out.dataId);
  expect(backend.numDataIds(), 'intermediates freed').toBe(before);
  tf.dispose(Object.values(tensors));
  return { values, shape };
}

/** sum(conv2d(x, w) * dy) on the cpu backend: linear in x and in w, so central differences are exact. */
export function convObjective(c: ConvCase, dy: Float32Array, x: Float32Array, w: Float32Array): number {
  return tf.tidy(() => {
    const y = tf.engine().runKernel(
      'Conv2D',
      { x: tf.tensor(x, c.xShape), filter: tf.tensor(w, c.filterShape) },
      { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dilations: c.dilations, dimRoundingMode: c.dimRoundingMode } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor;
    return dot(y.dataSync(), dy);
  });
}

export function caseData(c: ConvCase, seed: number) {
  const rand = seededRandom(seed);
  const g = convGeometry(c.xShape, c.filterShape, c.strides, c.dilations, c.pad, c.dimRoundingMode, false);
  const dyShape = [g.batch, g.outHeight, g.outWidth, g.outChannels];
  return {
    rand,
    x: randomValues(rand, tf.util.sizeFromShape(c.xShape)),
    w: randomValues(rand, tf.util.sizeFromShape(c.filterShape)),
    dy: randomValues(rand, tf.util.sizeFromShape(dyShape)),
    dyShape,
  };
}

