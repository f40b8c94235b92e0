/**
 * Builds (once per machine, cached) and loads the optional native kernels in native/fast-conv.c.
 *
 * Compiled from source with the machine's C compiler against Node-API headers that Node
 * installs ship (`<prefix>/include/node`), so nothing is downloaded and no node-gyp is needed;
 * when there is no compiler or no headers the caller gets the reason and the pure wasm/JS
 * kernels stay in use. Built lazily rather than in an install script because package managers
 * may skip install scripts (pnpm does by default), and because -march=native must describe the
 * machine that runs the code.
 */

import type { BatchNormStatsFn, BatchNormTrainingGradFn } from './batch-norm-training';
import type { AdamUpdateFn } from './fused-adam';

/** The functions native/fast-conv.c exports (the ones shared with JS kernels have their exact signatures). Tensors are Float32Arrays (views of the wasm heap or cpu arrays). */
export interface NativeKernels {
  conv2dForward(
    x: Float32Array,
    filter: Float32Array,
    y: Float32Array,
    geometry: Int32Array,
    bias: Float32Array | null,
    activation: number,
    leakyAlpha: number,
  ): void;
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array): void;
  convBatchNormForward(
    arrays: {
      x: Float32Array;
      filter: Float32Array;
      scale: Float32Array | null;
      offset: Float32Array | null;
      movingMean: Float32Array;
      movingVariance: Float32Array;
      y: Float32Array;
      conv: Float32Array;
      stats: Float32Array;
      newMovingMean: Float32Array;
      newMovingVariance: Float32Array;
      residual: Float32Array | null;
    },
    geometry: Int32Array,
    epsilon: number,
    momentum: number,
    relu: boolean,
    training: boolean,
  ): void;
  convBatchNormBackward(
    arrays: {
      dy: Float32Array;
      x: Float32Array;
      filter: Float32Array;
      conv: Float32Array;
      y: Float32Array;
      stats: Float32Array;
      scale: Float32Array | null;
      dx: Float32Array | null;
      dFilter: Float32Array;
      dScale: Float32Array;
      dOffset: Float32Array;
      dResidual: Float32Array | null;
    },
    geometry: Int32Array,
    epsilon: number,
    relu: boolean,
    training: boolean,
  ): void;
  adamUpdate: AdamUpdateFn;
  batchNormStats: BatchNormStatsFn;
  batchNormTrainingGrad: BatchNormTrainingGradFn;
  batchNormApply(
    x: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    scale: Float32Array | null,
    offset: Float32Array | null,
    epsilon: number,
    y: Float32Array,
  ): void;
  maxPoolGrad(x: Float32Array, dy: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  setThreads(threads: number): number;
  /** Largest patch matrix (floats) built at once; larger batches are processed in chunks of images. */
  setScratchLimit(floats: number): number;
  /** Forces the built-in GEMM's register tile ('wide', 'narrow', 'half'; null: chosen per call by the output width). For tests. */
  setTile(tile: NativeTile | null): string;
  /** Where convolutions take the direct path (stride 1, no dilation, outputs a multiple of 8 channels): 'auto' by the shape rule, or forced. For tests and benchmarks. */
  setDirectConv(mode: DirectConvMode): string;
  info(): NativeInfo;
}

/** Register tiles of the built-in GEMM: two vectors wide, one vector wide (outputs of few channels), half a vector wide (AVX2 and AVX-512 only). */
export type NativeTile = 'wide' | 'narrow' | 'half';

/** When the native convolutions read a padded input in place (direct) instead of building a patch matrix (im2col + GEMM). */
export type DirectConvMode = 'auto' | 'always' | 'never';

/** What the loaded addon runs on. */
export interface NativeInfo {
  gemm: NativeGemm;
  /** The library file opened for oneDNN / OpenBLAS ('' for the built-in GEMM). */
  library: string;
  threads: number;
  /** Vector instructions the addon was compiled for: 'avx512', 'avx2', 'avx', 'neon', 'sse2' or 'generic'. */
  isa: string;
  /** Floats per vector register of that target. */
  vectorFloats: number;
  /** The built-in GEMM's register tiles (rows x columns), e.g. '6x16 wide, 12x8 narrow, 12x4 half'. */
  tiles: string;
}

/**
 * Which vector instructions to compile for: 'native' (default: everything this CPU has,
 * -march=native), 'avx2' (x86 CPUs with AVX2: what most laptops and desktops run; on an AVX-512
 * machine this builds the AVX2 code path, for tests and benchmarks), 'sse2' (any x86-64).
 */
export type NativeVectorTarget = 'native' | 'avx2' | 'sse2';

/** Which SGEMM the native kernels run on: oneDNN or OpenBLAS when found (dlopen), else a built-in one. */
export type NativeGemm = 'onednn' | 'openblas' | 'builtin';

export interface NativeBuildOptions {
  /** C compiler (default: $CC, else `cc`). */
  compiler?: string;
  /** Folder for the compiled addon (default: $LAB_TFJS_TRAIN_CACHE, else ~/.cache/lab-tfjs-train, else the temp folder). */
  cacheDir?: string;
  /** Folder holding node_api.h (default: $LAB_TFJS_TRAIN_NODE_HEADERS, else next to the running node). */
  headersDir?: string;
  /** Vector instructions to compile for (default 'native'). */
  vectorTarget?: NativeVectorTarget;
}

export type NativeLoadResult =
  | { ok: true; kernels: NativeKernels; path: string; built: boolean }
  | { ok: false; reason: string };

const loaded = new Map<string, Promise<NativeLoadResult>>();

// -fno-math-errno: with errno semantics sqrtf cannot be vectorised, which made the Adam pass 2.5x
// slower (measured); nothing here reads errno. -march=native is tried first, then dropped.
const C_FLAGS = ['-O3', '-fno-math-errno', '-std=gnu11', '-fPIC', '-shared', '-DNAPI_VERSION=8'];

/** Builds (if needed) and loads the native kernels; never throws: failures come back as a reason. */
export function loadNativeKernels(options: NativeBuildOptions = {}): Promise<NativeLoadResult> {
  const key = JSON.stringify(options);
  let result = loaded.get(key);
  if (result == null) {
    result = buildAndLoad(options).catch((e: unknown) => ({ ok: false as const, reason: (e as Error).message }));
    loaded.set(key, result);
  }
  return result;
}

async function buildAndLoad(options: NativeBuildOptions): Promise<NativeLoadResult> {
  if (typeof process === 'undefined' || process.versions?.node == null) {
    return { ok: false, reason: 'not running in Node.js' };
  }
  const [{ execFile }, fs, os, path, crypto, { fileURLToPath }, { promisify }] = await Promise.all([
    import('node:child_process'),
    import('node:fs'),
    import('node:os'),
    import('node:path'),
    import('node:crypto'),
    import('node:url'),
    import('node:util'),
  ]);
  const run = promisify(execFile);
  const sourcePath = fileURLToPath(new URL('../native/fast-conv.c', import.meta.url));
  if (!fs.existsSync(sourcePath)) return { ok: false, reason: `native source missing: ${sourcePath}` };
  const source = fs.readFileSync(sourcePath);

  const headerCandidates = [
    options.headersDir,
    process.env.LAB_TFJS_TRAIN_NODE_HEADERS,
    path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].filter((d): d is string => typeof d === 'string' && d.length > 0);
  const headersDir = headerCandidates.find((d) => fs.existsSync(path.join(d, 'node_api.h')));
  if (headersDir == null) {
    return { ok: false, reason: `no Node-API headers (node_api.h) in ${headerCandidates.join(', ')}; set LAB_TFJS_TRAIN_NODE_HEADERS` };
  }
  const compiler = options.compiler ?? process.env.CC ?? 'cc';
  const cpu = cpuSignature(fs);
  const targetFlags = vectorTargetFlags(options.vectorTarget ?? 'native', cpu, process.arch);
  if (typeof targetFlags === 'string') return { ok: false, reason: targetFlags };

  // The key covers everything that changes the binary, including the CPU (-march=native), so a
  // cache folder shared between machines never hands one machine another's instructions.
  const hash = crypto
    .createHash('sha256')
    .update(source)
    .update(`${compiler}|${C_FLAGS.join(' ')}|${targetFlags.join(' ')}|${process.platform}|${process.arch}|${cpu}|${headersDir}`)
    .digest('hex')
    .slice(0, 16);
  // An explicit folder is the only one used; otherwise the first writable of the defaults.
  const cacheDirs = (
    options.cacheDir != null
      ? [options.cacheDir]
      : [
          process.env.LAB_TFJS_TRAIN_CACHE,
          path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lab-tfjs-train'),
          path.join(os.tmpdir(), 'lab-tfjs-train'),
        ]
  ).filter((d): d is string => typeof d === 'string' && d.length > 0);

  for (const dir of cacheDirs) {
    const target = path.join(dir, `fast-conv-${hash}.node`);
    if (fs.existsSync(target)) {
      const kernels = tryLoad(target);
      if (kernels != null) return { ok: true, kernels, path: target, built: false };
    }
  }

  const failures: string[] = [];
  for (const dir of cacheDirs) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch {
      failures.push(`${dir}: not writable`);
      continue;
    }
    const target = path.join(dir, `fast-conv-${hash}.node`);
    const temp = `${target}.${process.pid}.${Date.now()}.tmp`;
    // macOS links shared objects with undefined symbols only when told to (Node provides napi_*).
    const platformFlags = process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : [];
    const common = [...C_FLAGS, ...platformFlags, `-I${headersDir}`, sourcePath, '-o', temp, '-ldl', '-lpthread', '-lm'];
    let error = '';
    // 'native' retries without -march=native (compilers that lack it); a named target must build as asked.
    const attempts = options.vectorTarget == null || options.vectorTarget === 'native' ? [[...targetFlags, ...common], common] : [[...targetFlags, ...common]];
    for (const flags of attempts) {
      try {
        await run(compiler, flags, { timeout: 120_000 });
        error = '';
        break;
      } catch (e) {
        const err = e as { stderr?: string; message: string; code?: string };
        if (err.code === 'ENOENT') {
          fs.rmSync(temp, { force: true });
          return { ok: false, reason: `no C compiler '${compiler}' (install one, e.g. Debian's gcc, or set CC)` };
        }
        error = (err.stderr || err.message).split('\n').slice(0, 3).join(' ');
      }
    }
    if (error !== '') {
      fs.rmSync(temp, { force: true });
      return { ok: false, reason: `compiling ${sourcePath} failed: ${error}` };
    }
    // Write-then-rename: a concurrent process either sees no file or a complete one.
    fs.renameSync(temp, target);
    const kernels = tryLoad(target);
    if (kernels == null) return { ok: false, reason: `built ${target} but could not load it` };
    return { ok: true, kernels, path: target, built: true };
  }
  return { ok: false, reason: `no writable cache folder (${failures.join('; ')})` };
}

function tryLoad(file: string): NativeKernels | null {
  try {
    const module = { exports: {} as NativeKernels };
    process.dlopen(module, file);
    return module.exports;
  } catch {
    return null;
  }
}

/** Compiler flags for a vector target, or why this CPU cannot run it. */
export function vectorTargetFlags(target: NativeVectorTarget, cpu: string, arch: string): string[] | string {
  const flags = new Set(cpu.split('|')[1]?.split(/\s+/) ?? []);
  switch (target) {
    case 'native':
      return ['-march=native'];
    case 'avx2':
      if (arch !== 'x64') return `vectorTarget 'avx2' needs an x86-64 CPU (this is ${arch})`;
      if (!flags.has('avx2') || !flags.has('fma')) return "vectorTarget 'avx2': this CPU has no AVX2/FMA";
      // The machine's own tuning and extensions, minus AVX-512: the code an AVX2-only CPU gets.
      return ['-march=native', '-mno-avx512f'];
    case 'sse2':
      if (arch !== 'x64') return `vectorTarget 'sse2' needs an x86-64 CPU (this is ${arch})`;
      return ['-march=x86-64', '-mtune=generic'];
    default:
      return `vectorTarget must be 'native', 'avx2' or 'sse2', got '${String(target)}'`;
  }
}

function cpuSignature(fs: typeof import('node:fs')): string {
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1] ?? '';
    const flags = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(text)?.[1] ?? '';
    return `${model}|${flags}`;
  } catch {
    return 'unknown-cpu';
  }
}

/** Threads a native kernel should use by default: $OMP_NUM_THREADS when set, else every core. */
export async function defaultNativeThreads(): Promise<number> {
  const fromEnv = Number.parseInt(process.env.OMP_NUM_THREADS ?? '', 10);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  const os = await import('node:os');
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}
