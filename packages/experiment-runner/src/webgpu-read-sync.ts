/**
 * Synchronous tensor reads (`dataSync`, `arraySync`) for tfjs-backend-webgpu in Node.
 *
 * The backend's `readSync` copies through `OffscreenCanvas`, which Node lacks, so every
 * `dataSync()` would throw; the lab's libraries read metrics, snapshots and GHM state that way.
 * Dawn's Node bindings complete `mapAsync` only when Dawn processes events, which they schedule
 * with `globalThis.setImmediate` (looked up at each call). The replacement here copies the tensor
 * to a staging buffer, starts `mapAsync`, and runs the ticks Dawn scheduled (and only those) until
 * the buffer is mapped: a blocking read, as on the cpu backend.
 */

type Scheduled = { run: () => void; done: boolean };

const pendingDawnTicks = new Set<Scheduled>();
let installed = false;

// Dawn's ticks are native, anonymous functions; application callbacks pass through untouched.
function isNativeAnonymous(fn: unknown): boolean {
  return typeof fn === 'function' && fn.name === '' && Function.prototype.toString.call(fn) === 'function () { [native code] }';
}

/** Wraps `setImmediate` so the ticks Dawn schedules can also be run early, from a blocking read. Idempotent. */
export function trackDawnTicks(): void {
  if (installed) return;
  installed = true;
  const real = globalThis.setImmediate;
  const wrapped = function setImmediate(fn: (...args: unknown[]) => void, ...args: unknown[]) {
    if (!isNativeAnonymous(fn)) return real(fn, ...args);
    const entry: Scheduled = { run: () => fn(...args), done: false };
    pendingDawnTicks.add(entry);
    return real(() => runTick(entry));
  };
  // Keep util.promisify(setImmediate) and the rest of its properties working.
  for (const key of Reflect.ownKeys(real)) {
    if (!(key in wrapped)) Object.defineProperty(wrapped, key, Object.getOwnPropertyDescriptor(real, key)!);
  }
  globalThis.setImmediate = wrapped as typeof globalThis.setImmediate;
}

function runTick(entry: Scheduled): void {
  if (entry.done) return;
  entry.done = true;
  pendingDawnTicks.delete(entry);
  entry.run();
}

interface MappableBuffer {
  size: number;
  mapState: string;
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Maps `buffer` for reading, blocking until Dawn reports it mapped (or `timeoutMs` passes). */
export function mapReadSync(buffer: MappableBuffer, timeoutMs = 120_000): void {
  let failure: unknown;
  buffer.mapAsync((globalThis as unknown as { GPUMapMode: { READ: number } }).GPUMapMode.READ).catch((error: unknown) => {
    failure = error ?? new Error('mapAsync failed');
  });
  const deadline = Date.now() + timeoutMs;
  while (buffer.mapState !== 'mapped') {
    if (failure !== undefined) throw failure;
    if (pendingDawnTicks.size === 0) {
      // Nothing scheduled: the GPU is still working, or Dawn was loaded before the ticks were tracked.
      if (Date.now() > deadline) throw new Error(`webgpu: a synchronous read waited ${timeoutMs / 1000} s for the GPU; Dawn's event ticks were not tracked (load Dawn through selectBackend)`);
      Atomics.wait(sleeper, 0, 0, 0.05);
      continue;
    }
    for (const entry of [...pendingDawnTicks]) runTick(entry);
  }
}

/** The parts of tfjs-backend-webgpu's WebGPUBackend that a read uses. */
interface WebGpuBackendLike {
  tensorMap: { get(dataId: object): TensorDataLike | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number): MappableBuffer; releaseBuffer(buffer: MappableBuffer): void };
  commandEncoder: { copyBufferToBuffer(src: unknown, srcOffset: number, dst: unknown, dstOffset: number, size: number): void };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  convertAndCacheOnCPU(dataId: object, values: unknown): unknown;
}
interface TensorDataLike {
  values: unknown;
  dtype: string;
  resource: MappableBuffer;
  complexTensorInfos?: { real: { dataId: object }; imag: { dataId: object } };
}
export interface TfUtil {
  util: { convertBackendValuesAndArrayBuffer(data: ArrayBuffer, dtype: string): unknown };
  backend_util: { mergeRealAndImagArrays(real: Float32Array, imag: Float32Array): Float32Array };
}

function readSync(this: WebGpuBackendLike, tf: TfUtil, dataId: object): unknown {
  const data = this.tensorMap.get(dataId);
  if (data == null) throw new Error(`webgpu readSync: tensor ${JSON.stringify(dataId)} is not registered on this backend`);
  if (data.values != null || data.dtype === 'string') return data.values;
  if (data.dtype === 'complex64') {
    const real = readSync.call(this, tf, data.complexTensorInfos!.real.dataId) as Float32Array;
    const imag = readSync.call(this, tf, data.complexTensorInfos!.imag.dataId) as Float32Array;
    return this.convertAndCacheOnCPU(dataId, tf.backend_util.mergeRealAndImagArrays(real, imag));
  }
  const usage = globalThis as unknown as { GPUBufferUsage: { COPY_DST: number; MAP_READ: number } };
  const staging = this.bufferManager.acquireBuffer(data.resource.size, usage.GPUBufferUsage.COPY_DST | usage.GPUBufferUsage.MAP_READ);
  this.ensureCommandEncoderReady();
  this.endComputePassEncoder();
  this.commandEncoder.copyBufferToBuffer(data.resource, 0, staging, 0, data.resource.size);
  this.submitQueue();
  mapReadSync(staging);
  const bytes = staging.getMappedRange().slice(0);
  staging.unmap();
  this.bufferManager.releaseBuffer(staging);
  return this.convertAndCacheOnCPU(dataId, tf.util.convertBackendValuesAndArrayBuffer(bytes, data.dtype));
}

/**
 * Gives WebGPUBackend a `readSync` that works without OffscreenCanvas (Node). Where
 * OffscreenCanvas exists (a browser, Deno) the backend's own is kept.
 */
export function installNodeReadSync(Backend: { prototype: object }, tf: TfUtil): void {
  if (typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas !== 'undefined') return;
  Object.defineProperty(Backend.prototype, 'readSync', {
    value: function (this: WebGpuBackendLike, dataId: object) {
      return readSync.call(this, tf, dataId);
    },
    configurable: true,
    writable: true,
  });
}
