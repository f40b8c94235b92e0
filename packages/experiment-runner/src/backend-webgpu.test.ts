/**
 * selectBackend and WebGPU: the fallback rules with simulated adapters, then the real thing on
 * Mesa's lavapipe (a software Vulkan driver; `.ci/install-vulkan.sh` installs it). Where Dawn
 * cannot load or finds no adapter, the real tests skip and their title says why.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
// The real tests switch back to cpu when done.
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from './backend';
import { NO_ADAPTER_HINT } from './webgpu-adapter';
import { trackDawnTicks } from './webgpu-read-sync';

const notFound = (name: string) => Object.assign(new Error(`Cannot find package '${name}'`), { code: 'ERR_MODULE_NOT_FOUND' });

interface FakeAdapterInfo {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter: boolean;
}

/** tfjs-core, Dawn and tfjs-backend-webgpu as far as selectBackend uses them. */
function fakeModules(adapterInfo: FakeAdapterInfo | null) {
  const factories = new Map<string, () => Promise<unknown>>();
  const active = { name: '', backend: undefined as unknown };
  const tf = {
    registerBackend: (name: string, factory: () => Promise<unknown>) => factories.set(name, factory) && true,
    removeBackend: (name: string) => void factories.delete(name),
    setBackend: async (name: string) => {
      const factory = factories.get(name);
      if (factory == null) return false;
      active.backend = await factory();
      active.name = name;
      return true;
    },
    ready: async () => {},
    getBackend: () => active.name,
    util: { convertBackendValuesAndArrayBuffer: (data: ArrayBuffer) => new Float32Array(data) },
    backend_util: { mergeRealAndImagArrays: (real: Float32Array) => real },
  };
  const adapter = adapterInfo && {
    info: adapterInfo,
    features: { has: () => false },
    limits: {},
    requestDevice: async () => ({ kind: 'device' }),
  };
  const dawn = { create: () => ({ requestAdapter: async () => adapter }), globals: {} };
  class WebGPUBackend {
    constructor(
      readonly device: unknown,
      readonly adapterInfo: unknown,
    ) {}
  }
  factories.set('cpu', async () => ({ kind: 'cpu' }));
  const importModule = async (specifier: string) => {
    if (specifier === '@tensorflow/tfjs-core') return tf;
    if (specifier === 'webgpu') return dawn;
    if (specifier === '@tensorflow/tfjs-backend-webgpu') return { WebGPUBackend };
    if (specifier === '@tensorflow/tfjs-backend-cpu') return {};
    throw notFound(specifier);
  };
  return { importModule, active, WebGPUBackend };
}

const GPU: FakeAdapterInfo = { vendor: 'nvidia', architecture: 'ampere', description: 'NVIDIA GeForce RTX 3060, driver 550.54', isFallbackAdapter: false };
const SOFTWARE: FakeAdapterInfo = { vendor: 'mesa', architecture: 'software', description: 'llvmpipe', isFallbackAdapter: true };

describe('selectBackend: webgpu fallback rules (simulated adapters)', () => {
  it('auto takes webgpu on a GPU adapter, after tfjs-node-gpu, and records the adapter', async () => {
    const { importModule, active, WebGPUBackend } = fakeModules(GPU);
    const logs: string[] = [];
    const chosen = await selectBackend('auto', { log: (m) => logs.push(m), importModule });
    expect(chosen).toMatchObject({
      name: 'webgpu',
      tfBackend: 'webgpu',
      adapter: { vendor: 'nvidia', architecture: 'ampere', description: 'NVIDIA GeForce RTX 3060, driver 550.54', software: false },
      failures: ['backend tensorflow-gpu unavailable: @tensorflow/tfjs-node-gpu is not installed; trying the next one'],
    });
    expect(active.name).toBe('webgpu');
    // The backend runs on the adapter inspected here, not on one tfjs-backend-webgpu asks Dawn for.
    expect((active.backend as InstanceType<typeof WebGPUBackend>).adapterInfo).toBe(GPU);
    expect(logs).toContain('webgpu: adapter nvidia ampere (NVIDIA GeForce RTX 3060, driver 550.54)');
  });

  it('auto passes over a software adapter with one line; an explicit webgpu keeps it, warning that it is not a GPU', async () => {
    const { importModule } = fakeModules(SOFTWARE);
    const logs: string[] = [];
    const auto = await selectBackend('auto', { log: (m) => logs.push(m), importModule });
    expect(auto.name).toBe('cpu');
    const skipped = 'backend webgpu unavailable: only a software adapter (mesa software (llvmpipe), software adapter), which computes on the CPU; a GPU needs its driver (Vulkan on Linux); trying the next one';
    expect(auto.failures[1]).toBe(skipped);
    expect(logs.filter((l) => l.startsWith('backend webgpu'))).toEqual([skipped]);
    const explicit = await selectBackend('webgpu', { log: (m) => logs.push(m), importModule });
    expect(explicit).toMatchObject({ name: 'webgpu', adapter: { software: true }, failures: [] });
    expect(logs).toContain('webgpu: kept as asked on a software adapter (mesa software (llvmpipe), software adapter): it computes on the CPU, so its timings are not GPU timings');
  });

  it('no adapter (no Vulkan driver or loader): one line saying what to install, then the next backend', async () => {
    const { importModule } = fakeModules(null);
    const logs: string[] = [];
    const chosen = await selectBackend('auto', { log: (m) => logs.push(m), importModule });
    expect(chosen.name).toBe('cpu');
    expect(chosen.failures[1]).toBe(`backend webgpu unavailable: ${NO_ADAPTER_HINT}; trying the next one`);
    await expect(selectBackend('webgpu', { log: () => {}, importModule })).rejects.toThrow(/backend webgpu: no backend could be initialised \(backend webgpu unavailable: no WebGPU adapter found \(Linux: install a Vulkan driver/);
  });
});

/** Why the real WebGPU tests cannot run here, or null when Dawn finds an adapter. */
async function webGpuUnavailable(): Promise<string | null> {
  try {
    trackDawnTicks();
    const dawn = (await import(/* @vite-ignore */ 'webgpu')) as { create(flags: string[]): { requestAdapter(): Promise<unknown> } };
    return (await dawn.create([]).requestAdapter()) == null ? NO_ADAPTER_HINT : null;
  } catch (error) {
    return `webgpu does not load: ${(error as Error).message.split('\n')[0]}`;
  }
}
const unavailable = await webGpuUnavailable();
const realImport = (specifier: string) => import(/* @vite-ignore */ specifier);
const withoutTfjsNode = async (specifier: string) => (specifier.startsWith('@tensorflow/tfjs-node') ? Promise.reject(notFound(specifier)) : realImport(specifier));

describe.skipIf(unavailable != null)(`selectBackend: real WebGPU on the software adapter${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it('an explicit webgpu initialises on the fallback adapter, records it, and reads tensors synchronously without leaking', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const chosen = await selectBackend('webgpu', { log: () => {}, webgpu: { forceFallbackAdapter: true } });
    // @lab/tfjs-train (a devDependency here) installs its WebGPU filter-gradient kernel.
    expect(chosen).toMatchObject({ name: 'webgpu', tfBackend: 'webgpu', fastTraining: true, adapter: { software: true } });
    expect(chosen.adapter!.vendor).not.toBe('');
    expect(tf.getBackend()).toBe('webgpu');
    const before = tf.memory().numTensors;
    // dataSync needs OffscreenCanvas in tfjs-backend-webgpu; the runner's replacement must not.
    const product = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).dataSync());
    expect(Array.from(product)).toEqual([19, 22, 43, 50]);
    const asyncRead = tf.tidy(() => tf.add(tf.tensor1d([1, 2, 3]), 1));
    expect(Array.from(await asyncRead.data())).toEqual([2, 3, 4]);
    asyncRead.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await tf.setBackend('cpu');
  });

  it('auto passes over the real software adapter', async () => {
    const chosen = await selectBackend('auto', { log: () => {}, importModule: withoutTfjsNode });
    expect(chosen.name).not.toBe('webgpu');
    expect(chosen.failures[1]).toMatch(/^backend webgpu unavailable: only a software adapter \(.+, software adapter\)/);
  });

  it('auto takes webgpu when Dawn reports a GPU (the adapter relabelled as one)', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const dawn = (await realImport('webgpu')) as { create(flags: string[]): { requestAdapter(o?: object): Promise<{ info: object } | null> }; globals: object };
    const relabelled = {
      globals: dawn.globals,
      create: (flags: string[]) => {
        const gpu = dawn.create(flags);
        return {
          requestAdapter: async (options?: object) => {
            const adapter = await gpu.requestAdapter(options);
            if (adapter) Object.defineProperty(adapter, 'info', { value: { ...adapter.info, architecture: 'relabelled', isFallbackAdapter: false } });
            return adapter;
          },
        };
      },
    };
    const chosen = await selectBackend('auto', { log: () => {}, importModule: (s) => (s === 'webgpu' ? Promise.resolve(relabelled) : withoutTfjsNode(s)) });
    expect(chosen).toMatchObject({ name: 'webgpu', adapter: { architecture: 'relabelled', software: false } });
    expect(Array.from(tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()))).toEqual([6]);
    await tf.setBackend('cpu');
  });

  it('without a Vulkan driver, auto says so in one line and falls back (a fresh process with no driver visible)', () => {
    const repo = resolve(import.meta.dirname, '../../..');
    const script = `
      const { selectBackend } = await import('./packages/experiment-runner/src/backend.ts');
      const logs = [];
      const chosen = await selectBackend('auto', { log: (m) => logs.push(m), importModule: (s) => s.startsWith('@tensorflow/tfjs-node') ? Promise.reject(Object.assign(new Error('Cannot find package'), { code: 'ERR_MODULE_NOT_FOUND' })) : import(s) });
      console.log(JSON.stringify({ name: chosen.name, logs }));`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repo,
      encoding: 'utf8',
      timeout: 60_000,
      // The Vulkan loader's own variables: no driver manifest is found, as on a machine without one.
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' },
    });
    expect(result.status, result.stderr).toBe(0);
    const { name, logs } = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { name: string; logs: string[] };
    expect(name).not.toBe('webgpu');
    expect(logs).toContain(`backend webgpu unavailable: ${NO_ADAPTER_HINT}; trying the next one`);
  });

  it('auto with the real packages asks Dawn in a child process: on a software adapter Dawn never loads here and its warnings are not shown', () => {
    const repo = resolve(import.meta.dirname, '../../..');
    const script = `
      const { selectBackend } = await import('./packages/experiment-runner/src/backend.ts');
      const chosen = await selectBackend('auto', { log: () => {} });
      console.log(JSON.stringify({ name: chosen.name, failures: chosen.failures, gpu: globalThis.navigator?.gpu != null }));`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    const { name, failures, gpu } = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { name: string; failures: string[]; gpu: boolean };
    expect(name).not.toBe('webgpu');
    // lavapipe here (CI installs it); a machine without a Vulkan driver finds no adapter at all.
    expect(failures.join('\n')).toMatch(/backend webgpu unavailable: (only a software adapter \(.+, software adapter\)|no WebGPU adapter found)/);
    expect(gpu, 'Dawn was not loaded in this process').toBe(false);
    // Dawn prints "Warning: max… artificially reduced" as it starts; the child's stderr is not passed on.
    expect(result.stderr).not.toMatch(/artificially reduced/);
  });
});
