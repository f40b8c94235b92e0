import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convGeometry } from './conv-geometry';
import { caseData, convObjective, describeCase, directCases, randomCases, runDirect, type ConvCase } from './conv-test-cases';
import { loadNativeKernels, type NativeGemm, type NativeKernels, type NativeTile, type NativeVectorTarget } from './native-addon';
import {
  makeNativeBatchNormKernel,
  makeNativeConv2DBackpropFilterKernel,
  makeNativeConv2DBackpropInputKernel,
  makeNativeConv2DKernel,
  nativeGeometry,
  nativeMaxPoolGrad,
} from './native-conv';
import { adamUpdateInto } from './fused-adam';
import { maxPoolGradNHWC } from './max-pool-grad';
import { finiteDifference, randomValues, relativeError, runOn, sampleIndices, seededRandom } from './test-support';

// The native path needs a C compiler and Node's headers. CI sets LAB_TFJS_TRAIN_EXPECT_NATIVE=1
// where both exist, so there a build failure fails the suite instead of skipping it.
const expectNative = process.env.LAB_TFJS_TRAIN_EXPECT_NATIVE === '1';
const cacheRoot = mkdtempSync(join(tmpdir(), 'tfjs-train-native-test-'));

/**
 * One separately built copy of the addon per variant: each copy is its own shared object, so each
 * picks its GEMM provider (read from $LAB_TFJS_TRAIN_GEMM when it loads) independently. The
 * built-in GEMM is also built for each vector target this CPU runs (AVX-512 machines test the
 * AVX2 and SSE2 code paths too), since its register tiles differ per target.
 */
interface Variant {
  name: string;
  gemm: NativeGemm;
  vectorTarget?: NativeVectorTarget;
}
const VARIANTS: Variant[] = [
  { name: 'builtin', gemm: 'builtin' },
  { name: 'builtin-avx2', gemm: 'builtin', vectorTarget: 'avx2' },
  { name: 'builtin-sse2', gemm: 'builtin', vectorTarget: 'sse2' },
  { name: 'onednn', gemm: 'onednn' },
  { name: 'openblas', gemm: 'openblas' },
];

async function loadVariant(v: Variant): Promise<NativeKernels | string> {
  const previous = process.env.LAB_TFJS_TRAIN_GEMM;
  process.env.LAB_TFJS_TRAIN_GEMM = v.gemm;
  try {
    const r = await loadNativeKernels({ cacheDir: join(cacheRoot, v.name), vectorTarget: v.vectorTarget });
    if (!r.ok) return r.reason;
    return r.kernels.info().gemm === v.gemm ? r.kernels : `${v.gemm} library not installed (got ${r.kernels.info().gemm})`;
  } finally {
    if (previous == null) delete process.env.LAB_TFJS_TRAIN_GEMM;
    else process.env.LAB_TFJS_TRAIN_GEMM = previous;
  }
}

const providers: Partial<Record<string, NativeKernels | string>> = {};
const missingKernel: tf.KernelFunc = () => {
  throw new Error('fallback kernel called');
};

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
  for (const v of VARIANTS) providers[v.name] = await loadVariant(v);
});

afterAll(() => rmSync(cacheRoot, { recursive: true, force: true }));

function forwardAttrs(c: ConvCase) {
  return { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dilations: c.dilations, dimRoundingMode: c.dimRoundingMode };
}

describe('native addon build', () => {
  it('builds with the machine compiler and loads (always on CI machines with a compiler)', () => {
    const builtin = providers.builtin;
    if (typeof builtin === 'string') {
      expect(expectNative, `native build failed: ${builtin}`).toBe(false);
      return;
    }
    expect(builtin).toBeDefined();
    expect(builtin!.info().gemm).toBe('builtin');
    expect(builtin!.info().isa).toMatch(/^(avx512|avx2|avx|neon|sse2|generic)$/);
    expect(builtin!.setThreads(2)).toBe(2);
    expect(builtin!.setThreads(1)).toBe(1);
    expect(readdirSync(join(cacheRoot, 'builtin')).filter((f) => f.endsWith('.node'))).toHaveLength(1);
  });

  it('reuses the cached build instead of compiling again', async () => {
    if (typeof providers.builtin === 'string') return;
    const previous = process.env.LAB_TFJS_TRAIN_GEMM;
    process.env.LAB_TFJS_TRAIN_GEMM = 'builtin';
    // A different options object is a different memo entry, so this goes to disk.
    const again = await loadNativeKernels({ cacheDir: join(cacheRoot, 'builtin'), headersDir: undefined, compiler: process.env.CC ?? 'cc' });
    process.env.LAB_TFJS_TRAIN_GEMM = previous;
    if (previous == null) delete process.env.LAB_TFJS_TRAIN_GEMM;
    expect(again.ok && again.built).toBe(false);
  });

  it('reports why when there is no compiler, without throwing or leaving files behind', async () => {
    const dir = join(cacheRoot, 'no-compiler');
    const r = await loadNativeKernels({ compiler: join(cacheRoot, 'no-such-cc'), cacheDir: dir });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/no C compiler/);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it('reports a compile error with the compiler message', async () => {
    const r = await loadNativeKernels({ compiler: 'false', cacheDir: join(cacheRoot, 'false-cc') });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/compiling .*fast-conv\.c failed/);
  });
});

for (const { name: variant } of VARIANTS) {
  describe(`native kernels on the ${variant} GEMM`, () => {
    const native = () => providers[variant];
    const skip = (): boolean => typeof native() === 'string' || native() == null;

    it('forward Conv2D matches the cpu backend on random shapes (strides, dilations, every padding, batch > 1)', async (ctx) => {
      if (skip()) return ctx.skip();
      const k = native() as NativeKernels;
      const cases = [...randomCases(51, 16, false), ...randomCases(52, 6, true)];
      for (const [i, c] of cases.entries()) {
        const { x, w } = caseData(c, 900 + i);
        const inputs = { x: { values: x, shape: c.xShape }, filter: { values: w, shape: c.filterShape } };
        const reference = await runOn('cpu', 'Conv2D', inputs, forwardAttrs(c));
        for (const backendName of ['wasm', 'cpu']) {
          const ours = await runDirect(backendName, makeNativeConv2DKernel(k, missingKernel), inputs, forwardAttrs(c));
          expect(ours.shape).toEqual(reference.shape);
          expect(relativeError(ours.values, reference.values), `${backendName} ${describeCase(c)}`).toBeLessThan(1e-5);
        }
      }
    });

    it('FusedConv2D applies bias and each supported activation like the cpu backend', async (ctx) => {
      if (skip()) return ctx.skip();
      const k = native() as NativeKernels;
      const c = randomCases(53, 1, false)[0];
      const { x, w, rand } = caseData(c, 17);
      const bias = Float32Array.from({ length: c.filterShape[3] }, () => rand() - 0.5);
      for (const activation of ['linear', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'elu']) {
        const inputs = {
          x: { values: x.map((v) => v * 8), shape: c.xShape },
          filter: { values: w, shape: c.filterShape },
          bias: { values: bias, shape: [bias.length] },
        };
        const attrs = { ...forwardAttrs(c), activation, leakyreluAlpha: 0.3 };
        const reference = await runOn('cpu', 'FusedConv2D', inputs, attrs);
        const ours = await runDirect('wasm', makeNativeConv2DKernel(k, missingKernel), inputs, attrs);
        expect(relativeError(ours.values, reference.values), activation).toBeLessThan(1e-5);
      }
    });

    it('hands NCHW, PReLU and per-element biases to the fallback kernel', async (ctx) => {
      if (skip()) return ctx.skip();
      const k = native() as NativeKernels;
      let calls = 0;
      const fallback: tf.KernelFunc = (args) => {
        calls++;
        return tf.getKernel('FusedConv2D', 'cpu')!.kernelFunc(args);
      };
      const x = { values: new Float32Array(2 * 4 * 4 * 3).fill(1), shape: [2, 4, 4, 3] };
      const filter = { values: new Float32Array(3 * 3 * 3 * 2).fill(0.5), shape: [3, 3, 3, 2] };
      const base = { strides: [1, 1], pad: 'same', dilations: [1, 1] };
      await runDirect('cpu', makeNativeConv2DKernel(k, fallback), { x, filter, preluActivationWeights: { values: Float32Array.of(0.1), shape: [1] } }, { ...base, dataFormat: 'NHWC', activation: 'prelu' });
      await runDirect('cpu', makeNativeConv2DKernel(k, fallback), { x, filter, bias: { values: new Float32Array(4 * 4 * 2), shape: [4, 4, 2] } }, { ...base, dataFormat: 'NHWC', activation: 'linear' });
      expect(calls).toBe(2);
    });

    // The cpu backend's gradient kernels ignore dilations (tfjs-core never sends them), so
    // dilated cases are checked against finite differences below instead.
    it('Conv2DBackpropFilter and Conv2DBackpropInput match the cpu backend on random shapes', async (ctx) => {
      if (skip()) return ctx.skip();
      const k = native() as NativeKernels;
      for (const [i, c] of randomCases(61, 22, false).entries()) {
        const { x, w, dy, dyShape } = caseData(c, 1100 + i);
        const common = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.dimRoundingMode, dilations: c.dilations };
        const filterInputs = { x: { values: x, shape: c.xShape }, dy: { values: dy, shape: dyShape } };
        const inputInputs = { dy: { values: dy, shape: dyShape }, filter: { values: w, shape: c.filterShape } };
        const filterAttrs = { ...common, filterShape: c.filterShape };
        const inputAttrs = { ...common, inputShape: c.xShape };
        const refFilter = await runOn('cpu', 'Conv2DBackpropFilter', filterInputs, filterAttrs);
        const refInput = await runOn('cpu', 'Conv2DBackpropInput', inputInputs, inputAttrs);
        for (const backendName of ['wasm', 'cpu']) {
          const dw = await runDirect(backendName, makeNativeConv2DBackpropFilterKernel(k, missingKernel), filterInputs, filterAttrs);
          const dx = await runDirect(backendName, makeNativeConv2DBackpropInputKernel(k, missingKernel), inputInputs, inputAttrs);
          expect(relativeError(dw.values, refFilter.values), `dW ${backendName} ${describeCase(c)}`).toBeLessThan(1e-5);
          expect(relativeError(dx.values, refInput.values), `dX ${backendName} ${describeCase(c)}`).toBeLessThan(1e-5);
        }
      }
    });

    it('gradients agree with finite differences of the forward conv', async (ctx) => {
      if (skip()) return ctx.skip();
      const k = native() as NativeKernels;
      for (const [i, c] of [...randomCases(71, 3, true), ...randomCases(72, 3, false)].entries()) {
        const { x, w, dy, dyShape, rand } = caseData(c, 1300 + i);
        const common = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.dimRoundingMode, dilations: c.dilations };
        const dw = await runDirect('wasm', makeNativeConv2DBackpropFilterKernel(k, missingKernel), { x: { values: x, shape: c.xShape }, dy: { values: dy, shape: dyShape } }, { ...common, filterShape: c.filterShape });
        const dx = await runDirect('wasm', makeNativeConv2DBackpropInputKernel(k, missingKernel), { dy: { values: dy, shape: dyShape }, filter: { values: w, shape: c.filterShape } }, { ...common, inputShape: c.xShape });
        await tf.setBackend('cpu');
        const wi = sampleIndices(rand, w.length, 5);
        const xi = sampleIndices(rand, x.length, 5);
        const numericW = finiteDifference((p) => convObjective(c, dy, x, p), w, wi, 0.5);
        const numericX = finiteDifference((p) => convObjective(c, dy, p, w), x, xi, 0.5);
        expect(relativeError(wi.map((j) => dw.values[j]), numericW), describeCase(c)).toBeLessThan(1e-4);
        expect(relativeError(xi.map((j) => dx.values[j]), numericX), describeCase(c)).toBeLessThan(1e-4);
      }
    });

    it('gives the same results chunked by image, on 2 threads and on 1', async (ctx) => {
      if (skip()) return ctx.skip();
      const k = native() as NativeKernels;
      const c: ConvCase = { xShape: [5, 9, 7, 6], filterShape: [3, 3, 6, 70], strides: [1, 1], dilations: [1, 1], pad: 'same' };
      const { x, w, dy } = caseData(c, 5);
      const g = convGeometry(c.xShape, c.filterShape, c.strides, c.dilations, c.pad, undefined, false);
      const run = () => runAll(k, g, x, w, dy);
      k.setThreads(1);
      const whole = run();
      // One image of patches is 9*7*54 = 3402 floats: a limit of 7000 makes chunks of 2 images (2 + 2 + 1).
      k.setScratchLimit(7000);
      k.setThreads(2);
      const chunked = run();
      k.setScratchLimit(8 * 1024 * 1024);
      k.setThreads(1);
      for (let j = 0; j < 3; j++) expect(relativeError(chunked[j], whole[j])).toBeLessThan(1e-6);
    });

    it('the direct path (forced) matches the cpu backend and finite differences, on any thread count bit for bit', async (ctx) => {
      if (skip()) return ctx.skip();
      const k = native() as NativeKernels;
      const cases: ConvCase[] = [
        ...directCases(81, 14),
        // The lab's shapes: 1-channel stem, 8-64 channels at 32x32 down to 4x4.
        { xShape: [2, 32, 32, 1], filterShape: [3, 3, 1, 8], strides: [1, 1], dilations: [1, 1], pad: 'same' },
        { xShape: [2, 8, 8, 32], filterShape: [3, 3, 32, 32], strides: [1, 1], dilations: [1, 1], pad: 'same' },
        { xShape: [3, 4, 4, 64], filterShape: [3, 3, 64, 64], strides: [1, 1], dilations: [1, 1], pad: 'same' },
        { xShape: [1, 5, 7, 3], filterShape: [3, 2, 3, 24], strides: [1, 1], dilations: [1, 1], pad: [[0, 0], [2, 0], [0, 1], [0, 0]] },
      ];
      try {
        for (const [i, c] of cases.entries()) {
          const { x, w, dy, rand } = caseData(c, 60 + i);
          const checks = kernelChecks(k, c, 60 + i);
          expect(k.setDirectConv('always')).toBe('always');
          const direct: Float32Array[] = [];
          for (const [kernel, fn, inputs, attrs] of checks) {
            const reference = await runOn('cpu', kernel, inputs, attrs);
            const ours = await runDirect('cpu', fn, inputs, attrs);
            direct.push(ours.values);
            expect(relativeError(ours.values, reference.values), `direct ${kernel} ${describeCase(c)}`).toBeLessThan(1e-5);
          }
          if (i < 4) {
            await tf.setBackend('cpu');
            const wi = sampleIndices(rand, w.length, 4);
            const xi = sampleIndices(rand, x.length, 4);
            const numericW = finiteDifference((p) => convObjective(c, dy, x, p), w, wi, 0.5);
            const numericX = finiteDifference((p) => convObjective(c, dy, p, w), x, xi, 0.5);
            expect(relativeError(wi.map((j) => direct[2][j]), numericW), `direct dW ${describeCase(c)}`).toBeLessThan(1e-4);
            expect(relativeError(xi.map((j) => direct[1][j]), numericX), `direct dX ${describeCase(c)}`).toBeLessThan(1e-4);
          }
          const g = convGeometry(c.xShape, c.filterShape, c.strides, c.dilations, c.pad, c.dimRoundingMode, false);
          const byThreads = [1, 3].map((t) => {
            k.setThreads(t);
            return runAll(k, g, x, w, dy);
          });
          k.setThreads(1);
          for (let j = 0; j < 3; j++) expect(Array.from(byThreads[1][j]), `threads ${describeCase(c)} output ${j}`).toEqual(Array.from(byThreads[0][j]));
          // The patch-matrix path on the same shape agrees within rounding.
          k.setDirectConv('never');
          const im2col = runAll(k, g, x, w, dy);
          for (let j = 0; j < 3; j++) expect(relativeError(byThreads[0][j], im2col[j]), `im2col ${describeCase(c)} output ${j}`).toBeLessThan(1e-5);
        }
      } finally {
        k.setDirectConv('auto');
        k.setThreads(1);
      }
    });

    // The built-in GEMM's own promises (oneDNN and OpenBLAS make neither).
    if (variant.startsWith('builtin')) {
      it('gives bit-identical results on 1, 2 and 3 threads (the same seed on any worker count)', (ctx) => {
        if (skip()) return ctx.skip();
        const k = native() as NativeKernels;
        // Shapes of the lab's models: few channels at 32x32 and wide at 4x4, batch 4 and 16.
        for (const c of [
          { xShape: [4, 32, 32, 8], filterShape: [3, 3, 8, 8], strides: [1, 1], dilations: [1, 1], pad: 'same' },
          { xShape: [16, 8, 8, 32], filterShape: [3, 3, 32, 64], strides: [2, 2], dilations: [1, 1], pad: 'same' },
          { xShape: [4, 4, 4, 256], filterShape: [3, 3, 256, 512], strides: [1, 1], dilations: [1, 1], pad: 'same' },
        ] as ConvCase[]) {
          const { x, w, dy } = caseData(c, 21);
          const g = convGeometry(c.xShape, c.filterShape, c.strides, c.dilations, c.pad, undefined, false);
          const byThreads = [1, 2, 3].map((t) => {
            k.setThreads(t);
            return runAll(k, g, x, w, dy);
          });
          k.setThreads(1);
          for (const other of byThreads.slice(1))
            for (let j = 0; j < 3; j++) expect(Array.from(other[j]), `${describeCase(c)} output ${j}`).toEqual(Array.from(byThreads[0][j]));
        }
      });

      it('every register tile gives the cpu backend results for narrow and wide outputs', async (ctx) => {
        if (skip()) return ctx.skip();
        const k = native() as NativeKernels;
        const tiles: NativeTile[] = k.info().vectorFloats >= 8 ? ['wide', 'narrow', 'half'] : ['wide', 'narrow'];
        const cases: ConvCase[] = [
          { xShape: [2, 7, 6, 1], filterShape: [3, 3, 1, 3], strides: [1, 1], dilations: [1, 1], pad: 'same' },
          { xShape: [3, 9, 8, 5], filterShape: [3, 3, 5, 8], strides: [2, 2], dilations: [1, 1], pad: 'same' },
          { xShape: [1, 6, 6, 4], filterShape: [1, 1, 4, 37], strides: [1, 1], dilations: [1, 1], pad: 'valid' },
          { xShape: [2, 5, 5, 20], filterShape: [3, 3, 20, 16], strides: [1, 1], dilations: [1, 1], pad: 'valid' },
        ];
        try {
          for (const tile of tiles) {
            expect(k.setTile(tile)).toBe(tile);
            for (const [i, c] of cases.entries()) {
              for (const [kernel, fn, inputs, attrs] of kernelChecks(k, c, 40 + i)) {
                const reference = await runOn('cpu', kernel, inputs, attrs);
                const ours = await runDirect('cpu', fn, inputs, attrs);
                expect(relativeError(ours.values, reference.values), `${tile} ${kernel} ${describeCase(c)}`).toBeLessThan(1e-5);
              }
            }
          }
        } finally {
          k.setTile(null);
        }
      });
    }

    it('rejects arrays that do not match the geometry', (ctx) => {
      if (skip()) return ctx.skip();
      const k = native() as NativeKernels;
      const g = nativeGeometry(convGeometry([1, 4, 4, 2], [3, 3, 2, 3], 1, 1, 'same', undefined, false));
      expect(() => k.conv2dForward(new Float32Array(31), new Float32Array(54), new Float32Array(48), g, null, 0, 0)).toThrow(/lengths do not match/);
      expect(() => k.conv2dBackpropFilter(new Float32Array(32), new Float32Array(48), new Float32Array(54), Int32Array.of(1, 2))).toThrow(/geometry/);
    });
  });
}

type KernelInput = { values: Float32Array; shape: number[] };

/** The three native conv kernels of case `c` (data from caseData(c, seed)): name, kernel, inputs, attrs. */
function kernelChecks(k: NativeKernels, c: ConvCase, seed: number): Array<[string, tf.KernelFunc, Record<string, KernelInput>, Record<string, unknown>]> {
  const { x, w, dy, dyShape } = caseData(c, seed);
  const common = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dilations: c.dilations, dimRoundingMode: c.dimRoundingMode };
  const xIn = { values: x, shape: [...c.xShape] };
  const wIn = { values: w, shape: [...c.filterShape] };
  const dyIn = { values: dy, shape: [...dyShape] };
  return [
    ['Conv2D', makeNativeConv2DKernel(k, missingKernel), { x: xIn, filter: wIn }, common],
    ['Conv2DBackpropInput', makeNativeConv2DBackpropInputKernel(k, missingKernel), { dy: dyIn, filter: wIn }, { ...common, inputShape: c.xShape }],
    ['Conv2DBackpropFilter', makeNativeConv2DBackpropFilterKernel(k, missingKernel), { x: xIn, dy: dyIn }, { ...common, filterShape: c.filterShape }],
  ];
}

function runAll(k: NativeKernels, g: ReturnType<typeof convGeometry>, x: Float32Array, w: Float32Array, dy: Float32Array): Float32Array[] {
  const y = new Float32Array(dy.length);
  const dx = new Float32Array(x.length);
  const dw = new Float32Array(w.length);
  k.conv2dForward(x, w, y, nativeGeometry(g), null, 0, 0);
  k.conv2dBackpropInput(dy, w, dx, nativeGeometry(g));
  k.conv2dBackpropFilter(x, dy, dw, nativeGeometry(g));
  return [y, dx, dw];
}

describe('native memory-bound kernels', () => {
  it('maxPoolGrad equals the JS kernel (first maximum wins, all-negative windows, padding, strides)', (ctx) => {
    const k = providers.builtin;
    if (typeof k === 'string' || k == null) return ctx.skip();
    const rand = seededRandom(8);
    for (const [shape, filter, stride, pad] of [
      [[2, 9, 7, 5], 3, 2, 'same'],
      [[1, 6, 6, 3], 2, 2, 'valid'],
      [[3, 5, 8, 2], 3, 1, 1],
    ] as Array<[number[], number, number, 'same' | 'valid' | number]>) {
      // Rounded values make ties; a shift makes whole windows negative.
      const x = randomValues(rand, shape.reduce((a, b) => a * b)).map((v) => Math.round(v * 3) / 3 - 0.8);
      const info = tf.backend_util.computePool2DInfo(shape as [number, number, number, number], filter, stride, 1, pad, 'floor');
      const dy = randomValues(rand, info.batchSize * info.outHeight * info.outWidth * info.outChannels);
      const ours = new Float32Array(x.length).fill(7);
      const reference = new Float32Array(x.length);
      nativeMaxPoolGrad(k)(x, dy, ours, info);
      maxPoolGradNHWC(x, dy, reference, info);
      expect(Array.from(ours)).toEqual(Array.from(reference));
    }
  });

  it('adamUpdate equals the JS update (Adam and AdamW, 2 threads over a long vector, outputs aliasing inputs)', (ctx) => {
    const k = [providers.builtin, providers.onednn, providers.openblas].find((p): p is NativeKernels => typeof p === 'object');
    if (k == null) return ctx.skip();
    const rand = seededRandom(12);
    const n = 600_001; // > 2 x 2^18: split across both threads
    const [w, g, m] = [0, 1, 2].map(() => randomValues(rand, n));
    const v = randomValues(rand, n).map((x) => x * x);
    k.setThreads(2);
    for (const attrs of [
      { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 1e-2, decoupled: false, step: 3 },
      { lr: 3e-2, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 5e-2, decoupled: true, step: 1 },
    ]) {
      const ref = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
      adamUpdateInto(w, g, m, v, ref[0], ref[1], ref[2], attrs);
      const ours = [Float32Array.from(w), Float32Array.from(m), Float32Array.from(v)];
      k.adamUpdate(ours[0], g, ours[1], ours[2], ours[0], ours[1], ours[2], attrs);
      for (let j = 0; j < 3; j++) expect(relativeError(ours[j], ref[j]), `output ${j} ${JSON.stringify(attrs)}`).toBeLessThan(1e-6);
    }
    k.setThreads(1);
    expect(() => k.adamUpdate(w, g, m, v, w, m, v, { lr: 1 } as never)).toThrow(/attrs must have numbers/);
  });

  it('FusedBatchNorm matches the cpu backend, with and without scale and offset', async (ctx) => {
    const k = providers.builtin;
    if (typeof k === 'string' || k == null) return ctx.skip();
    const rand = seededRandom(9);
    const shape = [2, 3, 4, 6];
    const x = { values: randomValues(rand, 144).map((v) => v * 5 + 100), shape };
    const channel = (offset: number) => ({ values: randomValues(rand, 6).map((v) => v + offset), shape: [6] });
    const [mean, variance, scale, offset] = [channel(100), channel(2), channel(1), channel(0)];
    type Inputs = Record<string, { values: Float32Array; shape: number[] }>;
    for (const inputs of [{ x, mean, variance, scale, offset }, { x, mean, variance }] as Inputs[]) {
      const reference = await runOn('cpu', 'FusedBatchNorm', inputs, { varianceEpsilon: 1e-3 });
      const ours = await runDirect('wasm', makeNativeBatchNormKernel(k, missingKernel), inputs, { varianceEpsilon: 1e-3 });
      expect(relativeError(ours.values, reference.values)).toBeLessThan(1e-5);
    }
  });
});

describe('native GEMM providers', () => {
  it('the builtin provider is always there when the addon builds; the library providers load where installed', () => {
    if (typeof providers.builtin === 'string') return;
    // Say which were exercised, so a CI log shows whether oneDNN / OpenBLAS were covered.
    const report = Object.fromEntries(Object.entries(providers).map(([name, p]) => [name, typeof p === 'string' ? p : 'tested']));
    console.log('native GEMM providers:', report);
    let hasDnnl = false;
    try {
      hasDnnl = execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }).includes('libdnnl.so');
    } catch {
      return;
    }
    expect(typeof providers.onednn !== 'string').toBe(hasDnnl);
  });
});
