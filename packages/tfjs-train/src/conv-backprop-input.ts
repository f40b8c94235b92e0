import type { KernelBackend, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { allocFloat32, disposeAll, float32View, runBackendKernel, transpose2D } from './backend-access';
import { convGeometry, isChannelsFirst, toPair, validOutputRange, type ConvBackpropAttrs, type ConvGeometry } from './conv-geometry';

/**
 * Adjoint of im2col: scatter-adds a patch-gradient matrix (row (b, oh, ow), column (kh, kw, ci))
 * onto the NHWC image; each tap adds one contiguous run of `inChannels` floats.
 */
export function col2imNHWC(cols: Float32Array, dx: Float32Array, g: ConvGeometry): void {
  dx.fill(0);
  const C = g.inChannels;
  const rowLength = g.filterHeight * g.filterWidth * C;
  let src = 0;
  for (let b = 0; b < g.batch; b++) {
    const xBatch = b * g.inHeight * g.inWidth * C;
    for (let oh = 0; oh < g.outHeight; oh++) {
      const ih0 = oh * g.strideHeight - g.padTop;
      for (let ow = 0; ow < g.outWidth; ow++, src += rowLength) {
        const iw0 = ow * g.strideWidth - g.padLeft;
        let s = src;
        for (let kh = 0; kh < g.filterHeight; kh++) {
          const ih = ih0 + kh * g.dilationHeight;
          const rowInside = ih >= 0 && ih < g.inHeight;
          for (let kw = 0; kw < g.filterWidth; kw++, s += C) {
            const iw = iw0 + kw * g.dilationWidth;
            if (!rowInside || iw < 0 || iw >= g.inWidth) continue;
            const dst = xBatch + (ih * g.inWidth + iw) * C;
            for (let c = 0; c < C; c++) dx[dst + c] += cols[s + c];
          }
        }
      }
    }
  }
}

/**
 * Adjoint of the transposed patch matrix (row (kh, kw, ci), column (b, oh, ow)): scatter-adds it
 * onto a channel-major image dxT [ci, b, h, w], where every (ci, b, oh) row segment is a
 * contiguous run along ow (for stride 1), mirroring `im2colTransposedFromChannelMajor`.
 */
export function col2imTransposedToChannelMajor(colsT: Float32Array, dxT: Float32Array, g: ConvGeometry): void {
  const { batch, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g;
  const K = batch * OH * OW;
  dxT.fill(0);
  for (let kh = 0; kh < g.filterHeight; kh++) {
    for (let kw = 0; kw < g.filterWidth; kw++) {
      const iwOffset = kw * g.dilationWidth - g.padLeft;
      const [owStart, owEnd] = validOutputRange(iwOffset, g.strideWidth, OW, W);
      if (owStart >= owEnd) continue;
      for (let c = 0; c < C; c++) {
        let src = ((kh * g.filterWidth + kw) * C + c) * K;
        for (let b = 0; b < batch; b++) {
          const plane = (c * batch + b) * H * W;
          for (let oh = 0; oh < OH; oh++, src += OW) {
            const ih = oh * g.strideHeight - g.padTop + kh * g.dilationHeight;
            if (ih < 0 || ih >= H) continue;
            let dst = plane + ih * W + owStart * g.strideWidth + iwOffset;
            for (let ow = owStart; ow < owEnd; ow++, dst += g.strideWidth) dxT[dst] += colsT[src + ow];
          }
        }
      }
    }
  }
}

/**
 * W[kh, kw, ci, co] -> W'[kH-1-kh, kW-1-kw, co, ci] in one pass (the stock wasm Reverse kernel
 * is ~6x slower than this loop on a 3x3x512x512 filter).
 */
export function flipAndSwapFilter(w: Float32Array, out: Float32Array, kH: number, kW: number, ci: number, co: number): void {
  for (let kh = 0; kh < kH; kh++) {
    for (let kw = 0; kw < kW; kw++) {
      const src0 = (kh * kW + kw) * ci * co;
      const dst0 = ((kH - 1 - kh) * kW + (kW - 1 - kw)) * ci * co;
      for (let i = 0; i < ci; i++) {
        const src = src0 + i * co;
        for (let o = 0; o < co; o++) out[dst0 + o * ci + i] = w[src + o];
      }
    }
  }
}

/** Pads of the stride-1 "full" convolution that computes dx, or null when one would be negative. */
function stride1Pads(g: ConvGeometry): [number, number, number, number] | null {
  if (g.strideHeight !== 1 || g.strideWidth !== 1) return null;
  const spanH = (g.filterHeight - 1) * g.dilationHeight;
  const spanW = (g.filterWidth - 1) * g.dilationWidth;
  const top = spanH - g.padTop;
  const left = spanW - g.padLeft;
  const bottom = g.inHeight - g.outHeight - top + spanH;
  const right = g.inWidth - g.outWidth - left + spanW;
  return top >= 0 && left >= 0 && bottom >= 0 && right >= 0 ? [top, bottom, left, right] : null;
}

/** 'conv' applies only to stride 1 with non-negative "full" pads; elsewhere it falls back to 'matmul'. */
export type BackpropInputPath = 'conv' | 'matmul' | 'auto';

/**
 * dx of a channels-last convolution.
 *
 * Stride 1 on large maps: dx is the convolution of dy with the spatially flipped, in/out-swapped
 * filter, run on the backend's own Conv2D (XNNPACK on wasm, as fast as the forward pass).
 * Otherwise (strides, deep layers, unusual pads): W x dy^T on the backend's BatchMatMul (both
 * operands untransposed, the form wasm hands to XNNPACK), then the adjoint of im2col.
 */
export function conv2dBackpropInputNHWC(
  backend: KernelBackend,
  backendName: string,
  dy: TensorInfo,
  filter: TensorInfo,
  g: ConvGeometry,
  path: BackpropInputPath = 'auto',
): TensorInfo {
  const pads = stride1Pads(g);
  const patchElements = g.batch * g.outHeight * g.outWidth * g.filterHeight * g.filterWidth * g.inChannels;
  // Measured on wasm (ResNet-18 shapes): the conv form wins on large early feature maps; on deep
  // layers its per-call filter repacking dominates and the matmul form wins.
  const useConv = pads != null && (path === 'conv' || (path === 'auto' && patchElements > 1_000_000));
  if (useConv && pads != null) {
    const [kH, kW, ci, co] = filter.shape;
    const swapped = allocFloat32(backend, [kH, kW, co, ci]);
    flipAndSwapFilter(float32View(backend, filter), float32View(backend, swapped), kH, kW, ci, co);
    const dx = runBackendKernel(
      'Conv2D',
      backend,
      backendName,
      { x: dy, filter: swapped },
      {
        strides: [1, 1],
        dilations: [g.dilationHeight, g.dilationWidth],
        pad: [
          [0, 0],
          [pads[0], pads[1]],
          [pads[2], pads[3]],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dimRoundingMode: undefined,
      } as unknown as NamedAttrMap,
    );
    disposeAll(backend, [swapped]);
    return dx;
  }
  // The BatchMatMul operand b is repacked by XNNPACK on every call (~15 ns per float), so the
  // smaller of dy and W goes there; transposes run in JS (see transpose2D).
  const rows = g.batch * g.outHeight * g.outWidth;
  const cols = g.filterHeight * g.filterWidth * g.inChannels;
  const C = g.outChannels;
  if (cols <= rows) {
    // dx patches [b*oh*ow, kh*kw*ci] = dy [b*oh*ow, co] x W^T [co, kh*kw*ci]
    const wT = allocFloat32(backend, [1, C, cols]);
    transpose2D(float32View(backend, filter), float32View(backend, wT), cols, C);
    const dy3 = runBackendKernel('Reshape', backend, backendName, { x: dy }, { shape: [1, rows, C] });
    const patchGrads = runBackendKernel('BatchMatMul', backend, backendName, { a: dy3, b: wT }, { transposeA: false, transposeB: false });
    disposeAll(backend, [wT, dy3]);
    const dx = allocFloat32(backend, [g.batch, g.inHeight, g.inWidth, g.inChannels]);
    col2imNHWC(float32View(backend, patchGrads), float32View(backend, dx), g);
    disposeAll(backend, [patchGrads]);
    return dx;
  }
  // dx patches^T [kh*kw*ci, b*oh*ow] = W [kh*kw*ci, co] x dy^T [co, b*oh*ow]
  const dyT = allocFloat32(backend, [1, C, rows]);
  transpose2D(float32View(backend, dy), float32View(backend, dyT), rows, C);
  const w3 = runBackendKernel('Reshape', backend, backendName, { x: filter }, { shape: [1, cols, C] });
  const patchGradsT = runBackendKernel('BatchMatMul', backend, backendName, { a: w3, b: dyT }, { transposeA: false, transposeB: false });
  disposeAll(backend, [dyT, w3]);
  const pixels = g.batch * g.inHeight * g.inWidth;
  const dxT = allocFloat32(backend, [g.inChannels, pixels]);
  const dx = allocFloat32(backend, [g.batch, g.inHeight, g.inWidth, g.inChannels]);
  const dxTView = float32View(backend, dxT);
  col2imTransposedToChannelMajor(float32View(backend, patchGradsT), dxTView, g);
  transpose2D(dxTView, float32View(backend, dx), g.inChannels, pixels);
  disposeAll(backend, [patchGradsT, dxT]);
  return dx;
}

interface BackpropInputAttrs extends ConvBackpropAttrs {
  inputShape: [number, number, number, number];
}

/** Kernel function for `Conv2DBackpropInput`; accepts NCHW by transposing to NHWC and back. */
export function makeConv2DBackpropInputKernel(backendName: string, path: BackpropInputPath = 'auto'): KernelFunc {
  return ({ inputs, backend: backendAny, attrs }) => {
    const backend = backendAny as KernelBackend;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = attrs as unknown as BackpropInputAttrs;
    const channelsFirst = isChannelsFirst(a.dataFormat);
    const inputShapeNHWC = channelsFirst
      ? [a.inputShape[0], a.inputShape[2], a.inputShape[3], a.inputShape[1]]
      : [...a.inputShape];
    const dyNHWC = channelsFirst ? runBackendKernel('Transpose', backend, backendName, { x: dy }, { perm: [0, 2, 3, 1] }) : dy;
    const g = convGeometry(
      inputShapeNHWC,
      filter.shape as [number, number, number, number],
      toPair(a.strides),
      toPair(a.dilations),
      a.pad,
      a.dimRoundingMode,
      false,
    );
    if (dyNHWC.shape[1] !== g.outHeight || dyNHWC.shape[2] !== g.outWidth || dyNHWC.shape[3] !== g.outChannels) {
      throw new Error(
        `@lab/tfjs-train Conv2DBackpropInput: dy shape [${dyNHWC.shape}] does not match the convolution output ` +
          `[${g.batch},${g.outHeight},${g.outWidth},${g.outChannels}]`,
      );
    }
    const dx = conv2dBackpropInputNHWC(backend, backendName, dyNHWC, filter, g, path);
    if (!channelsFirst) return dx;
    const dxNCHW = runBackendKernel('Transpose', backend, backendName, { x: dx }, { perm: [0, 3, 1, 2] });
    disposeAll(backend, [dx, dyNHWC]);
    return dxNCHW;
  };
}

export function conv2DBackpropInputConfig(backendName: string): KernelConfig {
  return { kernelName: 'Conv2DBackpropInput', backendName, kernelFunc: makeConv2DBackpropInputKernel(backendName) };
}
