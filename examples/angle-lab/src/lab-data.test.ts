import { describe, expect, it } from 'vitest';
import type { DatasetItem } from '@lab/audio-features';
import { groupTakes } from './fusion';
import { inputName, parseInput, splitTakes } from './lab-data';

function items(frequencies: number[]): DatasetItem[] {
  const out: DatasetItem[] = [];
  for (const freqHz of frequencies)
    for (const angleDeg of [0, 36, 72, 108, 144, 180])
      for (let t = 1; t <= 9; t++) {
        const take = `take${String(t).padStart(2, '0')}`;
        out.push({ path: `/d/plastic/${freqHz}Hz/deg${angleDeg}/${take}.wav`, material: 'plastic', freqHz, angleDeg, take });
      }
  return out;
}

describe('parseInput', () => {
  it('reads single and fused inputs and writes them back', () => {
    expect(parseInput('1000Hz')).toEqual([1000]);
    expect(parseInput('500Hz+1000Hz+3000Hz')).toEqual([500, 1000, 3000]);
    expect(inputName([500, 3000])).toBe('500Hz+3000Hz');
  });
  it('rejects what it cannot read', () => {
    expect(() => parseInput('1000')).toThrow(/expected frequencies like/);
    expect(() => parseInput('500Hz+500Hz')).toThrow(/repeated/);
  });
});

describe('splitTakes', () => {
  const groups = groupTakes(items([500, 1000, 3000]), [500, 1000, 3000]);

  it('makes disjoint train, validation and test parts covering every take, stratified by angle', () => {
    const split = splitTakes(groups, { seed: 3, fold: 1, folds: 3, validationFraction: 0.1 });
    const all = [...split.train, ...split.validation, ...split.test];
    expect(new Set(all).size).toBe(groups.length);
    expect(all.length).toBe(groups.length);
    // 9 takes per angle, 3 folds: 3 test takes per angle; of the other 6, round(0.6) = 1 for validation.
    for (const angle of [0, 36, 72, 108, 144, 180]) {
      expect(split.test.filter((i) => groups[i].angleDeg === angle)).toHaveLength(3);
      expect(split.validation.filter((i) => groups[i].angleDeg === angle)).toHaveLength(1);
    }
  });

  it('tests every take exactly once over the folds of a seed', () => {
    const tested = [0, 1, 2].flatMap((fold) => splitTakes(groups, { seed: 5, fold, folds: 3, validationFraction: 0.1 }).test);
    expect([...tested].sort((a, b) => a - b)).toEqual(groups.map((_, i) => i));
  });

  it('uses the same takes for a single frequency as for the fused input (same seed and fold)', () => {
    const single = groupTakes(items([1000]), [1000]);
    const a = splitTakes(single, { seed: 2, fold: 0, folds: 5, validationFraction: 0.1 });
    const b = splitTakes(groups, { seed: 2, fold: 0, folds: 5, validationFraction: 0.1 });
    expect(a.test.map((i) => single[i].key)).toEqual(b.test.map((i) => groups[i].key));
    expect(a.validation.map((i) => single[i].key)).toEqual(b.validation.map((i) => groups[i].key));
  });

  it('without folds is a plain train/validation split', () => {
    const split = splitTakes(groups, { seed: 0, validationFraction: 0.25 });
    expect(split.test).toEqual([]);
    expect(split.validation.length).toBe(12);
  });
});
