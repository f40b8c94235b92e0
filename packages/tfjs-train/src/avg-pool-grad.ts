import { backend_util, type KernelBackend, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { allocFloat32, float32View } from './backend-access';

/**
 * Gradient of 2-D average pooling (NHWC), as the forward pass of TF.js 4.22 computes it: each
 * window's average is over the cells inside the image (padding is not counted: the cpu backend's
 * `pool` clips the window to the image and divides by the cells it kept, and wasm's XNNPACK
 * pooling does the same), so each window's dy goes, divided by that count, to each of those cells.
 * The stock AvgPoolGrad kernels of cpu and wasm divide by the whole window (filterHeight ×
 * filterWidth) instead, which is wrong at the border with `same` (or explicit) padding; that is why
 * this kernel exists. Dilation is 1, as the forward requires. A window entirely in padding (possible
 * with explicit padding) has no cells and passes nothing back (its forward value is 0/0).
 */
export function avgPoolGradNHWC(dyv: Float32Array, dxv: Float32Array, info: backend_util.Conv2DInfo): void {
  const C = info.inChannels;
  const { inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const rowStride = inWidth * C;
  dxv.fill(0);
  for (let b = 0; b < info.batchSize; b++) {
    const xBatch = b * inHeight * rowStride;
    for (let oh = 0; oh < outHeight; oh++) {
      const ih0 = oh * strideHeight - padTop;
      const ihStart = Math.max(0, ih0);
      const ihEnd = Math.min(inHeight, ih0 + filterHeight);
      for (let ow = 0; ow < outWidth; ow++) {
        const iw0 = ow * strideWidth - padLeft;
        const iwStart = Math.max(0, iw0);
        const iwEnd = Math.min(inWidth, iw0 + filterWidth);
        const count = (ihEnd - ihStart) * (iwEnd - iwStart);
        if (count <= 0) continue;
        const scale = 1 / count;
        const dyBase = ((b * outHeight + oh) * outWidth + ow) * C;
        // Channels innermost: each tap adds C contiguous values.
        for (let ih = ihStart; ih < ihEnd; ih++) {
          const rowBase = xBatch + ih * rowStride;
          for (let iw = iwStart; iw < iwEnd; iw++) {
            const base = rowBase + iw * C;
            for (let c = 0; c < C; c++) dxv[base + c] += dyv[dyBase + c] * scale;
          }
        }
      }
    }
  }
}

interface AvgPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * The pooling geometry of the forward pass that made `dy`. tfjs-core's AvgPool gradient does not
 * pass the forward's `dimRoundingMode` on to AvgPoolGrad, so with numeric padding the output size
 * is matched against dy's shape (floor, round or ceil) rather than assumed.
 */
function poolInfo(inputShape: number[], dyShape: number[], a: AvgPoolGradAttrs): backend_util.Conv2DInfo {
  const shape = inputShape as [number, number, number, number];
  const modes = [a.dimRoundingMode, undefined, 'floor', 'round', 'ceil'] as const;
  let first: backend_util.Conv2DInfo | undefined;
  for (const mode of modes) {
    let info: backend_util.Conv2DInfo;
    try {
      info = backend_util.computePool2DInfo(shape, a.filterSize, a.strides, 1, a.pad as 'valid', mode);
    } catch {
      continue;
    }
    first ??= info;
    if (info.outHeight === dyShape[1] && info.outWidth === dyShape[2]) return info;
  }
  throw new Error(
    `@lab/tfjs-train AvgPoolGrad: dy has shape [${dyShape.join(', ')}], but pooling [${inputShape.join(', ')}] ` +
      `(filter ${JSON.stringify(a.filterSize)}, strides ${JSON.stringify(a.strides)}, pad ${JSON.stringify(a.pad)}) gives ` +
      `${first ? `[${first.outShape.join(', ')}]` : 'no valid geometry'}`,
  );
}

export type AvgPoolGradFn = typeof avgPoolGradNHWC;

export function makeAvgPoolGradKernel(grad: AvgPoolGradFn = avgPoolGradNHWC): KernelFunc {
  return ({ inputs, backend: backendAny, attrs }) => {
    const backend = backendAny as KernelBackend;
    const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
    const info = poolInfo(input.shape, dy.shape, attrs as unknown as AvgPoolGradAttrs);
    const dx = allocFloat32(backend, [...input.shape]);
    // Views after the allocation: on wasm, allocating may grow (and detach) the heap.
    grad(float32View(backend, dy), float32View(backend, dx), info);
    return dx;
  };
}

/** AvgPoolGrad for `backendName` ('wasm' or 'cpu'); `grad` replaces the JS loop, same arguments and results. */
export function avgPoolGradConfig(backendName: string, grad: AvgPoolGradFn = avgPoolGradNHWC): KernelConfig {
  return { kernelName: 'AvgPoolGrad', backendName, kernelFunc: makeAvgPoolGradKernel(grad) };
}
