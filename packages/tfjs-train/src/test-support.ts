// Helpers shared by this package's tests (not exported from the barrel).
import * as tf from '@tensorflow/tfjs-core';

/** mulberry32: small seeded PRNG so every random shape and value is reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

export function randomValues(rand: () => number, size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = rand() * 2 - 1;
  return out;
}

/** Largest |a - b| relative to (1 + largest |b|): a scale-aware closeness measure. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  return Number.isNaN(maxDiff) ? Number.POSITIVE_INFINITY : maxDiff / (1 + maxRef);
}

/** Runs a kernel on a named backend through the engine, switching backends as needed. */
export async function runOn(
  backendName: string,
  kernelName: string,
  inputs: Record<string, { values: Float32Array; shape: number[] }>,
  attrs: Record<string, unknown>,
): Promise<{ values: Float32Array; shape: number[] }> {
  const previous = tf.getBackend();
  await tf.setBackend(backendName);
  try {
    const tensors: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(inputs)) tensors[k] = tf.tensor(v.values, v.shape, 'float32');
    const out = tf.engine().runKernel(kernelName, tensors as unknown as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor;
    const result = { values: out.dataSync() as Float32Array, shape: out.shape };
    tf.dispose([out, ...Object.values(tensors)]);
    return result;
  } finally {
    await tf.setBackend(previous);
  }
}

/**
 * Central finite difference of a scalar function of one flat float64 parameter vector, at the
 * given indices. Used on functions linear in the perturbed argument (convolutions in x or w),
 * where the central difference is exact up to rounding.
 */
export function finiteDifference(f: (p: Float32Array) => number, p: Float32Array, indices: number[], eps: number): number[] {
  return indices.map((i) => {
    const plus = Float32Array.from(p);
    const minus = Float32Array.from(p);
    plus[i] += eps;
    minus[i] -= eps;
    return (f(plus) - f(minus)) / (2 * eps);
  });
}

export function sampleIndices(rand: () => number, size: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(Math.floor(rand() * size));
  return out;
}

/** sum(a * b) in float64. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
