/**
 * WebGPU in Node through Dawn's bindings (the npm package `webgpu`, prebuilt for Linux/Vulkan,
 * macOS/Metal and Windows/D3D12) for `@tensorflow/tfjs-backend-webgpu`. Nothing here is imported
 * statically: both packages are optional and loaded by `selectBackend` only when webgpu is tried.
 */

import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { installNodeReadSync, trackDawnTicks, type TfUtil } from './webgpu-read-sync';

/** The adapter a run trained on, as recorded in config.json and the report. */
export interface WebGpuAdapter {
  /** e.g. 'nvidia', 'apple', 'mesa'. */
  vendor: string;
  /** e.g. 'ampere', 'metal-3', 'software'. */
  architecture: string;
  /** The device, where the driver names it. */
  device: string;
  /** The driver's description (on Linux the Vulkan driver and its version). */
  description: string;
  /** A software (CPU) adapter, e.g. Mesa's lavapipe or SwiftShader: its figures are not GPU figures. */
  software: boolean;
}

/** What `selectBackend` needs of Dawn's module (`webgpu`). */
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}
interface GpuLike {
  requestAdapter(options?: Record<string, unknown>): Promise<AdapterLike | null>;
}
interface AdapterLike {
  info?: Record<string, unknown>;
  isFallbackAdapter?: boolean;
  features: { has(name: string): boolean };
  limits: Record<string, number>;
  requestDevice(descriptor: Record<string, unknown>): Promise<unknown>;
}
/** The parts of tfjs-core used to register the backend on the adapter chosen here. */
export interface TfRegistry extends Partial<TfUtil> {
  registerBackend?(name: string, factory: () => unknown, priority?: number): boolean;
  removeBackend?(name: string): void;
}

export interface WebGpuOptions {
  /**
   * Ask for the fallback (software) adapter even where a GPU exists, so tests compute the same
   * everywhere. Tests only: a run wants the GPU.
   */
  forceFallbackAdapter?: boolean;
}

/** Printed when Dawn finds no adapter: what to install, per platform. */
export const NO_ADAPTER_HINT =
  'no WebGPU adapter found (Linux: install a Vulkan driver and the loader, e.g. `apt install libvulkan1 mesa-vulkan-drivers` or the NVIDIA driver; macOS needs Metal, Windows D3D12)';

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** The adapter's identity, from `adapter.info` (current Dawn) or the older `isFallbackAdapter`. */
export function describeAdapter(adapter: Pick<AdapterLike, 'info' | 'isFallbackAdapter'>): WebGpuAdapter {
  const info = adapter.info ?? {};
  const architecture = text(info.architecture);
  return {
    vendor: text(info.vendor) || 'unknown',
    architecture: architecture || 'unknown',
    device: text(info.device),
    description: text(info.description),
    software: info.isFallbackAdapter === true || adapter.isFallbackAdapter === true || architecture === 'software',
  };
}

/** One line for logs and the report: `nvidia ampere (NVIDIA GeForce ...)`. */
export function adapterLabel(adapter: WebGpuAdapter): string {
  const detail = adapter.description || adapter.device;
  return `${adapter.vendor} ${adapter.architecture}${detail ? ` (${detail})` : ''}${adapter.software ? ', software adapter' : ''}`;
}

// Dawn's bindings define the WebGPU constants (GPUBufferUsage, ...) that tfjs-backend-webgpu reads as globals.
function installGlobals(globals: Record<string, unknown>): void {
  const target = globalThis as Record<string, unknown>;
  for (const [name, value] of Object.entries(globals)) if (!(name in target)) target[name] = value;
}

/**
 * tfjs-backend-webgpu registers itself only if `navigator.gpu` exists when it is imported. Node 21+
 * has a `navigator` with getters only, so `gpu` is defined on it rather than assigned.
 */
function installNavigatorGpu(gpu: GpuLike): void {
  const target = globalThis as { navigator?: object };
  if (target.navigator == null) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  } else if ((target.navigator as { gpu?: unknown }).gpu !== gpu) {
    Object.defineProperty(target.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  }
}

/**
 * The adapter Dawn offers. Dawn answers `forceFallbackAdapter` with null until a plain request has
 * enumerated the adapters, so the plain request always comes first.
 */
async function requestAdapter(gpu: GpuLike, options: WebGpuOptions): Promise<AdapterLike | null> {
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!options.forceFallbackAdapter || adapter == null || describeAdapter(adapter).software) return adapter;
  return gpu.requestAdapter({ forceFallbackAdapter: true });
}

export interface WebGpuSetup {
  gpu: GpuLike;
  adapter: AdapterLike;
  info: WebGpuAdapter;
}

/** Loads Dawn, exposes it as `navigator.gpu` and finds an adapter; a plain reason when there is none. */
export async function findWebGpuAdapter(dawn: unknown, options: WebGpuOptions): Promise<WebGpuSetup | { reason: string }> {
  const module = dawn as Partial<DawnModule>;
  if (typeof module.create !== 'function') return { reason: 'the webgpu package has no create() export (expected Dawn\'s Node bindings, webgpu 0.3+)' };
  let gpu: GpuLike;
  let adapter: AdapterLike | null;
  try {
    installGlobals(module.globals ?? {});
    // Before Dawn schedules its first tick, so that a synchronous read can run them all.
    trackDawnTicks();
    gpu = module.create([]);
    adapter = await requestAdapter(gpu, options);
  } catch (error) {
    return { reason: `Dawn failed to start (${(error as Error).message?.split('\n')[0] ?? String(error)})` };
  }
  if (adapter == null) return { reason: NO_ADAPTER_HINT };
  installNavigatorGpu(gpu);
  return { gpu, adapter, info: describeAdapter(adapter) };
}

/**
 * Registers tfjs-backend-webgpu's backend on the adapter found here, replacing the factory its
 * import registered (which would ask Dawn again and might get another adapter). The device asks
 * for the adapter's limits, as tfjs-backend-webgpu's own factory does.
 */
export function registerWebGpuBackend(tf: TfRegistry, webgpuModule: unknown, setup: WebGpuSetup): void {
  const Backend = (webgpuModule as { WebGPUBackend?: new (device: unknown, adapterInfo: unknown) => unknown }).WebGPUBackend;
  if (typeof Backend !== 'function') throw new Error('@tensorflow/tfjs-backend-webgpu has no WebGPUBackend export (expected version 4.x)');
  if (typeof tf.registerBackend !== 'function' || typeof tf.removeBackend !== 'function' || tf.util == null || tf.backend_util == null) {
    throw new Error('@tensorflow/tfjs-core lacks registerBackend, removeBackend, util or backend_util (expected version 4.x)');
  }
  installNodeReadSync(Backend, { util: tf.util, backend_util: tf.backend_util });
  const { adapter } = setup;
  tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    async () => {
      const requiredFeatures = ['timestamp-query'].filter((name) => adapter.features.has(name));
      const limits = adapter.limits;
      const requiredLimits = Object.fromEntries(
        ['maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupSizeX', 'maxComputeInvocationsPerWorkgroup'].map((name) => [name, limits[name]]),
      );
      const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
      return new Backend(device, adapter.info);
    },
    3,
  );
}

/** The script the probe runs: Dawn's first adapter, as JSON on stdout (null when there is none). */
const PROBE_SCRIPT = `
const dawn = await import(process.argv[1]);
const adapter = await dawn.create([]).requestAdapter({ powerPreference: 'high-performance' });
const info = adapter?.info ?? {};
process.stdout.write(JSON.stringify(adapter ? { info: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, isFallbackAdapter: info.isFallbackAdapter }, isFallbackAdapter: adapter.isFallbackAdapter } : null));
process.exit(0);
`;

/**
 * Which adapter Dawn would give, asked in a short-lived child process. Dawn prints warnings on
 * stderr as it starts, and `auto` on a machine without a GPU should neither show them nor keep
 * Dawn loaded: the child's output is read and the rest discarded.
 */
export function probeAdapterInChild(timeoutMs = 30_000): Promise<WebGpuAdapter | { reason: string }> {
  let entry: string;
  try {
    entry = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch {
    return Promise.resolve({ reason: 'webgpu is not installed' });
  }
  return new Promise((done) => {
    execFile(process.execPath, ['--input-type=module', '-e', PROBE_SCRIPT, entry], { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      try {
        const found = JSON.parse(stdout) as Pick<AdapterLike, 'info' | 'isFallbackAdapter'> | null;
        done(found == null ? { reason: NO_ADAPTER_HINT } : describeAdapter(found));
      } catch {
        const why = error?.killed ? `timed out after ${timeoutMs / 1000} s` : (stderr.trim().split('\n').pop() ?? error?.message ?? 'no output');
        done({ reason: `webgpu could not be loaded (${why})` });
      }
    });
  });
}
