import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkClassCounts, checkSampleRates, readManifest, scanDataset } from './dataset';
import { writeToneWav } from './test-wav';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'audio-features-data-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function makeLayout(base: string, takes = 2) {
  for (const material of ['plastic', 'box']) {
    for (const freq of [500, 1000]) {
      for (const angle of ['deg000', 'deg036', 'deg180']) {
        for (let take = takes; take >= 1; take--) {
          await writeToneWav(join(base, material, `${freq}Hz`, angle, `take0${take}.wav`), { freqHz: freq, seconds: 0.01 });
        }
      }
    }
  }
}

describe('scanDataset', () => {
  it('finds every take, parses the folder names and sorts deterministically', async () => {
    await makeLayout(root);
    await writeFile(join(root, 'plastic', '500Hz', 'deg000', 'notes.txt'), 'not audio');
    await mkdir(join(root, '.cache'));
    const items = await scanDataset(root);
    expect(items).toHaveLength(2 * 2 * 3 * 2);
    expect(items[0]).toEqual({
      path: join(root, 'box', '500Hz', 'deg000', 'take01.wav'),
      material: 'box',
      freqHz: 500,
      angleDeg: 0,
      take: 'take01',
    });
    expect(items.map((i) => `${i.material}/${i.freqHz}/${i.angleDeg}/${i.take}`).slice(0, 7)).toEqual([
      'box/500/0/take01',
      'box/500/0/take02',
      'box/500/36/take01',
      'box/500/36/take02',
      'box/500/180/take01',
      'box/500/180/take02',
      'box/1000/0/take01',
    ]);
  });

  it('filters by material, frequency and angle', async () => {
    await makeLayout(root);
    const items = await scanDataset(root, { materials: ['plastic'], freqsHz: [1000], anglesDeg: [36, 180] });
    expect(items.map((i) => [i.material, i.freqHz, i.angleDeg])).toEqual([
      ['plastic', 1000, 36],
      ['plastic', 1000, 36],
      ['plastic', 1000, 180],
      ['plastic', 1000, 180],
    ]);
    await expect(scanDataset(root, { materials: ['glass'] })).rejects.toThrow(
      `scanDataset: no .wav files under ${root} matching materials ["glass"]`,
    );
  });

  it('errors: missing root, empty root, empty angle folder, unparseable names', async () => {
    await expect(scanDataset(join(root, 'nope'))).rejects.toThrow(/nope is not a folder/);
    await expect(scanDataset(root)).rejects.toThrow(/is empty; expected <material>\/<freq>Hz\/deg<angle>\/\*\.wav/);
    await mkdir(join(root, 'plastic', '1000Hz', 'deg036'), { recursive: true });
    await expect(scanDataset(root)).rejects.toThrow(`scanDataset: folder ${join(root, 'plastic', '1000Hz', 'deg036')} is empty`);
    await writeToneWav(join(root, 'plastic', '1000Hz', 'deg036', 'take01.wav'), { freqHz: 1000, seconds: 0.01 });
    await mkdir(join(root, 'plastic', '1kHz'));
    await expect(scanDataset(root)).rejects.toThrow(/folder .*1kHz does not parse as a frequency; expected <freq>Hz such as 1000Hz/);
    await rm(join(root, 'plastic', '1kHz'), { recursive: true });
    await mkdir(join(root, 'plastic', '1000Hz', 'angle36'));
    await expect(scanDataset(root)).rejects.toThrow(/folder .*angle36 does not parse as an angle; expected deg<angle> such as deg036/);
  });
});

describe('readManifest', () => {
  it('reads path,material,freq_hz,angle_deg with relative paths, any column order and quotes', async () => {
    await writeToneWav(join(root, 'audio', 'a, first.wav'), { freqHz: 500, seconds: 0.01 });
    await writeToneWav(join(root, 'elsewhere.wav'), { freqHz: 500, seconds: 0.01 });
    const csv = join(root, 'lists', 'manifest.csv');
    await mkdir(join(root, 'lists'));
    await writeFile(
      csv,
      `angle_deg,path,material,freq_hz,notes\n72,"../audio/a, first.wav",box,500,x\n0,${join(root, 'elsewhere.wav')},box,500,\n`,
    );
    const items = await readManifest(csv);
    expect(items).toEqual([
      { path: join(root, 'elsewhere.wav'), material: 'box', freqHz: 500, angleDeg: 0, take: 'elsewhere' },
      { path: join(root, 'audio', 'a, first.wav'), material: 'box', freqHz: 500, angleDeg: 72, take: 'a, first' },
    ]);
    expect(await readManifest(csv, { anglesDeg: [72] })).toHaveLength(1);
  });

  it('names the file, row and column in errors', async () => {
    const csv = join(root, 'm.csv');
    await writeFile(csv, 'path,material,freq\nx.wav,box,500\n');
    await expect(readManifest(csv)).rejects.toThrow(/m\.csv lacks column\(s\) freq_hz, angle_deg/);
    await writeFile(csv, 'path,material,freq_hz,angle_deg\nx.wav,box,fast,0\n');
    await expect(readManifest(csv)).rejects.toThrow(/m\.csv row 1: freq_hz must be a number, got "fast"/);
    await writeFile(csv, 'path,material,freq_hz,angle_deg\nx.wav,box,500,0\n');
    await expect(readManifest(csv)).rejects.toThrow(/m\.csv row 1: file not found: .*x\.wav/);
    await writeFile(csv, 'path,material,freq_hz,angle_deg\n');
    await expect(readManifest(csv)).rejects.toThrow(/has no rows/);
  });
});

describe('checks', () => {
  it('checkSampleRates returns the common rate or lists the rates', async () => {
    await writeToneWav(join(root, 'a.wav'), { freqHz: 500, sampleRate: 16000, seconds: 0.01 });
    await writeToneWav(join(root, 'b.wav'), { freqHz: 500, sampleRate: 16000, seconds: 0.01 });
    await writeToneWav(join(root, 'c.wav'), { freqHz: 500, sampleRate: 44100, seconds: 0.01 });
    expect(await checkSampleRates([{ path: join(root, 'a.wav') }, { path: join(root, 'b.wav') }])).toBe(16000);
    await expect(
      checkSampleRates(['a', 'b', 'c'].map((n) => ({ path: join(root, `${n}.wav`) }))),
    ).rejects.toThrow(`mixed sample rates (16000 Hz: 2 file(s), e.g. ${join(root, 'a.wav')}; 44100 Hz: 1 file(s), e.g. ${join(root, 'c.wav')})`);
  });

  it('checkClassCounts names the classes that are too small', () => {
    const items = [0, 0, 0, 36, 36, 72].map((angleDeg) => ({ angleDeg }));
    expect(() => checkClassCounts(items, 2, (i) => i.angleDeg)).toThrow(
      'too few items per class for this split: 72 has 1; each class needs at least 2',
    );
    expect(() => checkClassCounts(items, 1, (i) => i.angleDeg)).not.toThrow();
  });
});
