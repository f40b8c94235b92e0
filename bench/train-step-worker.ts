// One benchmark configuration in its own process (clean peak RSS, kernels installed or not):
//   tsx bench/train-step-worker.ts --backend wasm --kernels ours --width 1 --reps 3 --warmup 1
//   tsx bench/train-step-worker.ts --backend webgpu --width 1 --reps 3   (WebGPU through the runner's selectBackend)
// Prints one line `RESULT {json}`.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { selectBackend, type WebGpuAdapter } from '@lab/experiment-runner';
import { useFastTraining } from '@lab/tfjs-train';
import { buildResNet18, makeStepper } from './train-resnet';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    kernels: { type: 'string', default: 'ours' },
    width: { type: 'string', default: '1' },
    batch: { type: 'string', default: '4' },
    size: { type: 'string', default: '128' },
    reps: { type: 'string', default: '3' },
    'forward-reps': { type: 'string' },
    warmup: { type: 'string', default: '1' },
    // Warm-up also lasts at least this long: V8 keeps compiling the step's JS for a second or two,
    // and steps timed before it settles run 1.5-2x slower than the thousands a trial runs after.
    'warmup-seconds': { type: 'string', default: '0' },
    'step-warmup': { type: 'string' },
    native: { type: 'string', default: 'auto' },
    // Concurrent runs: after warm-up print READY and wait for this file before timing, so that
    // the timed steps of all workers overlap.
    'go-file': { type: 'string' },
    threads: { type: 'string' },
    'small-stem': { type: 'boolean', default: false },
    // Vector instructions of the native build ('native', 'avx2', 'sse2'): an AVX-512 machine
    // measures the code an AVX2-only CPU runs with 'avx2'.
    'vector-target': { type: 'string', default: 'native' },
    // 'builtin' forces the fresh-machine GEMM (what LAB_TFJS_TRAIN_GEMM=builtin does).
    gemm: { type: 'string' },
  },
});
if (args.gemm != null) process.env.LAB_TFJS_TRAIN_GEMM = args.gemm;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Timing {
  wallMs: number[];
  cpuMs: number[];
  startEpochMs: number;
  endEpochMs: number;
}

function waitForGoFile(file: string): void {
  console.log('READY');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (!existsSync(file)) Atomics.wait(pause, 0, 0, 5);
}

const warmupSeconds = Number(args['warmup-seconds']);
function timeIt(fn: () => void, reps: number, warmup: number, goFile?: string): Timing {
  const warmupStart = performance.now();
  for (let i = 0; i < warmup || performance.now() - warmupStart < warmupSeconds * 1000; i++) fn();
  if (goFile != null) waitForGoFile(goFile);
  const wallMs: number[] = [];
  const cpuMs: number[] = [];
  const startEpochMs = Date.now();
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    wallMs.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1000);
  }
  return { wallMs, cpuMs, startEpochMs, endEpochMs: Date.now() };
}

const backendName = args.backend!;
let adapter: WebGpuAdapter | undefined;
if (backendName === 'webgpu') {
  // Dawn, navigator.gpu and the adapter are set up by the runner, as in a real run.
  adapter = (await selectBackend('webgpu', { log: (m) => console.error(m) })).adapter;
} else {
  await tf.setBackend(backendName);
}
const info =
  args.kernels === 'ours' && backendName !== 'webgpu'
    ? await useFastTraining(backendName as 'wasm' | 'cpu', {
        native: args.native as 'auto' | 'off' | 'require',
        threads: args.threads != null ? Number(args.threads) : undefined,
        nativeBuild: { vectorTarget: args['vector-target'] as 'native' | 'avx2' | 'sse2' },
      })
    : null;
const batch = Number(args.batch);
const size = Number(args.size);
const model = buildResNet18([size, size, 1], 6, Number(args.width), 1, args['small-stem']);
const stepper = makeStepper(model, [batch, size, size, 1], 6);
const reps = Number(args.reps);
const warmup = Number(args.warmup);
const result: Record<string, unknown> = {
  backend: backendName,
  kernels: args.kernels,
  width: Number(args.width),
  installed: info?.kernels ?? [],
  native: info?.native,
  simd: backendName === 'wasm' ? tf.env().getBool('WASM_HAS_SIMD_SUPPORT') : undefined,
  ...(adapter != null ? { adapter } : {}),
};
const forwardReps = Number(args['forward-reps'] ?? reps);
if (forwardReps > 0) {
  const fwd = timeIt(() => stepper.forward(), forwardReps, warmup);
  result.forwardMs = fwd.wallMs;
  result.forwardCpuMs = fwd.cpuMs;
  result.forwardMedianMs = median(fwd.wallMs);
}
try {
  const losses: number[] = [];
  const stp = timeIt(() => losses.push(stepper.step()), reps, Number(args['step-warmup'] ?? warmup), args['go-file']);
  result.stepMs = stp.wallMs;
  result.stepCpuMs = stp.cpuMs;
  result.stepMedianMs = median(stp.wallMs);
  result.stepWindow = [stp.startEpochMs, stp.endEpochMs];
  result.losses = losses;
} catch (e) {
  result.stepError = (e as Error).message.split('\n')[0];
}
result.peakRssMB = process.resourceUsage().maxRSS / 1024;
stepper.dispose();
model.dispose();
console.log(`RESULT ${JSON.stringify(result)}`);
