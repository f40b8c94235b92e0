// pnpm bench:train — ResNet-18 training-step benchmark of the offline TF.js backends against
// PyTorch CPU. Every configuration runs in its own process (bench/train-step-worker.ts), so
// peak RSS is per configuration; TF.js-with-our-kernels and PyTorch run alternately in rounds
// and medians are taken over all rounds, because the machine may be shared (noisy timings).
//
// "wasm + @lab/tfjs-train" rows: "pure" is the wasm/JS kernels alone (what any machine gets);
// "native" adds the kernels compiled on this machine (native/fast-conv.c: im2col + oneDNN /
// OpenBLAS / built-in SGEMM, fused Adam), with 2 threads and with 1.
//
// Options: --rounds N (2)  --reps N per round (3)  --widths 0.25,1  --concurrent-steps N (8)
//          --cpu-stock-full (time one full-width cpu-stock step; > 140 s)  --skip-cpu  --skip-torch
// A default run takes ~10 minutes on 2 shared cores (the cpu rows dominate; --skip-cpu for ~4).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsx = join(root, 'node_modules/.bin/tsx');
const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    reps: { type: 'string', default: '3' },
    widths: { type: 'string', default: '0.25,1' },
    'concurrent-steps': { type: 'string', default: '8' },
    'cpu-stock-full': { type: 'boolean', default: false },
    'skip-cpu': { type: 'boolean', default: false },
    'skip-torch': { type: 'boolean', default: false },
  },
});
const rounds = Number(opts.rounds);
const reps = Number(opts.reps);
const widths = opts.widths!.split(',').map(Number);

type Result = Record<string, unknown> & {
  forwardMs?: number[];
  stepMs?: number[];
  stepCpuMs?: number[];
  forwardCpuMs?: number[];
  stepWindow?: [number, number];
  peakRssMB?: number;
  stepError?: string;
  error?: string;
};

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function runProcess(command: string, args: string[], timeoutMs: number, onReady?: () => void): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
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
      if (line != null) return resolve(JSON.parse(line.replace(/^RESULT /, '')) as Result);
      const why = signal === 'SIGKILL' ? `timed out after ${timeoutMs / 1000} s` : `exit ${code}: ${err.trim().split('\n').slice(-1)[0] ?? ''}`;
      resolve({ error: why });
    });
  });
}

function tfjs(backend: string, kernels: 'stock' | 'ours', width: number, extra: Record<string, number | string>, timeoutMs: number, onReady?: () => void) {
  const args = [join(root, 'bench/train-step-worker.ts'), '--backend', backend, '--kernels', kernels, '--width', String(width)];
  for (const [k, v] of Object.entries(extra)) args.push(`--${k}`, String(v));
  return runProcess(tsx, args, timeoutMs, onReady);
}

function findTorchPython(): string | null {
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

const python = opts['skip-torch'] ? null : findTorchPython();
function torch(width: number, repsTorch: number, timeoutMs: number, threads = 2) {
  return runProcess(python!, [join(root, 'bench/train_step_torch.py'), '--width', String(width), '--reps', String(repsTorch), '--threads', String(threads)], timeoutMs);
}

interface Row {
  name: string;
  width: number;
  forward: number[];
  step: number[];
  stepCpu: number[];
  rss: number[];
  note?: string;
}
const rows: Row[] = [];
function row(name: string, width: number): Row {
  let r = rows.find((x) => x.name === name && x.width === width);
  if (r == null) rows.push((r = { name, width, forward: [], step: [], stepCpu: [], rss: [] }));
  return r;
}
let nativeGemm = '';
function record(name: string, width: number, res: Result): void {
  const r = row(name, width);
  if (res.error) r.note = res.error;
  if (res.stepError) r.note = `cannot train: ${res.stepError}`;
  r.forward.push(...(res.forwardMs ?? []));
  r.step.push(...(res.stepMs ?? []));
  r.stepCpu.push(...(res.stepCpuMs ?? []));
  if (res.peakRssMB != null) r.rss.push(res.peakRssMB);
  const native = res.native as { enabled: boolean; gemm?: string; reason?: string } | undefined;
  if (native != null && !native.enabled && name.includes('native')) r.note = `native kernels unavailable: ${native.reason}`;
  if (native?.enabled) nativeGemm = native.gemm ?? nativeGemm;
}

const load0 = loadavg()[0];
console.log(`bench:train  ResNet-18 (torchvision layout, 1 input channel, 6 classes), batch [4, 128, 128, 1], Adam, BN in training mode`);
console.log(`rounds ${rounds} x ${reps} timed reps after warm-up; load average at start ${load0.toFixed(1)} on ${execFileSync('nproc').toString().trim()} cores`);
if (python == null && !opts['skip-torch']) {
  console.log(
    'PyTorch not found: install Debian python3-torch for the reference column:\n' +
      '  flock /tmp/angle-lab-apt.lock apt-get update && flock /tmp/angle-lab-apt.lock apt-get install -y -o DPkg::Lock::Timeout=600 python3-torch',
  );
}

for (const width of widths) {
  const label = width === 1 ? 'ResNet-18' : `ResNet-18 x${width}`;
  console.error(`[${label}] wasm stock`);
  record('wasm stock', width, await tfjs('wasm', 'stock', width, { reps, warmup: 1, 'step-warmup': 0 }, 600_000));
  if (!opts['skip-cpu']) {
    if (width < 1 || opts['cpu-stock-full']) {
      console.error(`[${label}] cpu stock (one step)`);
      record('cpu stock', width, await tfjs('cpu', 'stock', width, { reps: 1, warmup: 0, 'forward-reps': 1, 'step-warmup': 0 }, 400_000));
    } else {
      row('cpu stock', width).note = 'skipped: > 140 s/step (its Conv2DBackpropFilter is ~80x its forward conv); --cpu-stock-full times one step';
    }
  }
  for (let r = 0; r < rounds; r++) {
    console.error(`[${label}] round ${r + 1}/${rounds}: wasm ours (pure, native 2t, native 1t), torch, cpu ours`);
    record('wasm + ours, pure', width, await tfjs('wasm', 'ours', width, { reps, warmup: 1, native: 'off' }, 600_000));
    record('wasm + ours, native 2t', width, await tfjs('wasm', 'ours', width, { reps, warmup: 1, threads: 2 }, 600_000));
    record('wasm + ours, native 1t', width, await tfjs('wasm', 'ours', width, { reps, warmup: 1, threads: 1 }, 600_000));
    if (python != null) record('PyTorch CPU (2 threads)', width, await torch(width, reps, 600_000));
    // One thread: its CPU seconds per step compare per-core efficiency with the single-threaded
    // wasm backend, a figure much less sensitive to other load on the machine than wall time.
    if (python != null && r === 0) record('PyTorch CPU (1 thread)', width, await torch(width, reps, 600_000, 1));
    if (!opts['skip-cpu'] && (width < 1 || r === 0)) {
      record('cpu + ours, pure', width, await tfjs('cpu', 'ours', width, { reps: width < 1 ? reps : 2, warmup: 1, native: 'off' }, 600_000));
    }
  }
}

const fmt = (v: number[]) => (v.length ? (median(v) / 1000).toFixed(3) : '-');
const torchRow = (w: number, threads = 2) => rows.find((r) => r.name === `PyTorch CPU (${threads} thread${threads > 1 ? 's' : ''})` && r.width === w);
const ratio = (a: number[], b: number[] | undefined) => (b && b.length && a.length ? `${(median(a) / median(b)).toFixed(2)}x` : '-');
console.log('');
console.log(
  'model'.padEnd(16) + 'configuration'.padEnd(26) + 'forward s'.padStart(10) + 'step s'.padStart(10) + 'step cpu-s'.padStart(11) +
    'peak RSS MB'.padStart(12) + 'n'.padStart(4) + '  step/PT-2t  fwd/PT-2t  step/PT-1t  cpu-s/PT-1t',
);
for (const r of rows) {
  const t2 = torchRow(r.width, 2);
  const t1 = torchRow(r.width, 1);
  console.log(
    (r.width === 1 ? 'ResNet-18' : `ResNet-18 x${r.width}`).padEnd(16) +
      r.name.padEnd(26) +
      fmt(r.forward).padStart(10) +
      fmt(r.step).padStart(10) +
      fmt(r.stepCpu).padStart(11) +
      (r.rss.length ? Math.max(...r.rss).toFixed(0) : '-').padStart(12) +
      String(r.step.length).padStart(4) +
      `  ${ratio(r.step, t2?.step).padEnd(11)}${ratio(r.forward, t2?.forward).padEnd(11)}${ratio(r.step, t1?.step).padEnd(12)}${ratio(r.stepCpu, t1?.stepCpu)}` +
      (r.note ? `\n${''.padEnd(16)}  note: ${r.note}` : ''),
  );
}
console.log('PT-2t / PT-1t: PyTorch CPU with 2 threads / 1 thread; cpu-s: CPU seconds per step of the whole process (all threads).');
if (nativeGemm !== '') console.log(`native rows ran their GEMMs on: ${nativeGemm}`);

// Two trials at once on two cores (trial-level parallelism, one wasm process per trial, native
// kernels on 1 thread each, as the runner's workers run them) against PyTorch (2 threads)
// running the same two trials one after the other.
const concurrentSteps = Number(opts['concurrent-steps']);
if (widths.includes(1) && concurrentSteps > 0) {
  console.error('[two trials at once] 2 x wasm ours (native, 1 thread each)');
  // Both workers warm up, then start their timed steps together (a go file), so the figure is
  // the steady state of two trials sharing the machine rather than one start-up running alone.
  const goFile = join(mkdtempSync(join(tmpdir(), 'bench-train-')), 'go');
  let ready = 0;
  const onReady = () => {
    if (++ready === 2) writeFileSync(goFile, '');
  };
  const pair = await Promise.all(
    [0, 1].map((): Promise<Result> =>
      tfjs('wasm', 'ours', 1, { reps: concurrentSteps, warmup: 1, 'forward-reps': 0, threads: 1, 'go-file': goFile }, 900_000, onReady).then((r) => {
        // A worker that died before READY must not leave the other waiting.
        if (!existsSync(goFile)) writeFileSync(goFile, '');
        return r;
      }),
    ),
  );
  const windows = pair.map((p) => p.stepWindow).filter((w): w is [number, number] => w != null);
  console.log('');
  if (windows.length === 2) {
    const wall = (Math.max(windows[0][1], windows[1][1]) - Math.min(windows[0][0], windows[1][0])) / 1000;
    const perStep = pair.flatMap((p) => p.stepMs ?? []);
    console.log(`two trials at once (2 wasm processes, native 1 thread each, x ${concurrentSteps} steps): ${wall.toFixed(2)} s wall, median step ${(median(perStep) / 1000).toFixed(3)} s`);
    pair.forEach((p, i) => console.log(`  trial ${i + 1} steps (s): ${(p.stepMs ?? []).map((ms) => (ms / 1000).toFixed(3)).join(' ')}`));
    for (const threads of [2, 1]) {
      const t = torchRow(1, threads);
      if (t == null || t.step.length === 0) continue;
      const sequential = (2 * concurrentSteps * median(t.step)) / 1000;
      console.log(
        `PyTorch ${threads} thread${threads > 1 ? 's' : ''}, same two trials one after the other: ${sequential.toFixed(2)} s (2 x ${concurrentSteps} x median step)` +
          `  ->  ratio ${(wall / sequential).toFixed(2)}x${threads === 2 ? ' (goal < 1)' : ''}`,
      );
    }
  } else {
    console.log(`two trials at once: failed (${pair.map((p) => p.error ?? p.stepError ?? 'ok').join('; ')})`);
  }
}
console.log('');
console.log(`load average now ${loadavg()[0].toFixed(1)} (at start ${load0.toFixed(1)}). Timings on a shared machine are noisy; compare ratios of alternately-run rows.`);
console.log('Goals (issue 8): ResNet-18 step <= 2x PyTorch (2 threads); two trials at once faster than PyTorch running them sequentially.');
if (!existsSync(join(root, 'packages/tfjs-train/src/index.ts'))) console.log('warning: @lab/tfjs-train source not found');
