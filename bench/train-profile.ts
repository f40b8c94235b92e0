// Wall time per kernel of one training step of the lab's ResNet-18 models on a backend with
// @lab/tfjs-train installed (exploratory profiling; not part of bench:train):
//   tsx bench/train-profile.ts [--backend wasm|cpu] [--model demo|full|r18-128] [--steps 30]
//                              [--threads N] [--vector-target native|avx2|sse2] [--forward]
// Prints the step's wall time, the share spent inside kernels (top-level dispatches, their JS
// wrappers included), and the kernels by total time per step.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-cpu';
import { parseArgs } from 'node:util';
import { useFastTraining } from '@lab/tfjs-train';
import { buildResNet18, makeStepper } from './train-resnet';

const { values: opts } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    model: { type: 'string', default: 'demo' },
    steps: { type: 'string', default: '30' },
    threads: { type: 'string' },
    'vector-target': { type: 'string', default: 'native' },
    forward: { type: 'boolean', default: false },
  },
});
const MODELS: Record<string, { width: number; size: number; batch: number; smallStem: boolean; threads: number }> = {
  demo: { width: 0.125, size: 32, batch: 4, smallStem: true, threads: 1 },
  full: { width: 1, size: 64, batch: 16, smallStem: false, threads: 2 },
  'r18-128': { width: 1, size: 128, batch: 4, smallStem: false, threads: 2 },
};
const m = MODELS[opts.model!];
if (m == null) throw new Error(`--model: expected ${Object.keys(MODELS).join(', ')}, got ${opts.model}`);
const backendName = opts.backend as 'wasm' | 'cpu';
await tf.setBackend(backendName);
const info = await useFastTraining(backendName, {
  threads: Number(opts.threads ?? m.threads),
  nativeBuild: { vectorTarget: opts['vector-target'] as 'native' | 'avx2' | 'sse2' },
});
console.log(`native: ${JSON.stringify(info.native)}`);
const model = buildResNet18([m.size, m.size, 1], 6, m.width, 1, m.smallStem);
const stepper = makeStepper(model, [m.batch, m.size, m.size, 1], 6);
const run = () => (opts.forward ? stepper.forward() : stepper.step());
for (let i = 0; i < 3; i++) run();

const totals = new Map<string, { ms: number; calls: number }>();
let depth = 0;
for (const k of tf.getKernelsForBackend(backendName)) {
  const inner = k.kernelFunc;
  (k as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
    if (depth > 0) return inner(args);
    depth++;
    const t0 = performance.now();
    try {
      return inner(args);
    } finally {
      depth--;
      const entry = totals.get(k.kernelName) ?? { ms: 0, calls: 0 };
      entry.ms += performance.now() - t0;
      entry.calls++;
      totals.set(k.kernelName, entry);
    }
  };
}
const steps = Number(opts.steps);
const t0 = performance.now();
for (let i = 0; i < steps; i++) run();
const wall = (performance.now() - t0) / steps;
const rows = [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms);
const inKernels = rows.reduce((sum, [, v]) => sum + v.ms / steps, 0);
console.log(`${opts.model} ${opts.forward ? 'forward' : 'step'}: ${wall.toFixed(2)} ms wall, ${inKernels.toFixed(2)} ms in kernels (${((inKernels / wall) * 100).toFixed(0)} %)`);
console.log(`${'kernel'.padEnd(28)}${'ms/step'.padStart(9)}${'calls'.padStart(7)}`);
for (const [name, v] of rows.slice(0, 25)) console.log(`${name.padEnd(28)}${(v.ms / steps).toFixed(3).padStart(9)}${String(v.calls / steps).padStart(7)}`);
