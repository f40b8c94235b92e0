import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { GradientDensity } from './gradient-density';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** float32 neighbours of a float32 value. */
function nextUp(x: number): number {
  const b = new Float32Array([x]);
  const i = new Int32Array(b.buffer);
  i[0] += x >= 0 ? 1 : -1;
  return b[0];
}
function nextDown(x: number): number {
  if (x === 0) return -1.401298464324817e-45;
  const b = new Float32Array([x]);
  const i = new Int32Array(b.buffer);
  i[0] -= x > 0 ? 1 : -1;
  return b[0];
}

/** mmdetection's loop, `g >= edges[i] & g < edges[i + 1]`, in float32 values. */
function bruteForceCounts(g: Float32Array, edges: Float32Array): number[] {
  const bins = edges.length - 1;
  const counts = new Array<number>(bins).fill(0);
  for (const v of g) {
    for (let i = 0; i < bins; i++) if (v >= edges[i] && v < edges[i + 1]) counts[i] += 1;
  }
  return counts;
}

describe('GradientDensity binning', () => {
  for (const [bins, lastEdge] of [[3, 1 + 1e-6], [7, 1 + 1e-6], [10, 1 + 1e-6], [30, 1 + 1e-6], [10, 1e3], [97, 1 + 1e-6], [1000, 1 + 1e-6]] as const) {
    it(`bins ${bins}, last edge ${lastEdge}: every edge and its float32 neighbours land where mmdetection puts them`, () => {
      const density = new GradientDensity(bins, 0, lastEdge);
      const values: number[] = [];
      for (const e of density.edges) values.push(e, nextUp(e), nextDown(e));
      values.push(1, nextDown(1), -0.5, 2, Number.NaN);
      let state = 12345;
      for (let i = 0; i < 200; i++) {
        state = (state * 1103515245 + 12345) % 2 ** 31;
        values.push(state / 2 ** 31);
      }
      const g = Float32Array.from(values);
      const counts = tf.tidy(() => {
        density.factors(tf.tensor1d(g), tf.ones([g.length]) as tf.Tensor1D, false, true);
        return density.stats().counts;
      });
      expect(counts).toEqual(bruteForceCounts(g, density.edges));
      density.dispose();
    });
  }
});
