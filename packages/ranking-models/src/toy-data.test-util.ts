import * as tf from '@tensorflow/tfjs-core';
import { createRandom } from './seeded-random';

/**
 * Toy images for the training tests: class k lights up quadrant k of an [S, S, 1] image over
 * seeded noise, so the classes are separable but the net must look at where the energy is.
 */
export function quadrantImages(count: number, size: number, seed: number): { x: tf.Tensor4D; labels: number[] } {
  const random = createRandom(seed);
  const labels = Array.from({ length: count }, (_, i) => i % 4);
  const data = new Float32Array(count * size * size);
  const half = size / 2;
  labels.forEach((label, n) => {
    for (let r = 0; r < size; r++) {
      for (let c = 0; c < size; c++) {
        const quadrant = (r < half ? 0 : 2) + (c < half ? 0 : 1);
        data[n * size * size + r * size + c] = (quadrant === label ? 1 : 0) + 0.3 * (random() - 0.5);
      }
    }
  });
  return { x: tf.tensor4d(data, [count, size, size, 1]), labels };
}

/**
 * Toy clips for the ranker: the angle sets the width of a bright band (angle index k → columns
 * 0..k lit) over seeded noise, so the energy grows with the angle, as something a
 * globally pooled net can see; `angles` are 0, 36, …, 180.
 */
export function barImages(count: number, size: number, seed: number): { x: tf.Tensor4D; angles: number[]; classes: number[] } {
  const random = createRandom(seed);
  const classes = Array.from({ length: count }, (_, i) => i % 6);
  const data = new Float32Array(count * size * size);
  classes.forEach((k, n) => {
    for (let r = 0; r < size; r++) {
      for (let c = 0; c < size; c++) {
        data[n * size * size + r * size + c] = (c <= k ? 1 : 0) + 0.2 * (random() - 0.5);
      }
    }
  });
  return { x: tf.tensor4d(data, [count, size, size, 1]), angles: classes.map((k) => 36 * k), classes };
}
