import type { KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

/**
 * `Identity` that shares the input's storage (one more reference) instead of copying it, as the
 * cpu backend's own does and as wasm's own `Reshape` does. The engine clones every tensor it saves
 * for a gradient through this kernel; wasm's stock one copies the data each time (~160 copies per
 * ResNet-18 training step). Sharing is safe because the one kernel that writes into an existing
 * tensor, the fused Adam over its moments, does so only where no other tensor holds it, and a
 * shared identity raises that count.
 * Strings go to the stock kernel.
 */
export function sharedIdentityConfig(backendName: string, fallback: KernelFunc): KernelConfig {
  return {
    kernelName: 'Identity',
    backendName,
    kernelFunc: (args) => {
      const x = (args.inputs as { x: TensorInfo }).x;
      if (x.dtype === 'string') return fallback(args);
      (args.backend as KernelBackend & { incRef(dataId: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    },
  };
}
