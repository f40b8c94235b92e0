// What the training benchmarks share: running a measurement in its own process, finding PyTorch,
// describing the CPU a figure was taken on.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const tsx = join(root, 'node_modules/.bin/tsx');

/** One of the lab's ResNet-18 configurations a training benchmark times. */
export interface BenchModel {
  key: string;
  label: string;
  width: number;
  size: number;
  batch: number;
  smallStem: boolean;
}

/** A measurement process's `RESULT {json}` (or first JSON line), or why there is none. */
export type ProcessResult = Record<string, unknown> & { error?: string };

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs a measurement in its own process (clean memory, its own thread settings); `onReady` is
 * called when it prints READY (workers that wait for a go signal so that their timings overlap).
 */
export function runProcess<R extends ProcessResult = ProcessResult>(command: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}, onReady?: () => void): Promise<R> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (onReady != null && out.includes('READY\n')) {
        onReady();
        onReady = undefined;
      }
    });
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RESULT ') || l.startsWith('{'));
      if (line != null) return resolve(JSON.parse(line.replace(/^RESULT /, '')) as R);
      const why = signal === 'SIGKILL' ? `timed out after ${timeoutMs / 1000} s` : `exit ${code}: ${err.trim().split('\n').slice(-1)[0] ?? ''}`;
      resolve({ error: why } as R);
    });
  });
}

/** Debian's python3-torch lives in the system Python, which a pyenv shim may hide. */
export function findTorchPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
      return py;
    } catch {
      // try the next interpreter
    }
  }
  return null;
}

/**
 * The environment that caps PyTorch at the vector instructions our native build is given, so that
 * `--vector-target avx2` on an AVX-512 machine compares both sides as an AVX2-only CPU would run
 * them: oneDNN's JIT (convolutions) and ATen's dispatched CPU kernels otherwise pick AVX-512 by
 * themselves (measured here: the full-scale step 134 ms with AVX-512, 185 ms capped to AVX2).
 * 'native' leaves PyTorch to choose, as on the user's machine.
 */
export function torchIsaEnv(vectorTarget: string): NodeJS.ProcessEnv {
  if (vectorTarget === 'avx2') return { ONEDNN_MAX_CPU_ISA: 'AVX2', DNNL_MAX_CPU_ISA: 'AVX2', ATEN_CPU_CAPABILITY: 'avx2' };
  if (vectorTarget === 'sse2') return { ONEDNN_MAX_CPU_ISA: 'SSE41', DNNL_MAX_CPU_ISA: 'SSE41', ATEN_CPU_CAPABILITY: 'default' };
  return {};
}

/** One line saying how PyTorch's instruction set was capped (empty for 'native'). */
export function torchIsaNote(vectorTarget: string): string {
  const env = torchIsaEnv(vectorTarget);
  const keys = Object.keys(env);
  return keys.length === 0 ? '' : `PyTorch capped to the same instructions: ${keys.map((k) => `${k}=${env[k]}`).join(' ')}`;
}

/** The CPU model, cores, vector extensions and GEMM libraries installed: what a speed figure depends on. */
export function cpuDescription(): string {
  let model = 'unknown CPU';
  let flags: string[] = [];
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    model = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? model;
    flags = (/^(?:flags|Features)\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(/\s+/);
  } catch {
    // not Linux: leave it unknown
  }
  const vector = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512vl', 'asimd', 'sve'].filter((f) => flags.includes(f));
  let libraries = 'none';
  try {
    const ld = execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' });
    const found = ['libdnnl', 'libopenblas'].filter((l) => ld.includes(`${l}.so`));
    if (found.length) libraries = found.join(', ');
  } catch {
    // no ldconfig
  }
  return `${model}, ${execFileSync('nproc').toString().trim()} cores; vector extensions: ${vector.join(' ') || 'none found'}; GEMM libraries installed: ${libraries}`;
}
