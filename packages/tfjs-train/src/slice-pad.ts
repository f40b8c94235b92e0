import { slice_util, util, type KernelBackend, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { allocFloat32, float32View } from './backend-access';

/**
 * dst[dstBegin + i] = src[srcBegin + i] for every index i of a box of shape `size` (row-major
 * N-D arrays). The trailing axes where the box spans the whole of both arrays merge into one
 * contiguous run, copied with TypedArray.set (a memcpy); only the leading axes are walked.
 * Written by hand because the wasm backend's Slice and PadV2 walk element by element: ~4 ms and
 * ~2 ms on the [4, 66, 66, 64] max-pool padding of a ResNet stem, against ~0.4 ms here.
 */
export function copyBox(
  src: Float32Array,
  srcShape: number[],
  srcBegin: number[],
  dst: Float32Array,
  dstShape: number[],
  dstBegin: number[],
  size: number[],
): void {
  const rank = size.length;
  if (size.some((d) => d === 0)) return;
  // Merge trailing axes that are whole in source, destination and box into one run.
  let runAxis = rank - 1;
  let run = size[rank - 1];
  while (runAxis > 0 && size[runAxis] === srcShape[runAxis] && size[runAxis] === dstShape[runAxis]) {
    runAxis--;
    run *= size[runAxis];
  }
  const srcStrides = util.computeStrides(srcShape).concat(1);
  const dstStrides = util.computeStrides(dstShape).concat(1);
  let srcBase = 0;
  let dstBase = 0;
  for (let a = 0; a < rank; a++) {
    srcBase += srcBegin[a] * srcStrides[a];
    dstBase += dstBegin[a] * dstStrides[a];
  }
  const index = new Array<number>(runAxis).fill(0);
  for (;;) {
    let s = srcBase;
    let d = dstBase;
    for (let a = 0; a < runAxis; a++) {
      s += index[a] * srcStrides[a];
      d += index[a] * dstStrides[a];
    }
    dst.set(src.subarray(s, s + run), d);
    let a = runAxis - 1;
    while (a >= 0 && ++index[a] === size[a]) index[a--] = 0;
    if (a < 0) return;
  }
}

/** `Slice` for float32 tensors by run copies; other dtypes go to `fallback` (the stock kernel). */
export function makeSliceKernel(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as KernelBackend;
    const x = (args.inputs as { x: TensorInfo }).x;
    if (x.dtype !== 'float32' || x.shape.length === 0) return fallback(args);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [begin_, size_] = slice_util.parseSliceParams(x as never, begin, size);
    slice_util.assertParamsValid(x as never, begin_, size_);
    const out = allocFloat32(backend, size_);
    copyBox(float32View(backend, x), x.shape, begin_, float32View(backend, out), size_, new Array(size_.length).fill(0), size_);
    return out;
  };
}

/** `PadV2` for float32 tensors: fill with the constant, then one run copy of the input. */
export function makePadKernel(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as KernelBackend;
    const x = (args.inputs as { x: TensorInfo }).x;
    const { paddings, constantValue } = args.attrs as unknown as { paddings: Array<[number, number]>; constantValue: number };
    if (x.dtype !== 'float32' || x.shape.length === 0 || paddings.length !== x.shape.length || paddings.some(([a, b]) => a < 0 || b < 0)) {
      return fallback(args);
    }
    const outShape = x.shape.map((d, i) => paddings[i][0] + d + paddings[i][1]);
    const out = allocFloat32(backend, outShape);
    const view = float32View(backend, out);
    view.fill(constantValue ?? 0);
    copyBox(float32View(backend, x), x.shape, new Array(x.shape.length).fill(0), view, outShape, paddings.map((p) => p[0]), x.shape);
    return out;
  };
}

export function sliceConfig(backendName: string, fallback: KernelFunc): KernelConfig {
  return { kernelName: 'Slice', backendName, kernelFunc: makeSliceKernel(fallback) };
}

export function padConfig(backendName: string, fallback: KernelFunc): KernelConfig {
  return { kernelName: 'PadV2', backendName, kernelFunc: makePadKernel(fallback) };
}
