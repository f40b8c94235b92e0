import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { CONV_BATCH_NORM, CONV_BATCH_NORM_GRAD, convBatchNormConfigs } from './conv-batch-norm';
import { loadNativeKernels, type NativeKernels } from './native-addon';
import { randomValues, relativeError, sampleIndices, seededRandom } from './test-support';

// The fused kernels exist only on the native addon (a C compiler and Node's headers). CI sets
// LAB_TFJS_TRAIN_EXPECT_NATIVE=1 where both exist, so there a build failure fails these tests.
const expectNative = process.env.LAB_TFJS_TRAIN_EXPECT_NATIVE === '1';
const cacheDir = mkdtempSync(join(tmpdir(), 'tfjs-train-conv-bn-test-'));
let native: NativeKernels | null = null;
let nativeReason = '';

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
  const r = await loadNativeKernels({ cacheDir });
  if (r.ok) native = r.kernels;
  else nativeReason = r.reason;
});

afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

function requireNative(ctx: TestContext): NativeKernels {
  if (native == null) {
    expect(expectNative, `native build failed: ${nativeReason}`).toBe(false);
    ctx.skip();
  }
  return native!;
}

type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];
type Pad = 'same' | 'valid' | ExplicitPad;

interface Case {
  name: string;
  xShape: [number, number, number, number];
  filterShape: [number, number, number, number];
  strides: [number, number];
  pad: Pad;
  dilations: [number, number];
  relu: boolean;
  epsilon: number;
  momentum: number;
  /** false: scale and offset are not passed (1 and 0). */
  affine: boolean;
}

const base = { dilations: [1, 1] as [number, number], epsilon: 1e-5, momentum: 0.9, affine: true };
const CASES: Case[] = [
  { ...base, name: '3x3 stride 1 same, relu, batch 2', xShape: [2, 6, 5, 3], filterShape: [3, 3, 3, 4], strides: [1, 1], pad: 'same', relu: true },
  { ...base, name: '3x3 stride 1 same, no relu, batch 3, eps 1e-3, momentum 0.99', xShape: [3, 5, 5, 2], filterShape: [3, 3, 2, 3], strides: [1, 1], pad: 'same', relu: false, epsilon: 1e-3, momentum: 0.99 },
  { ...base, name: '3x3 stride 2 explicit pad 1 (ResNet), relu', xShape: [2, 7, 7, 2], filterShape: [3, 3, 2, 3], strides: [2, 2], pad: [[0, 0], [1, 1], [1, 1], [0, 0]], relu: true },
  { ...base, name: '7x7 stride 2 explicit pad 3 (ResNet stem), relu', xShape: [2, 9, 9, 1], filterShape: [7, 7, 1, 4], strides: [2, 2], pad: [[0, 0], [3, 3], [3, 3], [0, 0]], relu: true },
  { ...base, name: '1x1 stride 2 valid (downsample), no relu', xShape: [3, 6, 6, 4], filterShape: [1, 1, 4, 5], strides: [2, 2], pad: 'valid', relu: false },
  { ...base, name: '3x3 stride 1 valid, batch 1, no relu', xShape: [1, 6, 7, 2], filterShape: [3, 3, 2, 3], strides: [1, 1], pad: 'valid', relu: false },
  { ...base, name: '2x3 strides [2,1] same (asymmetric padding), relu', xShape: [2, 6, 5, 3], filterShape: [2, 3, 3, 2], strides: [2, 1], pad: 'same', relu: true },
  { ...base, name: '3x3 dilation 2 same, relu', xShape: [2, 7, 7, 2], filterShape: [3, 3, 2, 3], strides: [1, 1], pad: 'same', dilations: [2, 2], relu: true },
  { ...base, name: '3x3 stride 2 explicit asymmetric pad, no scale/offset, relu', xShape: [2, 6, 6, 2], filterShape: [3, 3, 2, 3], strides: [2, 2], pad: [[0, 0], [0, 2], [1, 0], [0, 0]], relu: true, affine: false },
  // 8, 16 and 32 output channels take the batch-norm passes that keep a row in registers; over 64 rows (several float blocks).
  { ...base, name: '3x3 stride 1 same, 8 channels, relu, 98 rows', xShape: [2, 7, 7, 3], filterShape: [3, 3, 3, 8], strides: [1, 1], pad: 'same', relu: true },
  { ...base, name: '3x3 stride 1 same, 16 channels, no relu, 108 rows', xShape: [3, 6, 6, 4], filterShape: [3, 3, 4, 16], strides: [1, 1], pad: 'same', relu: false },
  { ...base, name: '1x1 stride 1, 32 channels, no scale/offset, relu, 162 rows', xShape: [2, 9, 9, 2], filterShape: [1, 1, 2, 32], strides: [1, 1], pad: 'valid', relu: true, affine: false },
];

function describeCase(c: Case): string {
  return `${c.name}: x=${c.xShape} w=${c.filterShape} s=${c.strides} d=${c.dilations} pad=${JSON.stringify(c.pad)}`;
}

function attrsOf(c: Case): Record<string, unknown> {
  return { strides: c.strides, pad: c.pad, dilations: c.dilations, epsilon: c.epsilon, momentum: c.momentum, relu: c.relu };
}

// ---------------------------------------------------------------------------------------------
// Float64 reference, written here from the definitions (output size and padding by TensorFlow's
// rules: 'same' → ceil(in/stride) with the odd pixel of padding at the bottom/right).
// ---------------------------------------------------------------------------------------------

interface Geometry {
  B: number; H: number; W: number; C: number; KH: number; KW: number; CO: number;
  OH: number; OW: number; sh: number; sw: number; dh: number; dw: number; pt: number; pl: number;
}

function geometry(c: Case): Geometry {
  const [B, H, W, C] = c.xShape;
  const [KH, KW, , CO] = c.filterShape;
  const [sh, sw] = c.strides;
  const [dh, dw] = c.dilations;
  const ekh = (KH - 1) * dh + 1;
  const ekw = (KW - 1) * dw + 1;
  let OH: number, OW: number, pt: number, pl: number;
  if (c.pad === 'same') {
    OH = Math.ceil(H / sh);
    OW = Math.ceil(W / sw);
    pt = Math.floor(Math.max(0, (OH - 1) * sh + ekh - H) / 2);
    pl = Math.floor(Math.max(0, (OW - 1) * sw + ekw - W) / 2);
  } else if (c.pad === 'valid') {
    OH = Math.ceil((H - ekh + 1) / sh);
    OW = Math.ceil((W - ekw + 1) / sw);
    pt = 0;
    pl = 0;
  } else {
    const [, [t, b], [l, r]] = c.pad;
    OH = Math.floor((H + t + b - ekh) / sh) + 1;
    OW = Math.floor((W + l + r - ekw) / sw) + 1;
    pt = t;
    pl = l;
  }
  return { B, H, W, C, KH, KW, CO, OH, OW, sh, sw, dh, dw, pt, pl };
}

interface Params {
  x: ArrayLike<number>;
  w: ArrayLike<number>;
  scale: ArrayLike<number> | null;
  offset: ArrayLike<number> | null;
}

function convF64(g: Geometry, x: ArrayLike<number>, w: ArrayLike<number>): Float64Array {
  const out = new Float64Array(g.B * g.OH * g.OW * g.CO);
  for (let b = 0; b < g.B; b++)
    for (let oh = 0; oh < g.OH; oh++)
      for (let ow = 0; ow < g.OW; ow++) {
        const o = ((b * g.OH + oh) * g.OW + ow) * g.CO;
        for (let kh = 0; kh < g.KH; kh++) {
          const ih = oh * g.sh + kh * g.dh - g.pt;
          if (ih < 0 || ih >= g.H) continue;
          for (let kw = 0; kw < g.KW; kw++) {
            const iw = ow * g.sw + kw * g.dw - g.pl;
            if (iw < 0 || iw >= g.W) continue;
            for (let ci = 0; ci < g.C; ci++) {
              const xv = x[((b * g.H + ih) * g.W + iw) * g.C + ci];
              const wo = ((kh * g.KW + kw) * g.C + ci) * g.CO;
              for (let co = 0; co < g.CO; co++) out[o + co] += xv * w[wo + co];
            }
          }
        }
      }
  return out;
}

/** conv, its batch mean and biased variance, the normalised output before and after ReLU; float64. */
function forwardF64(c: Case, p: Params) {
  const g = geometry(c);
  const conv = convF64(g, p.x, p.w);
  const n = g.B * g.OH * g.OW;
  const mean = new Float64Array(g.CO);
  const variance = new Float64Array(g.CO);
  for (let r = 0; r < n; r++) for (let k = 0; k < g.CO; k++) mean[k] += conv[r * g.CO + k] / n;
  for (let r = 0; r < n; r++)
    for (let k = 0; k < g.CO; k++) variance[k] += (conv[r * g.CO + k] - mean[k]) ** 2 / n;
  const pre = new Float64Array(conv.length);
  const y = new Float64Array(conv.length);
  for (let r = 0; r < n; r++)
    for (let k = 0; k < g.CO; k++) {
      const i = r * g.CO + k;
      pre[i] = ((conv[i] - mean[k]) / Math.sqrt(variance[k] + c.epsilon)) * (p.scale?.[k] ?? 1) + (p.offset?.[k] ?? 0);
      y[i] = c.relu ? Math.max(pre[i], 0) : pre[i];
    }
  return { g, n, conv, mean, variance, pre, y };
}

// ---------------------------------------------------------------------------------------------
// Data and kernel calls
// ---------------------------------------------------------------------------------------------

interface CaseData {
  x: Float32Array;
  w: Float32Array;
  scale: Float32Array | null;
  offset: Float32Array | null;
  movingMean: Float32Array;
  movingVariance: Float32Array;
  /** Weights of the objective sum(y · R), and the upstream gradient dy = R. */
  r: Float32Array;
  rand: () => number;
}

function caseData(c: Case, seed: number): CaseData {
  const rand = seededRandom(seed);
  const g = geometry(c);
  const co = g.CO;
  return {
    x: randomValues(rand, tf.util.sizeFromShape(c.xShape)),
    w: randomValues(rand, tf.util.sizeFromShape(c.filterShape)),
    scale: c.affine ? Float32Array.from({ length: co }, () => (rand() < 0.2 ? -1 : 1) * (0.5 + rand())) : null,
    offset: c.affine ? Float32Array.from({ length: co }, () => rand() - 0.5) : null,
    movingMean: randomValues(rand, co),
    movingVariance: Float32Array.from({ length: co }, () => 0.5 + rand()),
    r: randomValues(rand, g.B * g.OH * g.OW * co),
    rand,
  };
}

type Inputs = Record<string, { values: Float32Array; shape: number[] } | null>;
interface Output {
  values: Float32Array;
  shape: number[];
}

function kernelFunc(kernelName: string, backendName: string, k: NativeKernels): tf.KernelFunc {
  const config = convBatchNormConfigs(backendName, k).find((cfg) => cfg.kernelName === kernelName);
  expect(config, kernelName).toBeDefined();
  expect(config!.backendName).toBe(backendName);
  return config!.kernelFunc;
}

/**
 * Calls a kernel function directly on a backend (as runDirect in conv-test-cases.ts does, for
 * several outputs) and checks it leaves no data behind besides its outputs.
 */
async function runKernel(backendName: string, func: tf.KernelFunc, inputs: Inputs, attrs: Record<string, unknown>): Promise<Output[]> {
  await tf.setBackend(backendName);
  const backend = tf.backend();
  const tensors: Record<string, tf.Tensor> = {};
  for (const [name, v] of Object.entries(inputs)) if (v != null) tensors[name] = tf.tensor(v.values, v.shape, 'float32');
  const before = backend.numDataIds();
  try {
    const outs = func({ inputs: tensors as unknown as tf.NamedTensorInfoMap, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo[];
    expect(Array.isArray(outs)).toBe(true);
    const result = outs.map((o) => {
      expect(o.dtype).toBe('float32');
      return { values: Float32Array.from(backend.readSync(o.dataId) as Float32Array), shape: [...o.shape] };
    });
    for (const o of outs) backend.disposeData(o.dataId);
    expect(backend.numDataIds(), 'only the outputs are left').toBe(before);
    return result;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

function forwardInputs(c: Case, d: CaseData): Inputs {
  const co = c.filterShape[3];
  return {
    x: { values: d.x, shape: c.xShape },
    filter: { values: d.w, shape: c.filterShape },
    scale: d.scale != null ? { values: d.scale, shape: [co] } : null,
    offset: d.offset != null ? { values: d.offset, shape: [co] } : null,
    movingMean: { values: d.movingMean, shape: [co] },
    movingVariance: { values: d.movingVariance, shape: [co] },
  };
}

async function runForward(backendName: string, k: NativeKernels, c: Case, d: CaseData): Promise<Output[]> {
  return runKernel(backendName, kernelFunc(CONV_BATCH_NORM, backendName, k), forwardInputs(c, d), attrsOf(c));
}

/** The forward on `backendName`, then the gradient kernel with dy = R on the forward's outputs. */
async function runGrad(backendName: string, k: NativeKernels, c: Case, d: CaseData): Promise<Output[]> {
  const [y, conv, stats] = await runForward(backendName, k, c, d);
  const co = c.filterShape[3];
  const inputs: Inputs = {
    dy: { values: d.r, shape: y.shape },
    x: { values: d.x, shape: c.xShape },
    filter: { values: d.w, shape: c.filterShape },
    conv,
    y,
    stats,
    scale: d.scale != null ? { values: d.scale, shape: [co] } : null,
  };
  const { momentum: _unused, ...gradAttrs } = attrsOf(c);
  return runKernel(backendName, kernelFunc(CONV_BATCH_NORM_GRAD, backendName, k), inputs, gradAttrs);
}

// ---------------------------------------------------------------------------------------------
// Stock tfjs ops (cpu backend): the composition the fused op replaces
// ---------------------------------------------------------------------------------------------

/** A dilated filter written out with zeros between the taps (stack + reshape + slice: all differentiable). */
function dilateFilter(w: tf.Tensor4D, [dh, dw]: [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    let out: tf.Tensor = w;
    const [kh, kw, ci, co] = w.shape;
    if (dh > 1) {
      const zeros = Array.from({ length: dh - 1 }, () => tf.zerosLike(out));
      out = tf.slice(tf.reshape(tf.stack([out, ...zeros], 1), [kh * dh, kw, ci, co]), 0, (kh - 1) * dh + 1);
    }
    if (dw > 1) {
      const h = out.shape[0];
      const zeros = Array.from({ length: dw - 1 }, () => tf.zerosLike(out));
      out = tf.slice(tf.reshape(tf.stack([out, ...zeros], 2), [h, kw * dw, ci, co]), [0, 0, 0, 0], [h, (kw - 1) * dw + 1, ci, co]);
    }
    return out as tf.Tensor4D;
  });
}

/**
 * conv → moments over [0,1,2] → (conv − mean)/sqrt(var + ε)·scale + offset → ReLU, in stock ops.
 * `dilateByHand` writes the dilation into the filter (tfjs-core's Conv2D gradient refuses dilations > 1).
 */
function stockForward(c: Case, x: tf.Tensor4D, w: tf.Tensor4D, scale: tf.Tensor | null, offset: tf.Tensor | null, dilateByHand = false) {
  const conv = dilateByHand
    ? tf.conv2d(x, dilateFilter(w, c.dilations), c.strides, c.pad, 'NHWC', 1)
    : tf.conv2d(x, w, c.strides, c.pad, 'NHWC', c.dilations);
  const { mean, variance } = tf.moments(conv, [0, 1, 2]);
  let y = tf.div(tf.sub(conv, mean), tf.sqrt(tf.add(variance, c.epsilon)));
  if (scale != null) y = tf.mul(y, scale);
  if (offset != null) y = tf.add(y, offset);
  if (c.relu) y = tf.relu(y);
  return { conv, mean, variance, y };
}

/** dx, dFilter, dScale, dOffset of sum(y · R) by tfjs autodiff of the stock composition, on cpu. */
async function stockGrads(c: Case, d: CaseData): Promise<Float32Array[]> {
  await tf.setBackend('cpu');
  return tf.tidy(() => {
    const co = c.filterShape[3];
    const x = tf.tensor4d(d.x, c.xShape);
    const w = tf.tensor4d(d.w, c.filterShape);
    const scale = tf.tensor1d(d.scale ?? new Float32Array(co).fill(1));
    const offset = tf.tensor1d(d.offset ?? new Float32Array(co));
    const r = tf.tensor(d.r);
    const f = (xv: tf.Tensor, wv: tf.Tensor, sv: tf.Tensor, ov: tf.Tensor) => {
      const { y } = stockForward(c, xv as tf.Tensor4D, wv as tf.Tensor4D, sv, ov, true);
      return tf.sum(tf.mul(tf.reshape(y, [-1]), r)) as tf.Scalar;
    };
    const grads = tf.grads(f as (...args: tf.Tensor[]) => tf.Scalar)([x, w, scale, offset]);
    return grads.map((t) => t.dataSync() as Float32Array);
  });
}

function toF64(a: Float32Array | null): Float64Array | null {
  return a == null ? null : Float64Array.from(a);
}

describe('LabConvBatchNorm forward', () => {
  it('equals the stock cpu ops conv2d → moments → normalise → relu (wasm and cpu)', async (ctx) => {
    const k = requireNative(ctx);
    const tensorsBefore = tf.memory().numTensors;
    for (const [i, c] of CASES.entries()) {
      const d = caseData(c, 100 + i);
      await tf.setBackend('cpu');
      const ref = tf.tidy(() => {
        const s = stockForward(
          c,
          tf.tensor4d(d.x, c.xShape),
          tf.tensor4d(d.w, c.filterShape),
          d.scale != null ? tf.tensor1d(d.scale) : null,
          d.offset != null ? tf.tensor1d(d.offset) : null,
        );
        return { y: s.y.dataSync(), yShape: s.y.shape, conv: s.conv.dataSync(), mean: s.mean.dataSync(), variance: s.variance.dataSync() };
      });
      const f64 = forwardF64(c, { x: d.x, w: d.w, scale: d.scale, offset: d.offset });
      expect(ref.yShape, describeCase(c)).toEqual([f64.g.B, f64.g.OH, f64.g.OW, f64.g.CO]);
      for (const backendName of ['wasm', 'cpu']) {
        const label = `${backendName} ${describeCase(c)}`;
        const [y, conv, stats, newMean, newVariance] = await runForward(backendName, k, c, d);
        expect(y.shape, label).toEqual(ref.yShape);
        expect(conv.shape, label).toEqual(ref.yShape);
        expect(stats.shape, label).toEqual([2, f64.g.CO]);
        expect(newMean.shape, label).toEqual([f64.g.CO]);
        expect(newVariance.shape, label).toEqual([f64.g.CO]);
        expect(relativeError(y.values, ref.y), `y ${label}`).toBeLessThan(1e-5);
        expect(relativeError(conv.values, ref.conv), `conv ${label}`).toBeLessThan(1e-5);
        if (c.relu) expect(Math.min(...y.values), `relu ${label}`).toBe(0);
        else expect(Math.min(...y.values), `no relu ${label}`).toBeLessThan(0);
        // stats = [mean; biased variance] of conv: stock moments and the float64 reference.
        expect(relativeError(stats.values.subarray(0, f64.g.CO), ref.mean), `mean ${label}`).toBeLessThan(1e-5);
        expect(relativeError(stats.values.subarray(f64.g.CO), ref.variance), `variance ${label}`).toBeLessThan(1e-5);
        expect(relativeError(stats.values.subarray(0, f64.g.CO), f64.mean), `mean f64 ${label}`).toBeLessThan(1e-5);
        expect(relativeError(stats.values.subarray(f64.g.CO), f64.variance), `variance f64 ${label}`).toBeLessThan(1e-5);
        expect(relativeError(y.values, f64.y), `y f64 ${label}`).toBeLessThan(1e-5);
        // Moving statistics in float64: old − (old − batch)·(1 − momentum), the variance's batch
        // value unbiased with n = B·OH·OW (PyTorch's running_var).
        const decay = 1 - c.momentum;
        const n = f64.n;
        const expectedMean = Array.from(d.movingMean, (old, j) => old - (old - f64.mean[j]) * decay);
        const expectedVariance = Array.from(d.movingVariance, (old, j) => old - (old - (f64.variance[j] * n) / (n - 1)) * decay);
        expect(relativeError(newMean.values, expectedMean), `moving mean ${label}`).toBeLessThan(1e-5);
        expect(relativeError(newVariance.values, expectedVariance), `moving variance ${label}`).toBeLessThan(1e-5);
      }
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('momentum 1 leaves the moving statistics exactly as they were (how the lab freezes them)', async (ctx) => {
    const k = requireNative(ctx);
    const c = { ...CASES[0], momentum: 1 };
    const d = caseData(c, 7);
    for (const backendName of ['wasm', 'cpu']) {
      const [, , , newMean, newVariance] = await runForward(backendName, k, c, d);
      expect(Array.from(newMean.values)).toEqual(Array.from(d.movingMean));
      expect(Array.from(newVariance.values)).toEqual(Array.from(d.movingVariance));
    }
  });

  it('does not modify its inputs', async (ctx) => {
    const k = requireNative(ctx);
    const c = CASES[2];
    const d = caseData(c, 8);
    const copy = { x: Float32Array.from(d.x), w: Float32Array.from(d.w), mm: Float32Array.from(d.movingMean), mv: Float32Array.from(d.movingVariance) };
    for (const backendName of ['wasm', 'cpu']) {
      await tf.setBackend(backendName);
      const tensorsBefore = tf.memory().numTensors;
      const inputs = {
        x: tf.tensor(d.x, c.xShape),
        filter: tf.tensor(d.w, c.filterShape),
        scale: tf.tensor(d.scale!),
        offset: tf.tensor(d.offset!),
        movingMean: tf.tensor(d.movingMean),
        movingVariance: tf.tensor(d.movingVariance),
      };
      const backend = tf.backend();
      const outs = kernelFunc(CONV_BATCH_NORM, backendName, k)({ inputs, backend, attrs: attrsOf(c) as tf.NamedAttrMap }) as tf.TensorInfo[];
      for (const o of outs) backend.disposeData(o.dataId);
      expect(Array.from(inputs.x.dataSync())).toEqual(Array.from(copy.x));
      expect(Array.from(inputs.filter.dataSync())).toEqual(Array.from(copy.w));
      expect(Array.from(inputs.movingMean.dataSync())).toEqual(Array.from(copy.mm));
      expect(Array.from(inputs.movingVariance.dataSync())).toEqual(Array.from(copy.mv));
      tf.dispose(Object.values(inputs));
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    }
  });
});

describe('LabConvBatchNormGrad', () => {
  /**
   * Central differences of sum(y · R) in float64 (the reference above) at the float32 inputs.
   * Indices whose ±step flips a ReLU are replaced (the objective has a kink there).
   */
  function numericGrads(c: Case, d: CaseData, which: keyof Params, count: number): { indices: number[]; values: number[] } {
    const p: Params = { x: toF64(d.x)!, w: toF64(d.w)!, scale: toF64(d.scale), offset: toF64(d.offset) };
    const target = p[which] as Float64Array;
    const h = 1e-5;
    const indices: number[] = [];
    const values: number[] = [];
    const objective = (q: Params) => {
      const f = forwardF64(c, q);
      let s = 0;
      for (let i = 0; i < f.y.length; i++) s += f.y[i] * d.r[i];
      return { s, pre: f.pre };
    };
    for (let attempt = 0; indices.length < count && attempt < 10 * count; attempt++) {
      const [i] = sampleIndices(d.rand, target.length, 1);
      if (indices.includes(i) && target.length > count) continue;
      const plus = Float64Array.from(target);
      const minus = Float64Array.from(target);
      plus[i] += h;
      minus[i] -= h;
      const fp = objective({ ...p, [which]: plus });
      const fm = objective({ ...p, [which]: minus });
      if (c.relu && fp.pre.some((v, j) => v > 0 !== fm.pre[j] > 0)) continue;
      indices.push(i);
      values.push((fp.s - fm.s) / (2 * h));
    }
    expect(indices.length, `${which}: indices without a ReLU kink`).toBe(count);
    return { indices, values };
  }

  it('dx, dFilter, dScale and dOffset equal central differences of sum(y · R) in float64 (wasm and cpu)', async (ctx) => {
    const k = requireNative(ctx);
    const tensorsBefore = tf.memory().numTensors;
    for (const [i, c] of CASES.entries()) {
      const d = caseData(c, 300 + i);
      const params: Array<keyof Params> = c.affine ? ['x', 'w', 'scale', 'offset'] : ['x', 'w'];
      const numeric = params.map((which) => numericGrads(c, d, which, 6));
      for (const backendName of ['wasm', 'cpu']) {
        const grads = await runGrad(backendName, k, c, d);
        expect(grads.map((g) => g.shape)).toEqual([c.xShape, c.filterShape, [c.filterShape[3]], [c.filterShape[3]]]);
        params.forEach((which, j) => {
          const full = grads[j].values;
          const scale = Math.max(...Array.from(full, Math.abs));
          const { indices, values } = numeric[j];
          indices.forEach((index, m) => {
            const label = `d${which}[${index}] ${backendName} ${describeCase(c)}`;
            // ~1e-3 relative, with a floor at 1% of the largest entry for entries near zero.
            expect(Math.abs(full[index] - values[m]), label).toBeLessThan(1e-3 * Math.max(Math.abs(values[m]), 0.01 * scale));
          });
        });
      }
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('equals tfjs autodiff (tf.grads) of the stock-op composition (wasm and cpu)', async (ctx) => {
    const k = requireNative(ctx);
    const tensorsBefore = tf.memory().numTensors;
    for (const [i, c] of CASES.entries()) {
      const d = caseData(c, 500 + i);
      const ref = await stockGrads(c, d);
      const names = ['dx', 'dFilter', 'dScale', 'dOffset'];
      for (const backendName of ['wasm', 'cpu']) {
        const grads = await runGrad(backendName, k, c, d);
        grads.forEach((g, j) => {
          expect(relativeError(g.values, ref[j]), `${names[j]} ${backendName} ${describeCase(c)}`).toBeLessThan(1e-4);
        });
      }
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('with relu, dy where the output is 0 does not matter', async (ctx) => {
    const k = requireNative(ctx);
    const c = CASES[0];
    const d = caseData(c, 9);
    const [y] = await runForward('wasm', k, c, d);
    const masked = { ...d, r: d.r.map((v, i) => (y.values[i] > 0 ? v : v + 100)) };
    const a = await runGrad('wasm', k, c, d);
    const b = await runGrad('wasm', k, c, masked);
    for (let j = 0; j < 4; j++) expect(relativeError(b[j].values, a[j].values)).toBeLessThan(1e-6);
  });
});

describe('inference mode (training: false)', () => {
  /** The stock composition with the moving statistics: conv → (conv − moving mean)/sqrt(moving var + ε)·scale + offset → ReLU. */
  function stockInference(c: Case, d: CaseData, x: tf.Tensor, w: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor): tf.Tensor {
    const conv = tf.conv2d(x as tf.Tensor4D, dilateFilter(w as tf.Tensor4D, c.dilations), c.strides, c.pad, 'NHWC', 1);
    const y = tf.add(tf.mul(tf.div(tf.sub(conv, tf.tensor1d(d.movingMean)), tf.sqrt(tf.add(tf.tensor1d(d.movingVariance), c.epsilon))), scale), offset);
    return c.relu ? tf.relu(y) : y;
  }

  it('normalises with the moving statistics, returns them unchanged, and its gradient is autodiff of the stock ops', async (ctx) => {
    const k = requireNative(ctx);
    for (const [i, c] of CASES.filter((x) => x.affine).slice(0, 4).entries()) {
      const d = caseData(c, 700 + i);
      const co = c.filterShape[3];
      for (const backendName of ['wasm', 'cpu']) {
        const attrs: Record<string, unknown> = { ...attrsOf(c), training: false };
        const [y, , stats, newMean, newVariance] = await runKernel(backendName, kernelFunc(CONV_BATCH_NORM, backendName, k), forwardInputs(c, d), attrs);
        expect(Array.from(newMean.values)).toEqual(Array.from(d.movingMean));
        expect(Array.from(newVariance.values)).toEqual(Array.from(d.movingVariance));
        expect(Array.from(stats.values)).toEqual([...d.movingMean, ...d.movingVariance]);
        await tf.setBackend('cpu');
        const [expectedY, ...expectedGrads] = tf.tidy(() => {
          const x = tf.tensor4d(d.x, c.xShape);
          const w = tf.tensor4d(d.w, c.filterShape);
          const scale = tf.tensor1d(d.scale!);
          const offset = tf.tensor1d(d.offset!);
          const r = tf.tensor(d.r);
          const yRef = stockInference(c, d, x, w, scale, offset);
          const f = (xv: tf.Tensor, wv: tf.Tensor, sv: tf.Tensor, ov: tf.Tensor) => tf.sum(tf.mul(tf.reshape(stockInference(c, d, xv, wv, sv, ov), [-1]), r)) as tf.Scalar;
          const grads = tf.grads(f as (...args: tf.Tensor[]) => tf.Scalar)([x, w, scale, offset]);
          return [yRef, ...grads].map((t) => t.dataSync() as Float32Array);
        });
        expect(relativeError(y.values, expectedY), `y ${backendName} ${describeCase(c)}`).toBeLessThan(1e-5);
        const [yOut, conv] = await runKernel(backendName, kernelFunc(CONV_BATCH_NORM, backendName, k), forwardInputs(c, d), attrs);
        const { momentum: _unused, ...gradAttrs } = attrs;
        const grads = await runKernel(backendName, kernelFunc(CONV_BATCH_NORM_GRAD, backendName, k), {
          dy: { values: d.r, shape: yOut.shape },
          x: { values: d.x, shape: c.xShape },
          filter: { values: d.w, shape: c.filterShape },
          conv,
          y: yOut,
          stats,
          scale: { values: d.scale!, shape: [co] },
        }, gradAttrs);
        grads.forEach((g, j) => expect(relativeError(g.values, expectedGrads[j]), `${['dx', 'dFilter', 'dScale', 'dOffset'][j]} ${backendName} ${describeCase(c)}`).toBeLessThan(1e-4));
      }
    }
  });
});

describe('residual input (a ResNet block\'s shortcut, added before the ReLU)', () => {
  it('y = relu(BN(conv) + residual); dResidual and the other gradients equal autodiff of the stock ops', async (ctx) => {
    const k = requireNative(ctx);
    for (const [i, c] of CASES.filter((x) => x.affine).slice(0, 3).entries()) {
      const d = caseData(c, 900 + i);
      const co = c.filterShape[3];
      const g = geometry(c);
      const outShape = [g.B, g.OH, g.OW, co];
      const residual = randomValues(seededRandom(950 + i), d.r.length);
      await tf.setBackend('cpu');
      const [expectedY, ...expectedGrads] = tf.tidy(() => {
        const f = (xv: tf.Tensor, wv: tf.Tensor, sv: tf.Tensor, ov: tf.Tensor, rv: tf.Tensor) => {
          const { y } = stockForward({ ...c, relu: false }, xv as tf.Tensor4D, wv as tf.Tensor4D, sv, ov, true);
          const sum = tf.add(y, rv);
          return c.relu ? tf.relu(sum) : sum;
        };
        const args = [tf.tensor4d(d.x, c.xShape), tf.tensor4d(d.w, c.filterShape), tf.tensor1d(d.scale!), tf.tensor1d(d.offset!), tf.tensor(residual, outShape)];
        const r = tf.tensor(d.r);
        const yRef = f(...(args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]));
        const loss = (...a: tf.Tensor[]) => tf.sum(tf.mul(tf.reshape(f(...(a as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor])), [-1]), r)) as tf.Scalar;
        return [yRef, ...tf.grads(loss)(args)].map((t) => t.dataSync() as Float32Array);
      });
      for (const backendName of ['wasm', 'cpu']) {
        const inputs = { ...forwardInputs(c, d), residual: { values: residual, shape: outShape } };
        const [y, conv, stats] = await runKernel(backendName, kernelFunc(CONV_BATCH_NORM, backendName, k), inputs, attrsOf(c));
        expect(relativeError(y.values, expectedY), `y ${backendName} ${describeCase(c)}`).toBeLessThan(1e-5);
        const { momentum: _unused, ...gradAttrs } = attrsOf(c);
        const grads = await runKernel(backendName, kernelFunc(CONV_BATCH_NORM_GRAD, backendName, k), {
          dy: { values: d.r, shape: y.shape },
          x: { values: d.x, shape: c.xShape },
          filter: { values: d.w, shape: c.filterShape },
          conv,
          y,
          stats,
          scale: { values: d.scale!, shape: [co] },
        }, { ...gradAttrs, residual: true });
        expect(grads).toHaveLength(5);
        grads.forEach((gr, j) => expect(relativeError(gr.values, expectedGrads[j]), `${['dx', 'dFilter', 'dScale', 'dOffset', 'dResidual'][j]} ${backendName} ${describeCase(c)}`).toBeLessThan(1e-4));
      }
    }
  });
});

describe('determinism', () => {
  it('gives bit-identical forward and gradient outputs on 1, 2 and 3 threads', async (ctx) => {
    const k = requireNative(ctx);
    const c: Case = { ...base, name: 'threads', xShape: [4, 12, 12, 8], filterShape: [3, 3, 8, 16], strides: [1, 1], pad: 'same', relu: true };
    const d = caseData(c, 21);
    const previous = k.info().threads;
    try {
      const byThreads: Output[][] = [];
      for (const threads of [1, 2, 3]) {
        k.setThreads(threads);
        byThreads.push([...(await runForward('wasm', k, c, d)), ...(await runGrad('wasm', k, c, d))]);
      }
      for (const other of byThreads.slice(1))
        other.forEach((o, j) => expect(Array.from(o.values), `output ${j}`).toEqual(Array.from(byThreads[0][j].values)));
    } finally {
      k.setThreads(previous);
    }
  });
});

describe('bad input', () => {
  /** Runs the kernel directly, expecting a throw, and checks nothing is left allocated. */
  async function expectThrow(
    backendName: string,
    kernelName: string,
    label: string,
    inputs: Record<string, tf.Tensor>,
    attrs: Record<string, unknown>,
    pattern: RegExp,
  ): Promise<void> {
    await tf.setBackend(backendName);
    const backend = tf.backend();
    const before = backend.numDataIds();
    let error: unknown = null;
    try {
      const outs = kernelFunc(kernelName, backendName, native!)({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo[];
      for (const o of outs) backend.disposeData(o.dataId);
    } catch (e) {
      error = e;
    }
    // Soft: report every case, both the message and the leak.
    expect.soft(error, `${kernelName} ${backendName} ${label}: throws`).toBeInstanceOf(Error);
    if (error instanceof Error) expect.soft(error.message, `${kernelName} ${backendName} ${label}: message names the kernel`).toMatch(pattern);
    expect.soft(backend.numDataIds(), `${kernelName} ${backendName} ${label}: outputs freed after the throw`).toBe(before);
  }

  const c = CASES[0];
  const co = c.filterShape[3];
  const good = () => ({
    x: tf.ones(c.xShape),
    filter: tf.ones(c.filterShape),
    scale: tf.ones([co]),
    offset: tf.zeros([co]),
    movingMean: tf.zeros([co]),
    movingVariance: tf.ones([co]),
  });

  /** Gradient-kernel inputs of the right shapes (CASES[0] keeps its spatial size: 'same', stride 1). */
  const goodGrad = () => {
    const [B, H, W] = c.xShape;
    return {
      dy: tf.ones([B, H, W, co]),
      x: tf.ones(c.xShape),
      filter: tf.ones(c.filterShape),
      conv: tf.ones([B, H, W, co]),
      y: tf.ones([B, H, W, co]),
      stats: tf.ones([2, co]),
      scale: tf.ones([co]),
    };
  };

  it('forward: missing or non-float32 inputs throw with the kernel name', async (ctx) => {
    requireNative(ctx);
    for (const backendName of ['wasm', 'cpu']) {
      await tf.setBackend(backendName);
      const tensorsBefore = tf.memory().numTensors;
      const g = good();
      const { movingMean: _m, ...noMean } = g;
      await expectThrow(backendName, CONV_BATCH_NORM, 'no movingMean', noMean, attrsOf(c), /LabConvBatchNorm/);
      const ints = tf.ones(c.xShape, 'int32');
      await expectThrow(backendName, CONV_BATCH_NORM, 'int32 x', { ...g, x: ints }, attrsOf(c), /LabConvBatchNorm.*float32/);
      tf.dispose([...Object.values(g), ints]);
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    }
  });

  it('forward: mismatched shapes throw with the kernel name and leave nothing allocated', async (ctx) => {
    requireNative(ctx);
    for (const backendName of ['wasm', 'cpu']) {
      await tf.setBackend(backendName);
      const tensorsBefore = tf.memory().numTensors;
      const g = good();
      const wrong = {
        // filter's input channels (2) differ from x's (3)
        filter: tf.ones([3, 3, 2, co]),
        scale: tf.ones([co + 1]),
        offset: tf.zeros([co - 1]),
        movingMean: tf.zeros([co + 1]),
        movingVariance: tf.ones([1]),
      };
      for (const [name, t] of Object.entries(wrong)) {
        await expectThrow(backendName, CONV_BATCH_NORM, `wrong ${name} ${t.shape}`, { ...g, [name]: t }, attrsOf(c), /LabConvBatchNorm/);
      }
      tf.dispose([...Object.values(g), ...Object.values(wrong)]);
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    }
  });

  it('gradient: missing inputs and mismatched shapes throw with the kernel name and leave nothing allocated', async (ctx) => {
    requireNative(ctx);
    const [B, H, W] = c.xShape;
    for (const backendName of ['wasm', 'cpu']) {
      await tf.setBackend(backendName);
      const tensorsBefore = tf.memory().numTensors;
      const g = goodGrad();
      const { momentum: _unused, ...attrs } = attrsOf(c);
      const { stats: _s, ...noStats } = g;
      await expectThrow(backendName, CONV_BATCH_NORM_GRAD, 'no stats', noStats, attrs, /LabConvBatchNormGrad/);
      const wrong = {
        dy: tf.ones([B, H, W - 1, co]),
        conv: tf.ones([B, H + 1, W, co]),
        filter: tf.ones([3, 3, 2, co]),
        stats: tf.ones([co]),
        scale: tf.ones([co + 1]),
      };
      for (const [name, t] of Object.entries(wrong)) {
        await expectThrow(backendName, CONV_BATCH_NORM_GRAD, `wrong ${name} ${t.shape}`, { ...g, [name]: t }, attrs, /LabConvBatchNormGrad/);
      }
      tf.dispose([...Object.values(g), ...Object.values(wrong)]);
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    }
  });

  it('gradient: shapes with the right number of elements but the wrong layout throw too', async (ctx) => {
    requireNative(ctx);
    const [B, H, W] = c.xShape;
    expect(H).not.toBe(W);
    for (const backendName of ['wasm', 'cpu']) {
      await tf.setBackend(backendName);
      const tensorsBefore = tf.memory().numTensors;
      const g = goodGrad();
      const { momentum: _unused, ...attrs } = attrsOf(c);
      const wrong = {
        dy: tf.ones([B, W, H, co]),
        conv: tf.ones([B * H * W, co]),
        y: tf.ones([B, W, H, co]),
        stats: tf.ones([co, 2]),
      };
      for (const [name, t] of Object.entries(wrong)) {
        await expectThrow(backendName, CONV_BATCH_NORM_GRAD, `wrong ${name} ${t.shape}`, { ...g, [name]: t }, attrs, /LabConvBatchNormGrad/);
      }
      tf.dispose([...Object.values(g), ...Object.values(wrong)]);
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    }
  });
});

describe('groups: G independent models in one dispatch (fused trials)', () => {
  const GROUPS = 3;
  const concat = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  /** Group g's rows of a batch-sized grouped output. */
  const rowsOf = (o: Output, g: number) => o.values.subarray((g * o.values.length) / GROUPS, ((g + 1) * o.values.length) / GROUPS);
  /** Model g's own tensors as the indexed inputs name0, name1, … */
  const indexed = (name: string, data: CaseData[], pick: (d: CaseData) => Float32Array | null, shape: number[]): Inputs =>
    Object.fromEntries(data.map((d, g) => [`${name}${g}`, pick(d) != null ? { values: pick(d)!, shape } : null]));

  function groupedInputs(c: Case, data: CaseData[]): Inputs {
    const co = c.filterShape[3];
    return {
      x: { values: concat(data.map((d) => d.x)), shape: [GROUPS * c.xShape[0], ...c.xShape.slice(1)] },
      ...indexed('filter', data, (d) => d.w, c.filterShape),
      ...indexed('scale', data, (d) => d.scale, [co]),
      ...indexed('offset', data, (d) => d.offset, [co]),
      ...indexed('movingMean', data, (d) => d.movingMean, [co]),
      ...indexed('movingVariance', data, (d) => d.movingVariance, [co]),
    };
  }

  it('forward and gradient are bit-identical to G separate calls, and the gradient equals autodiff of G separate stock conv2d compositions (wasm and cpu)', async (ctx) => {
    const k = requireNative(ctx);
    const tensorsBefore = tf.memory().numTensors;
    for (const [i, c] of CASES.entries()) {
      const data = Array.from({ length: GROUPS }, (_, g) => caseData(c, 700 + 10 * i + g));
      const inputs = groupedInputs(c, data);
      const attrs: Record<string, unknown> = { ...attrsOf(c), groups: GROUPS };
      const co = c.filterShape[3];
      const stock = await Promise.all(data.map((d) => stockGrads(c, d)));
      for (const backendName of ['wasm', 'cpu']) {
        const label = `${backendName} ${describeCase(c)}`;
        const fused = await runKernel(backendName, kernelFunc(CONV_BATCH_NORM, backendName, k), inputs, attrs);
        const yShape = fused[0].shape;
        expect(yShape[0], label).toBe(GROUPS * c.xShape[0]);
        expect(fused.map((o) => o.shape).slice(1), label).toEqual([yShape, [GROUPS, 2, co], ...Array(2 * GROUPS).fill([co])]);
        const { momentum: _unused, ...gradAttrs } = attrs;
        const grads = await runKernel(backendName, kernelFunc(CONV_BATCH_NORM_GRAD, backendName, k), {
          dy: { values: concat(data.map((d) => d.r)), shape: yShape },
          x: inputs.x,
          conv: fused[1],
          y: fused[0],
          stats: fused[2],
          ...indexed('filter', data, (d) => d.w, c.filterShape),
          ...indexed('scale', data, (d) => d.scale, [co]),
        }, gradAttrs);
        expect(grads.map((o) => o.shape), label).toEqual([inputs.x!.shape, ...Array(GROUPS).fill(c.filterShape), ...Array(2 * GROUPS).fill([co])]);
        for (let g = 0; g < GROUPS; g++) {
          const [y, conv, stats, mean, variance] = await runForward(backendName, k, c, data[g]);
          expect(rowsOf(fused[0], g), `y group ${g} ${label}`).toEqual(y.values);
          expect(rowsOf(fused[1], g), `conv group ${g} ${label}`).toEqual(conv.values);
          expect(rowsOf(fused[2], g), `stats group ${g} ${label}`).toEqual(stats.values);
          expect(fused[3 + g].values, `moving mean group ${g} ${label}`).toEqual(mean.values);
          expect(fused[3 + GROUPS + g].values, `moving variance group ${g} ${label}`).toEqual(variance.values);
          const own = [rowsOf(grads[0], g), grads[1 + g].values, grads[1 + GROUPS + g].values, grads[1 + 2 * GROUPS + g].values];
          const alone = await runGrad(backendName, k, c, data[g]);
          const names = ['dx', 'dFilter', 'dScale', 'dOffset'];
          own.forEach((values, j) => expect(values, `${names[j]} group ${g} bit-identical, ${label}`).toEqual(alone[j].values));
          (c.affine ? [0, 1, 2, 3] : [0, 1]).forEach((j) =>
            expect(relativeError(own[j], stock[g][j]), `${names[j]} group ${g} against stock ops, ${label}`).toBeLessThan(1e-4));
        }
      }
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('with a residual input, each group is bit-identical to its call alone, dResidual included', async (ctx) => {
    const k = requireNative(ctx);
    const c = CASES[0];
    const data = Array.from({ length: GROUPS }, (_, g) => caseData(c, 800 + g));
    const rest = data.map((d) => d.r.map((v) => v * 0.5));
    const outShape = [GROUPS * c.xShape[0], c.xShape[1], c.xShape[2], c.filterShape[3]];
    const attrs: Record<string, unknown> = { ...attrsOf(c), residual: true };
    const { momentum: _unused, ...gradAttrs } = attrs;
    const fused = await runKernel('wasm', kernelFunc(CONV_BATCH_NORM, 'wasm', k), { ...groupedInputs(c, data), residual: { values: concat(rest), shape: outShape } }, { ...attrs, groups: GROUPS });
    const dy = { values: concat(data.map((d) => d.r)), shape: outShape };
    const grads = await runKernel('wasm', kernelFunc(CONV_BATCH_NORM_GRAD, 'wasm', k), {
      dy, x: groupedInputs(c, data).x, conv: fused[1], y: fused[0], stats: fused[2],
      ...indexed('filter', data, (d) => d.w, c.filterShape), ...indexed('scale', data, (d) => d.scale, [c.filterShape[3]]),
    }, { ...gradAttrs, groups: GROUPS });
    for (let g = 0; g < GROUPS; g++) {
      const ownShape = [c.xShape[0], ...outShape.slice(1)];
      const alone = await runKernel('wasm', kernelFunc(CONV_BATCH_NORM, 'wasm', k), { ...forwardInputs(c, data[g]), residual: { values: rest[g], shape: ownShape } }, attrs);
      expect(rowsOf(fused[0], g), `y group ${g}`).toEqual(alone[0].values);
      const aloneGrads = await runKernel('wasm', kernelFunc(CONV_BATCH_NORM_GRAD, 'wasm', k), {
        dy: { values: data[g].r, shape: ownShape }, x: forwardInputs(c, data[g]).x, conv: alone[1], y: alone[0], stats: alone[2],
        filter: { values: data[g].w, shape: c.filterShape }, scale: { values: data[g].scale!, shape: [c.filterShape[3]] },
      }, gradAttrs);
      expect(rowsOf(grads[grads.length - 1], g), `dResidual group ${g}`).toEqual(aloneGrads[4].values);
      expect(grads[1 + g].values, `dFilter group ${g}`).toEqual(aloneGrads[1].values);
    }
  });

  it('refuses a batch that groups does not divide and a missing model input, naming the input', async (ctx) => {
    const k = requireNative(ctx);
    const c = CASES[0];
    const data = Array.from({ length: GROUPS }, (_, g) => caseData(c, 900 + g));
    const inputs = groupedInputs(c, data);
    const attrs = { ...attrsOf(c), groups: GROUPS };
    const func = kernelFunc(CONV_BATCH_NORM, 'cpu', k);
    await expect(runKernel('cpu', func, inputs, { ...attrs, groups: 4 })).rejects.toThrow(/LabConvBatchNorm: input x has batch 6, not a multiple of groups 4/);
    await expect(runKernel('cpu', func, { ...inputs, filter2: null }, attrs)).rejects.toThrow(/LabConvBatchNorm: input filter2 is required \(groups 3: inputs filter0 … filter2\)/);
    await expect(runKernel('cpu', func, { ...inputs, filter1: { values: data[1].w, shape: [3, 3, 4, 3] } }, attrs)).rejects.toThrow(/input filter1 has shape \[3,3,4,3\], expected \[3,3,3,4\]/);
    await expect(runKernel('cpu', func, inputs, { ...attrs, groups: 0 })).rejects.toThrow(/attr groups must be a positive integer/);
  });
});
