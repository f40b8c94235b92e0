// Sweep throughput (trial-steps per second) of fused trials: the lab's demo model and full-scale
// model trained K at a time as one computation (@lab/ranking-models' FusedTrainingGroup), against
// the same trials trained one after another, and against PyTorch running them one after another
// (2 threads) and as 2 processes × 1 thread. Ours runs as the runner runs a sweep on 2 cores:
// 2 worker processes × 1 thread, each with its own group. One run, same cores.
//   pnpm bench:fused [--models demo,full] [--k 4,16,64] [--vector-target avx2] [--gemm builtin] [--skip-torch]
//                    [--warmup-seconds 3] (each process, ours and PyTorch's, trains this long before timing)
//                    [--seconds 5] (each process repeats its timed rounds, every trial --steps steps, this long)
// With --vector-target avx2 and --gemm builtin an AVX-512 machine measures what a fresh AVX2 machine runs.
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchModel, cpuDescription, findTorchPython, type ProcessResult, root, runProcess, torchIsaEnv, torchIsaNote, tsx } from './bench-support';

const { values: opts } = parseArgs({
  options: {
    models: { type: 'string', default: 'demo,full' },
    k: { type: 'string' },
    'vector-target': { type: 'string', default: 'native' },
    gemm: { type: 'string', default: '' },
    'skip-torch': { type: 'boolean', default: false },
    'warmup-seconds': { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
  },
});

interface Model extends BenchModel {
  steps: number;
  k: number[];
  /** Goal: fused throughput ≥ this × PyTorch's best. */
  goal: number;
}
const MODELS: Model[] = [
  { key: 'demo', label: 'demo model: R18 x0.125 32x32 b4', width: 0.125, size: 32, batch: 4, smallStem: true, steps: 10, k: [4, 16, 64], goal: 3 },
  { key: 'full', label: 'full scale: R18 64x64 b16', width: 1, size: 64, batch: 16, smallStem: false, steps: 3, k: [4, 16], goal: 1 },
];
const BASELINE_TRIALS = 4;

type Result = ProcessResult & { perSecond?: number; isa?: string; gemm?: string };

function ours(m: Model, mode: 'fused' | 'alone', trials: number): Promise<Result> {
  const args = [join(root, 'bench/fused-sweep-worker.ts'), '--mode', mode, '--trials', String(trials), '--steps', String(m.steps)];
  args.push('--width', String(m.width), '--size', String(m.size), '--batch', String(m.batch), '--threads', '1', '--vector-target', opts['vector-target']!);
  args.push('--warmup-seconds', opts['warmup-seconds']!, '--seconds', opts.seconds!);
  if (m.smallStem) args.push('--small-stem');
  return runProcess<Result>(tsx, args, 1_800_000, { LAB_TFJS_TRAIN_GEMM: opts.gemm ?? '', OMP_NUM_THREADS: '1' });
}

const python = opts['skip-torch'] ? null : findTorchPython();
function torch(m: Model, threads: number, trials: number): Promise<Result> {
  const args = [join(root, 'bench/fused_sweep_torch.py'), '--trials', String(trials), '--steps', String(m.steps)];
  args.push('--width', String(m.width), '--size', String(m.size), '--batch', String(m.batch), '--threads', String(threads));
  args.push('--warmup-seconds', opts['warmup-seconds']!, '--seconds', opts.seconds!);
  if (m.smallStem) args.push('--small-stem');
  return runProcess<Result>(python!, args, 1_800_000, torchIsaEnv(opts['vector-target']!));
}

/** Trial-steps per second of processes run side by side: the sum of theirs (each times its own steps after warm-up). */
async function together(runs: Array<() => Promise<Result>>): Promise<{ perSecond: number; error?: string; isa?: string }> {
  const results = await Promise.all(runs.map((run) => run()));
  const failed = results.find((r) => r.error != null);
  if (failed) return { perSecond: Number.NaN, error: failed.error };
  return { perSecond: results.reduce((s, r) => s + r.perSecond!, 0), ...(results[0].isa ? { isa: `${results[0].gemm} GEMM, ${results[0].isa}` } : {}) };
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');

console.log('bench:fused  sweep throughput of the lab\'s ResNet-18 classifiers (Adam, BN in training mode, softmax cross-entropy), trial-steps per second');
console.log(`CPU: ${cpuDescription()}`);
console.log(`native build: vector target '${opts['vector-target']}', GEMM ${opts.gemm || 'picked automatically'}; load average at start ${loadavg()[0].toFixed(1)}`);
if (python != null && torchIsaNote(opts['vector-target']!)) console.log(torchIsaNote(opts['vector-target']!));
if (python == null && !opts['skip-torch']) console.log('PyTorch not found: install Debian python3-torch for the reference rows (apt-get install python3-torch).');

const keys = opts.models!.split(',');
const goals: string[] = [];
for (const m of MODELS.filter((x) => keys.includes(x.key))) {
  const kList = opts.k ? opts.k.split(',').map(Number) : m.k;
  console.log(`\n${m.label}, ${m.steps} steps per trial and round, rounds repeated for ${opts.seconds} s`);
  const rows: Array<[string, { perSecond: number; error?: string; isa?: string }]> = [];
  let torchBest = Number.NaN;
  if (python) {
    const sequential = await together([() => torch(m, 2, BASELINE_TRIALS)]);
    const twoProcesses = await together([() => torch(m, 1, BASELINE_TRIALS / 2), () => torch(m, 1, BASELINE_TRIALS / 2)]);
    rows.push(['PyTorch, trials one after another, 2 threads', sequential], ['PyTorch, 2 processes x 1 thread', twoProcesses]);
    torchBest = Math.max(sequential.perSecond, twoProcesses.perSecond);
  }
  const alone = await together([() => ours(m, 'alone', BASELINE_TRIALS / 2), () => ours(m, 'alone', BASELINE_TRIALS / 2)]);
  rows.push(['ours, unfused, 2 processes x 1 thread', alone]);
  let bestFused = Number.NaN;
  for (const k of kList) {
    const fused = await together([() => ours(m, 'fused', k), () => ours(m, 'fused', k)]);
    rows.push([`ours, fused K=${k}, 2 processes x 1 thread`, fused]);
    if (!(fused.perSecond <= bestFused)) bestFused = fused.perSecond;
  }
  for (const [name, r] of rows) {
    const vsTorch = Number.isFinite(torchBest) ? `${(r.perSecond / torchBest).toFixed(2)}x PyTorch best` : '';
    const vsAlone = `${(r.perSecond / alone.perSecond).toFixed(2)}x unfused`;
    console.log(`  ${name.padEnd(46)} ${fmt(r.perSecond).padStart(8)} trial-steps/s  ${vsTorch.padEnd(20)} ${vsAlone}${r.isa ? `  [${r.isa}]` : ''}${r.error ? `  ERROR ${r.error}` : ''}`);
  }
  if (Number.isFinite(torchBest)) {
    const ratio = bestFused / torchBest;
    goals.push(`${m.key}: fused sweep throughput ${ratio.toFixed(2)}x PyTorch's best (goal >= ${m.goal}x): ${ratio >= m.goal ? 'met' : 'NOT met'}`);
  }
}
if (goals.length) console.log(`\nGoals (2 cores):\n  ${goals.join('\n  ')}`);
