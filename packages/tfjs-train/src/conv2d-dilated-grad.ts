import {
  concat,
  engine,
  gather,
  reshape,
  tensor1d,
  zeros,
  type GradConfig,
  type NamedAttrMap,
  type Tensor,
  type Tensor4D,
} from '@tensorflow/tfjs-core';

interface Conv2DAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | { top: number; bottom: number; left: number; right: number } | number[][];
  dataFormat: 'NHWC' | 'NCHW';
  dilations: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function toPair(value: number | [number, number] | undefined): [number, number] {
  if (value == null) return [1, 1];
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}

/**
 * Row indices that spread a filter flattened to [kh·kw, C] onto the grid of its dilated footprint,
 * [(kh−1)·dh+1, (kw−1)·dw+1]: tap (i, j) lands on (i·dh, j·dw); every other cell takes row kh·kw
 * (a row of zeros appended for them).
 */
function spreadIndices(kh: number, kw: number, dh: number, dw: number): { indices: number[]; taps: number[] } {
  const KH = (kh - 1) * dh + 1;
  const KW = (kw - 1) * dw + 1;
  const indices = new Array<number>(KH * KW).fill(kh * kw);
  const taps: number[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      indices[i * dh * KW + j * dw] = i * kw + j;
      taps.push(i * dh * KW + j * dw);
    }
  }
  return { indices, taps };
}

/**
 * Gradient of Conv2D that also covers dilation rates above 1, which tfjs-core's own gradient refuses
 * ("dilation rates greater than 1 are not yet supported in gradients"). A convolution with filter W
 * and dilation d is the undilated convolution with W spread onto its dilated footprint (zeros
 * between the taps): the same strides and padding give the same output, since padding is computed
 * from the footprint either way. So
 *   dx = Conv2DBackpropInput(dy, spread(W)),   dW = the taps of Conv2DBackpropFilter(x, dy) on the footprint,
 * both undilated, so they run on every backend's stock kernels (and on @lab/tfjs-train's). The
 * footprint costs more arithmetic than a dilation-aware kernel (25 taps instead of 9 for a 3×3
 * filter at dilation 2); it is not used at dilation 1, where this is tfjs-core's gradient (with the
 * forward's dimRoundingMode passed on, which core drops).
 *
 * Gradients are global in tfjs-core: `registerGradient(conv2dDilatedGradConfig)` replaces core's for
 * every backend (`getGradient('Conv2D')` first, to put it back).
 */
export const conv2dDilatedGradConfig: GradConfig = {
  kernelName: 'Conv2D',
  inputsToSave: ['x', 'filter'],
  gradFunc: (dyIn: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const dy = dyIn as Tensor4D;
    const [x, filter] = saved as [Tensor4D, Tensor4D];
    const a = attrs as unknown as Conv2DAttrs;
    const [dh, dw] = toPair(a.dilations);
    const [kh, kw, inC, outC] = filter.shape;
    const common = { strides: a.strides, pad: a.pad, dataFormat: a.dataFormat, ...(a.dimRoundingMode != null ? { dimRoundingMode: a.dimRoundingMode } : {}) };
    const backpropInput = (f: Tensor4D) =>
      engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, { ...common, inputShape: x.shape } as unknown as NamedAttrMap) as Tensor4D;
    const backpropFilter = (shape: [number, number, number, number]) =>
      engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...common, filterShape: shape } as unknown as NamedAttrMap) as Tensor4D;
    if (dh === 1 && dw === 1) return { x: () => backpropInput(filter), filter: () => backpropFilter(filter.shape) };

    const KH = (kh - 1) * dh + 1;
    const KW = (kw - 1) * dw + 1;
    const { indices, taps } = spreadIndices(kh, kw, dh, dw);
    return {
      x: () => {
        const rows = concat([reshape(filter, [kh * kw, inC * outC]), zeros([1, inC * outC])], 0);
        const spread = reshape(gather(rows, tensor1d(indices, 'int32')), [KH, KW, inC, outC]) as Tensor4D;
        return backpropInput(spread);
      },
      filter: () => {
        const full = reshape(backpropFilter([KH, KW, inC, outC]), [KH * KW, inC * outC]);
        return reshape(gather(full, tensor1d(taps, 'int32')), [kh, kw, inC, outC]);
      },
    };
  },
};
