import { createRandom, shuffledIndices } from './seeded-random';

/**
 * A training pair: indices of two items and the target y = sign(angle[a] − angle[b]), as
 * MarginRankingLoss expects (y = 1 ⇒ item a must score higher). Pairs of equal angle are
 * never produced: they carry no ordering.
 */
export interface AnglePair {
  a: number;
  b: number;
  y: 1 | -1;
}

function checkAngles(angles: readonly number[], where: string): void {
  if (!Array.isArray(angles)) throw new Error(`${where}: angles must be an array of numbers`);
  angles.forEach((angle, i) => {
    if (typeof angle !== 'number' || !Number.isFinite(angle)) {
      throw new Error(`${where}: angles[${i}] must be a finite number, got ${String(angle)}`);
    }
  });
}

function pair(a: number, b: number, angles: readonly number[]): AnglePair {
  return { a, b, y: angles[a] > angles[b] ? 1 : -1 };
}

/**
 * Every pair (i, j), i < j, of items in a batch whose angles differ, in index order.
 * `angles` are the items' angles (or any ordinal labels, e.g. angle-class indices).
 */
export function allPairsInBatch(angles: readonly number[]): AnglePair[] {
  checkAngles(angles, 'allPairsInBatch');
  const pairs: AnglePair[] = [];
  for (let i = 0; i < angles.length; i++) {
    for (let j = i + 1; j < angles.length; j++) {
      if (angles[i] !== angles[j]) pairs.push(pair(i, j, angles));
    }
  }
  return pairs;
}

/**
 * `count` pairs drawn uniformly (with replacement across draws) from all ordered pairs of
 * distinct items with different angles; seeded. Throws if every item has the same angle.
 */
export function randomPairs(angles: readonly number[], count: number, seed: number): AnglePair[] {
  checkAngles(angles, 'randomPairs');
  if (!Number.isInteger(count) || count < 0) throw new Error(`randomPairs: count must be a non-negative integer, got ${String(count)}`);
  if (count > 0 && new Set(angles).size < 2) throw new Error('randomPairs: angles must hold at least two different values');
  const random = createRandom(seed);
  const pairs: AnglePair[] = [];
  while (pairs.length < count) {
    const a = Math.floor(random() * angles.length);
    const b = Math.floor(random() * angles.length);
    if (angles[a] !== angles[b]) pairs.push(pair(a, b, angles));
  }
  return pairs;
}

/**
 * Pairs whose angles are neighbours in the sorted list of distinct angles (e.g. 36° vs 72°): the
 * hard pairs. Without `count`, every such pair (i < j) in index order; with `count`, that many
 * drawn from them without replacement (all of them if fewer exist), seeded, and each pair's
 * order (which item is a) also drawn at random so y is balanced.
 */
export function adjacentAnglePairs(angles: readonly number[], options: { count?: number; seed?: number } = {}): AnglePair[] {
  checkAngles(angles, 'adjacentAnglePairs');
  const distinct = [...new Set(angles)].sort((x, y) => x - y);
  const rank = new Map(distinct.map((angle, r) => [angle, r]));
  const all: AnglePair[] = [];
  for (let i = 0; i < angles.length; i++) {
    for (let j = i + 1; j < angles.length; j++) {
      if (Math.abs(rank.get(angles[i])! - rank.get(angles[j])!) === 1) all.push(pair(i, j, angles));
    }
  }
  if (options.count === undefined) return all;
  if (!Number.isInteger(options.count) || options.count < 0) {
    throw new Error(`adjacentAnglePairs: options.count must be a non-negative integer, got ${String(options.count)}`);
  }
  const seed = options.seed ?? 0;
  const random = createRandom(seed ^ 0x5bd1e995);
  return shuffledIndices(all.length, seed)
    .slice(0, options.count)
    .map((k) => (random() < 0.5 ? all[k] : pair(all[k].b, all[k].a, angles)));
}
