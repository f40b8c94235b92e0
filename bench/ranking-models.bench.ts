// Forward-pass step times of the angle classifier's ResNet-18 backbone at full width and at
// width 0.25 on a batch [4, 128, 128, 1] (torchvision stem), in inference mode (moving
// statistics) and in training mode (batch statistics + moving-average update; no backward pass:
// training-step times belong to the training-backend benchmarks).
// Run: node_modules/.bin/tsx bench/ranking-models.bench.ts [cpu|wasm] [rounds]
// Variants are run alternately (A, B, A, B, ...) after one warm-up round and medians reported,
// so load from other processes on a shared machine hits all of them alike.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { createAngleClassifier } from '@lab/ranking-models';

const backendName = process.argv[2] ?? 'cpu';
const rounds = Number(process.argv[3] ?? 5);
await tf.setBackend(backendName);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const inputShape: [number, number, number] = [128, 128, 1];
const x = tf.randomNormal([4, ...inputShape], 0, 1, 'float32', 1);
const full = createAngleClassifier({ depth: 18, inputShape, numClasses: 6, seed: 1 });
const narrow = createAngleClassifier({ depth: 18, inputShape, numClasses: 6, widthMultiplier: 0.25, seed: 1 });

const variants: Record<string, () => void> = {
  'resnet18 x1.00 inference': () => tf.tidy(() => void full.forward(x, { training: false }).dataSync()),
  'resnet18 x0.25 inference': () => tf.tidy(() => void narrow.forward(x, { training: false }).dataSync()),
  'resnet18 x1.00 train-mode fwd': () => tf.tidy(() => void full.forward(x, { training: true }).dataSync()),
  'resnet18 x0.25 train-mode fwd': () => tf.tidy(() => void narrow.forward(x, { training: true }).dataSync()),
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let r = -1; r < rounds; r++) {
  for (const [name, f] of Object.entries(variants)) {
    const t0 = performance.now();
    f();
    if (r >= 0) times[name].push(performance.now() - t0);
  }
}
const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
console.log(`ranking-models forward step, backend ${tf.getBackend()}, batch [4, 128, 128, 1], median of ${rounds} (machine may be shared)`);
for (const [name, ms] of Object.entries(med)) console.log(`  ${name.padEnd(32)} ${ms.toFixed(1).padStart(9)} ms`);
console.log(`  ratio full/narrow, inference:       ${(med['resnet18 x1.00 inference'] / med['resnet18 x0.25 inference']).toFixed(2)}x`);
console.log(`  ratio full/narrow, train-mode fwd:  ${(med['resnet18 x1.00 train-mode fwd'] / med['resnet18 x0.25 train-mode fwd']).toFixed(2)}x`);
console.log(`  ratio train-mode/inference, full:   ${(med['resnet18 x1.00 train-mode fwd'] / med['resnet18 x1.00 inference']).toFixed(2)}x`);
tf.dispose(x);
full.dispose();
narrow.dispose();
