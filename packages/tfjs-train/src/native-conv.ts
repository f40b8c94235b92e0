import type { backend_util, KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { allocFloat32, float32View } from './backend-access';
import { convGeometry, isChannelsFirst, toPair, type ConvBackpropAttrs, type ConvGeometry } from './conv-geometry';
import type { NativeKernels } from './native-addon';

const nativeGeometries = new WeakMap<Readonly<ConvGeometry>, Int32Array>();

/**
 * The Int32Array(15) geometry native/fast-conv.c reads (its `Geom` struct, same order); one per
 * (memoised) geometry object. The native side only reads it.
 */
export function nativeGeometry(g: Readonly<ConvGeometry>): Int32Array {
  let out = nativeGeometries.get(g);
  if (out == null) {
    out = buildNativeGeometry(g);
    nativeGeometries.set(g, out);
  }
  return out;
}

function buildNativeGeometry(g: Readonly<ConvGeometry>): Int32Array {
  return Int32Array.from([
    g.batch,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outHeight,
    g.outWidth,
    g.outChannels,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    g.dilationHeight,
    g.dilationWidth,
    g.padTop,
    g.padLeft,
  ]);
}

/** Fused activations the native forward applies itself (ids match `enum` ACT_* in fast-conv.c). */
const NATIVE_ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, leakyrelu: 3, sigmoid: 4, elu: 5 };

interface ForwardAttrs extends ConvBackpropAttrs {
  activation?: string;
  leakyreluAlpha?: number;
}

function isFloat32(...infos: TensorInfo[]): boolean {
  return infos.every((t) => t.dtype === 'float32');
}

/**
 * `Conv2D` / `FusedConv2D` on the native kernels: im2col + SGEMM, bias and activation applied in
 * the same pass. Cases the native code does not cover (NCHW, PReLU, a bias that is not one value
 * per output channel, non-float32) go to `fallback`, the kernel it replaced.
 */
export function makeNativeConv2DKernel(native: NativeKernels, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as KernelBackend;
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const a = args.attrs as unknown as ForwardAttrs;
    const activation = a.activation ?? 'linear';
    if (
      x == null ||
      filter == null ||
      isChannelsFirst(a.dataFormat) ||
      preluActivationWeights != null ||
      !(activation in NATIVE_ACTIVATIONS) ||
      !isFloat32(x, filter, ...(bias != null ? [bias] : [])) ||
      (bias != null && bias.shape.reduce((p, d) => p * d, 1) !== filter.shape[3])
    ) {
      return fallback(args);
    }
    const g = convGeometry(x.shape, filter.shape as [number, number, number, number], toPair(a.strides), toPair(a.dilations), a.pad, a.dimRoundingMode, false);
    const y = allocFloat32(backend, [g.batch, g.outHeight, g.outWidth, g.outChannels]);
    // Views only after the last allocation: on wasm an allocation may grow and detach the heap.
    native.conv2dForward(
      float32View(backend, x),
      float32View(backend, filter),
      float32View(backend, y),
      nativeGeometry(g),
      bias != null ? float32View(backend, bias) : null,
      NATIVE_ACTIVATIONS[activation],
      a.leakyreluAlpha ?? 0.2,
    );
    return y;
  };
}

/** `Conv2DBackpropInput` on the native kernels (NCHW and non-float32 go to `fallback`). */
export function makeNativeConv2DBackpropInputKernel(native: NativeKernels, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as KernelBackend;
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = args.attrs as unknown as ConvBackpropAttrs & { inputShape: [number, number, number, number] };
    if (isChannelsFirst(a.dataFormat) || !isFloat32(dy, filter)) return fallback(args);
    const g = convGeometry([...a.inputShape], filter.shape as [number, number, number, number], toPair(a.strides), toPair(a.dilations), a.pad, a.dimRoundingMode, false);
    checkDy('Conv2DBackpropInput', dy, g);
    const dx = allocFloat32(backend, [g.batch, g.inHeight, g.inWidth, g.inChannels]);
    native.conv2dBackpropInput(float32View(backend, dy), float32View(backend, filter), float32View(backend, dx), nativeGeometry(g));
    return dx;
  };
}

/** `Conv2DBackpropFilter` on the native kernels (NCHW and non-float32 go to `fallback`). */
export function makeNativeConv2DBackpropFilterKernel(native: NativeKernels, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as KernelBackend;
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const a = args.attrs as unknown as ConvBackpropAttrs & { filterShape: [number, number, number, number] };
    if (isChannelsFirst(a.dataFormat) || !isFloat32(x, dy)) return fallback(args);
    const g = convGeometry(x.shape, a.filterShape, toPair(a.strides), toPair(a.dilations), a.pad, a.dimRoundingMode, false);
    checkDy('Conv2DBackpropFilter', dy, g);
    const dw = allocFloat32(backend, [...a.filterShape]);
    native.conv2dBackpropFilter(float32View(backend, x), float32View(backend, dy), float32View(backend, dw), nativeGeometry(g));
    return dw;
  };
}

function checkDy(kernel: string, dy: TensorInfo, g: ConvGeometry): void {
  if (dy.shape[0] !== g.batch || dy.shape[1] !== g.outHeight || dy.shape[2] !== g.outWidth || dy.shape[3] !== g.outChannels) {
    throw new Error(
      `@lab/tfjs-train ${kernel}: dy shape [${dy.shape}] does not match the convolution output ` +
        `[${g.batch},${g.outHeight},${g.outWidth},${g.outChannels}]`,
    );
  }
}

/**
 * Kernel configs of the native path for `backendName`. `fallbacks` maps each kernel name to the
 * kernel function to use for the cases the native code does not handle.
 */
export function nativeConvKernelConfigs(
  backendName: string,
  native: NativeKernels,
  fallbacks: Record<'Conv2D' | 'FusedConv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter', KernelFunc>,
): KernelConfig[] {
  return [
    { kernelName: 'Conv2D', backendName, kernelFunc: makeNativeConv2DKernel(native, fallbacks.Conv2D) },
    { kernelName: 'FusedConv2D', backendName, kernelFunc: makeNativeConv2DKernel(native, fallbacks.FusedConv2D) },
    { kernelName: 'Conv2DBackpropInput', backendName, kernelFunc: makeNativeConv2DBackpropInputKernel(native, fallbacks.Conv2DBackpropInput) },
    { kernelName: 'Conv2DBackpropFilter', backendName, kernelFunc: makeNativeConv2DBackpropFilterKernel(native, fallbacks.Conv2DBackpropFilter) },
  ];
}

/** The native max-pool gradient with the JS loop's signature (`maxPoolGradNHWC`). */
export function nativeMaxPoolGrad(native: NativeKernels) {
  return (x: Float32Array, dy: Float32Array, dx: Float32Array, info: backend_util.Conv2DInfo): void => {
    const geometry = Int32Array.from([
      info.batchSize,
      info.inHeight,
      info.inWidth,
      info.inChannels,
      info.outHeight,
      info.outWidth,
      info.outChannels,
      info.filterHeight,
      info.filterWidth,
      info.strideHeight,
      info.strideWidth,
      info.dilationHeight,
      info.dilationWidth,
      info.padInfo.top,
      info.padInfo.left,
    ]);
    native.maxPoolGrad(x, dy, dx, geometry);
  };
}

/**
 * `FusedBatchNorm` (inference-style normalisation with given statistics, also what the training
 * path applies after computing batch statistics) in one native pass. Cases other than float32
 * per-channel (last axis) parameters go to `fallback`.
 */
export function makeNativeBatchNormKernel(native: NativeKernels, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as KernelBackend;
    const { x, mean, variance, scale, offset } = args.inputs as Record<string, TensorInfo | undefined>;
    if (x == null || mean == null || variance == null || x.shape.length < 1) return fallback(args);
    const C = x.shape[x.shape.length - 1];
    const perChannel = (t: TensorInfo | undefined) => t == null || (t.dtype === 'float32' && t.shape.length === 1 && t.shape[0] === C);
    if (x.dtype !== 'float32' || !perChannel(mean) || !perChannel(variance) || !perChannel(scale) || !perChannel(offset)) {
      return fallback(args);
    }
    const epsilon = Number((args.attrs as { varianceEpsilon?: number }).varianceEpsilon ?? 0.001);
    const y = allocFloat32(backend, [...x.shape]);
    native.batchNormApply(
      float32View(backend, x),
      float32View(backend, mean),
      float32View(backend, variance),
      scale != null ? float32View(backend, scale) : null,
      offset != null ? float32View(backend, offset) : null,
      epsilon,
      float32View(backend, y),
    );
    return y;
  };
}
