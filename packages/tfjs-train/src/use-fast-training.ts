import {
  findBackendFactory,
  getGradient,
  getKernel,
  registerGradient,
  registerKernel,
  unregisterKernel,
  type GradConfig,
  type KernelConfig,
  type KernelFunc,
} from '@tensorflow/tfjs-core';
import { batchNormGradSumsConfig, fusedBatchNormGradConfig } from './batch-norm-grad';
import { batchNormStatsConfig, batchNormTrainingGradConfig } from './batch-norm-training';
import { conv2DBackpropFilterConfig, type BackpropFilterStrategy } from './conv-backprop-filter';
import { conv2DBackpropInputConfig } from './conv-backprop-input';
import { depthwiseConv2dNativeBackpropFilterConfig, depthwiseConv2dNativeBackpropInputConfig } from './depthwise-grad';
import { fusedAdamConfig, fusedAdamMultiConfig } from './fused-adam';
import { sharedIdentityConfig } from './shared-identity';
import { avgPoolGradConfig } from './avg-pool-grad';
import { conv2dDilatedGradConfig } from './conv2d-dilated-grad';
import { maxPoolGradConfig } from './max-pool-grad';
import { padConfig, sliceConfig } from './slice-pad';
import { defaultNativeThreads, loadNativeKernels, type NativeBuildOptions, type NativeGemm, type NativeKernels } from './native-addon';
import { makeNativeBatchNormKernel, nativeConvKernelConfigs, nativeMaxPoolGrad } from './native-conv';
import { convBatchNormConfigs } from './conv-batch-norm';

export type FastTrainingBackend = 'wasm' | 'cpu';

export interface FastTrainingOptions {
  /** How Conv2DBackpropFilter computes (default 'auto': per-layer choice measured on wasm). */
  backpropFilterStrategy?: BackpropFilterStrategy;
  /** Register the faster FusedBatchNorm gradient (default true). Gradients are global in tfjs-core. */
  batchNormGradient?: boolean;
  /**
   * Native convolution kernels compiled on this machine (see README): 'auto' (default) uses them
   * when they build and falls back silently, 'off' never tries, 'require' throws with the reason
   * when they are unavailable. $LAB_TFJS_TRAIN_NATIVE=off turns 'auto' into 'off'.
   */
  native?: 'auto' | 'off' | 'require';
  /** Threads of the native kernels (default $OMP_NUM_THREADS, else every core). */
  threads?: number;
  /** Where and how the native kernels are built. */
  nativeBuild?: NativeBuildOptions;
}

/** The native path in use, or why there is none. */
export type NativeTrainingInfo =
  | {
      enabled: true;
      gemm: NativeGemm;
      library: string;
      threads: number;
      /** Vector instructions the kernels were compiled for ('avx512', 'avx2', 'neon', ...). */
      isa: string;
      /** The built-in GEMM's register tiles. */
      tiles: string;
      path: string;
      builtNow: boolean;
      /**
       * Where the built-in GEMM runs because no library was found: which system package would
       * make wide layers faster (one line, for the caller to print once). Absent otherwise.
       */
      suggestion?: string;
    }
  | { enabled: false; reason: string };

export interface FastTrainingInfo {
  backend: FastTrainingBackend;
  /** Kernel names this package registered for the backend. */
  kernels: string[];
  /** Of those, the ones that replaced a stock kernel of the backend (the rest were missing). */
  replacedStock: string[];
  /** Gradient configs this package registered (global: apply to every backend). */
  gradients: string[];
  backpropFilterStrategy: BackpropFilterStrategy;
  native: NativeTrainingInfo;
}

/**
 * The backend's own kernel for `name`, remembered the first time it is looked up (always before
 * ours replace it), so replacements can hand it the cases they do not cover.
 */
const stockKernelFuncs = new Map<string, KernelFunc>();
function stockKernelFunc(name: string, backendName: string): KernelFunc {
  const key = `${backendName}/${name}`;
  let kernelFunc = stockKernelFuncs.get(key);
  if (kernelFunc == null) {
    const stock = getKernel(name, backendName);
    if (stock == null) throw new Error(`@lab/tfjs-train: backend '${backendName}' has no ${name} kernel to fall back to`);
    kernelFunc = stock.kernelFunc;
    stockKernelFuncs.set(key, kernelFunc);
  }
  return kernelFunc;
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
      avgPoolGradConfig('wasm'),
      batchNormGradSumsConfig('wasm'),
      batchNormStatsConfig('wasm'),
      batchNormTrainingGradConfig('wasm'),
      fusedAdamConfig('wasm'),
      fusedAdamMultiConfig('wasm'),
      sliceConfig('wasm', stockKernelFunc('Slice', 'wasm')),
      padConfig('wasm', stockKernelFunc('PadV2', 'wasm')),
      sharedIdentityConfig('wasm', stockKernelFunc('Identity', 'wasm')),
    ];
  }
  // The cpu backend's own Conv2DBackpropInput, depthwise gradients and MaxPoolGrad are correct
  // and (measured) not slower than ours there; only its filter gradient is ~80x its forward pass.
  // Its AvgPoolGrad is wrong at padded borders (divides by the whole window): replaced as on wasm.
  return [
    conv2DBackpropFilterConfig('cpu', strategy),
    avgPoolGradConfig('cpu'),
    batchNormGradSumsConfig('cpu'),
    batchNormStatsConfig('cpu'),
    batchNormTrainingGradConfig('cpu'),
    fusedAdamConfig('cpu'),
    fusedAdamMultiConfig('cpu'),
  ];
}

/**
 * The pure configs with the native ones swapped in: Conv2D, FusedConv2D and both conv gradients
 * run on native/fast-conv.c and fall back to the stock forward / our pure gradients for cases it
 * does not cover; the fused Adam, the batch-norm passes and the max-pool gradient run their
 * native loops.
 */
function withNativeKernels(backendName: FastTrainingBackend, pure: KernelConfig[], native: NativeKernels): KernelConfig[] {
  const byName = new Map(pure.map((c) => [c.kernelName, c]));
  const replaced = nativeConvKernelConfigs(backendName, native, {
    Conv2D: stockKernelFunc('Conv2D', backendName),
    FusedConv2D: stockKernelFunc('FusedConv2D', backendName),
    Conv2DBackpropInput: byName.get('Conv2DBackpropInput')?.kernelFunc ?? stockKernelFunc('Conv2DBackpropInput', backendName),
    Conv2DBackpropFilter: (byName.get('Conv2DBackpropFilter') as KernelConfig).kernelFunc,
  });
  replaced.push(
    fusedAdamConfig(backendName, native.adamUpdate),
    fusedAdamMultiConfig(backendName, native.adamUpdate),
    batchNormStatsConfig(backendName, native.batchNormStats),
    batchNormTrainingGradConfig(backendName, native.batchNormTrainingGrad),
    { kernelName: 'FusedBatchNorm', backendName, kernelFunc: makeNativeBatchNormKernel(native, stockKernelFunc('FusedBatchNorm', backendName)) },
    ...convBatchNormConfigs(backendName, native),
  );
  // The cpu backend's stock MaxPoolGrad is correct; wasm's is replaced by ours either way.
  if (byName.has('MaxPoolGrad')) replaced.push(maxPoolGradConfig(backendName, nativeMaxPoolGrad(native)));
  for (const c of replaced) byName.set(c.kernelName, c);
  return [...byName.values()];
}

async function resolveNative(
  options: FastTrainingOptions,
): Promise<{ native: NativeKernels | null; info: NativeTrainingInfo }> {
  const mode = options.native ?? 'auto';
  if (mode !== 'auto' && mode !== 'off' && mode !== 'require') {
    throw new Error(`@lab/tfjs-train useFastTraining: options.native must be 'auto', 'off' or 'require', got '${String(mode)}'`);
  }
  if (options.threads != null && !(Number.isInteger(options.threads) && options.threads >= 1)) {
    throw new Error(`@lab/tfjs-train useFastTraining: options.threads must be a positive integer, got ${String(options.threads)}`);
  }
  const env = typeof process !== 'undefined' ? process.env.LAB_TFJS_TRAIN_NATIVE : undefined;
  if (mode === 'auto' && (env === 'off' || env === '0' || env === 'false')) {
    return { native: null, info: { enabled: false, reason: `LAB_TFJS_TRAIN_NATIVE=${env}` } };
  }
  if (mode === 'off') return { native: null, info: { enabled: false, reason: "options.native is 'off'" } };
  const loaded = await loadNativeKernels(options.nativeBuild);
  if (!loaded.ok) {
    if (mode === 'require') throw new Error(`@lab/tfjs-train useFastTraining: native kernels unavailable: ${loaded.reason}`);
    return { native: null, info: { enabled: false, reason: loaded.reason } };
  }
  const threads = loaded.kernels.setThreads(options.threads ?? (await defaultNativeThreads()));
  const { gemm, library, isa, tiles } = loaded.kernels.info();
  const suggestion = gemm === 'builtin' && !forcedGemm() ? librarySuggestion() : undefined;
  return {
    native: loaded.kernels,
    info: { enabled: true, gemm, library, threads, isa, tiles, path: loaded.path, builtNow: loaded.built, ...(suggestion ? { suggestion } : {}) },
  };
}

/** Whether $LAB_TFJS_TRAIN_GEMM chose the GEMM (then no library suggestion is due). */
function forcedGemm(): boolean {
  const want = typeof process !== 'undefined' ? process.env.LAB_TFJS_TRAIN_GEMM : undefined;
  return want != null && want !== '' && want !== 'auto';
}

/**
 * The package that can give the native kernels a faster GEMM on this platform. On the AVX2 test
 * machine oneDNN was ~10 % faster than the built-in GEMM at full ResNet width and level on the lab's
 * narrow models (see the README's benchmark); on other CPUs the gap may be larger.
 */
function librarySuggestion(): string | undefined {
  if (typeof process === 'undefined') return undefined;
  if (process.platform === 'linux') {
    return 'optional: oneDNN can make full-width models train faster (Debian/Ubuntu: apt install libdnnl2; or libopenblas0)';
  }
  if (process.platform === 'darwin') return 'optional: OpenBLAS can make full-width models train faster (Homebrew: brew install openblas)';
  return undefined;
}

interface Installed {
  info: FastTrainingInfo;
  stock: Map<string, KernelConfig>;
}

const installedByBackend = new Map<FastTrainingBackend, Installed>();
let stockBatchNormGradient: GradConfig | undefined;
let batchNormGradientInstalled = false;
let stockConv2DGradient: GradConfig | undefined;
let conv2DGradientInstalled = false;

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
  const { native, info: nativeInfo } = await resolveNative(options);
  const pure = fastTrainingKernelConfigs(backendName, strategy);
  const configs = native != null ? withNativeKernels(backendName, pure, native) : pure;
  const stock = new Map<string, KernelConfig>();
  const kernels: string[] = [];
  const replacedStock: string[] = [];
  for (const config of configs) {
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
  // tfjs-core's Conv2D gradient refuses dilations > 1; this one allows them (at dilation 1 it is core's).
  if (!conv2DGradientInstalled) {
    stockConv2DGradient = getGradient('Conv2D');
    registerGradient(conv2dDilatedGradConfig);
    conv2DGradientInstalled = true;
  }
  gradients.push('Conv2D');
  const info: FastTrainingInfo = {
    backend: backendName,
    kernels,
    replacedStock,
    gradients,
    backpropFilterStrategy: strategy,
    native: nativeInfo,
  };
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
  if (conv2DGradientInstalled && installedByBackend.size === 0) {
    if (stockConv2DGradient != null) registerGradient(stockConv2DGradient);
    conv2DGradientInstalled = false;
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
