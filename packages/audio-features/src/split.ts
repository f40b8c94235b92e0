import { checkClassCounts, compareKeys } from './dataset';

/**
 * mulberry32: a 32-bit seeded PRNG returning floats in [0, 1). Ten lines, so written here rather
 * than pulled in; the same seed gives the same sequence on every platform.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle of a copy. */
export function seededShuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export type ClassOf<T> = (item: T) => string | number;

function checkSeed(seed: number, where: string): void {
  if (!Number.isInteger(seed)) throw new Error(`${where}: seed must be an integer, got ${seed}`);
}

/** Indices of the items grouped by class, classes in sorted order, indices ascending. */
function groupIndices<T>(items: readonly T[], classOf: ClassOf<T>, where: string): Array<[string | number, number[]]> {
  const groups = new Map<string | number, number[]>();
  items.forEach((item, index) => {
    const key = classOf(item);
    if ((typeof key !== 'number' || !Number.isFinite(key)) && typeof key !== 'string') {
      throw new Error(`${where}: classOf returned ${String(key)} for item ${index}; expected a string or finite number`);
    }
    const list = groups.get(key) ?? [];
    list.push(index);
    groups.set(key, list);
  });
  return [...groups.entries()].sort(([a], [b]) => compareKeys(a, b));
}

export interface SplitOptions<T> {
  /** Share of each class that goes to validation (default 0.1, the lab's 90/10). */
  validationFraction?: number;
  seed: number;
  /** Class of an item (default: `item.angleDeg`). */
  classOf?: ClassOf<T>;
}

export interface Split<T> {
  train: T[];
  validation: T[];
  /** Classes that got no validation item, and why. */
  warnings: string[];
}

const byAngle = (item: unknown) => (item as { angleDeg: number }).angleDeg;

/**
 * Seeded stratified train/validation split: each class (in sorted order, one PRNG stream) is
 * shuffled and round(n · fraction) of it, at least 1 while the class has 2+ items, goes to
 * validation. A class left with no validation item gets a warning. Both lists keep input order.
 */
export function stratifiedSplit<T>(items: readonly T[], opts: SplitOptions<T>): Split<T> {
  const { validationFraction = 0.1, seed, classOf = byAngle as ClassOf<T> } = opts;
  checkSeed(seed, 'stratifiedSplit');
  if (!(validationFraction >= 0 && validationFraction < 1)) {
    throw new Error(`stratifiedSplit: validationFraction must be in [0, 1), got ${validationFraction}`);
  }
  if (items.length === 0) throw new Error('stratifiedSplit: no items');
  const random = mulberry32(seed);
  const inValidation = new Uint8Array(items.length);
  const warnings: string[] = [];
  for (const [key, indices] of groupIndices(items, classOf, 'stratifiedSplit')) {
    const shuffled = seededShuffle(indices, random);
    let count = Math.round(indices.length * validationFraction);
    if (validationFraction > 0 && indices.length >= 2) count = Math.min(Math.max(count, 1), indices.length - 1);
    if (count === 0) {
      warnings.push(
        validationFraction === 0
          ? `class ${key}: no validation items (validationFraction is 0)`
          : `class ${key}: only ${indices.length} item(s), all kept for training; it has no validation item`,
      );
    }
    for (const index of shuffled.slice(0, count)) inValidation[index] = 1;
  }
  const train: T[] = [];
  const validation: T[] = [];
  items.forEach((item, i) => (inValidation[i] ? validation : train).push(item));
  return { train, validation, warnings };
}

export interface KFoldOptions<T> {
  k: number;
  seed: number;
  /** Class of an item (default: `item.angleDeg`). */
  classOf?: ClassOf<T>;
}

export interface Fold<T> {
  train: T[];
  test: T[];
}

/**
 * Seeded stratified k-fold: each class is shuffled and dealt round-robin over the folds, starting
 * where the previous class stopped so fold sizes differ by at most one. Every item is in exactly
 * one test fold. A class with fewer than k items is an error (some fold would never test it).
 */
export function stratifiedKFold<T>(items: readonly T[], opts: KFoldOptions<T>): Fold<T>[] {
  const { k, seed, classOf = byAngle as ClassOf<T> } = opts;
  checkSeed(seed, 'stratifiedKFold');
  if (!Number.isInteger(k) || k < 2) throw new Error(`stratifiedKFold: k must be an integer >= 2, got ${k}`);
  if (items.length === 0) throw new Error('stratifiedKFold: no items');
  checkClassCounts(items, k, classOf, `${k}-fold cross-validation`);
  const random = mulberry32(seed);
  const foldOf = new Int32Array(items.length);
  let next = 0;
  for (const [, indices] of groupIndices(items, classOf, 'stratifiedKFold')) {
    for (const index of seededShuffle(indices, random)) {
      foldOf[index] = next;
      next = (next + 1) % k;
    }
  }
  return Array.from({ length: k }, (_, fold) => ({
    train: items.filter((_, i) => foldOf[i] !== fold),
    test: items.filter((_, i) => foldOf[i] === fold),
  }));
}
