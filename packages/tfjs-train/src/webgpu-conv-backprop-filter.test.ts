/**
 * The webgpu Conv2DBackpropFilter against the cpu backend's, a plain-JS float64 reference and
 * finite differences, on Dawn's Node bindings (`webgpu`). Without an adapter (no Vulkan driver) the
 * tests skip and their title says why. Reads are async (`await t.data()`): tfjs-backend-webgpu's
 * dataSync needs OffscreenCanvas, which Node lacks.
 */
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { relativeError, sampleIndices, seededRandom, randomValues } from './test-support';
import {
  planWebGpuBackpropFilter,
  removeWebGpuTraining,
  useWebGpuTraining,
  webgpuConv2DBackpropFilterConfig,
} from './webgpu-conv-backprop-filter';
import { convGeometry } from './conv-geometry';

const load = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

/** Sets up WebGPU as the runner does (Dawn as navigator.gpu, then the backend); a reason when it cannot. */
async function setUpWebGpu(): Promise<string | null> {
  try {
    const dawn = (await load('webgpu')) as { create(flags: string[]): { requestAdapter(): Promise<unknown> }; globals: Record<string, unknown> };
    const target = globalThis as Record<string, unknown>;
    for (const [name, value] of Object.entries(dawn.globals)) if (!(name in target)) target[name] = value;
    const gpu = dawn.create([]);
    if ((await gpu.requestAdapter()) == null) return 'no WebGPU adapter (install a Vulkan driver, e.g. mesa-vulkan-drivers)';
    const nav = (globalThis as { navigator?: object }).navigator;
    if (nav == null) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    else Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true });
    await load('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) return 'tfjs-backend-webgpu failed to initialise';
    await tf.setBackend('cpu');
    return null;
  } catch (error) {
    return `webgpu does not load: ${(error as Error).message.split('\n')[0]}`;
  }
}
const unavailable = await setUpWebGpu();

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
interface Case {
  name: string;
  xShape: [number, number, number, number];
  filterShape: [number, number, number, number];
  strides: [number, number];
  pad: Pad;
  dilations?: [number, number];
}

const CASES: Case[] = [
  { name: '3x3 stride 1 same (vec4)', xShape: [2, 9, 9, 8], filterShape: [3, 3, 8, 12], strides: [1, 1], pad: 'same' },
  { name: '3x3 stride 2 explicit pad', xShape: [3, 10, 11, 4], filterShape: [3, 3, 4, 8], strides: [2, 2], pad: [[0, 0], [1, 0], [0, 2], [0, 0]] },
  { name: '1x1 stride 2 valid', xShape: [2, 9, 9, 8], filterShape: [1, 1, 8, 16], strides: [2, 2], pad: 'valid' },
  { name: '7x7 stride 2 pad 3, 1 input channel', xShape: [2, 19, 21, 1], filterShape: [7, 7, 1, 6], strides: [2, 2], pad: [[0, 0], [3, 3], [3, 3], [0, 0]] },
  { name: 'odd sizes, 3x2 stride (2,1) same, scalar', xShape: [3, 7, 5, 3], filterShape: [3, 2, 3, 5], strides: [2, 1], pad: 'same' },
  { name: 'vec4, tiles not dividing (12 in, 20 out)', xShape: [1, 13, 13, 12], filterShape: [3, 3, 12, 20], strides: [1, 1], pad: 1 },
];

const DILATED: Case[] = [
  { name: 'dilated (2,1) same, vec4', xShape: [2, 9, 10, 4], filterShape: [3, 3, 4, 8], strides: [1, 1], pad: 'same', dilations: [2, 1] },
  { name: 'dilated (1,3) valid, scalar', xShape: [2, 8, 12, 3], filterShape: [2, 3, 3, 5], strides: [1, 1], pad: 'valid', dilations: [1, 3] },
];

function explicitPads(c: Case): { top: number; left: number; outH: number; outW: number } {
  const g = convGeometry(c.xShape, c.filterShape, c.strides, c.dilations ?? [1, 1], c.pad as 'same', undefined, false);
  return { top: g.padTop, left: g.padLeft, outH: g.outHeight, outW: g.outWidth };
}

/** dW from the definition, in float64. */
function referenceFilterGrad(c: Case, x: Float32Array, dy: Float32Array): Float64Array {
  const [B, H, W, CI] = c.xShape;
  const [KH, KW, , CO] = c.filterShape;
  const [sh, sw] = c.strides;
  const [dh, dw] = c.dilations ?? [1, 1];
  const { top, left, outH, outW } = explicitPads(c);
  const out = new Float64Array(KH * KW * CI * CO);
  for (let kh = 0; kh < KH; kh++)
    for (let kw = 0; kw < KW; kw++)
      for (let b = 0; b < B; b++)
        for (let oh = 0; oh < outH; oh++) {
          const ih = oh * sh + kh * dh - top;
          if (ih < 0 || ih >= H) continue;
          for (let ow = 0; ow < outW; ow++) {
            const iw = ow * sw + kw * dw - left;
            if (iw < 0 || iw >= W) continue;
            for (let ci = 0; ci < CI; ci++) {
              const xv = x[((b * H + ih) * W + iw) * CI + ci];
              const o = ((kh * KW + kw) * CI + ci) * CO;
              const d = ((b * outH + oh) * outW + ow) * CO;
              for (let co = 0; co < CO; co++) out[o + co] += xv * dy[d + co];
            }
          }
        }
  return out;
}

/** sum(conv2d(x, w) * r) in float64, from the definition. */
function convDotR(c: Case, x: Float32Array, w: Float64Array, r: Float32Array): number {
  const [B, H, W, CI] = c.xShape;
  const [KH, KW, , CO] = c.filterShape;
  const [sh, sw] = c.strides;
  const [dh, dw] = c.dilations ?? [1, 1];
  const { top, left, outH, outW } = explicitPads(c);
  let total = 0;
  for (let b = 0; b < B; b++)
    for (let oh = 0; oh < outH; oh++)
      for (let ow = 0; ow < outW; ow++)
        for (let co = 0; co < CO; co++) {
          let y = 0;
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * sh + kh * dh - top;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * sw + kw * dw - left;
              if (iw < 0 || iw >= W) continue;
              for (let ci = 0; ci < CI; ci++) y += x[((b * H + ih) * W + iw) * CI + ci] * w[((kh * KW + kw) * CI + ci) * CO + co];
            }
          }
          total += y * r[((b * outH + oh) * outW + ow) * CO + co];
        }
  return total;
}

function inputsFor(c: Case, seed: number): { x: Float32Array; dy: Float32Array; dyShape: number[] } {
  const rand = seededRandom(seed);
  const { outH, outW } = explicitPads(c);
  const dyShape = [c.xShape[0], outH, outW, c.filterShape[3]];
  return { x: randomValues(rand, tf.util.sizeFromShape(c.xShape)), dy: randomValues(rand, tf.util.sizeFromShape(dyShape)), dyShape };
}

/** Runs Conv2DBackpropFilter through the engine on the current backend; async read. */
async function backpropFilter(c: Case, x: Float32Array, dy: Float32Array, dyShape: number[], dataFormat: 'NHWC' | 'NCHW' = 'NHWC'): Promise<Float32Array> {
  const xt = tf.tensor(x, dataFormat === 'NHWC' ? c.xShape : [c.xShape[0], c.xShape[3], c.xShape[1], c.xShape[2]]);
  const dyt = tf.tensor(dy, dataFormat === 'NHWC' ? dyShape : [dyShape[0], dyShape[3], dyShape[1], dyShape[2]]);
  const attrs = { strides: c.strides, pad: c.pad, dataFormat, dimRoundingMode: undefined, filterShape: c.filterShape, ...(c.dilations ? { dilations: c.dilations } : {}) };
  const out = tf.engine().runKernel('Conv2DBackpropFilter', { x: xt, dy: dyt }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  const values = (await out.data()) as Float32Array;
  tf.dispose([xt, dyt, out]);
  return values;
}

/** Largest |a − b| over the largest |b|. */
function relativeToScale(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return Number.isNaN(diff) ? Infinity : diff / scale;
}

/** Registers the kernel with a fixed number of row splits (undefined: the planner's choice). */
function registerWithSplits(splits: number | undefined): void {
  removeWebGpuTraining();
  useWebGpuTraining();
  if (splits != null) {
    tf.unregisterKernel('Conv2DBackpropFilter', 'webgpu');
    tf.registerKernel(webgpuConv2DBackpropFilterConfig({ splits }));
  }
}

describe.skipIf(unavailable != null)(`webgpu Conv2DBackpropFilter${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  afterAll(async () => {
    removeWebGpuTraining();
    await tf.setBackend('cpu');
  });

  it('registers for webgpu, and removeWebGpuTraining restores the stock kernel', () => {
    const stock = tf.getKernel('Conv2DBackpropFilter', 'webgpu')!.kernelFunc;
    expect(useWebGpuTraining()).toEqual({ kernels: ['Conv2DBackpropFilter'] });
    expect(tf.getKernel('Conv2DBackpropFilter', 'webgpu')!.kernelFunc).not.toBe(stock);
    useWebGpuTraining();
    removeWebGpuTraining();
    expect(tf.getKernel('Conv2DBackpropFilter', 'webgpu')!.kernelFunc).toBe(stock);
  });

  it('plans vec4 tiles where channels allow, and splits the rows when the tile grid is small', () => {
    const g = (x: number[], f: [number, number, number, number], s: number) => convGeometry(x, f, s, 1, 'same', undefined, false);
    expect(planWebGpuBackpropFilter(g([4, 16, 16, 1], [7, 7, 1, 16], 2))).toMatchObject({ variant: 'scalar', kBlocks: 13, coBlocks: 4 });
    expect(planWebGpuBackpropFilter(g([4, 16, 16, 1], [7, 7, 1, 16], 2)).splits).toBeGreaterThan(1);
    expect(planWebGpuBackpropFilter(g([16, 8, 8, 512], [3, 3, 512, 512], 1))).toMatchObject({ variant: 'vec4', splits: 1 });
    expect(planWebGpuBackpropFilter(g([2, 9, 9, 8], [3, 3, 8, 12], 1), 1).splits).toBe(1);
  });

  it.each(CASES)('equals the cpu backend within 1e-4 relative: $name (planned splits and no split)', async (c) => {
    const { x, dy, dyShape } = inputsFor(c, 17);
    await tf.setBackend('cpu');
    const cpu = await backpropFilter(c, x, dy, dyShape);
    expect(relativeToScale(cpu, referenceFilterGrad(c, x, dy))).toBeLessThan(1e-5);
    await tf.setBackend('webgpu');
    const before = tf.memory().numTensors;
    for (const splits of [undefined, 1, 3]) {
      registerWithSplits(splits);
      const gpu = await backpropFilter(c, x, dy, dyShape);
      expect(relativeToScale(gpu, cpu), `splits ${splits}`).toBeLessThan(1e-4);
    }
    expect(tf.memory().numTensors).toBe(before);
    removeWebGpuTraining();
  });

  it.each(DILATED)('honours a dilations attribute, against the float64 definition: $name', async (c) => {
    const { x, dy, dyShape } = inputsFor(c, 23);
    await tf.setBackend('webgpu');
    for (const splits of [undefined, 1]) {
      registerWithSplits(splits);
      const gpu = await backpropFilter(c, x, dy, dyShape);
      expect(relativeToScale(gpu, referenceFilterGrad(c, x, dy))).toBeLessThan(1e-4);
    }
    removeWebGpuTraining();
  });

  it('gives zeros when the output is empty (a valid 3x3 on a 2x2 map)', async () => {
    await tf.setBackend('webgpu');
    useWebGpuTraining();
    const c: Case = { name: 'empty', xShape: [2, 2, 2, 4], filterShape: [3, 3, 4, 8], strides: [1, 1], pad: 'valid' };
    const gpu = await backpropFilter(c, new Float32Array(32).fill(1), new Float32Array(0), [2, 0, 0, 8]);
    expect(Array.from(gpu)).toEqual(new Array(3 * 3 * 4 * 8).fill(0));
    removeWebGpuTraining();
  });

  it('falls back to the stock kernel for NCHW', async () => {
    const c = CASES[0];
    const { x, dy, dyShape } = inputsFor(c, 5);
    // Transposed copies of the same data, so the NHWC reference applies.
    await tf.setBackend('cpu');
    const toNCHW = (v: Float32Array, s: number[]) => tf.tidy(() => tf.transpose(tf.tensor(v, s), [0, 3, 1, 2]).dataSync() as Float32Array);
    const xc = toNCHW(x, c.xShape);
    const dyc = toNCHW(dy, dyShape);
    const cpu = await backpropFilter(c, xc, dyc, dyShape, 'NCHW');
    expect(relativeToScale(cpu, referenceFilterGrad(c, x, dy))).toBeLessThan(1e-5);
    await tf.setBackend('webgpu');
    const stock = await backpropFilter(c, xc, dyc, dyShape, 'NCHW');
    useWebGpuTraining();
    const gpu = await backpropFilter(c, xc, dyc, dyShape, 'NCHW');
    expect(gpu).toEqual(stock);
    expect(relativeToScale(gpu, cpu)).toBeLessThan(1e-4);
    removeWebGpuTraining();
  });

  it('matches finite differences of sum(conv2d(x, w) * R) with respect to w (float64 reference)', async () => {
    await tf.setBackend('webgpu');
    useWebGpuTraining();
    const rand = seededRandom(99);
    for (const c of [CASES[0], CASES[3], CASES[4], DILATED[0]]) {
      const { x, dy: r, dyShape } = inputsFor(c, 31);
      const w = randomValues(rand, tf.util.sizeFromShape(c.filterShape));
      const xt = tf.tensor4d(x, c.xShape);
      const rt = tf.tensor(r, dyShape);
      const wt = tf.tensor4d(w, c.filterShape);
      const dilations = c.dilations ?? [1, 1];
      let grad: Float32Array;
      if (dilations[0] === 1 && dilations[1] === 1) {
        // Through tfjs-core's gradient of conv2d, which runs Conv2DBackpropFilter.
        const g = tf.grad((wv: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xt, wv as tf.Tensor4D, c.strides, c.pad as 'same'), rt)))(wt);
        grad = (await g.data()) as Float32Array;
        g.dispose();
      } else {
        grad = await backpropFilter(c, x, r, dyShape);
      }
      tf.dispose([xt, rt, wt]);
      const w64 = Float64Array.from(w);
      const eps = 1e-3;
      for (const i of sampleIndices(rand, w.length, 6)) {
        const plus = Float64Array.from(w64);
        const minus = Float64Array.from(w64);
        plus[i] += eps;
        minus[i] -= eps;
        const fd = (convDotR(c, x, plus, r) - convDotR(c, x, minus, r)) / (2 * eps);
        expect(Math.abs(grad[i] - fd), `${c.name} index ${i}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(fd)));
      }
    }
    removeWebGpuTraining();
  });

  it('a tiny conv net: gradients and one SGD step equal the cpu backend', async () => {
    const rand = seededRandom(3);
    const shapes: Array<[number, number, number, number]> = [
      [7, 7, 1, 8],
      [3, 3, 8, 8],
      [1, 1, 8, 12],
    ];
    const init = shapes.map((s) => randomValues(rand, tf.util.sizeFromShape(s)).map((v) => v * 0.3));
    const xv = randomValues(rand, 2 * 20 * 18 * 1);
    async function stepOn(backend: string): Promise<Float32Array[]> {
      await tf.setBackend(backend);
      let calls = 0;
      if (backend === 'webgpu') {
        useWebGpuTraining();
        // Count the calls of the lab's kernel, so the test proves it ran.
        const ours = tf.getKernel('Conv2DBackpropFilter', 'webgpu')!;
        tf.unregisterKernel('Conv2DBackpropFilter', 'webgpu');
        tf.registerKernel({ ...ours, kernelFunc: (args) => (calls++, ours.kernelFunc(args)) });
      }
      const before = tf.memory().numTensors;
      const ws = shapes.map((s, i) => tf.tidy(() => tf.variable(tf.tensor4d(init[i], s))));
      const x = tf.tensor4d(xv, [2, 20, 18, 1]);
      const loss = () =>
        tf.tidy(() => {
          let h: tf.Tensor4D = tf.relu(tf.conv2d(x, ws[0] as tf.Variable<tf.Rank.R4>, 2, [[0, 0], [3, 3], [3, 3], [0, 0]]));
          h = tf.relu(tf.conv2d(h, ws[1] as tf.Variable<tf.Rank.R4>, 2, 'same'));
          h = tf.conv2d(h, ws[2] as tf.Variable<tf.Rank.R4>, 1, 'valid');
          return tf.mean(tf.square(tf.sub(h, 0.5))) as tf.Scalar;
        });
      const { value, grads } = tf.variableGrads(loss, ws);
      value.dispose();
      const out: Float32Array[] = [];
      for (const w of ws) out.push((await grads[w.name].data()) as Float32Array);
      const sgd = tf.train.sgd(0.1);
      sgd.applyGradients(grads);
      sgd.dispose();
      for (const w of ws) out.push((await w.data()) as Float32Array);
      tf.dispose([...Object.values(grads), ...ws, x]);
      expect(tf.memory().numTensors).toBe(before);
      if (backend === 'webgpu') {
        expect(calls).toBe(3);
        removeWebGpuTraining();
      }
      return out;
    }
    const cpu = await stepOn('cpu');
    const gpu = await stepOn('webgpu');
    for (let i = 0; i < cpu.length; i++) expect(relativeToScale(gpu[i], cpu[i]), `tensor ${i}`).toBeLessThan(1e-4);
    // The relative-error helper shared with the other kernel tests agrees.
    expect(relativeError(gpu[0], cpu[0])).toBeLessThan(1e-4);
  });
});
