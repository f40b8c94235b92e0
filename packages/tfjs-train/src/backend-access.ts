import {
  getKernel,
  util,
  type DataType,
  type KernelBackend,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

/**
 * The parts of the wasm backend (`BackendWasm`) this package touches. Declared structurally so
 * the library never imports a backend package.
 */
interface WasmLikeBackend extends KernelBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** The parts of the cpu backend (`MathBackendCPU`) this package touches. */
interface CpuLikeBackend extends KernelBackend {
  data: { get(dataId: object): { values: ArrayLike<number> } };
  makeTensorInfo(shape: number[], dtype: DataType, values?: Float32Array): TensorInfo;
}

export function isWasmLike(backend: KernelBackend): backend is WasmLikeBackend {
  return typeof (backend as Partial<WasmLikeBackend>).typedArrayFromHeap === 'function';
}

/**
 * Runs another kernel of the same backend directly (no engine bookkeeping, no tape), the way a
 * backend's own kernels compose each other. The caller owns the returned TensorInfo and must
 * `backend.disposeData` it unless it is handed back to the engine as a kernel output.
 */
export function runBackendKernel(
  kernelName: string,
  backend: KernelBackend,
  backendName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const kernel = getKernel(kernelName, backendName);
  if (kernel == null) {
    throw new Error(`@lab/tfjs-train: kernel '${kernelName}' is not registered for backend '${backendName}'`);
  }
  const out = kernel.kernelFunc({ inputs, backend, attrs });
  return Array.isArray(out) ? out[0] : out;
}

/** Frees intermediate results made with `runBackendKernel`. */
export function disposeAll(backend: KernelBackend, infos: Array<TensorInfo | null | undefined>): void {
  for (const info of infos) if (info != null) backend.disposeData(info.dataId);
}

/**
 * Float32 view of a tensor's storage without a copy where the backend allows it (wasm heap,
 * cpu values array). For the wasm backend the view is only valid until the next allocation,
 * which may grow (and detach) the heap: take views after all outputs are allocated.
 */
export function float32View(backend: KernelBackend, info: TensorInfo): Float32Array {
  if (info.dtype !== 'float32') {
    throw new Error(`@lab/tfjs-train: expected a float32 tensor, got ${info.dtype}`);
  }
  if (isWasmLike(backend)) return backend.typedArrayFromHeap(info) as Float32Array;
  const cpu = backend as CpuLikeBackend;
  if (cpu.data != null && typeof cpu.data.get === 'function') {
    const values = cpu.data.get(info.dataId).values;
    if (values instanceof Float32Array) return values;
  }
  return backend.readSync(info.dataId) as Float32Array;
}

/**
 * Allocates a float32 output of the backend. The storage is NOT zeroed on wasm (malloc), so
 * callers fill every element. Call `float32View` after all allocations to write into it.
 */
export function allocFloat32(backend: KernelBackend, shape: number[]): TensorInfo {
  if (isWasmLike(backend)) return backend.makeOutput(shape, 'float32');
  const cpu = backend as CpuLikeBackend;
  if (typeof cpu.makeTensorInfo === 'function') {
    return cpu.makeTensorInfo(shape, 'float32', new Float32Array(util.sizeFromShape(shape)));
  }
  throw new Error('@lab/tfjs-train: backend has neither makeOutput nor makeTensorInfo');
}

/**
 * dst[c, r] = src[r, c] for a row-major rows x cols matrix. Hand-written because the wasm
 * backend's Transpose kernel runs at ~13 ns per element on large tensors; 32x32 tiles with
 * contiguous writes run 5-8x faster in plain JS, including power-of-two strides.
 */
export function transpose2D(src: Float32Array, dst: Float32Array, rows: number, cols: number): void {
  const T = 32;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let c = c0; c < c1; c++) {
        let d = c * rows + r0;
        for (let r = r0; r < r1; r++, d++) dst[d] = src[r * cols + c];
      }
    }
  }
}
