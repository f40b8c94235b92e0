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
      'backend webgpu unavailable: webgpu is not installed; trying the next one',
      'backend tensorflow unavailable: @tensorflow/tfjs-node is not installed; trying the next one',
    ]);
    // Same failures again: not logged a second time.
    await selectBackend('auto', { log: (m) => logs.push(m), importModule });
    expect(logs).toHaveLength(3);
  });

  it("logs whether @lab/tfjs-train's native kernels are in use, and why not", async () => {
    for (const [native, expected] of [
      [{ enabled: true, gemm: 'onednn', threads: 2 }, 'wasm: @lab/tfjs-train native kernels on onednn SGEMM'],
      [{ enabled: true, gemm: 'builtin', isa: 'avx2', threads: 1, suggestion: 'optional: oneDNN (apt install libdnnl2)' }, 'wasm: @lab/tfjs-train native kernels on builtin SGEMM, avx2'],
      [{ enabled: false, reason: "no C compiler 'cc'" }, "wasm: @lab/tfjs-train no native kernels (no C compiler 'cc'); training on the wasm/JS kernels, ~5x slower"],
    ] as const) {
      const registered = new Set<string>();
      const logs: string[] = [];
      const chosen = await selectBackend('wasm', {
        log: (m) => logs.push(m),
        importModule: async (specifier: string) => {
          if (specifier === '@tensorflow/tfjs-core') return fakeTf(registered, { name: '' });
          if (specifier === '@tensorflow/tfjs-backend-wasm') {
            registered.add('wasm');
            return {};
          }
          if (specifier === '@lab/tfjs-train') return { useFastTraining: async () => ({ native }) };
          throw notFound(specifier);
        },
      });
      expect(logs).toContain(expected);
      // A library hint is printed once, on a line of its own, and not recorded.
      if ('suggestion' in native) expect(logs).toContain(`wasm: ${native.suggestion}`);
      // Recorded for run.json and the report, without the "wasm: @lab/tfjs-train " prefix.
      expect(chosen.native).toBe(expected.replace('wasm: @lab/tfjs-train ', ''));
    }
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
    const kernels: string[] = [];
    const cpu = await selectBackend('auto', {
      log: (m) => logs.push(m),
      importModule: async (s) => {
        if (s === '@tensorflow/tfjs-core') return fakeTf(registered, active);
        if (s === '@tensorflow/tfjs-backend-wasm' || s === '@tensorflow/tfjs-backend-cpu') return {};
        if (s === '@lab/tfjs-train') return { useFastTraining: async (b: string) => kernels.push(b) };
        throw notFound(s);
      },
    });
    expect(cpu).toMatchObject({ name: 'cpu', fastTraining: true });
    expect(cpu.failures[3]).toBe('backend wasm unavailable: the wasm backend failed to initialise; trying the next one');
    // The kernels go in for whichever of wasm and cpu is tried.
    expect(kernels).toEqual(['wasm', 'cpu']);
  });

  it('auto skips a wasm that cannot train (stock kernels, no @lab/tfjs-train) and falls back to cpu, saying why once', async () => {
    const active = { name: '' };
    const tf = { ...fakeTf(new Set(['wasm', 'cpu']), active), getKernel: () => undefined };
    const tried: string[] = [];
    const setBackend = tf.setBackend;
    tf.setBackend = async (name: string) => (tried.push(name), setBackend(name));
    const importModule = async (s: string) => {
      if (s === '@tensorflow/tfjs-core') return tf;
      if (s === '@tensorflow/tfjs-backend-wasm' || s === '@tensorflow/tfjs-backend-cpu') return {};
      throw notFound(s);
    };
    const logs: string[] = [];
    const chosen = await selectBackend('auto', { log: (m) => logs.push(m), importModule });
    expect(chosen).toMatchObject({ name: 'cpu', tfBackend: 'cpu', fastTraining: false });
    // wasm is never initialised: it was ruled out before.
    expect(tried).toEqual(['cpu']);
    const wasmFailure =
      "backend wasm unavailable: wasm cannot train convolutional networks here: it lacks the training kernel Conv2DBackpropFilter and @lab/tfjs-train's kernels are not installed (@lab/tfjs-train is not installed); trying the next one";
    expect(chosen.failures[3]).toBe(wasmFailure);
    expect(logs).toContain(wasmFailure);
    expect(logs).toContain("cpu: @lab/tfjs-train's training kernels are not installed (@lab/tfjs-train is not installed); cpu trains with its stock kernels, whose convolution filter gradient is slow");
    const count = logs.length;
    await selectBackend('auto', { log: (m) => logs.push(m), importModule });
    expect(logs).toHaveLength(count);
  });

  it("auto uses listMissingTrainingKernels when the kernels fail to install: wasm only if nothing is missing", async () => {
    const active = { name: '' };
    const tf = fakeTf(new Set(['wasm', 'cpu']), active);
    const withMissing = (missing: string[]) => async (s: string) => {
      if (s === '@tensorflow/tfjs-core') return tf;
      if (s === '@tensorflow/tfjs-backend-wasm' || s === '@tensorflow/tfjs-backend-cpu') return {};
      if (s === '@lab/tfjs-train') {
        return {
          useFastTraining: async (b: string) => {
            throw new Error(`registration exploded on ${b} (${missing.length} missing)`);
          },
          listMissingTrainingKernels: (b: string) => (b === 'wasm' ? missing : []),
        };
      }
      throw notFound(s);
    };
    const logs: string[] = [];
    const trains = await selectBackend('auto', { log: (m) => logs.push(m), importModule: withMissing([]) });
    expect(trains).toMatchObject({ name: 'wasm', fastTraining: false });
    const cannot = await selectBackend('auto', { log: (m) => logs.push(m), importModule: withMissing(['Conv2DBackpropFilter', 'MaxPoolGrad', 'AvgPoolGrad', 'EluGrad', 'LRNGrad']) });
    expect(cannot).toMatchObject({ name: 'cpu', fastTraining: false });
    expect(cannot.failures[3]).toContain(
      'wasm cannot train convolutional networks here: it lacks the training kernels Conv2DBackpropFilter, MaxPoolGrad, AvgPoolGrad and 2 more and @lab/tfjs-train\'s kernels are not installed (@lab/tfjs-train could not be loaded (registration exploded on wasm (5 missing)))',
    );
  });

  it('an explicit wasm that cannot train is kept, with a warning that it cannot train convolutions', async () => {
    const active = { name: '' };
    const tf = { ...fakeTf(new Set(['wasm']), active), getKernel: () => undefined };
    const logs: string[] = [];
    const chosen = await selectBackend('wasm', {
      log: (m) => logs.push(m),
      importModule: async (s) => {
        if (s === '@tensorflow/tfjs-core') return tf;
        if (s === '@tensorflow/tfjs-backend-wasm') return {};
        if (s === '@lab/tfjs-train') throw new Error('explicit-wasm test: kernels unavailable');
        throw notFound(s);
      },
    });
    expect(chosen).toMatchObject({ name: 'wasm', fastTraining: false, failures: [] });
    expect(active.name).toBe('wasm');
    expect(logs).toEqual([
      "wasm: kept as asked, but wasm cannot train convolutions without @lab/tfjs-train: it lacks the training kernel Conv2DBackpropFilter and @lab/tfjs-train's kernels are not installed (@lab/tfjs-train could not be loaded (explicit-wasm test: kernels unavailable)); use --backend cpu or auto to train",
    ]);
  });

  it('an explicit backend that is missing is an error naming it', async () => {
    await expect(selectBackend('tensorflow', { log: () => {}, importModule: async (s) => { throw notFound(s); } })).rejects.toThrow(
      /backend tensorflow: no backend could be initialised \(.*@tensorflow\/tfjs-core is not installed/,
    );
    await expect(selectBackend('gpu' as never)).rejects.toThrow(/expected one of auto, tensorflow-gpu/);
  });

  it('really: stock wasm lacks Conv2DBackpropFilter, so auto without @lab/tfjs-train takes cpu', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const chosen = await selectBackend('auto', {
      log: () => {},
      importModule: async (s) => {
        if (s === '@tensorflow/tfjs-core' || s === '@tensorflow/tfjs-backend-wasm' || s === '@tensorflow/tfjs-backend-cpu') return import(/* @vite-ignore */ s);
        throw notFound(s);
      },
    });
    expect(chosen).toMatchObject({ name: 'cpu', fastTraining: false });
    expect(chosen.failures[3]).toMatch(/^backend wasm unavailable: wasm cannot train convolutional networks here: it lacks the training kernel Conv2DBackpropFilter/);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('really initialises the cpu and wasm backends', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const logs: string[] = [];
    // @lab/tfjs-train is a dev dependency: its kernels go in for cpu too.
    expect(await selectBackend('cpu', { log: (m) => logs.push(m) })).toMatchObject({ name: 'cpu', fastTraining: true });
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
