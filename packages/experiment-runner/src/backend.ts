import { InputError } from './input-error';
export type BackendPreference = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendName = Exclude<BackendPreference, 'auto'>;

export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendSelection {
  /** The backend that was chosen. */
  name: BackendName;
  /** The TF.js backend name it registered (`tensorflow`, `wasm`, `cpu`). */
  tfBackend: string;
  /** Whether `@lab/tfjs-train`'s fast training kernels were installed (wasm only). */
  fastTraining: boolean;
  /** One plain sentence per attempt that failed before this one. */
  failures: string[];
}

export interface SelectBackendOptions {
  /** Receives each failed attempt once, in plain words. Default: console.warn. */
  log?: (message: string) => void;
  /** Module loader; tests replace it to simulate missing packages. */
  importModule?: (specifier: string) => Promise<unknown>;
}

type TfCore = { setBackend(name: string): Promise<boolean>; ready(): Promise<void>; getBackend(): string };

const AUTO_ORDER: BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

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

async function attempt(
  name: BackendName,
  load: (specifier: string) => Promise<unknown>,
  log: (message: string) => void,
): Promise<{ ok: true; tfBackend: string; fastTraining: boolean } | { ok: false; reason: string }> {
  const pkg = { 'tensorflow-gpu': '@tensorflow/tfjs-node-gpu', tensorflow: '@tensorflow/tfjs-node', wasm: '@tensorflow/tfjs-backend-wasm', cpu: '@tensorflow/tfjs-backend-cpu' }[name];
  const tfBackend = name === 'tensorflow-gpu' ? 'tensorflow' : name;
  let tf: TfCore;
  try {
    tf = (await load('@tensorflow/tfjs-core')) as TfCore;
  } catch (error) {
    return { ok: false, reason: describeImportError('@tensorflow/tfjs-core', error) };
  }
  try {
    await load(pkg);
  } catch (error) {
    return { ok: false, reason: describeImportError(pkg, error) };
  }
  let fastTraining = false;
  if (name === 'wasm') {
    try {
      const train = (await load('@lab/tfjs-train')) as { useFastTraining?: (backend: string) => Promise<unknown> | unknown };
      if (typeof train.useFastTraining !== 'function') throw new Error('it has no useFastTraining export');
      await train.useFastTraining('wasm');
      fastTraining = true;
    } catch (error) {
      const message = `wasm: no fast training kernels (${describeImportError('@lab/tfjs-train', error)}); wasm trains with the stock kernels`;
      if (!alreadyLogged.has(message)) {
        alreadyLogged.add(message);
        log(message);
      }
    }
  }
  try {
    const ok = await tf.setBackend(tfBackend);
    if (!ok) return { ok: false, reason: `the ${tfBackend} backend failed to initialise` };
    await tf.ready();
  } catch (error) {
    return { ok: false, reason: `the ${tfBackend} backend failed to initialise (${(error as Error).message})` };
  }
  return { ok: true, tfBackend, fastTraining };
}

/**
 * Chooses and initialises a TF.js backend by dynamic import only, so none is a hard dependency.
 * `auto` tries @tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node, wasm (with @lab/tfjs-train's fast
 * training kernels when that package is importable), then cpu. Each failure is logged once.
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
    const result = await attempt(name, load, log);
    if (result.ok) return { name, tfBackend: result.tfBackend, fastTraining: result.fastTraining, failures };
    const message = `backend ${name} unavailable: ${result.reason}${pref === 'auto' && name !== 'cpu' ? '; trying the next one' : ''}`;
    failures.push(message);
    if (!alreadyLogged.has(message)) {
      alreadyLogged.add(message);
      log(message);
    }
  }
  throw new InputError(`backend ${pref}: no backend could be initialised (${failures.join('; ')})`);
}
