// Per-kernel CPU time of one ResNet-18 training step on a backend with @lab/tfjs-train installed
// (exploratory profiling; not part of bench:train):  tsx bench/train-profile.ts [wasm|cpu] [width] [step|forward]
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-cpu';
import { useFastTraining } from '@lab/tfjs-train';
import { buildResNet18, makeStepper } from './train-resnet';

const backendName = process.argv[2] ?? 'wasm';
const width = Number(process.argv[3] ?? 1);
await tf.setBackend(backendName);
console.log(await useFastTraining(backendName as 'wasm'));
const model = buildResNet18([128, 128, 1], 6, width);
const stepper = makeStepper(model, [4, 128, 128, 1], 6);
stepper.step();
const totals = new Map<string, { ms: number; n: number }>();
let depth = 0;
for (const k of tf.getKernelsForBackend(backendName)) {
  const inner = k.kernelFunc;
  (k as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
    if (depth > 0) return inner(args);
    depth++;
    const c0 = process.cpuUsage();
    try { return inner(args); } finally {
      depth--;
      const c = process.cpuUsage(c0);
      const e = totals.get(k.kernelName) ?? { ms: 0, n: 0 };
      e.ms += (c.user + c.system) / 1000; e.n++;
      totals.set(k.kernelName, e);
    }
  };
}
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const steps = 3;
const mode = process.argv[4] ?? 'step';
for (let i = 0; i < steps; i++) mode === 'step' ? stepper.step() : stepper.forward();
const wall = (performance.now() - t0) / steps;
const cpuAll = process.cpuUsage(cpu0);
const cpuStep = (cpuAll.user + cpuAll.system) / 1000 / steps;
const rows = [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms);
let kernelSum = 0;
for (const [, v] of rows) kernelSum += v.ms / steps;
console.log(`step ${wall.toFixed(0)} ms wall, ${cpuStep.toFixed(0)} ms cpu; kernels ${kernelSum.toFixed(0)} ms cpu`);
for (const [name, v] of rows.slice(0, 25)) console.log(name.padEnd(28), (v.ms / steps).toFixed(1).padStart(8), String(v.n / steps).padStart(5));
