// Cost of GHMSoftmax relative to plain softmax cross-entropy, (1) on logits [4096, 6], forward +
// backward, and (2) in a training step of a small conv classifier on [8, 64, 64, 1].
// Run: node_modules/.bin/tsx bench/ghm-loss.bench.ts [cpu|wasm] [rounds] [all|logits|step]
// Variants are run alternately (A, B, C, A, B, C, ...) and medians reported, so that load from other
// processes on a shared machine hits all of them alike. Quote ratios, not absolute times.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers'; // also registers the gradients
import { GHMSoftmax, softmaxCrossEntropy } from '@lab/ghm-loss';

const backendName = process.argv[2] ?? 'cpu';
const rounds = Number(process.argv[3] ?? 20);
const part = process.argv[4] ?? 'all';
await tf.setBackend(backendName);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Runs each variant once per round, in turn, after two warm-up rounds; returns median ms per variant. */
function alternate(variants: Record<string, () => void>, n: number): Record<string, number> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let r = -2; r < n; r++) {
    for (const [name, f] of Object.entries(variants)) {
      const t0 = performance.now();
      f();
      const dt = performance.now() - t0;
      if (r >= 0) times[name].push(dt);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

const fmt = (ms: number) => `${ms.toFixed(3)} ms`;
const pct = (a: number, b: number) => `${(((a - b) / b) * 100).toFixed(1)} %`;

// (1) logits [4096, 6], forward + backward.
if (part === 'all' || part === 'logits') {
  const logits = tf.randomNormal([4096, 6], 0, 2, 'float32', 1) as tf.Tensor2D;
  const labels = tf.randomUniform([4096], 0, 6, 'int32', 2) as tf.Tensor1D;
  const ghm = new GHMSoftmax();
  const ghmStats = new GHMSoftmax();
  // Reading the scalar loss back is what a training loop that logs the loss does; all variants pay it.
  const fwdBwd = (f: (x: tf.Tensor) => tf.Scalar) => () =>
    tf.tidy(() => {
      const { value, grad } = tf.valueAndGrad(f)(logits);
      value.dataSync();
      grad.dataSync();
    });
  const t = alternate(
    {
      ce: fwdBwd((x) => softmaxCrossEntropy(x as tf.Tensor2D, labels)),
      ghm: fwdBwd((x) => ghm.loss(x as tf.Tensor2D, labels)),
      ghmWithStats: () => {
        fwdBwd((x) => ghmStats.loss(x as tf.Tensor2D, labels))();
        ghmStats.stats();
      },
    },
    rounds * 4,
  );
  console.log(`backend ${tf.getBackend()}, logits [4096, 6], forward + backward (median of ${rounds * 4}):`);
  console.log(`  softmax cross-entropy    ${fmt(t.ce)}`);
  console.log(`  GHMSoftmax               ${fmt(t.ghm)}   ratio ${(t.ghm / t.ce).toFixed(2)}x`);
  console.log(`  GHMSoftmax + stats()     ${fmt(t.ghmWithStats)}   ratio ${(t.ghmWithStats / t.ce).toFixed(2)}x`);
  ghm.dispose();
  ghmStats.dispose();
  tf.dispose([logits, labels]);
}

// (2) one training step of a small conv classifier (logits head), batch [8, 64, 64, 1]. A step takes
// seconds on the cpu backend, so this part runs fewer rounds.
if (part === 'all' || part === 'step') {
  const stepRounds = Math.max(3, Math.round(rounds / 4));
  const seed = (s: number) => tfl.initializers.glorotUniform({ seed: s });
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [64, 64, 1], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: seed(1) }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: seed(2) }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: seed(3) }),
      tfl.layers.globalAveragePooling2d({}),
      tfl.layers.dense({ units: 6, kernelInitializer: seed(4) }),
    ],
  });
  const x = tf.randomNormal([8, 64, 64, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
  const labels = tf.tensor1d([0, 1, 2, 3, 4, 5, 0, 1], 'int32');
  const ghm = new GHMSoftmax();
  const ghmStats = new GHMSoftmax();
  const optimizer = tf.train.adam(1e-3);
  const step = (loss: (logits: tf.Tensor2D) => tf.Scalar) => () => {
    const value = optimizer.minimize(() => loss(model.apply(x, { training: true }) as tf.Tensor2D), true);
    value!.dataSync();
    value!.dispose();
  };
  const t = alternate(
    {
      ce: step((z) => softmaxCrossEntropy(z, labels)),
      ghm: step((z) => ghm.loss(z, labels)),
      ghmWithStats: () => {
        step((z) => ghmStats.loss(z, labels))();
        ghmStats.stats();
      },
    },
    stepRounds,
  );
  // The whole-step difference is small against the step's own jitter on a shared machine, so also
  // time the loss alone (forward + backward on the step's logits [8, 6]) and relate it to the step.
  const logits = tf.randomNormal([8, 6], 0, 2, 'float32', 4) as tf.Tensor2D;
  const lossOnly = (f: (z: tf.Tensor) => tf.Scalar) => () =>
    tf.tidy(() => {
      const { value, grad } = tf.valueAndGrad(f)(logits);
      value.dataSync();
      grad.dataSync();
    });
  const ghmAlone = new GHMSoftmax();
  const l = alternate(
    {
      ce: lossOnly((z) => softmaxCrossEntropy(z as tf.Tensor2D, labels)),
      ghm: lossOnly((z) => ghmAlone.loss(z as tf.Tensor2D, labels)),
      ghmWithStats: () => {
        lossOnly((z) => ghmAlone.loss(z as tf.Tensor2D, labels))();
        ghmAlone.stats();
      },
    },
    200,
  );
  console.log(`training step, conv classifier on [8, 64, 64, 1], Adam (median of ${stepRounds}):`);
  console.log(`  softmax cross-entropy    ${fmt(t.ce)}`);
  console.log(`  GHMSoftmax               ${fmt(t.ghm)}   added ${pct(t.ghm, t.ce)}   (goal <= 5 %)`);
  console.log(`  GHMSoftmax + stats()     ${fmt(t.ghmWithStats)}   added ${pct(t.ghmWithStats, t.ce)}`);
  console.log(`the loss alone on the step's logits [8, 6], forward + backward (median of 200):`);
  console.log(`  softmax cross-entropy    ${fmt(l.ce)}`);
  console.log(`  GHMSoftmax               ${fmt(l.ghm)}   adds ${fmt(l.ghm - l.ce)} = ${(((l.ghm - l.ce) / t.ce) * 100).toFixed(3)} % of a step`);
  console.log(`  GHMSoftmax + stats()     ${fmt(l.ghmWithStats)}   adds ${fmt(l.ghmWithStats - l.ce)} = ${(((l.ghmWithStats - l.ce) / t.ce) * 100).toFixed(3)} % of a step`);
  ghmAlone.dispose();
  logits.dispose();
  ghm.dispose();
  ghmStats.dispose();
  optimizer.dispose();
  model.dispose();
  tf.dispose([x, labels]);
}
