import { describe, expect, it } from 'vitest';
import { mulberry32, seededShuffle, stratifiedKFold, stratifiedSplit } from './split';

/** The seeds' layout: 6 angles × 9 takes. */
const items = [0, 36, 72, 108, 144, 180].flatMap((angleDeg) =>
  Array.from({ length: 9 }, (_, take) => ({ angleDeg, take: `take${take}`, material: take % 2 ? 'box' : 'plastic' })),
);

describe('mulberry32 / seededShuffle', () => {
  it('is deterministic per seed, uniform-looking, and seeds differ', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const first = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(first);
    expect(Array.from({ length: 5 }, mulberry32(43))).not.toEqual(first);
    const r = mulberry32(7);
    const draws = Array.from({ length: 20000 }, r);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    expect(draws.reduce((s, x) => s + x, 0) / draws.length).toBeCloseTo(0.5, 1);
    const shuffled = seededShuffle([1, 2, 3, 4, 5, 6, 7, 8], mulberry32(1));
    expect([...shuffled].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(shuffled).toEqual(seededShuffle([1, 2, 3, 4, 5, 6, 7, 8], mulberry32(1)));
  });
});

describe('stratifiedSplit', () => {
  it('90/10 per angle by default: one validation take of nine per class', () => {
    const { train, validation, warnings } = stratifiedSplit(items, { seed: 1 });
    expect(warnings).toEqual([]);
    expect(validation).toHaveLength(6);
    expect(train).toHaveLength(48);
    expect(new Set(validation.map((i) => i.angleDeg)).size).toBe(6);
    expect(new Set([...train, ...validation])).toEqual(new Set(items));
  });

  it('is reproducible for a seed and changes with it', () => {
    const a = stratifiedSplit(items, { seed: 5, validationFraction: 0.3 });
    const b = stratifiedSplit(items, { seed: 5, validationFraction: 0.3 });
    expect(a.validation).toEqual(b.validation);
    const others = [6, 7, 8].map((seed) => stratifiedSplit(items, { seed, validationFraction: 0.3 }).validation);
    expect(others.some((v) => JSON.stringify(v) !== JSON.stringify(a.validation))).toBe(true);
    // round(9 * 0.3) = 3 per class
    expect(a.validation).toHaveLength(18);
  });

  it('keeps at least one validation item per class, and warns when a class cannot have one', () => {
    const small = [...items.filter((i) => i.angleDeg !== 180), { angleDeg: 180, take: 'only', material: 'box' }];
    const { train, validation, warnings } = stratifiedSplit(small, { seed: 3, validationFraction: 0.01 });
    expect(validation).toHaveLength(5); // round(9 * 0.01) = 0, raised to 1 per class
    expect(train.some((i) => i.take === 'only')).toBe(true);
    expect(warnings).toEqual(['class 180: only 1 item(s), all kept for training; it has no validation item']);
    expect(stratifiedSplit(items, { seed: 3, validationFraction: 0 }).warnings).toHaveLength(6);
  });

  it('stratifies by any class function and rejects bad options', () => {
    const { validation } = stratifiedSplit(items, { seed: 2, validationFraction: 0.5, classOf: (i) => i.material });
    expect(validation.filter((i) => i.material === 'box')).toHaveLength(Math.round(24 * 0.5));
    expect(() => stratifiedSplit(items, { seed: 1, validationFraction: 1 })).toThrow(/validationFraction must be in \[0, 1\)/);
    expect(() => stratifiedSplit(items, { seed: 1.5 })).toThrow(/seed must be an integer/);
    expect(() => stratifiedSplit(items, { seed: 1, classOf: () => undefined as never })).toThrow(/classOf returned undefined/);
  });
});

describe('stratifiedKFold', () => {
  it('puts every item in exactly one test fold, stratified, reproducibly', () => {
    const folds = stratifiedKFold(items, { k: 3, seed: 9 });
    expect(folds).toHaveLength(3);
    const tested = folds.flatMap((f) => f.test);
    expect(tested).toHaveLength(items.length);
    expect(new Set(tested).size).toBe(items.length);
    for (const fold of folds) {
      expect(fold.train.length + fold.test.length).toBe(items.length);
      expect(fold.train.some((i) => fold.test.includes(i))).toBe(false);
      for (const angle of [0, 36, 72, 108, 144, 180]) expect(fold.test.filter((i) => i.angleDeg === angle)).toHaveLength(3);
    }
    expect(stratifiedKFold(items, { k: 3, seed: 9 })).toEqual(folds);
    expect(stratifiedKFold(items, { k: 3, seed: 10 })).not.toEqual(folds);
  });

  it('balances uneven classes and refuses classes smaller than k', () => {
    const uneven = items.slice(0, 9 + 8); // 9 of angle 0, 8 of angle 36
    const sizes = stratifiedKFold(uneven, { k: 4, seed: 1 }).map((f) => f.test.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(() => stratifiedKFold(items, { k: 10, seed: 1 })).toThrow(
      'too few items per class for 10-fold cross-validation: 0 has 9, 36 has 9, 72 has 9, 108 has 9, 144 has 9, 180 has 9; each class needs at least 10',
    );
    expect(() => stratifiedKFold(items, { k: 1, seed: 1 })).toThrow(/k must be an integer >= 2/);
  });
});
