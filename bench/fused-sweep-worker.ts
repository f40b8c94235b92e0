// One process of the fused-sweep benchmark: trains --trials ResNet-18 classifiers (seeds 1…N,
// each its own random data) for --steps optimiser steps each with @lab/ranking-models' fit, either
// one after another (--mode alone) or as one FusedTrainingGroup (--mode fused), on wasm with
// @lab/tfjs-train. After warming up, repeats such rounds for at least --seconds and prints
// `RESULT {json}` with the timed trial-steps per second. Usage:
//   tsx bench/fused-sweep-worker.ts --trials 16 --steps 10 --mode fused --width 0.125 --size 32 --batch 4 --small-stem
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { parseArgs } from 'node:util';
import { createAngleClassifier, crossEntropyLoss, fit, FusedTrainingGroup, tensorData, type AngleClassifier } from '@lab/ranking-models';
import { useFastTraining } from '@lab/tfjs-train';

const { values: args } = parseArgs({
  options: {
    trials: { type: 'string', default: '4' },
    steps: { type: 'string', default: '10' },
    mode: { type: 'string', default: 'fused' },
    width: { type: 'string', default: '0.125' },
    size: { type: 'string', default: '32' },
    batch: { type: 'string', default: '4' },
    'small-stem': { type: 'boolean', default: false },
    threads: { type: 'string', default: '1' },
    'vector-target': { type: 'string', default: 'native' },
    // Warm-up lasts at least this long: V8 compiles the step's JS for a second or two.
    'warmup-seconds': { type: 'string', default: '0' },
    // Timed rounds (each trial trains --steps steps per round) repeat until this long has passed:
    // a single round of the demo model lasts a fraction of a second, too short to time reliably.
    seconds: { type: 'string', default: '0' },
  },
});
const trials = Number(args.trials);
const steps = Number(args.steps);
const batch = Number(args.batch);
const size = Number(args.size);
if (args.mode !== 'fused' && args.mode !== 'alone') throw new Error(`--mode: expected fused or alone, got ${args.mode}`);

await tf.setBackend('wasm');
const info = await useFastTraining('wasm', { threads: Number(args.threads), nativeBuild: { vectorTarget: args['vector-target'] as 'native' } });
if (!info.native.enabled) throw new Error(`native kernels unavailable: ${info.native.reason}`);

interface Trial {
  model: AngleClassifier;
  x: tf.Tensor;
  y: tf.Tensor;
  seed: number;
}
const setups: Trial[] = Array.from({ length: trials }, (_, i) => ({
  model: createAngleClassifier({ depth: 18, inputShape: [size, size, 1], numClasses: 6, widthMultiplier: Number(args.width), seed: i + 1, smallInputStem: args['small-stem'] }),
  x: tf.randomNormal([steps * batch, size, size, 1], 0, 1, 'float32', 100 + i),
  y: tf.tensor1d(Array.from({ length: steps * batch }, (_, j) => (j + i) % 6), 'int32'),
  seed: i + 1,
}));

/** Trains every trial for `count` steps (one epoch over count × batch items), as the mode says. */
async function train(count: number): Promise<void> {
  const lossFn = (output: tf.Tensor, target: tf.Tensor) => crossEntropyLoss(output, target);
  const data = setups.map((t) => [tf.slice(t.x, 0, count * batch), tf.slice(t.y, 0, count * batch)]);
  const options = (t: Trial) => ({
    train: tensorData(data[t.seed - 1][0], data[t.seed - 1][1]),
    lossFn,
    optimizer: { lr: 1e-3, weightDecay: 1e-5 },
    batchSize: batch,
    epochs: 1,
    seed: t.seed,
  });
  try {
    if (args.mode === 'alone') {
      for (const t of setups) await fit(t.model, options(t));
      return;
    }
    const group = new FusedTrainingGroup(trials);
    await Promise.all(setups.map((t, i) => fit(t.model, { ...options(t), stepper: group.join(i, t.model, lossFn) })));
  } finally {
    tf.dispose(data.flat());
  }
}

const warmStart = performance.now();
do await train(1);
while (performance.now() - warmStart < Number(args['warmup-seconds']) * 1000);
const started = performance.now();
let rounds = 0;
do {
  await train(steps);
  rounds++;
} while (performance.now() - started < Number(args.seconds) * 1000);
const seconds = (performance.now() - started) / 1000;
const trialSteps = rounds * trials * steps;
console.log(`RESULT ${JSON.stringify({ trialSteps, seconds, perSecond: trialSteps / seconds, isa: info.native.isa, gemm: info.native.gemm })}`);
