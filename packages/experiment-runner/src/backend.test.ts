import { describe, expect, it } from 'vitest';
import { selectBackend } from './backend';

function fakeTf(registered: Set<string>, active: { name: string }) {
  return {
    setBackend: async (name: string) => {
      if (!registered.has(name)) return false;
      active.name = name;
      return true;
    },
    ready: async () => {},
    getBackend: () => active.name,
  };
}

const notFound = (name: string) => Object.assign(new Error(`Cannot find package '${name}'`), { code: 'ERR_MODULE_NOT_FOUND' });

describe('selectBackend', () => {
  it('auto falls through missing tfjs-node packages to wasm with the fast kernels, logging each failure once', async () => {
    const registered = new Set<string>();
    const active = { name: '' };
    const tf = fakeTf(registered, active);
    const kernels: string[] = [];
    const importModule = async (specifier: string) => {
      if (specifier === '@tensorflow/tfjs-core') return tf;
      if (specifier === '@tensorflow/tfjs-backend-wasm') {
        registered.add('wasm');
        return {};
      }
      if (specifier === '@lab/tfjs-train') return { useFastTraining: async (b: string) => kernels.push(b) };
      throw notFound(specifier);
    };
    const logs: string[] = [];
    const chosen = await selectBackend('auto', { log: (m) => logs.push(m), importModule });
    expect(chosen).toMatchObject({ name: 'wasm', tfBackend: 'wasm', fastTraining: true });
    expect(kernels).toEqual(['wasm']);
    expect(active.name).toBe('wasm');
    expect(logs).toEqual([
      'backend tensorflow-gpu unavailable: @tensorflow/tfjs-node-gpu is not installed; trying the next one',
      'backend tensorflow unavailable: @tensorflow/tfjs-node is not installed; trying the next one',
    ]);
    // Same failures again: not logged a second time.
    await selectBackend('auto', { log: (m) => logs.push(m), importModule });
    expect(logs).toHaveLength(2);
  });

  it('prefers tfjs-node-gpu when it loads, and falls back to cpu when wasm fails to initialise', async () => {
    const registered = new Set<string>(['cpu']);
    const active = { name: '' };
    const gpuFirst = await selectBackend('auto', {
      log: () => {},
      importModule: async (s) => {
        if (s === '@tensorflow/tfjs-core') return fakeTf(new Set(['tensorflow']), active);
        if (s === '@tensorflow/tfjs-node-gpu') return {};
        throw notFound(s);
      },
    });
    expect(gpuFirst).toMatchObject({ name: 'tensorflow-gpu', tfBackend: 'tensorflow', failures: [] });
    const logs: string[] = [];
    const cpu = await selectBackend('auto', {
      log: (m) => logs.push(m),
      importModule: async (s) => {
        if (s === '@tensorflow/tfjs-core') return fakeTf(registered, active);
        if (s === '@tensorflow/tfjs-backend-wasm' || s === '@tensorflow/tfjs-backend-cpu') return {};
        if (s === '@lab/tfjs-train') throw new Error('kernel registration exploded');
        throw notFound(s);
      },
    });
    expect(cpu.name).toBe('cpu');
    expect(cpu.failures[2]).toBe('backend wasm unavailable: the wasm backend failed to initialise; trying the next one');
    expect(logs.some((l) => l.includes('@lab/tfjs-train could not be loaded (kernel registration exploded)'))).toBe(true);
  });

  it('an explicit backend that is missing is an error naming it', async () => {
    await expect(selectBackend('tensorflow', { log: () => {}, importModule: async (s) => { throw notFound(s); } })).rejects.toThrow(
      /backend tensorflow: no backend could be initialised \(.*@tensorflow\/tfjs-core is not installed/,
    );
    await expect(selectBackend('gpu' as never)).rejects.toThrow(/expected one of auto, tensorflow-gpu/);
  });

  it('really initialises the cpu and wasm backends', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const logs: string[] = [];
    expect((await selectBackend('cpu', { log: (m) => logs.push(m) })).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const wasm = await selectBackend('wasm', { log: (m) => logs.push(m) });
    expect(wasm.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    const sum = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).dataSync());
    expect(Array.from(sum)).toEqual([4, 6]);
    // Whether @lab/tfjs-train is importable here or not, the outcome is said plainly.
    if (!wasm.fastTraining) expect(logs.some((l) => l.startsWith('wasm: no fast training kernels (@lab/tfjs-train'))).toBe(true);
    await tf.setBackend('cpu');
  });
});
