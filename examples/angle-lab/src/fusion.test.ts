import { describe, expect, it } from 'vitest';
import type { DatasetItem } from '@lab/audio-features';
import { groupTakes, stackChannels, takeKey } from './fusion';

const item = (material: string, freqHz: number, angleDeg: number, take: string): DatasetItem => ({
  path: `/data/${material}/${freqHz}Hz/deg${String(angleDeg).padStart(3, '0')}/${take}.wav`,
  material,
  freqHz,
  angleDeg,
  take,
});

describe('stackChannels', () => {
  it('interleaves maps into channels-last order', () => {
    // Two 1×2 maps [a0 a1] and [b0 b1] become [a0 b0 a1 b1].
    const stacked = stackChannels([
      { data: Float32Array.from([1, 2]), height: 1, width: 2 },
      { data: Float32Array.from([10, 20]), height: 1, width: 2 },
    ]);
    expect(stacked.channels).toBe(2);
    expect(Array.from(stacked.data)).toEqual([1, 10, 2, 20]);
  });

  it('keeps a single map as it is', () => {
    const map = { data: Float32Array.from([1, 2, 3, 4, 5, 6]), height: 2, width: 3 };
    const stacked = stackChannels([map]);
    expect(Array.from(stacked.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect([stacked.height, stacked.width, stacked.channels]).toEqual([2, 3, 1]);
  });

  it('rejects maps of different shapes, naming the map', () => {
    expect(() =>
      stackChannels([
        { data: new Float32Array(4), height: 2, width: 2 },
        { data: new Float32Array(6), height: 2, width: 3 },
      ]),
    ).toThrow(/map 1 is 2×3/);
    expect(() => stackChannels([])).toThrow(/no feature maps/);
  });
});

describe('groupTakes', () => {
  const items = [
    item('plastic', 3000, 36, 'take02'),
    item('plastic', 500, 36, 'take02'),
    item('plastic', 500, 0, 'take01'),
    item('plastic', 3000, 0, 'take01'),
    item('box', 500, 0, 'take01'),
    item('box', 3000, 0, 'take01'),
  ];

  it('puts the recordings of one take in the requested frequency order, takes sorted by material, angle, take', () => {
    const groups = groupTakes(items, [3000, 500]);
    expect(groups.map((g) => g.key)).toEqual(['box/deg000/take01', 'plastic/deg000/take01', 'plastic/deg036/take02']);
    expect(groups[1].items.map((i) => i.freqHz)).toEqual([3000, 500]);
    expect(takeKey(items[0])).toBe('plastic/deg036/take02');
  });

  it('ignores frequencies not asked for', () => {
    expect(groupTakes(items, [500]).every((g) => g.items.length === 1 && g.items[0].freqHz === 500)).toBe(true);
  });

  it('names a take that lacks a frequency', () => {
    expect(() => groupTakes([...items, item('plastic', 500, 72, 'take03')], [500, 3000])).toThrow('take plastic/deg072/take03 has no recording at 3000 Hz');
  });

  it('names a take recorded twice at one frequency', () => {
    expect(() => groupTakes([...items, { ...item('plastic', 500, 0, 'take01'), path: '/elsewhere/take01.wav' }], [500])).toThrow(/two recordings at 500 Hz/);
  });
});
