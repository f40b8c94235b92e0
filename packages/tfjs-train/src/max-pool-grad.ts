import { backend_util, type KernelBackend, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { allocFloat32, float32View } from './backend-access';

/**
 * Gradient of 2-D max pooling (NHWC): each window's dy goes to the first position (row-major)
 * holding the window's maximum, with padding never counted, exactly as the cpu backend and
 * TensorFlow do. The stock wasm MaxPoolGrad loses the gradient of windows whose values are all
 * negative (it starts the running max at 0), which is why this kernel exists. Written as a
 * typed-array loop: no tfjs kernel scatters by argmax on the offline backends.
 */
export function maxPoolGradNHWC(xv: Float32Array, dyv: Float32Array, dxv: Float32Array, info: backend_util.Conv2DInfo): void {
  const C = info.inChannels;
  const { inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const rowStride = inWidth * C;
  dxv.fill(0);
  const best = new Float32Array(C);
  const at = new Int32Array(C);
  for (let b = 0; b < info.batchSize; b++) {
    const xBatch = b * inHeight * rowStride;
    for (let oh = 0; oh < outHeight; oh++) {
      const ih0 = oh * strideHeight - padTop;
      // Taps inside the image: padding never holds the maximum.
      let khStart = 0;
      while (khStart < info.filterHeight && ih0 + khStart * dilationHeight < 0) khStart++;
      let khEnd = info.filterHeight;
      while (khEnd > khStart && ih0 + (khEnd - 1) * dilationHeight >= inHeight) khEnd--;
      for (let ow = 0; ow < outWidth; ow++) {
        const iw0 = ow * strideWidth - padLeft;
        let kwStart = 0;
        while (kwStart < info.filterWidth && iw0 + kwStart * dilationWidth < 0) kwStart++;
        let kwEnd = info.filterWidth;
        while (kwEnd > kwStart && iw0 + (kwEnd - 1) * dilationWidth >= inWidth) kwEnd--;
        const dyBase = ((b * outHeight + oh) * outWidth + ow) * C;
        // Channels innermost: every tap reads C contiguous values (channel-strided reads over
        // the window were 3-4x slower on the ResNet stem's [4, 64, 64, 64] map).
        best.fill(Number.NEGATIVE_INFINITY);
        at.fill(-1);
        for (let kh = khStart; kh < khEnd; kh++) {
          const rowBase = xBatch + (ih0 + kh * dilationHeight) * rowStride;
          for (let kw = kwStart; kw < kwEnd; kw++) {
            const base = rowBase + (iw0 + kw * dilationWidth) * C;
            for (let c = 0; c < C; c++) {
              const v = xv[base + c];
              if (v > best[c]) {
                best[c] = v;
                at[c] = base + c;
              }
            }
          }
        }
        for (let c = 0; c < C; c++) if (at[c] >= 0) dxv[at[c]] += dyv[dyBase + c];
      }
    }
  }
}

interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export type MaxPoolGradFn = typeof maxPoolGradNHWC;

export function makeMaxPoolGradKernel(grad: MaxPoolGradFn = maxPoolGradNHWC): KernelFunc {
  return ({ inputs, backend: backendAny, attrs }) => {
    const backend = backendAny as KernelBackend;
    const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
    const a = attrs as unknown as MaxPoolGradAttrs;
    const info = backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      a.filterSize,
      a.strides,
      1,
      a.pad as 'valid',
      a.dimRoundingMode,
    );
    const dx = allocFloat32(backend, [...input.shape]);
    grad(float32View(backend, input), float32View(backend, dy), float32View(backend, dx), info);
    return dx;
  };
}

/** `grad` replaces the JS loop (e.g. with the native one); same arguments and results. */
export function maxPoolGradConfig(backendName: string, grad: MaxPoolGradFn = maxPoolGradNHWC): KernelConfig {
  return { kernelName: 'MaxPoolGrad', backendName, kernelFunc: makeMaxPoolGradKernel(grad) };
}
