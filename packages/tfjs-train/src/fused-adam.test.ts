import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adamUpdateInto, FUSED_ADAM, fusedAdamConfig, type FusedAdamAttrs, type AdamUpdateFn } from './fused-adam';
import { randomValues, seededRandom } from './test-support';

const BACKENDS = ['cpu', 'wasm'] as const;

type Hyper = Omit<FusedAdamAttrs, 'step'>;

const VARIANTS: Array<{ name: string; hyper: Hyper }> = [
  { name: 'L2 (Adam weight_decay)', hyper: { lr: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.05, decoupled: false } },
  { name: 'AdamW (decoupled)', hyper: { lr: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.05, decoupled: true } },
  { name: 'no weight decay', hyper: { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, decoupled: true } },
  // A large ε next to tiny gradients makes its placement (added to sqrt(v)/sqrt(1 − β2ᵗ), not to
  // sqrt(v̂) before the correction, nor under the root) visible in the result.
  { name: 'large epsilon, other betas', hyper: { lr: 3e-2, beta1: 0.8, beta2: 0.99, epsilon: 1e-3, weightDecay: 0.1, decoupled: false } },
];

/**
 * One float32 rounding (2⁻²⁴ ≈ 6e-8 relative) with some slack: from the same float32 inputs a
 * step computed in float64 and stored once must land within this of the float64 reference.
 */
const ONE_ROUNDING = 1.5e-7;

interface State64 {
  w: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/**
 * One Adam / AdamW step in float64, written from torch.optim's documented algorithm (bias-corrected
 * moments m̂, v̂) independently of the code under test:
 *   L2: g ← g + λw;   AdamW: w ← w − γλw
 *   m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²
 *   m̂ = m / (1 − β1ᵗ);  v̂ = v / (1 − β2ᵗ);  w ← w − γ m̂ / (sqrt(v̂) + ε)
 */
function referenceStep(s: State64, gradient: ArrayLike<number>, h: Hyper, t: number): State64 {
  const n = s.w.length;
  const out: State64 = { w: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    let g = gradient[i];
    let w = s.w[i];
    if (h.weightDecay !== 0) {
      if (h.decoupled) w = w - h.lr * h.weightDecay * w;
      else g = g + h.weightDecay * w;
    }
    const m = h.beta1 * s.m[i] + (1 - h.beta1) * g;
    const v = h.beta2 * s.v[i] + (1 - h.beta2) * g * g;
    const mHat = m / (1 - Math.pow(h.beta1, t));
    const vHat = v / (1 - Math.pow(h.beta2, t));
    out.w[i] = w - (h.lr * mHat) / (Math.sqrt(vHat) + h.epsilon);
    out.m[i] = m;
    out.v[i] = v;
  }
  return out;
}

/** max |a − b| / max |b|: float32 rounding is relative to the tensor's scale, even where m cancels. */
function scaledError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return Number.isNaN(diff) ? Number.POSITIVE_INFINITY : scale === 0 ? diff : diff / scale;
}

function runFused(w: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, attrs: FusedAdamAttrs): tf.Tensor[] {
  return tf.engine().runKernel(
    FUSED_ADAM,
    { weights: w, gradient: g, firstMoment: m, secondMoment: v },
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.setBackend('wasm');
  for (const b of BACKENDS) {
    if (tf.getKernel(FUSED_ADAM, b) != null) throw new Error(`${FUSED_ADAM} is already registered for ${b}`);
    tf.registerKernel(fusedAdamConfig(b));
  }
});

afterAll(() => {
  for (const b of BACKENDS) tf.unregisterKernel(FUSED_ADAM, b);
});

describe('adamUpdateInto', () => {
  it('matches steps worked by hand (w = 1, g = 1, lr 0.1, wd 0.5, t = 1)', () => {
    const run = (decoupled: boolean) => {
      const out = [new Float32Array(1), new Float32Array(1), new Float32Array(1)];
      const attrs = { lr: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.5, decoupled, step: 1 };
      adamUpdateInto(Float32Array.of(1), Float32Array.of(1), Float32Array.of(0), Float32Array.of(0), out[0], out[1], out[2], attrs);
      return out.map((a) => a[0]);
    };
    // L2: g = 1 + 0.5·1 = 1.5; m = 0.15, v = 0.001·2.25 = 0.00225; lr/(1 − 0.9) = 1,
    // sqrt(v)/sqrt(0.001) = 1.5, so w = 1 − 0.15/(1.5 + 1e-8) ≈ 0.9.
    const [w1, m1, v1] = run(false);
    expect(w1).toBeCloseTo(0.9, 6);
    expect(m1).toBeCloseTo(0.15, 7);
    expect(v1).toBeCloseTo(0.00225, 9);
    // AdamW: w = 1·(1 − 0.1·0.5) = 0.95; g = 1, m = 0.1, v = 0.001; w = 0.95 − 0.1/(1 + 1e-8) ≈ 0.85.
    const [w2, m2, v2] = run(true);
    expect(w2).toBeCloseTo(0.85, 6);
    expect(m2).toBeCloseTo(0.1, 7);
    expect(v2).toBeCloseTo(0.001, 9);
  });

  it('gives the same result when the outputs alias the inputs', () => {
    const rand = seededRandom(3);
    const n = 37;
    const w = randomValues(rand, n);
    const g = randomValues(rand, n);
    const m = randomValues(rand, n).map((x) => 0.1 * x);
    const v = randomValues(rand, n).map((x) => 0.01 * x * x);
    for (const { hyper } of VARIANTS) {
      const attrs = { ...hyper, step: 4 };
      const separate = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
      adamUpdateInto(w, g, m, v, separate[0], separate[1], separate[2], attrs);
      const [wa, ga, ma, va] = [w, g, m, v].map((a) => Float32Array.from(a));
      adamUpdateInto(wa, ga, ma, va, wa, ma, va, attrs);
      expect(Array.from(wa)).toEqual(Array.from(separate[0]));
      expect(Array.from(ma)).toEqual(Array.from(separate[1]));
      expect(Array.from(va)).toEqual(Array.from(separate[2]));
      // Gradient aliased to an output too (w' written over g).
      const [wb, gb, mb, vb] = [w, g, m, v].map((a) => Float32Array.from(a));
      adamUpdateInto(wb, gb, mb, vb, gb, mb, vb, attrs);
      expect(Array.from(gb)).toEqual(Array.from(separate[0]));
      expect(Array.from(wb)).toEqual(Array.from(w));
    }
  });
});

describe.each(BACKENDS)(`${FUSED_ADAM} kernel on %s`, (backendName) => {
  beforeAll(async () => {
    await tf.setBackend(backendName);
  });

  it.each(VARIANTS)('matches the float64 PyTorch reference over 3 chained steps: $name', ({ hyper }) => {
    const shapes = [[7, 13], [3, 5, 3], [1], []];
    for (const [k, shape] of shapes.entries()) {
      const rand = seededRandom(100 + k);
      const n = tf.util.sizeFromShape(shape);
      const w0 = randomValues(rand, n);
      const before = tf.memory().numTensors;
      let chained: State64 = { w: Float64Array.from(w0), m: new Float64Array(n), v: new Float64Array(n) };
      let w = tf.tensor(w0, shape);
      let m = tf.zeros(shape);
      let v = tf.zeros(shape);
      for (let t = 1; t <= 3; t++) {
        // Small gradients when ε is large so that ε is not negligible next to sqrt(v̂).
        const scale = hyper.epsilon > 1e-6 ? 1e-3 : 1;
        const gValues = randomValues(rand, n).map((x) => x * scale);
        const g = tf.tensor(gValues, shape);
        const inputsBefore = [w, g, m, v].map((x) => Array.from(x.dataSync()));
        const [w2, m2, v2] = runFused(w, g, m, v, { ...hyper, step: t });
        for (const out of [w2, m2, v2]) {
          expect(out.shape).toEqual(shape);
          expect(out.dtype).toBe('float32');
        }
        const label = `shape [${shape}] t=${t}`;
        // This step alone, from the kernel's own float32 state: only the final rounding differs.
        const [wIn, , mIn, vIn] = inputsBefore;
        const step = referenceStep({ w: Float64Array.from(wIn), m: Float64Array.from(mIn), v: Float64Array.from(vIn) }, gValues, hyper, t);
        expect(scaledError(w2.dataSync(), step.w), `w ${label}`).toBeLessThan(ONE_ROUNDING);
        expect(scaledError(m2.dataSync(), step.m), `m ${label}`).toBeLessThan(ONE_ROUNDING);
        expect(scaledError(v2.dataSync(), step.v), `v ${label}`).toBeLessThan(ONE_ROUNDING);
        // The whole trajectory against float64 state: the t = 1, 2 roundings may be amplified
        // where β1·m and (1 − β1)·g cancel (single-element tensors have no larger scale).
        chained = referenceStep(chained, gValues, hyper, t);
        expect(scaledError(w2.dataSync(), chained.w), `chained w ${label}`).toBeLessThan(1e-5);
        expect(scaledError(m2.dataSync(), chained.m), `chained m ${label}`).toBeLessThan(1e-5);
        expect(scaledError(v2.dataSync(), chained.v), `chained v ${label}`).toBeLessThan(1e-5);
        // Nothing else holds m and v: on wasm the step wrote over their buffers, which the outputs
        // now share. The weights always get a new buffer; the gradient is only read.
        const inPlace = backendName === 'wasm';
        expect([w2, m2, v2].map((out, i) => out.dataId === [w, m, v][i].dataId), `in place ${label}`).toEqual([false, inPlace, inPlace]);
        expect(Array.from(g.dataSync()), `gradient unchanged ${label}`).toEqual(inputsBefore[1]);
        tf.dispose([w, g, m, v]);
        [w, m, v] = [w2, m2, v2];
      }
      tf.dispose([w, m, v]);
      expect(tf.memory().numTensors, `no leaked tensors, shape [${shape}]`).toBe(before);
    }
  });

  it('leaves tensors that share the inputs\u2019 data untouched, and updates an unshared moment in place on wasm', () => {
    const w = tf.tensor1d([0.5, -1.5, 2]);
    // Shares w's dataId, as a kept copy of the best epoch's weights does (a clone copies on wasm).
    const alias = tf.reshape(w, [1, 3]);
    const g = tf.tensor1d([1, 2, -3]);
    const m = tf.zeros([3]);
    const v = tf.tensor1d([0.25, 0.5, 1]);
    const vCopy = tf.reshape(v, [3, 1]);
    const attrs = { ...VARIANTS[1].hyper, step: 1 };
    const ref = referenceStep({ w: Float64Array.of(0.5, -1.5, 2), m: new Float64Array(3), v: Float64Array.of(0.25, 0.5, 1) }, [1, 2, -3], VARIANTS[1].hyper, 1);
    const before = tf.memory().numTensors;
    const outs = runFused(w, g, m, v, attrs);
    expect(Array.from(alias.dataSync())).toEqual([0.5, -1.5, 2]);
    expect(Array.from(vCopy.dataSync())).toEqual([0.25, 0.5, 1]);
    expect(outs.map((out, i) => out.dataId === [w, m, v][i].dataId)).toEqual([false, backendName === 'wasm', false]);
    expect(scaledError(outs[0].dataSync(), ref.w)).toBeLessThan(ONE_ROUNDING);
    expect(scaledError(outs[1].dataSync(), ref.m)).toBeLessThan(ONE_ROUNDING);
    expect(scaledError(outs[2].dataSync(), ref.v)).toBeLessThan(ONE_ROUNDING);
    // An output over m keeps the buffer alive when m is disposed, and frees it after.
    const dataIds = tf.engine().backend.numDataIds();
    tf.dispose(m);
    expect(scaledError(outs[1].dataSync(), ref.m)).toBeLessThan(ONE_ROUNDING);
    tf.dispose(outs);
    expect(tf.memory().numTensors).toBe(before - 1);
    expect(tf.engine().backend.numDataIds()).toBe(dataIds - (backendName === 'wasm' ? 3 : 4));
    tf.dispose([w, alias, g, v, vCopy]);
  });

  it('a matmul or convolution after the step sees the new weights (wasm keeps packed copies of weights per tensor)', () => {
    const x = tf.tensor2d([[1, 0, 2], [0, 1, -1]]);
    const image = tf.ones([1, 4, 4, 3]);
    const w = tf.tensor2d([[0.5, -1], [2, 0.25], [1, 1]]);
    const filter = tf.reshape(w, [1, 1, 3, 2]);
    const g = tf.tensor2d([[1, -1], [0.5, 2], [-3, 1]]);
    const [m, v] = [tf.zeros([3, 2]), tf.zeros([3, 2])];
    // Pack w (and its filter view) into the backend's matmul and convolution operators.
    tf.matMul(x, w).dataSync();
    tf.conv2d(image as tf.Tensor4D, filter as tf.Tensor4D, 1, 'valid').dataSync();
    filter.dispose();
    const outs = runFused(w, g, m, v, { ...VARIANTS[0].hyper, step: 1 });
    const product = tf.matMul(x, outs[0]);
    const expected = tf.tidy(() => tf.matMul(x, tf.tensor2d(Array.from(outs[0].dataSync()), [3, 2])));
    expect(Array.from(product.dataSync())).toEqual(Array.from(expected.dataSync()));
    const newFilter = tf.reshape(outs[0], [1, 1, 3, 2]);
    const conv = tf.conv2d(image as tf.Tensor4D, newFilter as tf.Tensor4D, 1, 'valid');
    const convExpected = tf.tidy(() => tf.conv2d(image as tf.Tensor4D, tf.tensor4d(Array.from(outs[0].dataSync()), [1, 1, 3, 2]), 1, 'valid'));
    expect(Array.from(conv.dataSync())).toEqual(Array.from(convExpected.dataSync()));
    tf.dispose([x, image, w, g, m, v, ...outs, product, expected, newFilter, conv, convExpected]);
  });

  it('handles tensors large enough to grow the wasm heap (outputs allocated before views)', () => {
    const n = 1_500_001;
    const rand = seededRandom(9);
    const w0 = randomValues(rand, n);
    const gValues = randomValues(rand, n);
    const hyper = VARIANTS[0].hyper;
    const before = tf.memory().numTensors;
    const [w, g, m, v] = [tf.tensor1d(w0), tf.tensor1d(gValues), tf.zeros([n]), tf.zeros([n])];
    // Shared inputs, so that the kernel allocates its outputs instead of writing in place.
    const copies = [w, m, v].map((t) => tf.reshape(t, [1, n]));
    const heapBytes = () => (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.buffer.byteLength;
    const heapBefore = heapBytes();
    const outs = runFused(w, g, m, v, { ...hyper, step: 1 });
    if (backendName === 'wasm') {
      // Otherwise this case would not exercise the detached-view hazard it exists for.
      expect(heapBytes(), 'the outputs grew the wasm heap (raise n if this fails)').toBeGreaterThan(heapBefore!);
    }
    const ref = referenceStep({ w: Float64Array.from(w0), m: new Float64Array(n), v: new Float64Array(n) }, gValues, hyper, 1);
    expect(scaledError(outs[0].dataSync(), ref.w)).toBeLessThan(ONE_ROUNDING);
    expect(scaledError(outs[1].dataSync(), ref.m)).toBeLessThan(ONE_ROUNDING);
    expect(scaledError(outs[2].dataSync(), ref.v)).toBeLessThan(ONE_ROUNDING);
    tf.dispose([w, g, m, v, ...outs, ...copies]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects mismatched shapes and dtypes, naming the input, without leaking', () => {
    const w = tf.zeros([2, 3]);
    const good = tf.zeros([2, 3]);
    const wrongShape = tf.zeros([3, 2]);
    const wrongDtype = tf.zeros([2, 3], 'int32');
    const attrs = { ...VARIANTS[0].hyper, step: 1 };
    const before = tf.memory().numTensors;
    const dataBefore = tf.engine().backend.numDataIds();
    expect(() => runFused(w, wrongShape, good, good, attrs)).toThrow(/'gradient' has shape \[3,2\].*\[2,3\]/);
    expect(() => runFused(w, good, good, wrongShape, attrs)).toThrow(/'secondMoment' has shape/);
    expect(() => runFused(w, good, wrongDtype, good, attrs)).toThrow(/'firstMoment' must be float32, got int32/);
    expect(() => runFused(w, good, good, good, { ...attrs, step: 0 })).toThrow(/'step' must be an integer ≥ 1/);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.engine().backend.numDataIds()).toBe(dataBefore);
    tf.dispose([w, good, wrongShape, wrongDtype]);
  });

  it('calls the native update instead of the JS loop, with the same arguments', () => {
    tf.unregisterKernel(FUSED_ADAM, backendName);
    const calls: Array<{ n: number; attrs: FusedAdamAttrs }> = [];
    const native: AdamUpdateFn = (w, g, m, v, wOut, mOut, vOut, attrs) => {
      calls.push({ n: w.length, attrs });
      adamUpdateInto(w, g, m, v, wOut, mOut, vOut, attrs);
    };
    tf.registerKernel(fusedAdamConfig(backendName, native));
    try {
      const [w, g, m, v] = [tf.ones([5]), tf.ones([5]), tf.zeros([5]), tf.zeros([5])];
      const attrs = { ...VARIANTS[1].hyper, step: 2 };
      const outs = runFused(w, g, m, v, attrs);
      expect(calls).toEqual([{ n: 5, attrs }]);
      expect(outs.length).toBe(3);
      tf.dispose([w, g, m, v, ...outs]);
    } finally {
      tf.unregisterKernel(FUSED_ADAM, backendName);
      tf.registerKernel(fusedAdamConfig(backendName));
    }
  });
});
