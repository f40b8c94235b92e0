// pnpm bench:train — training-step benchmark of the lab's models on the offline TF.js path
// (wasm + @lab/tfjs-train) against PyTorch CPU on the same cores. Every configuration runs in its
// own process (bench/train-step-worker.ts); TF.js and PyTorch run alternately in rounds and
// medians are taken over all rounds, because a shared machine makes timings noisy.
//
// Models (the lab's own): demo (ResNet-18 x0.125, 3x3 stem, 32x32x1, batch 4: `pnpm demo`),
// full-scale (ResNet-18, 64x64x1, batch 16: `pnpm demo --scale full`) and ResNet-18 at 128x128x1,
// batch 4. TF.js rows per model: the built-in GEMM forced (LAB_TFJS_TRAIN_GEMM=builtin: what a
// fresh machine without oneDNN / OpenBLAS runs), the GEMM library picked automatically, and the
// native kernels off (LAB_TFJS_TRAIN_NATIVE=off: the pure wasm/JS kernels).
//
// Options: --rounds N (2)  --reps N per round (5)  --models demo,full,r18-128  --warmup-seconds S (3: both
//            sides step at least this long before timing; V8 needs 1-2 s of steps to settle)
//          --vector-target native|avx2|sse2 (native: an AVX-512 machine measures the code an
//            AVX2-only CPU runs with avx2)  --skip-torch  --concurrent-steps N (0: two demo-model
//            trials at once, one process each, against PyTorch running them one after the other)
//          --backend webgpu: WebGPU (Dawn's `webgpu` package) forward and step times per model against
//            the CPU path (wasm + @lab/tfjs-train, GEMM library auto) in the same run; default models
//            demo,full,r18-128,r18-128-b16. On a software adapter (lavapipe) the figures are not GPU figures.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuDescription, findTorchPython, median, root, runProcess, torchIsaEnv, torchIsaNote, tsx, type BenchModel, type ProcessResult } from './bench-support';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    reps: { type: 'string', default: '5' },
    models: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    'vector-target': { type: 'string', default: 'native' },
    'concurrent-steps': { type: 'string', default: '0' },
    'warmup-seconds': { type: 'string', default: '3' },
    'skip-torch': { type: 'boolean', default: false },
  },
});
const webgpu = opts.backend === 'webgpu';
if (!['wasm', 'webgpu'].includes(opts.backend!)) throw new Error(`--backend: expected wasm or webgpu, got ${opts.backend}`);
const rounds = Number(opts.rounds);
const reps = Number(opts.reps);
const vectorTarget = opts['vector-target']!;
const warmupSeconds = opts['warmup-seconds']!;

interface Model extends BenchModel {
  /** Threads of the TF.js native rows, and the PyTorch row the goal compares against. */
  threads: number;
  goal: string;
}
const MODELS: Model[] = [
  { key: 'demo', label: 'demo: R18 x0.125 32x32 b4', width: 0.125, size: 32, batch: 4, smallStem: true, threads: 1, goal: 'step <= 1.0x PyTorch, 1 thread' },
  { key: 'full', label: 'full-scale: R18 64x64 b16', width: 1, size: 64, batch: 16, smallStem: false, threads: 2, goal: 'step <= 1.0x PyTorch, 2 threads' },
  { key: 'r18-128', label: 'R18 128x128 b4', width: 1, size: 128, batch: 4, smallStem: false, threads: 2, goal: 'never slower than native off' },
  { key: 'r18-128-b16', label: 'R18 128x128 b16', width: 1, size: 128, batch: 16, smallStem: false, threads: 2, goal: 'webgpu: faster than the CPU path on a GPU' },
];
const models = (opts.models ?? (webgpu ? 'demo,full,r18-128,r18-128-b16' : 'demo,full,r18-128')).split(',').map((k) => {
  const m = MODELS.find((x) => x.key === k);
  if (m == null) throw new Error(`--models: unknown model '${k}' (expected ${MODELS.map((x) => x.key).join(', ')})`);
  return m;
});

type Result = ProcessResult & {
  forwardMs?: number[];
  stepMs?: number[];
  stepCpuMs?: number[];
  stepWindow?: [number, number];
  peakRssMB?: number;
  stepError?: string;
  error?: string;
};

type Config = 'builtin' | 'auto' | 'off' | 'webgpu';
function tfjs(m: Model, config: Config, extra: Record<string, string | number> = {}, onReady?: () => void): Promise<Result> {
  const args = [join(root, 'bench/train-step-worker.ts'), '--backend', config === 'webgpu' ? 'webgpu' : 'wasm', '--kernels', 'ours', '--width', String(m.width)];
  args.push('--size', String(m.size), '--batch', String(m.batch), '--reps', String(reps), '--warmup', '2', '--warmup-seconds', warmupSeconds, '--vector-target', vectorTarget);
  if (m.smallStem) args.push('--small-stem');
  if (config === 'off') args.push('--native', 'off');
  else args.push('--threads', String(m.threads));
  for (const [k, v] of Object.entries(extra)) args.push(`--${k}`, String(v));
  // The library choice is read when the addon loads: the worker's environment decides it.
  const env: NodeJS.ProcessEnv = config === 'builtin' ? { LAB_TFJS_TRAIN_GEMM: 'builtin' } : { LAB_TFJS_TRAIN_GEMM: '' };
  return runProcess<Result>(tsx, args, 900_000, env, onReady);
}

// The webgpu comparison is against the CPU path of the same run, not PyTorch.
const python = opts['skip-torch'] || webgpu ? null : findTorchPython();
function torch(m: Model, threads: number): Promise<Result> {
  const args = [join(root, 'bench/train_step_torch.py'), '--width', String(m.width), '--size', String(m.size), '--batch', String(m.batch)];
  args.push('--reps', String(reps), '--threads', String(threads), '--warmup', '2', '--warmup-seconds', warmupSeconds);
  if (m.smallStem) args.push('--small-stem');
  return runProcess<Result>(python!, args, 900_000, torchIsaEnv(vectorTarget));
}

interface Row {
  model: Model;
  name: string;
  step: number[];
  forward: number[];
  note?: string;
  isa?: string;
}
const rows: Row[] = [];
function row(model: Model, name: string): Row {
  let r = rows.find((x) => x.model === model && x.name === name);
  if (r == null) rows.push((r = { model, name, step: [], forward: [] }));
  return r;
}
function record(model: Model, name: string, res: Result): void {
  const r = row(model, name);
  if (res.error) r.note = res.error;
  if (res.stepError) r.note = `cannot train: ${res.stepError}`;
  r.step.push(...(res.stepMs ?? []));
  r.forward.push(...(res.forwardMs ?? []));
  const native = res.native as { enabled: boolean; gemm?: string; isa?: string; reason?: string } | undefined;
  if (native?.enabled) r.isa = `${native.gemm} GEMM, ${native.isa}`;
  else if (native != null && !name.includes('off')) r.note = `native kernels unavailable: ${native.reason}`;
  const adapter = res.adapter as { vendor: string; architecture: string; description: string; software: boolean } | undefined;
  if (adapter != null) r.isa = `${adapter.vendor} ${adapter.architecture}${adapter.description ? ` (${adapter.description})` : ''}${adapter.software ? ': SOFTWARE adapter, not GPU figures' : ''}`;
}

const load0 = loadavg()[0];
console.log('bench:train  the lab\'s ResNet-18 models, Adam, BN in training mode, softmax cross-entropy on a fixed batch');
console.log(`CPU: ${cpuDescription()}`);
console.log(`native build: vector target '${vectorTarget}'; rounds ${rounds} x ${reps} timed steps after at least 2 warm-up steps and ${warmupSeconds} s (both sides); load average at start ${load0.toFixed(1)}`);
if (python != null && torchIsaNote(vectorTarget)) console.log(torchIsaNote(vectorTarget));
if (python == null && !opts['skip-torch'] && !webgpu) {
  console.log('PyTorch not found: install Debian python3-torch for the reference rows (apt-get install python3-torch).');
}

for (let r = 0; r < rounds; r++) {
  for (const m of models) {
    console.error(`[${m.label}] round ${r + 1}/${rounds}`);
    if (webgpu) {
      record(m, 'webgpu', await tfjs(m, 'webgpu'));
      record(m, 'CPU path (wasm, GEMM auto)', await tfjs(m, 'auto'));
      continue;
    }
    record(m, 'built-in GEMM (fresh machine)', await tfjs(m, 'builtin'));
    record(m, 'GEMM library auto', await tfjs(m, 'auto'));
    record(m, 'native off (pure wasm/JS)', await tfjs(m, 'off'));
    if (python != null) {
      record(m, 'PyTorch CPU, 1 thread', await torch(m, 1));
      record(m, 'PyTorch CPU, 2 threads', await torch(m, 2));
    }
  }
}

const sec = (v: number[]) => (v.length ? (median(v) / 1000).toFixed(4) : '-');
const ratio = (a: number[], b: number[] | undefined) => (b && b.length && a.length ? `${(median(a) / median(b)).toFixed(2)}x` : '-');
console.log('');
if (webgpu) {
  const software = rows.some((r) => r.isa?.includes('SOFTWARE adapter'));
  if (software) console.log('NOTE: webgpu ran on a SOFTWARE adapter (a CPU Vulkan driver such as lavapipe): these are not GPU figures.');
  console.log('model'.padEnd(28) + 'configuration'.padEnd(32) + 'step s'.padStart(9) + 'fwd s'.padStart(9) + '   step vs CPU path   ran on');
  for (const m of models) {
    const cpuPath = rows.find((x) => x.model === m && x.name === 'CPU path (wasm, GEMM auto)')?.step;
    for (const r of rows.filter((x) => x.model === m)) {
      console.log(m.label.padEnd(28) + r.name.padEnd(32) + sec(r.step).padStart(9) + sec(r.forward).padStart(9) + `   ${ratio(r.step, cpuPath).padEnd(18)} ${r.isa ?? ''}` + (r.note ? `\n${''.padEnd(28)}  note: ${r.note}` : ''));
    }
  }
  console.log(`load average now ${loadavg()[0].toFixed(1)} (at start ${load0.toFixed(1)}).`);
  process.exit(0);
}
console.log('model'.padEnd(28) + 'configuration'.padEnd(32) + 'step s'.padStart(9) + 'fwd s'.padStart(9) + '   vs PT-1t  vs PT-2t  vs native off   ran on');
for (const m of models) {
  const of = (name: string) => rows.find((x) => x.model === m && x.name === name);
  for (const r of rows.filter((x) => x.model === m)) {
    console.log(
      m.label.padEnd(28) +
        r.name.padEnd(32) +
        sec(r.step).padStart(9) +
        sec(r.forward).padStart(9) +
        `   ${ratio(r.step, of('PyTorch CPU, 1 thread')?.step).padEnd(9)} ${ratio(r.step, of('PyTorch CPU, 2 threads')?.step).padEnd(9)} ${ratio(r.step, of('native off (pure wasm/JS)')?.step).padEnd(14)}  ${r.isa ?? ''}` +
        (r.note ? `\n${''.padEnd(28)}  note: ${r.note}` : ''),
    );
  }
}

console.log('');
console.log('Goals (2 cores, no AVX-512, no system BLAS: run with --vector-target avx2 on an AVX-512 machine):');
for (const m of models) {
  const of = (name: string) => rows.find((x) => x.model === m && x.name === name)?.step ?? [];
  const fresh = of('built-in GEMM (fresh machine)');
  const off = of('native off (pure wasm/JS)');
  const pt = of(m.threads === 1 ? 'PyTorch CPU, 1 thread' : 'PyTorch CPU, 2 threads');
  const parts: string[] = [];
  if (m.key !== 'r18-128' && pt.length && fresh.length) {
    const x = median(fresh) / median(pt);
    parts.push(`fresh-machine step / PyTorch ${m.threads}t = ${x.toFixed(2)}x (goal <= 1.0: ${x <= 1 ? 'met' : 'NOT met'})`);
  }
  for (const name of ['built-in GEMM (fresh machine)', 'GEMM library auto']) {
    const v = of(name);
    if (v.length && off.length) {
      const x = median(v) / median(off);
      parts.push(`${name} / native off = ${x.toFixed(2)}x (${x <= 1 ? 'not slower' : 'SLOWER'})`);
    }
  }
  console.log(`  ${m.label}: ${parts.join('; ') || 'no data'}`);
}

// Two demo-model trials at once (one process per trial, native kernels on 1 thread each, as the
// runner's two workers run them) against PyTorch running them one after the other.
const concurrentSteps = Number(opts['concurrent-steps']);
const demo = models.find((m) => m.key === 'demo');
if (concurrentSteps > 0 && demo != null) {
  const goFile = join(mkdtempSync(join(tmpdir(), 'bench-train-')), 'go');
  let ready = 0;
  const onReady = () => {
    if (++ready === 2) writeFileSync(goFile, '');
  };
  const pair = await Promise.all(
    [0, 1].map(() =>
      tfjs(demo, 'builtin', { reps: concurrentSteps, 'forward-reps': 0, threads: 1, 'go-file': goFile }, onReady).then((r) => {
        if (!existsSync(goFile)) writeFileSync(goFile, '');
        return r;
      }),
    ),
  );
  const windows = pair.map((p) => p.stepWindow).filter((w): w is [number, number] => w != null);
  const pt = rows.find((x) => x.model === demo && x.name === 'PyTorch CPU, 1 thread')?.step ?? [];
  if (windows.length === 2 && pt.length) {
    const wall = (Math.max(windows[0][1], windows[1][1]) - Math.min(windows[0][0], windows[1][0])) / 1000;
    const sequential = (2 * concurrentSteps * median(pt)) / 1000;
    console.log(`two demo trials at once (built-in GEMM, 1 thread each, ${concurrentSteps} steps each): ${wall.toFixed(2)} s; PyTorch 1 thread one after the other: ${sequential.toFixed(2)} s -> ${(wall / sequential).toFixed(2)}x`);
  }
}
console.log(`load average now ${loadavg()[0].toFixed(1)} (at start ${load0.toFixed(1)}); compare ratios of alternately run rows.`);
