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
 * batch holds G equal parts, part g (rows g·B/G …) belonging to model g, and model g's own
 * tensors come as inputs named with its index: filter0 … filter{G−1}, scale0 …, offset0 …,
 * movingMean0 …, movingVariance0 … (gradient kernel: filter0 …, scale0 …). Outputs: y, conv, stats
 * [G,2,CO], then newMovingMean0 … and newMovingVariance0 …; gradient: dx, then dFilter0 …,
 * dScale0 …, dOffset0 … (and dResidual). Separate tensors per model, not stacked ones, because
 * each model's weights are its own variables: stacking and unstacking them would cost more
 * dispatches than the grouping saves. Part g is computed exactly as a G = 1 call on its own
 * slices would compute it (same arithmetic, same order), so a fused trial's numbers are
 * bit-identical to the trial alone.
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

/** The groups attr (a positive integer dividing the batch). */
function groupsOf(kernel: string, x: TensorInfo, a: ConvBatchNormAttrs): number {
  const groups = a.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`@lab/tfjs-train ${kernel}: attr groups must be a positive integer, got ${String(groups)}`);
  if (x.shape[0] % groups !== 0) throw new Error(`@lab/tfjs-train ${kernel}: input x has batch ${x.shape[0]}, not a multiple of groups ${groups}`);
  return groups;
}

/** Model g's input `name`: `name` itself when there is one group, else `name` + g. */
function groupInputName(name: string, groups: number, g: number): string {
  return groups === 1 ? name : `${name}${g}`;
}

/** Each group's input `name` (see groupInputName); throws, naming it, where a required one is missing. */
function groupInputs(kernel: string, inputs: Record<string, TensorInfo | undefined>, name: string, groups: number, required: boolean): Array<TensorInfo | undefined> {
  return Array.from({ length: groups }, (_, g) => {
    const t = inputs[groupInputName(name, groups, g)];
    if (t == null && required) throw new Error(`@lab/tfjs-train ${kernel}: input ${groupInputName(name, groups, g)} is required${groups > 1 ? ` (groups ${groups}: inputs ${name}0 … ${name}${groups - 1})` : ''}`);
    return t;
  });
}

/** The geometry of one group's convolution (the whole call's when groups is 1). */
function geometryOf(x: TensorInfo, filter: TensorInfo, a: ConvBatchNormAttrs, groups: number) {
  const xShape = [x.shape[0] / groups, ...x.shape.slice(1)];
  return convGeometry(xShape, filter.shape as [number, number, number, number], toPair(a.strides), toPair(a.dilations), a.pad as 'same', undefined, false);
}

/** Group g's part of a batch-sized view (rows g·B/G …). */
function rowsOf(view: Float32Array | null, groups: number, g: number): Float32Array | null {
  if (view == null || groups === 1) return view;
  const size = view.length / groups;
  return view.subarray(g * size, (g + 1) * size);
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
    const { x, residual } = inputs;
    const a = args.attrs as unknown as ConvBatchNormAttrs;
    if (x == null) throw new Error(`@lab/tfjs-train ${CONV_BATCH_NORM}: inputs x, filter, movingMean and movingVariance are required`);
    checkFloat32(CONV_BATCH_NORM, inputs);
    const groups = groupsOf(CONV_BATCH_NORM, x, a);
    const per = (name: string, required: boolean) => groupInputs(CONV_BATCH_NORM, inputs, name, groups, required);
    const [filters, scales, offsets, means, variances] = [per('filter', true), per('scale', false), per('offset', false), per('movingMean', true), per('movingVariance', true)];
    const g = geometryOf(x, filters[0]!, a, groups);
    for (let group = 0; group < groups; group++) {
      const name = (n: string) => groupInputName(n, groups, group);
      expectShape(CONV_BATCH_NORM, name('filter'), filters[group], filters[0]!.shape);
      for (const [n, t] of [['scale', scales], ['offset', offsets], ['movingMean', means], ['movingVariance', variances]] as const) expectShape(CONV_BATCH_NORM, name(n), t[group], [g.outChannels]);
    }
    const outShape = [groups * g.batch, g.outHeight, g.outWidth, g.outChannels];
    expectShape(CONV_BATCH_NORM, 'residual', residual, outShape);
    const outputs = [
      allocFloat32(backend, outShape),
      allocFloat32(backend, outShape),
      allocFloat32(backend, groups === 1 ? [2, g.outChannels] : [groups, 2, g.outChannels]),
      ...Array.from({ length: 2 * groups }, () => allocFloat32(backend, [g.outChannels])),
    ];
    const [y, conv, stats] = outputs;
    // Views only after the last allocation: on wasm an allocation may grow and detach the heap.
    const view = (t: TensorInfo | undefined) => (t != null ? float32View(backend, t) : null);
    const [xView, yView, convView, statsView, residualView] = [view(x), view(y), view(conv), view(stats), view(residual)];
    const geometry = nativeGeometry(g);
    guarded(CONV_BATCH_NORM, backend, outputs, () => {
      for (let group = 0; group < groups; group++) {
        native.convBatchNormForward(
          {
            x: rowsOf(xView, groups, group)!,
            filter: view(filters[group])!,
            scale: view(scales[group]),
            offset: view(offsets[group]),
            movingMean: view(means[group])!,
            movingVariance: view(variances[group])!,
            y: rowsOf(yView, groups, group)!,
            conv: rowsOf(convView, groups, group)!,
            stats: rowsOf(statsView, groups, group)!,
            newMovingMean: view(outputs[3 + group])!,
            newMovingVariance: view(outputs[3 + groups + group])!,
            residual: rowsOf(residualView, groups, group),
          },
          geometry,
          a.epsilon,
          a.momentum ?? 0.99,
          Boolean(a.relu),
          a.training !== false,
        );
      }
    });
    return outputs;
  };
}

function makeGradKernel(native: NativeKernels): KernelFunc {
  return (args) => {
    const backend = args.backend as KernelBackend;
    const inputs = args.inputs as Record<string, TensorInfo | undefined>;
    const { dy, x, conv, y, stats } = inputs;
    const a = args.attrs as unknown as ConvBatchNormAttrs;
    if (dy == null || x == null || conv == null || y == null || stats == null) {
      throw new Error(`@lab/tfjs-train ${CONV_BATCH_NORM_GRAD}: inputs dy, x, filter, conv, y and stats are required`);
    }
    checkFloat32(CONV_BATCH_NORM_GRAD, inputs);
    const groups = groupsOf(CONV_BATCH_NORM_GRAD, x, a);
    const filters = groupInputs(CONV_BATCH_NORM_GRAD, inputs, 'filter', groups, true);
    const scales = groupInputs(CONV_BATCH_NORM_GRAD, inputs, 'scale', groups, false);
    const g = geometryOf(x, filters[0]!, a, groups);
    const outShape = [groups * g.batch, g.outHeight, g.outWidth, g.outChannels];
    for (const [name, t] of Object.entries({ dy, conv, y })) expectShape(CONV_BATCH_NORM_GRAD, name, t, outShape);
    expectShape(CONV_BATCH_NORM_GRAD, 'stats', stats, groups === 1 ? [2, g.outChannels] : [groups, 2, g.outChannels]);
    for (let group = 0; group < groups; group++) {
      expectShape(CONV_BATCH_NORM_GRAD, groupInputName('filter', groups, group), filters[group], filters[0]!.shape);
      expectShape(CONV_BATCH_NORM_GRAD, groupInputName('scale', groups, group), scales[group], [g.outChannels]);
    }
    const outputs = [
      allocFloat32(backend, [...x.shape]),
      ...Array.from({ length: groups }, () => allocFloat32(backend, [...filters[0]!.shape])),
      ...Array.from({ length: 2 * groups }, () => allocFloat32(backend, [g.outChannels])),
      ...(a.residual ? [allocFloat32(backend, outShape)] : []),
    ];
    const view = (t: TensorInfo | undefined) => (t != null ? float32View(backend, t) : null);
    const rows = [dy, x, conv, y, stats, outputs[0], a.residual ? outputs[outputs.length - 1] : undefined].map(view);
    const [dyView, xView, convView, yView, statsView, dxView, dResidualView] = rows;
    const geometry = nativeGeometry(g);
    guarded(CONV_BATCH_NORM_GRAD, backend, outputs, () => {
      for (let group = 0; group < groups; group++) {
        native.convBatchNormBackward(
          {
            dy: rowsOf(dyView, groups, group)!,
            x: rowsOf(xView, groups, group)!,
            filter: view(filters[group])!,
            conv: rowsOf(convView, groups, group)!,
            y: rowsOf(yView, groups, group)!,
            stats: rowsOf(statsView, groups, group)!,
            scale: view(scales[group]),
            dx: rowsOf(dxView, groups, group),
            dFilter: view(outputs[1 + group])!,
            dScale: view(outputs[1 + groups + group])!,
            dOffset: view(outputs[1 + 2 * groups + group])!,
            dResidual: rowsOf(dResidualView, groups, group),
          },
          geometry,
          a.epsilon,
          Boolean(a.relu),
          a.training !== false,
        );
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
