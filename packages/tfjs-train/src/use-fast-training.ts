import {
  findBackendFactory,
  getGradient,
  getKernel,
  registerGradient,
  registerKernel,
  unregisterKernel,
  type GradConfig,
  type KernelConfig,
} from '@tensorflow/tfjs-core';
import { batchNormGradSumsConfig, fusedBatchNormGradConfig } from './batch-norm-grad';
import { conv2DBackpropFilterConfig, type BackpropFilterStrategy } from './conv-backprop-filter';
import { conv2DBackpropInputConfig } from './conv-backprop-input';
import { depthwiseConv2dNativeBackpropFilterConfig, depthwiseConv2dNativeBackpropInputConfig } from './depthwise-grad';
import { maxPoolGradConfig } from './max-pool-grad';

export type FastTrainingBackend = 'wasm' | 'cpu';

export interface FastTrainingOptions {
  /** How Conv2DBackpropFilter computes (default 'auto': per-layer choice measured on wasm). */
  backpropFilterStrategy?: BackpropFilterStrategy;
  /** Register the faster FusedBatchNorm gradient (default true). Gradients are global in tfjs-core. */
  batchNormGradient?: boolean;
}

export interface FastTrainingInfo {
  backend: FastTrainingBackend;
  /** Kernel names this package registered for the backend. */
  kernels: string[];
  /** Of those, the ones that replaced a stock kernel of the backend (the rest were missing). */
  replacedStock: string[];
  /** Gradient configs this package registered (global: apply to every backend). */
  gradients: string[];
  backpropFilterStrategy: BackpropFilterStrategy;
}

/** Kernel configs this package provides for `backendName`, in the set `useFastTraining` installs. */
export function fastTrainingKernelConfigs(
  backendName: FastTrainingBackend,
  strategy: BackpropFilterStrategy = 'auto',
): KernelConfig[] {
  if (backendName === 'wasm') {
    return [
      conv2DBackpropFilterConfig('wasm', strategy),
      conv2DBackpropInputConfig('wasm'),
      depthwiseConv2dNativeBackpropFilterConfig('wasm'),
      depthwiseConv2dNativeBackpropInputConfig('wasm'),
      maxPoolGradConfig('wasm'),
      batchNormGradSumsConfig('wasm'),
    ];
  }
  // The cpu backend's own Conv2DBackpropInput, depthwise gradients and MaxPoolGrad are correct
  // and (measured) not slower than ours there; only its filter gradient is ~80x its forward pass.
  return [conv2DBackpropFilterConfig('cpu', strategy), batchNormGradSumsConfig('cpu')];
}

interface Installed {
  info: FastTrainingInfo;
  stock: Map<string, KernelConfig>;
}

const installedByBackend = new Map<FastTrainingBackend, Installed>();
let stockBatchNormGradient: GradConfig | undefined;
let batchNormGradientInstalled = false;

/**
 * Registers this package's training kernels for `backendName` (whose package the caller has
 * already imported, so the backend is registered; typically after `await tf.setBackend('wasm')`), replacing stock
 * kernels where ours are correct where theirs are not, or faster. Idempotent: a second call with
 * the same backend returns the first call's info (options of later calls are ignored).
 */
export async function useFastTraining(
  backendName: FastTrainingBackend,
  options: FastTrainingOptions = {},
): Promise<FastTrainingInfo> {
  if (backendName !== 'wasm' && backendName !== 'cpu') {
    throw new Error(`@lab/tfjs-train useFastTraining: backend must be 'wasm' or 'cpu', got '${String(backendName)}'`);
  }
  const existing = installedByBackend.get(backendName);
  if (existing != null) return existing.info;
  // Only registration is checked (without initialising the backend as a side effect): kernels
  // receive the backend instance from the engine when they run.
  if (findBackendFactory(backendName) == null) {
    throw new Error(
      `@lab/tfjs-train useFastTraining: backend '${backendName}' is not registered; import ` +
        `@tensorflow/tfjs-backend-${backendName} (and await tf.setBackend('${backendName}')) first`,
    );
  }
  const strategy = options.backpropFilterStrategy ?? 'auto';
  const stock = new Map<string, KernelConfig>();
  const kernels: string[] = [];
  const replacedStock: string[] = [];
  for (const config of fastTrainingKernelConfigs(backendName, strategy)) {
    const previous = getKernel(config.kernelName, backendName);
    if (previous != null) {
      stock.set(config.kernelName, previous);
      replacedStock.push(config.kernelName);
      unregisterKernel(config.kernelName, backendName);
    }
    registerKernel(config);
    kernels.push(config.kernelName);
  }
  const gradients: string[] = [];
  if (options.batchNormGradient ?? true) {
    if (!batchNormGradientInstalled) {
      stockBatchNormGradient = getGradient('FusedBatchNorm');
      registerGradient(fusedBatchNormGradConfig);
      batchNormGradientInstalled = true;
    }
    gradients.push('FusedBatchNorm');
  }
  const info: FastTrainingInfo = { backend: backendName, kernels, replacedStock, gradients, backpropFilterStrategy: strategy };
  installedByBackend.set(backendName, { info, stock });
  return info;
}

/**
 * Undoes `useFastTraining(backendName)`: unregisters our kernels and re-registers the stock ones
 * it replaced; the batch-norm gradient goes back to the stock one once no backend uses ours.
 * Meant for A/B benchmarks and tests.
 */
export function removeFastTraining(backendName: FastTrainingBackend): void {
  const installed = installedByBackend.get(backendName);
  if (installed == null) return;
  for (const name of installed.info.kernels) {
    unregisterKernel(name, backendName);
    const stockConfig = installed.stock.get(name);
    if (stockConfig != null) registerKernel(stockConfig);
  }
  installedByBackend.delete(backendName);
  const batchNormStillUsed = [...installedByBackend.values()].some((i) => i.info.gradients.includes('FusedBatchNorm'));
  if (batchNormGradientInstalled && !batchNormStillUsed) {
    if (stockBatchNormGradient != null) registerGradient(stockBatchNormGradient);
    batchNormGradientInstalled = false;
  }
}

/** Backward kernels common CNN training needs; used by `listMissingTrainingKernels`. */
export const TRAINING_KERNEL_NAMES: readonly string[] = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'MaxPoolGrad',
  'AvgPoolGrad',
  'Conv3DBackpropFilterV2',
  'Conv3DBackpropInputV2',
  'MaxPool3DGrad',
  'AvgPool3DGrad',
  'EluGrad',
  'LRNGrad',
  'ResizeBilinearGrad',
  'ResizeNearestNeighborGrad',
  'Dilation2DBackpropFilter',
  'Dilation2DBackpropInput',
];

/** Which of `TRAINING_KERNEL_NAMES` have no kernel registered for `backendName`. */
export function listMissingTrainingKernels(backendName: string): string[] {
  return TRAINING_KERNEL_NAMES.filter((name) => getKernel(name, backendName) == null);
}
