/**
 * Seeded randomness for the simulator.
 *
 * Hand-written rather than taken from a library on purpose: the simulator promises byte-identical
 * WAV files for the same seed, so the generator must never change under a dependency upgrade, and
 * every take gets its own stream derived from its name (so filtering materials or angles never
 * changes the other files).
 */

/** A uniform generator on [0, 1). */
export type UniformRandom = () => number;

/** mulberry32: a small 32-bit generator with good statistical quality for simulation noise. */
export function mulberry32(seed: number): UniformRandom {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed from any list of parts (cyrb53-style string hash, folded to 32 bits). */
export function deriveSeed(...parts: Array<string | number>): number {
  const text = parts.join('|');
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h1 ^ h2) >>> 0;
}

/** Standard normal deviates by the Box–Muller transform (one fresh pair of uniforms per call). */
export function gaussian(rng: UniformRandom): number {
  // 1 − u keeps the logarithm finite: u is in [0, 1), so 1 − u is in (0, 1].
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
