// Runs in an empty project where only the packed @lab/grad-probe, its dependencies and
// @tensorflow/tfjs@4.22.0 are installed: per-sample gradients → GNS, and a t-SNE map.
import * as tf from '@tensorflow/tfjs';
import { cosineSimilarityMatrix, gradientNoiseScale, perSampleGradients, tsneEmbedding } from '@lab/grad-probe';

await tf.setBackend('cpu');

// Logistic regression on 16 fixed samples; per-sample gradient in closed form: (σ(z) − y)·[x, 1].
const X = Array.from({ length: 16 }, (_, i) => [Math.sin(i + 1), Math.cos(2 * i + 1), ((i * 7) % 5) / 5 - 0.4]);
const y = X.map((x, i) => (x[0] - x[1] + 0.1 * Math.sin(10 * i) > 0 ? 1 : 0));
const wInit = [0.3, -0.2, 0.1];
const bInit = 0.05;
const w = tf.variable(tf.tensor2d(wInit, [3, 1]));
const b = tf.variable(tf.tensor1d([bInit]));
const tensorsBefore = tf.memory().numTensors;
const set = await perSampleGradients([w, b], X.map((_, i) => i), (i) =>
  tf.tidy(() => {
    const z = tf.add(tf.reshape(tf.matMul(tf.tensor2d([X[i]]), w), [-1]), b);
    return tf.mean(tf.sub(tf.softplus(z), tf.mul(tf.tensor1d([y[i]]), z)));
  }),
);
if (tf.memory().numTensors !== tensorsBefore) throw new Error('pack-smoke: perSampleGradients leaked tensors');

const closedForm = X.map((x, i) => {
  const z = x.reduce((s, v, j) => s + v * wInit[j], bInit);
  const r = 1 / (1 + Math.exp(-z)) - y[i];
  return [...x.map((v) => r * v), r];
});
const n = closedForm.length;
const meanSq = closedForm.reduce((s, g) => s + g.reduce((t, v) => t + v * v, 0), 0) / n;
const mean = closedForm[0].map((_, j) => closedForm.reduce((s, g) => s + g[j], 0) / n);
const meanNormSq = mean.reduce((s, v) => s + v * v, 0);
const expectedTrSigma = (n / (n - 1)) * (meanSq - meanNormSq);
const expectedGSquared = (n * meanNormSq - meanSq) / (n - 1);

const gns = gradientNoiseScale(set.gradients, { bootstrap: 200, seed: 1 });
const close = (a, e) => Math.abs(a - e) <= 1e-4 * Math.abs(e);
if (!close(gns.trSigma, expectedTrSigma) || !close(gns.gSquared, expectedGSquared)) {
  throw new Error(`pack-smoke: GNS mismatch: got tr(Σ) ${gns.trSigma}, |G|² ${gns.gSquared}; expected ${expectedTrSigma}, ${expectedGSquared}`);
}
if (gns.bSimple === null || !(gns.ci95 && gns.ci95.replicates === 200)) throw new Error('pack-smoke: missing B_simple or its interval');

// t-SNE of three well-separated groups of directions.
const vectors = [];
for (let c = 0; c < 3; c++) {
  for (let i = 0; i < 8; i++) {
    vectors.push(Float32Array.from({ length: 12 }, (_, j) => (j % 3 === c ? 4 : 0) + 0.2 * Math.sin(37 * (c * 8 + i) + j)));
  }
}
const map = tsneEmbedding(vectors, { perplexity: 5, seed: 1, iterations: 400 });
if (map.points.length !== 24 || !(map.trustworthiness > 0.9)) throw new Error(`pack-smoke: t-SNE trustworthiness ${map.trustworthiness}`);
const cos = cosineSimilarityMatrix(vectors);
if (!(cos.matrix[0][1] > 0.9 && cos.matrix[0][8] < 0.1)) throw new Error('pack-smoke: unexpected cosine matrix');

w.dispose();
b.dispose();
console.log(
  `pack-smoke ok: B_simple ${gns.bSimple.toFixed(3)} (tr(Σ) ${gns.trSigma.toFixed(4)}, |G|² ${gns.gSquared.toFixed(4)}), t-SNE trustworthiness ${map.trustworthiness.toFixed(3)}`,
);
