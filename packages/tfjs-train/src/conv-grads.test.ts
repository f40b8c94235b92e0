import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeConv2DBackpropFilterKernel, type BackpropFilterStrategy } from './conv-backprop-filter';
import { makeConv2DBackpropInputKernel, type BackpropInputPath } from './conv-backprop-input';
import { convGeometry, toPair } from './conv-geometry';
import { caseData, convObjective, describeCase, randomCases, runDirect, type ConvCase } from './conv-test-cases';
import { finiteDifference, relativeError, runOn, sampleIndices } from './test-support';

const strategies: BackpropFilterStrategy[] = ['conv', 'matmul', 'auto'];
const inputPaths: BackpropInputPath[] = ['conv', 'matmul', 'auto'];

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
});

describe('Conv2DBackpropFilter', () => {
  it('matches the cpu backend kernel on random shapes (strides, paddings, batch > 1), both strategies, wasm and cpu', async () => {
    for (const [i, c] of randomCases(11, 24, false).entries()) {
      const { x, dy, dyShape } = caseData(c, 100 + i);
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.dimRoundingMode, filterShape: c.filterShape };
      const inputs = { x: { values: x, shape: c.xShape }, dy: { values: dy, shape: dyShape } };
      const reference = await runOn('cpu', 'Conv2DBackpropFilter', inputs, attrs);
      for (const backendName of ['wasm', 'cpu']) {
        for (const strategy of strategies) {
          const ours = await runDirect(backendName, makeConv2DBackpropFilterKernel(backendName, strategy), inputs, attrs);
          expect(ours.shape).toEqual(c.filterShape);
          expect(relativeError(ours.values, reference.values), `${backendName}/${strategy} ${describeCase(c)}`).toBeLessThan(1e-5);
        }
      }
    }
  });

  it('handles NCHW input by computing in NHWC', async () => {
    const c = randomCases(5, 1, false)[0];
    const { x, dy, dyShape } = caseData(c, 7);
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.dimRoundingMode, filterShape: c.filterShape };
    const reference = await runOn('cpu', 'Conv2DBackpropFilter', { x: { values: x, shape: c.xShape }, dy: { values: dy, shape: dyShape } }, attrs);
    await tf.setBackend('cpu');
    const toNCHW = (v: Float32Array, s: number[]) => tf.tidy(() => tf.transpose(tf.tensor(v, s), [0, 3, 1, 2]).dataSync() as Float32Array);
    const nchw = (s: number[]) => [s[0], s[3], s[1], s[2]];
    const ours = await runDirect(
      'wasm',
      makeConv2DBackpropFilterKernel('wasm', 'auto'),
      { x: { values: toNCHW(x, c.xShape), shape: nchw(c.xShape) }, dy: { values: toNCHW(dy, dyShape), shape: nchw(dyShape) } },
      { ...attrs, dataFormat: 'NCHW' },
    );
    expect(relativeError(ours.values, reference.values)).toBeLessThan(1e-5);
  });

  it('agrees with finite differences of the forward conv, including dilations', async () => {
    const cases = [...randomCases(21, 4, true), ...randomCases(22, 3, false)];
    for (const [i, c] of cases.entries()) {
      const { x, w, dy, dyShape, rand } = caseData(c, 300 + i);
      const attrs = {
        strides: c.strides,
        dilations: c.dilations,
        pad: c.pad,
        dataFormat: 'NHWC',
        dimRoundingMode: c.dimRoundingMode,
        filterShape: c.filterShape,
      };
      const inputs = { x: { values: x, shape: c.xShape }, dy: { values: dy, shape: dyShape } };
      await tf.setBackend('cpu');
      const idx = sampleIndices(rand, w.length, 6);
      const numeric = finiteDifference((p) => convObjective(c, dy, x, p), w, idx, 0.5);
      for (const strategy of strategies) {
        const ours = await runDirect('wasm', makeConv2DBackpropFilterKernel('wasm', strategy), inputs, attrs);
        await tf.setBackend('cpu');
        const analytic = idx.map((j) => ours.values[j]);
        expect(relativeError(analytic, numeric), `${strategy} ${describeCase(c)}`).toBeLessThan(1e-4);
      }
    }
  });

  it('rejects a dy that does not match the convolution output', async () => {
    const kernel = makeConv2DBackpropFilterKernel('cpu', 'auto');
    await tf.setBackend('cpu');
    const x = tf.zeros([1, 5, 5, 2]);
    const dy = tf.zeros([1, 4, 4, 3]);
    expect(() =>
      kernel({
        inputs: { x, dy },
        backend: tf.findBackend('cpu')!,
        attrs: { strides: 1, pad: 'same', filterShape: [3, 3, 2, 3] } as unknown as tf.NamedAttrMap,
      }),
    ).toThrow(/dy shape/);
    tf.dispose([x, dy]);
  });
});

describe('Conv2DBackpropInput', () => {
  it('matches the cpu backend kernel on random shapes, wasm and cpu', async () => {
    for (const [i, c] of randomCases(31, 24, false).entries()) {
      const { w, dy, dyShape } = caseData(c, 500 + i);
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.dimRoundingMode, inputShape: c.xShape };
      const inputs = { dy: { values: dy, shape: dyShape }, filter: { values: w, shape: c.filterShape } };
      const reference = await runOn('cpu', 'Conv2DBackpropInput', inputs, attrs);
      for (const backendName of ['wasm', 'cpu']) {
        for (const path of inputPaths) {
          const ours = await runDirect(backendName, makeConv2DBackpropInputKernel(backendName, path), inputs, attrs);
          expect(ours.shape).toEqual(c.xShape);
          expect(relativeError(ours.values, reference.values), `${backendName}/${path} ${describeCase(c)}`).toBeLessThan(1e-5);
        }
      }
    }
  });

  it('takes the conv path on large maps and the matmul path elsewhere, with equal results', async () => {
    // 2x32x32x64 with a 3x3 filter has > 1e6 patch elements: the stride-1 conv path.
    const c: ConvCase = { xShape: [2, 32, 32, 64], filterShape: [3, 3, 64, 5], strides: [1, 1], dilations: [1, 1], pad: 'same' };
    const { w, dy, dyShape } = caseData(c, 9);
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.xShape };
    const inputs = { dy: { values: dy, shape: dyShape }, filter: { values: w, shape: c.filterShape } };
    const reference = await runOn('cpu', 'Conv2DBackpropInput', inputs, attrs);
    const ours = await runDirect('wasm', makeConv2DBackpropInputKernel('wasm'), inputs, attrs);
    expect(relativeError(ours.values, reference.values)).toBeLessThan(1e-5);
  });

  it('handles NCHW by transposing', async () => {
    const c = randomCases(6, 1, false)[0];
    const { w, dy, dyShape } = caseData(c, 8);
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.dimRoundingMode, inputShape: c.xShape };
    const reference = await runOn('cpu', 'Conv2DBackpropInput', { dy: { values: dy, shape: dyShape }, filter: { values: w, shape: c.filterShape } }, attrs);
    await tf.setBackend('cpu');
    const toNCHW = (v: Float32Array, s: number[]) => tf.tidy(() => tf.transpose(tf.tensor(v, s), [0, 3, 1, 2]).dataSync() as Float32Array);
    const nchw = (s: number[]) => [s[0], s[3], s[1], s[2]];
    const ours = await runDirect(
      'wasm',
      makeConv2DBackpropInputKernel('wasm'),
      { dy: { values: toNCHW(dy, dyShape), shape: nchw(dyShape) }, filter: { values: w, shape: c.filterShape } },
      { ...attrs, dataFormat: 'NCHW', inputShape: nchw(c.xShape) },
    );
    await tf.setBackend('cpu');
    expect(relativeError(ours.values, toNCHW(reference.values, c.xShape))).toBeLessThan(1e-5);
  });

  it('agrees with finite differences of the forward conv, including dilations', async () => {
    const cases = [...randomCases(41, 4, true), ...randomCases(42, 3, false)];
    for (const [i, c] of cases.entries()) {
      const { x, w, dy, dyShape, rand } = caseData(c, 700 + i);
      const attrs = { strides: c.strides, dilations: c.dilations, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.dimRoundingMode, inputShape: c.xShape };
      await tf.setBackend('cpu');
      const idx = sampleIndices(rand, x.length, 6);
      const numeric = finiteDifference((p) => convObjective(c, dy, p, w), x, idx, 0.5);
      for (const path of inputPaths) {
        const inputs = { dy: { values: dy, shape: dyShape }, filter: { values: w, shape: c.filterShape } };
        const ours = await runDirect('wasm', makeConv2DBackpropInputKernel('wasm', path), inputs, attrs);
        await tf.setBackend('cpu');
        expect(relativeError(idx.map((j) => ours.values[j]), numeric), `${path} ${describeCase(c)}`).toBeLessThan(1e-4);
      }
    }
  });

  it('covers the geometry helpers used by both kernels', () => {
    expect(toPair(2)).toEqual([2, 2]);
    expect(toPair(undefined)).toEqual([1, 1]);
    const g = convGeometry([2, 7, 5, 3], [3, 3, 3, 4], [2, 2], [1, 1], 'same', undefined, false);
    // SAME with stride 2: out = ceil(7/2) = 4, ceil(5/2) = 3; total pad rows = (4-1)*2+3-7 = 2 -> top 1.
    expect([g.outHeight, g.outWidth, g.padTop, g.padLeft]).toEqual([4, 3, 1, 1]);
  });
});
