import {
  getKernel,
  registerKernel,
  unregisterKernel,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { convGeometry, isChannelsFirst, toPair, type ConvBackpropAttrs, type ConvGeometry } from './conv-geometry';

/**
 * Conv2DBackpropFilter for `@tensorflow/tfjs-backend-webgpu` (4.x), as a GEMM over the long axis.
 *
 * dW[kh, kw, ci, co] = Σ over (b, oh, ow) of x[b, oh·sh + kh·dh − padTop, ow·sw + kw·dw − padLeft, ci] · dy[b, oh, ow, co]
 *
 * Read as dW[K = kh·kw·ci, CO] = patchesᵀ · dy with the reduction over R = B·OH·OW. The stock kernel
 * runs one thread per weight, each walking all of R with scalar loads and a bounds check per term.
 * Here each thread owns a 4 (k) × 4 (co) register tile, so every x value is used 4 times and every
 * dy value 4 times per load; rows of x that fall in the padding are skipped once per output row, and
 * the valid `ow` range of each row is computed up front (no per-term bounds checks). When the tile
 * grid alone gives too few threads (deep layers on small maps, or the stem: small dW, huge R), the
 * rows B·OH are split across a second dispatch axis (split-K) and a second pass sums the partials.
 *
 * Two shader variants: `vec4` (ci % 4 == 0 and co % 4 == 0: the 4 k's of a thread are 4 consecutive
 * input channels of one tap, loaded as one vec4, and dy rows as vec4) and `scalar` (anything else,
 * e.g. the 1-channel stem: 4 consecutive flattened k's, each with its own tap).
 *
 * The programs are plain objects with the fields tfjs-backend-webgpu's `WebGPUProgram` interface
 * has (variableNames, outputShape, dispatchLayout, dispatch, workgroupSize, getUserCode, uniforms);
 * the backend adds its own header (uniform struct with the input/output shapes, bindings, `_start`).
 * Nothing here imports the backend package.
 */

/** The fields of tfjs-backend-webgpu's `WebGPUProgram` these programs set. */
export interface WebGpuProgramLike {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms?: string;
  size?: boolean;
  outputComponent?: number;
  variableComponents?: number[];
  getUserCode(): string;
}

type UniformData = { type: 'int32' | 'float32' | 'uint32'; data: number[] };

/** The parts of tfjs-backend-webgpu's `WebGPUBackend` used here, declared structurally. */
interface WebGpuLikeBackend extends KernelBackend {
  runWebGPUProgram(program: WebGpuProgramLike, inputs: TensorInfo[], outputDtype: 'float32', uniforms?: UniformData[]): TensorInfo;
  makeTensorInfo(shape: number[], dtype: 'float32', values?: Float32Array): TensorInfo;
  device: { limits: { maxComputeWorkgroupsPerDimension: number } };
}

function isWebGpuLike(backend: KernelBackend): backend is WebGpuLikeBackend {
  return typeof (backend as Partial<WebGpuLikeBackend>).runWebGPUProgram === 'function';
}

const WORKGROUP = 64;
/** Split the rows until the grid has about this many threads (a GPU wants thousands in flight). */
const TARGET_THREADS = 8192;
/** ... but give each split at least this many output rows, so the partials stay cheap to sum. */
const MIN_ROWS_PER_SPLIT = 4;

export interface WebGpuBackpropFilterPlan {
  variant: 'vec4' | 'scalar';
  /** Tiles of 4 k's (rows of dW viewed as [K, CO]). */
  kBlocks: number;
  /** Tiles of 4 output channels. */
  coBlocks: number;
  /** How many slices the B·OH rows are split into (1: no second pass). */
  splits: number;
  rowsPerSplit: number;
}

/** How the kernel would run a convolution (exported for tests and benchmarks). */
export function planWebGpuBackpropFilter(g: ConvGeometry, splitsOverride?: number): WebGpuBackpropFilterPlan {
  const K = g.filterHeight * g.filterWidth * g.inChannels;
  const variant = g.inChannels % 4 === 0 && g.outChannels % 4 === 0 ? 'vec4' : 'scalar';
  const kBlocks = Math.ceil(K / 4);
  const coBlocks = Math.ceil(g.outChannels / 4);
  const rows = g.batch * g.outHeight;
  const threads = kBlocks * coBlocks;
  let splits = Math.max(
    1,
    splitsOverride != null ? Math.min(splitsOverride, rows) : Math.min(Math.round(TARGET_THREADS / threads), Math.floor(rows / MIN_ROWS_PER_SPLIT), 256),
  );
  const rowsPerSplit = Math.ceil(rows / splits);
  splits = Math.ceil(rows / rowsPerSplit);
  return { variant, kBlocks, coBlocks, splits, rowsPerSplit };
}

const FILTER_UNIFORMS =
  'pads : vec2<i32>, strides : vec2<i32>, dilations : vec2<i32>, filterWidth : i32, inChannels : i32, outChannels : i32, numRows : i32, rowsPerSplit : i32, kBlocks : i32, coBlocks : i32, numK : i32,';

/** The GEMM pass: one thread per 4×4 tile of dW, one dispatch row (y) per split of the B·OH rows. */
class Conv2DBackpropFilterTiledProgram implements WebGpuProgramLike {
  variableNames = ['x', 'dy'];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = FILTER_UNIFORMS;
  outputComponent?: number;
  variableComponents?: number[];
  size = false;

  constructor(
    outputShape: number[],
    private readonly plan: WebGpuBackpropFilterPlan,
  ) {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil((plan.kBlocks * plan.coBlocks) / WORKGROUP), plan.splits, 1];
    if (plan.variant === 'vec4') {
      this.outputComponent = 4;
      this.variableComponents = [4, 4];
    }
    this.shaderKey = `labConv2DBackpropFilterTiled_${plan.variant}`;
  }

  getUserCode(): string {
    return this.plan.variant === 'vec4' ? VEC4_BODY : SCALAR_BODY;
  }
}

const TILE_INDEX = `
    let t = i32(globalId.x);
    if (t >= uniforms.kBlocks * uniforms.coBlocks) {
      return;
    }
    let kBlock = t / uniforms.coBlocks;
    let coBlock = t - kBlock * uniforms.coBlocks;
    let split = i32(globalId.y);
    let row0 = split * uniforms.rowsPerSplit;
    let row1 = min(uniforms.numRows, row0 + uniforms.rowsPerSplit);
    let inH = uniforms.xShape.y;
    let inW = uniforms.xShape.z;
    let outH = uniforms.dyShape.y;
    let outW = uniforms.dyShape.z;
    let sh = uniforms.strides.x;
    let sw = uniforms.strides.y;`;

// x and dy are bound as vec4 arrays (channels last, ci % 4 == 0, co % 4 == 0).
const VEC4_BODY = `
  fn main(index : i32) {
    ${TILE_INDEX}
    let ci4s = uniforms.inChannels / 4;
    let coBlocks = uniforms.coBlocks;
    let ci4 = kBlock % ci4s;
    let tap = kBlock / ci4s;
    let kh = tap / uniforms.filterWidth;
    let kw = tap - kh * uniforms.filterWidth;
    let offH = kh * uniforms.dilations.x - uniforms.pads.x;
    let offW = kw * uniforms.dilations.y - uniforms.pads.y;
    // The ow for which iw = ow * sw + offW lies in [0, inW).
    var owLo = 0;
    if (offW < 0) {
      owLo = (sw - 1 - offW) / sw;
    }
    var owHi = 0;
    if (inW - 1 - offW >= 0) {
      owHi = min(outW, (inW - 1 - offW) / sw + 1);
    }
    let xStep = sw * ci4s;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var row = row0; row < row1; row++) {
      let b = row / outH;
      let oh = row - b * outH;
      let ih = oh * sh + offH;
      if (ih < 0 || ih >= inH) {
        continue;
      }
      var xi = ((b * inH + ih) * inW + owLo * sw + offW) * ci4s + ci4;
      var di = (row * outW + owLo) * coBlocks + coBlock;
      for (var ow = owLo; ow < owHi; ow++) {
        let xv = x[xi];
        let dv = dy[di];
        acc0 = fma(vec4<f32>(xv.x), dv, acc0);
        acc1 = fma(vec4<f32>(xv.y), dv, acc1);
        acc2 = fma(vec4<f32>(xv.z), dv, acc2);
        acc3 = fma(vec4<f32>(xv.w), dv, acc3);
        xi += xStep;
        di += coBlocks;
      }
    }
    // Output rows k = 4 * kBlock + j, as vec4 over co; split s at offset s * K * coBlocks.
    let base = (split * uniforms.kBlocks * 4 + kBlock * 4) * coBlocks + coBlock;
    result[base] = acc0;
    result[base + coBlocks] = acc1;
    result[base + 2 * coBlocks] = acc2;
    result[base + 3 * coBlocks] = acc3;
  }
`;

const taps = [0, 1, 2, 3];
// Any channel counts: 4 consecutive flattened k's (each with its own tap) × 4 output channels.
const SCALAR_BODY = `
  fn main(index : i32) {
    ${TILE_INDEX}
    let ci = uniforms.inChannels;
    let co = uniforms.outChannels;
    let numK = uniforms.numK;
    let co0 = coBlock * 4;
    ${taps
      .map(
        (j) => `
    let k${j} = kBlock * 4 + ${j};
    let ok${j} = k${j} < numK;
    let ci${j} = k${j} % ci;
    let tap${j} = k${j} / ci;
    let kh${j} = tap${j} / uniforms.filterWidth;
    let offH${j} = kh${j} * uniforms.dilations.x - uniforms.pads.x;
    let offW${j} = (tap${j} - kh${j} * uniforms.filterWidth) * uniforms.dilations.y - uniforms.pads.y;
    var acc${j} = vec4<f32>(0.0);`,
      )
      .join('')}
    let c1 = co0 + 1 < co;
    let c2 = co0 + 2 < co;
    let c3 = co0 + 3 < co;
    for (var row = row0; row < row1; row++) {
      let b = row / outH;
      let oh = row - b * outH;
      ${taps
        .map(
          (j) => `
      let ih${j} = oh * sh + offH${j};
      let okRow${j} = ok${j} && ih${j} >= 0 && ih${j} < inH;
      let xRow${j} = (b * inH + ih${j}) * inW;`,
        )
        .join('')}
      for (var ow = 0; ow < outW; ow++) {
        let di = (row * outW + ow) * co + co0;
        let dv = vec4<f32>(dy[di], select(0.0, dy[di + 1], c1), select(0.0, dy[di + 2], c2), select(0.0, dy[di + 3], c3));
        ${taps
          .map(
            (j) => `
        let iw${j} = ow * sw + offW${j};
        if (okRow${j} && iw${j} >= 0 && iw${j} < inW) {
          acc${j} = fma(vec4<f32>(x[(xRow${j} + iw${j}) * ci + ci${j}]), dv, acc${j});
        }`,
          )
          .join('')}
      }
    }
    let base = split * numK * co;
    ${taps
      .map(
        (j) => `
    if (ok${j}) {
      let o = base + k${j} * co + co0;
      result[o] = acc${j}.x;
      if (c1) { result[o + 1] = acc${j}.y; }
      if (c2) { result[o + 2] = acc${j}.z; }
      if (c3) { result[o + 3] = acc${j}.w; }
    }`,
      )
      .join('')}
  }
`;

/** Sums the partial products of the splits: out[i] = Σ_s partials[s, i]. */
class SplitSumProgram implements WebGpuProgramLike {
  variableNames = ['partials'];
  outputShape: number[];
  shaderKey = 'labConv2DBackpropFilterSplitSum';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = 'numSplits : i32,';
  size = true;

  constructor(outputShape: number[]) {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    const size = outputShape.reduce((a, b) => a * b, 1);
    this.dispatch = [Math.ceil(size / WORKGROUP), 1, 1];
  }

  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index < uniforms.size) {
      var sum = 0.0;
      for (var s = 0; s < uniforms.numSplits; s++) {
        sum += partials[s * uniforms.size + index];
      }
      result[index] = sum;
    }
  }
`;
  }
}

/**
 * Runs the tiled program (and the split sum where the plan splits) on a webgpu backend. Returns
 * null where this kernel does not apply (the caller then runs the stock kernel).
 */
export function webgpuConv2dBackpropFilterNHWC(
  backend: KernelBackend,
  x: TensorInfo,
  dy: TensorInfo,
  g: ConvGeometry,
  splitsOverride?: number,
): TensorInfo | null {
  if (!isWebGpuLike(backend) || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const filterSize = g.filterHeight * g.filterWidth * g.inChannels * g.outChannels;
  if (g.batch * g.outHeight * g.outWidth === 0 || g.inHeight * g.inWidth === 0) {
    // An empty reduction: dW is zero (the stock shader would bind an empty buffer, which WebGPU rejects).
    return backend.makeTensorInfo([g.filterHeight, g.filterWidth, g.inChannels, g.outChannels], 'float32', new Float32Array(filterSize));
  }
  const plan = planWebGpuBackpropFilter(g, splitsOverride);
  const maxPerDim = backend.device?.limits?.maxComputeWorkgroupsPerDimension ?? 65535;
  if (Math.ceil((plan.kBlocks * plan.coBlocks) / WORKGROUP) > maxPerDim || plan.splits > maxPerDim) return null;
  const K = g.filterHeight * g.filterWidth * g.inChannels;
  const filterShape = [g.filterHeight, g.filterWidth, g.inChannels, g.outChannels];
  // Without splits the program writes dW in filter layout ([K, CO] row-major is [kh, kw, ci, co]).
  const gemmShape = plan.splits > 1 ? [plan.splits, K, g.outChannels] : filterShape;
  const program = new Conv2DBackpropFilterTiledProgram(gemmShape, plan);
  const uniforms: UniformData[] = [
    { type: 'int32', data: [g.padTop, g.padLeft] },
    { type: 'int32', data: [g.strideHeight, g.strideWidth] },
    { type: 'int32', data: [g.dilationHeight, g.dilationWidth] },
    { type: 'int32', data: [g.filterWidth] },
    { type: 'int32', data: [g.inChannels] },
    { type: 'int32', data: [g.outChannels] },
    { type: 'int32', data: [g.batch * g.outHeight] },
    { type: 'int32', data: [plan.rowsPerSplit] },
    { type: 'int32', data: [plan.kBlocks] },
    { type: 'int32', data: [plan.coBlocks] },
    { type: 'int32', data: [K] },
  ];
  const gemm = backend.runWebGPUProgram(program, [x, dy], 'float32', uniforms);
  if (plan.splits === 1) return gemm;
  const sum = backend.runWebGPUProgram(new SplitSumProgram(filterShape), [gemm], 'float32', [{ type: 'int32', data: [plan.splits] }]);
  backend.disposeData(gemm.dataId);
  return sum;
}

/** The stock kernels replaced by `useWebGpuTraining`, to fall back to and to restore. */
const stockConfigs = new Map<string, KernelConfig>();
/** The kernels `useWebGpuTraining` registered. */
const registered = new Set<string>();

function stockKernelFunc(kernelName: string, self: KernelFunc): KernelFunc | undefined {
  const found = stockConfigs.get(kernelName)?.kernelFunc ?? getKernel(kernelName, 'webgpu')?.kernelFunc;
  return found === self ? undefined : found;
}

/**
 * The lab's Conv2DBackpropFilter for backend 'webgpu'. Channels-last float32 only; NCHW (and
 * anything else it does not cover) runs the stock kernel that was registered before it. Honours a
 * `dilations` attribute where one is given (tfjs-core never sends one; the stock kernel ignores it).
 */
export function webgpuConv2DBackpropFilterConfig(options: { splits?: number } = {}): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend: backendAny, attrs }) => {
    const backend = backendAny as KernelBackend;
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const a = attrs as unknown as ConvBackpropAttrs & { filterShape: [number, number, number, number] };
    if (!isChannelsFirst(a.dataFormat) && x.shape.length === 4) {
      const g = convGeometry(x.shape, a.filterShape, toPair(a.strides), toPair(a.dilations), a.pad, a.dimRoundingMode, false);
      const out = webgpuConv2dBackpropFilterNHWC(backend, x, dy, g, options.splits);
      if (out != null) return out;
    }
    const stock = stockKernelFunc('Conv2DBackpropFilter', kernelFunc);
    if (stock == null) throw new Error('@lab/tfjs-train: webgpu has no stock Conv2DBackpropFilter to fall back to for this case');
    return stock({ inputs, backend, attrs });
  };
  return { kernelName: 'Conv2DBackpropFilter', backendName: 'webgpu', kernelFunc };
}

/** What `useWebGpuTraining` registered. */
export interface WebGpuTrainingInfo {
  /** Kernel names now served by this package on backend 'webgpu'. */
  kernels: string[];
}

/**
 * Registers this package's webgpu kernels (today: Conv2DBackpropFilter) for backend 'webgpu',
 * replacing the stock ones (kept, and restored by `removeWebGpuTraining`). Import
 * `@tensorflow/tfjs-backend-webgpu` first so its stock kernels exist to fall back to. Idempotent.
 */
export function useWebGpuTraining(): WebGpuTrainingInfo {
  const configs = [webgpuConv2DBackpropFilterConfig()];
  for (const config of configs) {
    const previous = getKernel(config.kernelName, 'webgpu');
    if (previous != null) {
      if (!stockConfigs.has(config.kernelName)) stockConfigs.set(config.kernelName, previous);
      unregisterKernel(config.kernelName, 'webgpu');
    }
    registerKernel(config);
    registered.add(config.kernelName);
  }
  return { kernels: configs.map((c) => c.kernelName) };
}

/** Puts back the stock webgpu kernels that `useWebGpuTraining` replaced. */
export function removeWebGpuTraining(): void {
  for (const kernelName of registered) {
    if (getKernel(kernelName, 'webgpu') != null) unregisterKernel(kernelName, 'webgpu');
    const stock = stockConfigs.get(kernelName);
    if (stock != null) registerKernel(stock);
  }
  registered.clear();
  stockConfigs.clear();
}
