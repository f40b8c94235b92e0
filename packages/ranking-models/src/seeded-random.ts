/**
 * Small seeded PRNG utilities. Written by hand (rather than a library) because the package needs
 * only a few lines of deterministic integer mixing, and tfjs-core already ships its own seeded
 * generator for tensors; this one drives shuffles, pair sampling and per-layer seed derivation.
 */

/** mulberry32: a 32-bit generator with good statistical quality for shuffling and sampling. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Derives an independent 31-bit seed from a base seed and a stream index (splitmix-style
 * finaliser), so that layer k of a model seeded with s gets its own reproducible stream.
 */
export function deriveSeed(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul((index + 1) >>> 0, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) & 0x7fffffff;
}

/** Fisher–Yates shuffle of 0..n-1 driven by the given seed. */
export function shuffledIndices(n: number, seed: number): number[] {
  const random = createRandom(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
  return order;
}
