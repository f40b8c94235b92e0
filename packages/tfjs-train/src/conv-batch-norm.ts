import type { KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { allocFloat32, float32View } from './backend-access';
import { convGeometry, toPair } from './conv-geometry';
import type { NativeKernels } from './native-addon';
import { nativeGeometry } from './native-conv';

/**
 * Kernel names of convolution + batch norm in training mode (+ ReLU) as one dispatch per
 * direction, looked up by name (no import) by @lab/ranking-models, which falls back to its
 * separate layers where they are not registered. A ResNet unit conv–BN–ReLU otherwise costs
 * ~20 kernel dispatches (and saved-tensor copies) forward and ~10 backward; at the lab's model
 * sizes that bookkeeping, not the arithmetic, dominated a training step.
 *
 * `LabConvBatchNorm`: inputs x [B,H,W,C], filter [KH,KW,C,CO], scale [CO] (optional: 1), offset
 *   [CO] (optional: 0), movingMean [CO], movingVariance [CO]; attrs strides, pad ('same', 'valid'
 *   or explicit [[0,0],[top,bottom],[left,right],[0,0]]), dilations, epsilon, momentum (the
 *   tfjs-layers meaning: moving = moving − (moving − batch)·(1 − momentum)), relu (boolean) ->
 *   [y, conv, stats [2, CO] = [mean; biased variance] of conv, newMovingMean, newMovingVariance],
 *   with conv = x ⋆ filter, y = (conv − mean)/sqrt(variance + ε)·scale + offset (then max(·, 0)),
 *   and the moving variance updated with the unbiased batch variance (× n/(n−1)) as PyTorch does.
 *   Attr training false (inference): the moving statistics normalise (stats = them) and come back
 *   unchanged. Optional input residual [B,OH,OW,CO] is added after the normalisation, before the
 *   ReLU (a ResNet block's shortcut).
 * `LabConvBatchNormGrad`: inputs dy, x, filter, conv, y, stats, scale (optional); attrs strides,
 *   pad, dilations, epsilon, relu, training -> [dx, dFilter, dScale, dOffset], the gradient of y
 *   through the batch statistics (mean and variance are functions of x), or with training false
 *   through the fixed affine normalisation (per-sample gradients of a trained model). With attr
 *   residual true a fifth output dResidual, the gradient of the residual input.
 *
 * Attr `groups` G > 1 (both kernels): G independent models in one dispatch (fused trials). The
 * batch holds G equal parts, part g (rows g·B/G …) belonging to model g; filter is
 * [G,KH,KW,C,CO] (model g's filter at index g), scale, offset and the moving statistics are
 * [G·CO] (model g's channels at g·CO …), stats is [G,2,CO], dFilter [G,KH,KW,C,CO]. Part g is
 * computed exactly as a G = 1 call on its own slices would compute it (same arithmetic, same
 * order), so a fused trial's numbers are bit-identical to the trial alone.
 */
export const CONV_BATCH_NORM = 'LabConvBatchNorm';
export const CONV_BATCH_NORM_GRAD = 'LabConvBatchNormGrad';

interface ConvBatchNormAttrs {
  strides: number | [number, number];
  pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
  dilations?: number | [number, number];
  epsilon: number;
  momentum?: number;
  relu: boolean;
  /** false: normalise with the moving statistics (inference; they stay as they are). Default true. */
  training?: boolean;
  /** Gradient kernel: a residual input was added before the ReLU; output its gradient too. */
  residual?: boolean;
  /** Independent models in the batch (see above). Default 1. */
  groups?: number;
}

/** The groups attr, checked against the batch and the filter's leading dimension. */
function groupsOf(kernel: string, x: TensorInfo, filter: TensorInfo, a: ConvBatchNormAttrs): number {
  const groups = a.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`@lab/tfjs-train ${kernel}: attr groups must be a positive integer, got ${String(groups)}`);
  if (groups === 1) return 1;
  if (x.shape[0] % groups !== 0) throw new Error(`@lab/tfjs-train ${kernel}: input x has batch ${x.shape[0]}, not a multiple of groups ${groups}`);
  if (filter.shape.length !== 5 || filter.shape[0] !== groups) {
    throw new Error(`@lab/tfjs-train ${kernel}: input filter has shape [${filter.shape}], expected [${groups}, KH, KW, C, CO] for groups ${groups}`);
  }
  return groups;
}

/** The geometry of one group's convolution (the whole call's when groups is 1). */
function geometryOf(x: TensorInfo, filter: TensorInfo, a: ConvBatchNormAttrs, groups: number) {
  const xShape = [x.shape[0] / groups, ...x.shape.slice(1)];
  const filterShape = (groups === 1 ? filter.shape : filter.shape.slice(1)) as [number, number, number, number];
  return convGeometry(xShape, filterShape, toPair(a.strides), toPair(a.dilations), a.pad as 'same', undefined, false);
}

/** Group g's part of each view: the views are split into `groups` equal consecutive parts. */
function groupSlices<T extends Record<string, Float32Array | null>>(views: T, groups: number, g: number): T {
  if (groups === 1) return views;
  const part = {} as Record<string, Float32Array | null>;
  for (const [name, v] of Object.entries(views)) {
    const size = v == null ? 0 : v.length / groups;
    part[name] = v == null ? null : v.subarray(g * size, (g + 1) * size);
  }
  return part as T;
}

function checkFloat32(kernel: string, inputs: Record<string, TensorInfo | undefined>): void {
  for (const [name, t] of Object.entries(inputs)) {
    if (t != null && t.dtype !== 'float32') throw new Error(`@lab/tfjs-train ${kernel}: input ${name} must be float32, got ${t.dtype}`);
  }
}

/** Runs the native call; on failure frees the outputs (the engine never sees them) and names the kernel. */
function guarded(kernel: string, backend: KernelBackend, outputs: TensorInfo[], call: () => void): void {
  try {
    call();
  } catch (error) {
    for (const out of outputs) backend.disposeData(out.dataId);
    throw new Error(`@lab/tfjs-train ${kernel}: ${(error as Error).message.replace(/^@lab\/tfjs-train native \w+: /, '')}`);
  }
}

/** Throws, naming the kernel and input, unless `t` has exactly `shape`. */
function expectShape(kernel: string, name: string, t: TensorInfo | undefined, shape: number[]): void {
  if (t != null && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
    throw new Error(`@lab/tfjs-train ${kernel}: input ${name} has shape [${t.shape}], expected [${shape}]`);
  }
}

function makeForwardKernel(native: NativeKernels): KernelFunc {
  return (args) => {
    const backend = args.backend as KernelBackend;
    const inputs = args.inputs as Record<string, TensorInfo | undefined>;
    const { x, filter, scale, offset, movingMean, movingVariance, residual } = inputs;
    const a = args.attrs as unknown as ConvBatchNormAttrs;
    if (x == null || filter == null || movingMean == null || movingVariance == null) {
      throw new Error(`@lab/tfjs-train ${CONV_BATCH_NORM}: inputs x, filter, movingMean and movingVariance are required`);
    }
    checkFloat32(CONV_BATCH_NORM, inputs);
    const groups = groupsOf(CONV_BATCH_NORM, x, filter, a);
    const g = geometryOf(x, filter, a, groups);
    const channels = groups * g.outChannels;
    for (const [name, t] of Object.entries({ scale, offset, movingMean, movingVariance })) expectShape(CONV_BATCH_NORM, name, t, [channels]);
    const outShape = [groups * g.batch, g.outHeight, g.outWidth, g.outChannels];
    expectShape(CONV_BATCH_NORM, 'residual', residual, outShape);
    const [y, conv, stats, newMovingMean, newMovingVariance] = [
      allocFloat32(backend, outShape),
      allocFloat32(backend, outShape),
      allocFloat32(backend, groups === 1 ? [2, g.outChannels] : [groups, 2, g.outChannels]),
      allocFloat32(backend, [channels]),
      allocFloat32(backend, [channels]),
    ];
    // Views only after the last allocation: on wasm an allocation may grow and detach the heap.
    const view = (t: TensorInfo | undefined) => (t != null ? float32View(backend, t) : null);
    const views = {
      x: view(x)!,
      filter: view(filter)!,
      scale: view(scale),
      offset: view(offset),
      movingMean: view(movingMean)!,
      movingVariance: view(movingVariance)!,
      y: view(y)!,
      conv: view(conv)!,
      stats: view(stats)!,
      newMovingMean: view(newMovingMean)!,
      newMovingVariance: view(newMovingVariance)!,
      residual: view(residual),
    };
    const geometry = nativeGeometry(g);
    guarded(CONV_BATCH_NORM, backend, [y, conv, stats, newMovingMean, newMovingVariance], () => {
      for (let group = 0; group < groups; group++) {
        native.convBatchNormForward(groupSlices(views, groups, group), geometry, a.epsilon, a.momentum ?? 0.99, Boolean(a.relu), a.training !== false);
      }
    });
    return [y, conv, stats, newMovingMean, newMovingVariance];
  };
}

function makeGradKernel(native: NativeKernels): KernelFunc {
  return (args) => {
    const backend = args.backend as KernelBackend;
    const inputs = args.inputs as Record<string, TensorInfo | undefined>;
    const { dy, x, filter, conv, y, stats, scale } = inputs;
    const a = args.attrs as unknown as ConvBatchNormAttrs;
    if (dy == null || x == null || filter == null || conv == null || y == null || stats == null) {
      throw new Error(`@lab/tfjs-train ${CONV_BATCH_NORM_GRAD}: inputs dy, x, filter, conv, y and stats are required`);
    }
    checkFloat32(CONV_BATCH_NORM_GRAD, inputs);
    const groups = groupsOf(CONV_BATCH_NORM_GRAD, x, filter, a);
    const g = geometryOf(x, filter, a, groups);
    const channels = groups * g.outChannels;
    const outShape = [groups * g.batch, g.outHeight, g.outWidth, g.outChannels];
    for (const [name, t] of Object.entries({ dy, conv, y })) expectShape(CONV_BATCH_NORM_GRAD, name, t, outShape);
    expectShape(CONV_BATCH_NORM_GRAD, 'stats', stats, groups === 1 ? [2, g.outChannels] : [groups, 2, g.outChannels]);
    expectShape(CONV_BATCH_NORM_GRAD, 'scale', scale, [channels]);
    const outputs = [
      allocFloat32(backend, [...x.shape]),
      allocFloat32(backend, [...filter.shape]),
      allocFloat32(backend, [channels]),
      allocFloat32(backend, [channels]),
      ...(a.residual ? [allocFloat32(backend, outShape)] : []),
    ];
    const [dx, dFilter, dScale, dOffset, dResidual] = outputs;
    const view = (t: TensorInfo | undefined) => (t != null ? float32View(backend, t) : null);
    const views = {
      dy: view(dy)!,
      x: view(x)!,
      filter: view(filter)!,
      conv: view(conv)!,
      y: view(y)!,
      stats: view(stats)!,
      scale: view(scale),
      dx: view(dx),
      dFilter: view(dFilter)!,
      dScale: view(dScale)!,
      dOffset: view(dOffset)!,
      dResidual: view(dResidual),
    };
    const geometry = nativeGeometry(g);
    guarded(CONV_BATCH_NORM_GRAD, backend, outputs, () => {
      for (let group = 0; group < groups; group++) {
        native.convBatchNormBackward(groupSlices(views, groups, group), geometry, a.epsilon, Boolean(a.relu), a.training !== false);
      }
    });
    return outputs;
  };
}

/** The fused conv + batch-norm kernels on the native addon, for `backendName`. */
export function convBatchNormConfigs(backendName: string, native: NativeKernels): KernelConfig[] {
  return [
    { kernelName: CONV_BATCH_NORM, backendName, kernelFunc: makeForwardKernel(native) },
    { kernelName: CONV_BATCH_NORM_GRAD, backendName, kernelFunc: makeGradKernel(native) },
  ];
}
