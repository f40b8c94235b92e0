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
// The packed package must find its C source (native/) and build it where a compiler exists.
if (process.env.LAB_TFJS_TRAIN_EXPECT_NATIVE === '1' && !info.native.enabled) throw new Error(`native kernels did not build from the package: ${info.native.reason}`);
if (listMissingTrainingKernels('wasm').includes('Conv2DBackpropFilter')) throw new Error('Conv2DBackpropFilter still missing on wasm');
const ours = convGradients();
let worst = 0;
for (let k = 0; k < 2; k++) {
  let scale = 0;
  for (let i = 0; i < reference[k].length; i++) scale = Math.max(scale, Math.abs(reference[k][i]));
  for (let i = 0; i < reference[k].length; i++) worst = Math.max(worst, Math.abs(ours[k][i] - reference[k][i]) / (1 + scale));
}
if (!(worst < 1e-4)) throw new Error(`wasm conv gradient differs from cpu: relative error ${worst}`);
const native = info.native.enabled ? `native ${info.native.gemm}` : `no native kernels (${info.native.reason})`;
console.log(`pack-smoke ok: ${info.kernels.length} kernels on wasm, ${native}, conv gradients match cpu (relative error ${worst.toExponential(1)})`);
