import { InputError } from './input-error';
import { adapterLabel, findWebGpuAdapter, probeAdapterInChild, registerWebGpuBackend, type TfRegistry, type WebGpuAdapter, type WebGpuOptions, type WebGpuSetup } from './webgpu-adapter';

export type { WebGpuAdapter, WebGpuOptions } from './webgpu-adapter';
export type BackendPreference = 'auto' | 'tensorflow-gpu' | 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendName = Exclude<BackendPreference, 'auto'>;

export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendSelection {
  /** The backend that was chosen. */
  name: BackendName;
  /** The TF.js backend name it registered (`tensorflow`, `webgpu`, `wasm`, `cpu`). */
  tfBackend: string;
  /** The GPU adapter webgpu trains on (vendor, architecture, driver); only for webgpu. */
  adapter?: WebGpuAdapter;
  /** Whether `@lab/tfjs-train`'s training kernels were installed (wasm or cpu, when that package is importable). */
  fastTraining: boolean;
  /** What @lab/tfjs-train said of its native kernels (which GEMM, or why none), when it was installed. */
  native?: string;
  /** Threads @lab/tfjs-train's native kernels compute with in this process (when they are enabled). */
  nativeThreads?: number;
  /** One plain sentence per attempt that failed before this one. */
  failures: string[];
}

export interface SelectBackendOptions {
  /** Receives each failed attempt once, in plain words. Default: console.warn. */
  log?: (message: string) => void;
  /** Module loader; tests replace it to simulate missing packages. */
  importModule?: (specifier: string) => Promise<unknown>;
  /**
   * Threads for @lab/tfjs-train's native kernels when this call installs them (default: theirs,
   * $OMP_NUM_THREADS else every core). Once installed in a process they keep their threads.
   */
  threads?: number;
  /** WebGPU adapter choice; tests force the software adapter so they compute alike everywhere. */
  webgpu?: WebGpuOptions;
}

type TfCore = TfRegistry & { setBackend(name: string): Promise<boolean>; ready(): Promise<void>; getBackend(): string; getKernel?(kernelName: string, backendName: string): unknown };

// WebGPU before tfjs-node: on a real adapter it outruns the CPU; `auto` skips a software one.
const AUTO_ORDER: BackendName[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

// A variable specifier keeps bundlers and TypeScript from resolving optional packages at build time.
const defaultImport = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

const alreadyLogged = new Set<string>();

function describeImportError(pkg: string, error: unknown): string {
  const err = error as { code?: string; message?: string };
  if (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND' || /Cannot find (module|package)/.test(err?.message ?? '')) {
    return `${pkg} is not installed`;
  }
  return `${pkg} could not be loaded (${(err?.message ?? String(error)).split('\n')[0]})`;
}

type TrainModule = {
  useFastTraining?: (backend: string, options?: { threads?: number }) => Promise<unknown> | unknown;
  listMissingTrainingKernels?: (backend: string) => string[];
};

/** What is known about training on wasm or cpu once their package is loaded. */
interface TrainingKernels {
  /** @lab/tfjs-train's kernels were installed for the backend. */
  installed: boolean;
  /** Why they were not, in plain words (when not installed). */
  why?: string;
  /** Training kernels the backend lacks (wasm without our kernels); empty when it can train. */
  missing: string[];
  /** What @lab/tfjs-train said about its native kernels, in plain words (when installed). */
  native?: string;
  /** The native kernels' threads (when enabled). */
  nativeThreads?: number;
  /** @lab/tfjs-train's one-line hint of a system package that would make it faster (printed once). */
  suggestion?: string;
}

/** The threads of the native kernels, from @lab/tfjs-train's install info (when enabled). */
function nativeThreadsOf(info: unknown): number | undefined {
  const native = (info as { native?: { enabled: boolean; threads?: unknown } } | undefined)?.native;
  return native?.enabled && typeof native.threads === 'number' ? native.threads : undefined;
}

/** The `native` field of @lab/tfjs-train's install info, described for the run log. */
function describeNative(info: unknown): string | undefined {
  const native = (info as { native?: { enabled: boolean; gemm?: string; isa?: string; reason?: string } } | undefined)?.native;
  if (native == null) return undefined;
  // No thread count: worker processes run with their own OMP_NUM_THREADS (config.json's execution.threadsPerWorker).
  return native.enabled
    ? `native kernels on ${native.gemm} SGEMM${native.isa ? `, ${native.isa}` : ''}`
    : `no native kernels (${native.reason}); training on the wasm/JS kernels, ~5x slower`;
}

// Without @lab/tfjs-train there is no full list to check against; stock wasm lacks this one, and
// every convolutional network needs it to train.
const ESSENTIAL_TRAINING_KERNELS = ['Conv2DBackpropFilter'];

async function installTrainingKernels(name: 'wasm' | 'cpu', tf: TfCore, load: (specifier: string) => Promise<unknown>, threads?: number): Promise<TrainingKernels> {
  let train: TrainModule | undefined;
  let why: string;
  try {
    train = (await load('@lab/tfjs-train')) as TrainModule;
    if (typeof train.useFastTraining !== 'function') throw new Error('it has no useFastTraining export');
    const info = await train.useFastTraining(name, threads !== undefined ? { threads } : {});
    const nativeThreads = nativeThreadsOf(info);
    const suggestion = (info as { native?: { suggestion?: unknown } }).native?.suggestion;
    return {
      installed: true,
      missing: [],
      native: describeNative(info),
      ...(nativeThreads !== undefined ? { nativeThreads } : {}),
      ...(typeof suggestion === 'string' ? { suggestion } : {}),
    };
  } catch (error) {
    why = describeImportError('@lab/tfjs-train', error);
  }
  if (name === 'cpu') return { installed: false, why, missing: [] };
  let missing: string[];
  if (typeof train?.listMissingTrainingKernels === 'function') {
    missing = train.listMissingTrainingKernels('wasm');
  } else if (typeof tf.getKernel === 'function') {
    missing = ESSENTIAL_TRAINING_KERNELS.filter((kernel) => tf.getKernel!(kernel, 'wasm') == null);
  } else {
    missing = ESSENTIAL_TRAINING_KERNELS; // cannot check: assume the stock backend
  }
  return { installed: false, why, missing };
}

function listKernels(names: string[]): string {
  return names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')} and ${names.length - 3} more`;
}

function logOnce(log: (message: string) => void, message: string): void {
  if (alreadyLogged.has(message)) return;
  alreadyLogged.add(message);
  log(message);
}

type AttemptResult = { ok: true; tfBackend: string; fastTraining: boolean; native?: string; nativeThreads?: number; adapter?: WebGpuAdapter } | { ok: false; reason: string };

/** One Dawn setup per Dawn module and adapter choice in a process: a second selectBackend reuses the live device. */
const webGpuSetups = new WeakMap<object, Map<string, Promise<WebGpuSetup | { reason: string }>>>();
let registeredWebGpu: { setup: WebGpuSetup; tf: TfCore } | undefined;

function webGpuSetupFor(dawn: unknown, options: WebGpuOptions): Promise<WebGpuSetup | { reason: string }> {
  const key = options.forceFallbackAdapter ? 'fallback' : 'default';
  const byModule = webGpuSetups.get(dawn as object) ?? new Map<string, Promise<WebGpuSetup | { reason: string }>>();
  webGpuSetups.set(dawn as object, byModule);
  if (!byModule.has(key)) byModule.set(key, findWebGpuAdapter(dawn, options));
  return byModule.get(key)!;
}

async function initialise(tf: TfCore, tfBackend: string): Promise<string | undefined> {
  try {
    const ok = await tf.setBackend(tfBackend);
    if (!ok) return `the ${tfBackend} backend failed to initialise`;
    await tf.ready();
  } catch (error) {
    return `the ${tfBackend} backend failed to initialise (${(error as Error).message})`;
  }
  return undefined;
}

/**
 * @lab/tfjs-train's WebGPU training kernels (a faster Conv2DBackpropFilter than the stock one-thread-
 * per-weight shader), where that package is installed; whether they were.
 */
async function installWebGpuTraining(load: (specifier: string) => Promise<unknown>): Promise<boolean> {
  try {
    const train = (await load('@lab/tfjs-train')) as { useWebGpuTraining?: () => unknown };
    if (typeof train.useWebGpuTraining !== 'function') return false;
    train.useWebGpuTraining();
    return true;
  } catch {
    // Optional: without it webgpu trains on the stock kernels.
    return false;
  }
}

let adapterProbe: ReturnType<typeof probeAdapterInChild> | undefined;

const softwareOnly = (label: string) => `only a software adapter (${label}), which computes on the CPU; a GPU needs its driver (Vulkan on Linux)`;

/**
 * Dawn first (an adapter must exist, and `navigator.gpu` must be set before tfjs-backend-webgpu is
 * imported, or it does not register), then the backend on that adapter. `auto` refuses a software
 * adapter: it computes on the CPU, slower than the CPU backends.
 */
async function attemptWebGpu(tf: TfCore, load: (specifier: string) => Promise<unknown>, log: (message: string) => void, auto: boolean, options: WebGpuOptions): Promise<AttemptResult> {
  // `auto` asks a child process first (with the real packages): on the usual machine without a GPU,
  // Dawn then never loads here, and its start-up warnings on stderr are not shown.
  if (auto && load === defaultImport && !options.forceFallbackAdapter) {
    // Once per process: the demo selects a backend for each of its experiments.
    adapterProbe ??= probeAdapterInChild();
    const probe = await adapterProbe;
    if ('reason' in probe) return { ok: false, reason: probe.reason };
    if (probe.software) return { ok: false, reason: softwareOnly(adapterLabel(probe)) };
  }
  let dawn: unknown;
  try {
    dawn = await load('webgpu');
  } catch (error) {
    return { ok: false, reason: describeImportError('webgpu', error) };
  }
  const setup = await webGpuSetupFor(dawn, options);
  if ('reason' in setup) return { ok: false, reason: setup.reason };
  const label = adapterLabel(setup.info);
  if (setup.info.software) {
    if (auto) return { ok: false, reason: softwareOnly(label) };
    logOnce(log, `webgpu: kept as asked on a software adapter (${label}): it computes on the CPU, so its timings are not GPU timings`);
  } else {
    logOnce(log, `webgpu: adapter ${label}`);
  }
  let webgpuModule: unknown;
  try {
    webgpuModule = await load('@tensorflow/tfjs-backend-webgpu');
    if (registeredWebGpu?.setup !== setup || registeredWebGpu.tf !== tf) {
      registerWebGpuBackend(tf, webgpuModule, setup);
      registeredWebGpu = { setup, tf };
    }
  } catch (error) {
    return { ok: false, reason: describeImportError('@tensorflow/tfjs-backend-webgpu', error) };
  }
  const failed = await initialise(tf, 'webgpu');
  if (failed != null) return { ok: false, reason: failed };
  return { ok: true, tfBackend: 'webgpu', fastTraining: await installWebGpuTraining(load), adapter: setup.info };
}

async function attempt(
  name: BackendName,
  load: (specifier: string) => Promise<unknown>,
  log: (message: string) => void,
  auto: boolean,
  options: SelectBackendOptions,
): Promise<AttemptResult> {
  let tf: TfCore;
  try {
    tf = (await load('@tensorflow/tfjs-core')) as TfCore;
  } catch (error) {
    return { ok: false, reason: describeImportError('@tensorflow/tfjs-core', error) };
  }
  if (name === 'webgpu') return attemptWebGpu(tf, load, log, auto, options.webgpu ?? {});
  const threads = options.threads;
  const pkg = { 'tensorflow-gpu': '@tensorflow/tfjs-node-gpu', tensorflow: '@tensorflow/tfjs-node', wasm: '@tensorflow/tfjs-backend-wasm', cpu: '@tensorflow/tfjs-backend-cpu' }[name];
  const tfBackend = name === 'tensorflow-gpu' ? 'tensorflow' : name;
  try {
    await load(pkg);
  } catch (error) {
    return { ok: false, reason: describeImportError(pkg, error) };
  }
  let fastTraining = false;
  let native: string | undefined;
  let nativeThreads: number | undefined;
  if (name === 'wasm' || name === 'cpu') {
    const kernels = await installTrainingKernels(name, tf, load, threads);
    fastTraining = kernels.installed;
    native = kernels.native;
    nativeThreads = kernels.nativeThreads;
    if (native != null) logOnce(log, `${name}: @lab/tfjs-train ${native}`);
    if (kernels.suggestion != null) logOnce(log, `${name}: ${kernels.suggestion}`);
    if (name === 'wasm' && !kernels.installed && kernels.missing.length > 0) {
      const lacking = `it lacks the training kernel${kernels.missing.length === 1 ? '' : 's'} ${listKernels(kernels.missing)} and @lab/tfjs-train's kernels are not installed (${kernels.why})`;
      // Checked before the backend is initialised: in auto mode a backend that cannot train is skipped.
      if (auto) return { ok: false, reason: `wasm cannot train convolutional networks here: ${lacking}` };
      logOnce(log, `wasm: kept as asked, but wasm cannot train convolutions without @lab/tfjs-train: ${lacking}; use --backend cpu or auto to train`);
    } else if (name === 'cpu' && !kernels.installed) {
      logOnce(log, `cpu: @lab/tfjs-train's training kernels are not installed (${kernels.why}); cpu trains with its stock kernels, whose convolution filter gradient is slow`);
    }
  }
  const failed = await initialise(tf, tfBackend);
  if (failed != null) return { ok: false, reason: failed };
  return { ok: true, tfBackend, fastTraining, ...(native != null ? { native } : {}), ...(nativeThreads !== undefined ? { nativeThreads } : {}) };
}

/**
 * Chooses and initialises a TF.js backend by dynamic import only, so none is a hard dependency.
 * `auto` tries @tensorflow/tfjs-node-gpu, WebGPU (Dawn's `webgpu` package with
 * @tensorflow/tfjs-backend-webgpu) on a real GPU adapter, @tensorflow/tfjs-node, wasm, then cpu.
 * An explicit `webgpu` also takes a software adapter, with a warning. Stock wasm cannot
 * train convolutions (it has no Conv2DBackpropFilter), so `auto` takes wasm only when it can train:
 * @lab/tfjs-train's kernels installed, or no training kernel missing. On wasm and cpu those kernels
 * are installed whenever @lab/tfjs-train is importable. An explicit `wasm` that cannot train is kept,
 * with a warning. Each failure and warning is logged once.
 */
export async function selectBackend(pref: BackendPreference, options: SelectBackendOptions = {}): Promise<BackendSelection> {
  if (!BACKEND_PREFERENCES.includes(pref)) {
    throw new InputError(`backend: expected one of ${BACKEND_PREFERENCES.join(', ')}, got ${JSON.stringify(pref)}`);
  }
  const log = options.log ?? ((message: string) => console.warn(message));
  const load = options.importModule ?? defaultImport;
  const order = pref === 'auto' ? AUTO_ORDER : [pref];
  const failures: string[] = [];
  for (const name of order) {
    const result = await attempt(name, load, log, pref === 'auto', options);
    if (result.ok) {
      const { tfBackend, fastTraining, native, nativeThreads, adapter } = result;
      return { name, tfBackend, ...(adapter != null ? { adapter } : {}), fastTraining, ...(native != null ? { native } : {}), ...(nativeThreads !== undefined ? { nativeThreads } : {}), failures };
    }
    const message = `backend ${name} unavailable: ${result.reason}${pref === 'auto' && name !== 'cpu' ? '; trying the next one' : ''}`;
    failures.push(message);
    logOnce(log, message);
  }
  throw new InputError(`backend ${pref}: no backend could be initialised (${failures.join('; ')})`);
}
