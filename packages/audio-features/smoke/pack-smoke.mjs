// Runs in an empty project where only the packed @lab/audio-features, its dependencies and
// @tensorflow/tfjs@4.22.0 are installed: `node pack-smoke.mjs`.
import * as tf from '@tensorflow/tfjs';
import { computeFeatures, featureMapToTensor, stft, toDecibels } from '@lab/audio-features';

const sampleRate = 16000;
const toneHz = 1000;
const signal = new Float32Array(sampleRate);
for (let i = 0; i < signal.length; i++) signal[i] = 0.5 * Math.sin((2 * Math.PI * toneHz * i) / sampleRate);

const spec = stft(signal, { sampleRate, fftSize: 512, hopSize: 128, window: 'hanning', center: true });
const db = toDecibels(spec, { ref: 'max', floorDb: -80 });
const t = Math.floor(spec.frames / 2);
const row = db.data.subarray(t * spec.bins, (t + 1) * spec.bins);
let peak = 0;
for (let k = 1; k < row.length; k++) if (row[k] > row[peak]) peak = k;
const expectedBin = Math.round(toneHz / (sampleRate / 512)); // 32
if (peak !== expectedBin || spec.binHz[peak] !== toneHz) {
  throw new Error(`pack-smoke: peak at bin ${peak} (${spec.binHz[peak]} Hz), expected bin ${expectedBin} (${toneHz} Hz)`);
}

await tf.setBackend('cpu');
const before = tf.memory().numTensors;
const features = featureMapToTensor(computeFeatures(signal, sampleRate, toneHz));
const shape = features.shape.join('x');
const finite = tf.tidy(() => tf.all(tf.isFinite(features)).dataSync()[0] === 1);
features.dispose();
if (shape !== '64x64x1' || !finite || tf.memory().numTensors !== before) {
  throw new Error(`pack-smoke: feature tensor ${shape}, finite ${finite}, tensors ${tf.memory().numTensors - before} leaked`);
}
console.log(
  `pack-smoke ok: ${spec.frames}x${spec.bins} spectrogram, peak bin ${peak} = ${spec.binHz[peak]} Hz; features ${shape} on ${tf.getBackend()}`,
);
