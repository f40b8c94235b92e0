// Smoke test of the packed package: install the kernels on wasm, take one conv gradient (the
// stock wasm backend has no Conv2DBackpropFilter at all) and check it against the cpu backend.
// Assumes @tensorflow/tfjs-backend-wasm (an optional peer) is installed alongside.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { useFastTraining, listMissingTrainingKernels } from '@lab/tfjs-train';

function convGradients() {
  return tf.tidy(() => {
    const x = tf.randomNormal([2, 9, 7, 3], 0, 1, 'float32', 1);
    const w = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 2);
    const f = (xi, wi) => tf.sum(tf.square(tf.conv2d(xi, wi, 2, 'same')));
    return tf.grads(f)([x, w]).map((g) => g.dataSync());
  });
}

await tf.setBackend('cpu');
const reference = convGradients();
await tf.setBackend('wasm');
const info = await useFastTraining('wasm');
if (listMissingTrainingKernels('wasm').includes('Conv2DBackpropFilter')) throw new Error('Conv2DBackpropFilter still missing on wasm');
const ours = convGradients();
let worst = 0;
for (let k = 0; k < 2; k++) {
  let scale = 0;
  for (let i = 0; i < reference[k].length; i++) scale = Math.max(scale, Math.abs(reference[k][i]));
  for (let i = 0; i < reference[k].length; i++) worst = Math.max(worst, Math.abs(ours[k][i] - reference[k][i]) / (1 + scale));
}
if (!(worst < 1e-4)) throw new Error(`wasm conv gradient differs from cpu: relative error ${worst}`);
console.log(`pack-smoke ok: ${info.kernels.length} kernels on wasm, conv gradients match cpu (relative error ${worst.toExponential(1)})`);
