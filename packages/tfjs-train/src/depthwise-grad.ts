import type { KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { allocFloat32, float32View } from './backend-access';
import { convGeometry, toPair, type ConvGeometry } from './conv-geometry';

/*
 * Depthwise convolution gradients as typed-array loops. Depthwise layers are cheap (no channel
 * mixing), the wasm backend has neither gradient kernel, and no XNNPACK-backed kernel of the
 * backend expresses a per-channel correlation with a per-channel filter, so plain loops over
 * contiguous channel runs are the simple correct choice here.
 * Filter layout [kh, kw, inChannels, multiplier]; output channel = c * multiplier + m.
 */

/**
 * Calls `visit(xBase, wBase, dyBase)` for every (output position, filter tap) pair whose input
 * position lies inside the image: the offsets of the tap's channel run in x, the filter and dy.
 * Both gradients are the same walk with a different body.
 */
function forEachDepthwiseTap(g: ConvGeometry, multiplier: number, visit: (xBase: number, wBase: number, dyBase: number) => void): void {
  const C = g.inChannels;
  const CM = C * multiplier;
  for (let b = 0; b < g.batch; b++) {
    const xBatch = b * g.inHeight * g.inWidth * C;
    for (let oh = 0; oh < g.outHeight; oh++) {
      const ih0 = oh * g.strideHeight - g.padTop;
      for (let ow = 0; ow < g.outWidth; ow++) {
        const iw0 = ow * g.strideWidth - g.padLeft;
        const dyBase = ((b * g.outHeight + oh) * g.outWidth + ow) * CM;
        for (let kh = 0; kh < g.filterHeight; kh++) {
          const ih = ih0 + kh * g.dilationHeight;
          if (ih < 0 || ih >= g.inHeight) continue;
          for (let kw = 0; kw < g.filterWidth; kw++) {
            const iw = iw0 + kw * g.dilationWidth;
            if (iw < 0 || iw >= g.inWidth) continue;
            visit(xBatch + (ih * g.inWidth + iw) * C, (kh * g.filterWidth + kw) * CM, dyBase);
          }
        }
      }
    }
  }
}

export function depthwiseBackpropFilterNHWC(
  xv: Float32Array,
  dyv: Float32Array,
  dw: Float32Array,
  g: ConvGeometry,
  multiplier: number,
): void {
  const C = g.inChannels;
  // float64 accumulation: one filter tap sums batch*outHeight*outWidth products.
  const acc = new Float64Array(dw.length);
  forEachDepthwiseTap(g, multiplier, (xBase, wBase, dyBase) => {
    for (let c = 0; c < C; c++) {
      const xval = xv[xBase + c];
      const o = c * multiplier;
      for (let m = 0; m < multiplier; m++) acc[wBase + o + m] += xval * dyv[dyBase + o + m];
    }
  });
  dw.set(acc);
}

export function depthwiseBackpropInputNHWC(
  dyv: Float32Array,
  wv: Float32Array,
  dx: Float32Array,
  g: ConvGeometry,
  multiplier: number,
): void {
  const C = g.inChannels;
  dx.fill(0);
  forEachDepthwiseTap(g, multiplier, (xBase, wBase, dyBase) => {
    for (let c = 0; c < C; c++) {
      const o = c * multiplier;
      let s = 0;
      for (let m = 0; m < multiplier; m++) s += wv[wBase + o + m] * dyv[dyBase + o + m];
      dx[xBase + c] += s;
    }
  });
}

interface DepthwiseGradAttrs {
  strides: number | [number, number];
  dilations?: number | [number, number];
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape?: [number, number, number, number];
  inputShape?: [number, number, number, number];
}

function checkDy(kernel: string, dy: TensorInfo, g: ConvGeometry): void {
  if (dy.shape[1] !== g.outHeight || dy.shape[2] !== g.outWidth || dy.shape[3] !== g.outChannels) {
    throw new Error(
      `@lab/tfjs-train ${kernel}: dy shape [${dy.shape}] does not match the depthwise output ` +
        `[${g.batch},${g.outHeight},${g.outWidth},${g.outChannels}]`,
    );
  }
}

export function makeDepthwiseBackpropFilterKernel(): KernelFunc {
  return ({ inputs, backend: backendAny, attrs }) => {
    const backend = backendAny as KernelBackend;
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const a = attrs as unknown as DepthwiseGradAttrs & { filterShape: [number, number, number, number] };
    const g = convGeometry(x.shape, a.filterShape, toPair(a.strides), toPair(a.dilations), a.pad, a.dimRoundingMode, true);
    checkDy('DepthwiseConv2dNativeBackpropFilter', dy, g);
    const dw = allocFloat32(backend, [...a.filterShape]);
    depthwiseBackpropFilterNHWC(float32View(backend, x), float32View(backend, dy), float32View(backend, dw), g, a.filterShape[3]);
    return dw;
  };
}

export function makeDepthwiseBackpropInputKernel(): KernelFunc {
  return ({ inputs, backend: backendAny, attrs }) => {
    const backend = backendAny as KernelBackend;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = attrs as unknown as DepthwiseGradAttrs & { inputShape: [number, number, number, number] };
    const filterShape = filter.shape as [number, number, number, number];
    const g = convGeometry([...a.inputShape], filterShape, toPair(a.strides), toPair(a.dilations), a.pad, a.dimRoundingMode, true);
    checkDy('DepthwiseConv2dNativeBackpropInput', dy, g);
    const dx = allocFloat32(backend, [...a.inputShape]);
    depthwiseBackpropInputNHWC(float32View(backend, dy), float32View(backend, filter), float32View(backend, dx), g, filterShape[3]);
    return dx;
  };
}

export function depthwiseConv2dNativeBackpropFilterConfig(backendName: string): KernelConfig {
  return { kernelName: 'DepthwiseConv2dNativeBackpropFilter', backendName, kernelFunc: makeDepthwiseBackpropFilterKernel() };
}

export function depthwiseConv2dNativeBackpropInputConfig(backendName: string): KernelConfig {
  return { kernelName: 'DepthwiseConv2dNativeBackpropInput', backendName, kernelFunc: makeDepthwiseBackpropInputKernel() };
}
