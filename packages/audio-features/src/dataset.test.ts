import { cp, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkClassCounts,
  checkSampleRates,
  compareFingerprints,
  datasetFingerprint,
  describeFingerprintChange,
  parseDecimal,
  readManifest,
  scanDataset,
} from './dataset';
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

describe('scanDataset: no silent wrong numbers', () => {
  it('follows symbolic links to class folders and takes instead of skipping them', async () => {
    await makeLayout(join(root, 'real'));
    await mkdir(join(root, 'linked', 'plastic', '500Hz'), { recursive: true });
    // A class folder and a take that are links: the old scan dropped both without a word.
    await symlink(join(root, 'real', 'plastic', '500Hz', 'deg036'), join(root, 'linked', 'plastic', '500Hz', 'deg036'));
    await mkdir(join(root, 'linked', 'plastic', '500Hz', 'deg000'));
    await symlink(join(root, 'real', 'plastic', '500Hz', 'deg000', 'take01.wav'), join(root, 'linked', 'plastic', '500Hz', 'deg000', 'take01.wav'));
    const items = await scanDataset(join(root, 'linked'));
    expect(items.map((i) => `${i.angleDeg}/${i.take}`)).toEqual(['0/take01', '36/take01', '36/take02']);
  });

  it('refuses implausible angles and a value spelled twice', async () => {
    await writeToneWav(join(root, 'plastic', '1000Hz', 'deg036', 'take01.wav'), { freqHz: 1000, seconds: 0.01 });
    await writeToneWav(join(root, 'plastic', '1000Hz', 'deg999', 'take01.wav'), { freqHz: 1000, seconds: 0.01 });
    await expect(scanDataset(root)).rejects.toThrow(/folder .*deg999 is angle 999°; expected an angle from 0 to 360/);
    await rename(join(root, 'plastic', '1000Hz', 'deg999'), join(root, 'plastic', '1000Hz', 'deg36'));
    await expect(scanDataset(root)).rejects.toThrow(/folders .*deg036 and .*deg36 are the same angle spelled twice/);
    await rm(join(root, 'plastic', '1000Hz', 'deg36'), { recursive: true });
    await cp(join(root, 'plastic', '1000Hz'), join(root, 'plastic', '1000.0Hz'), { recursive: true });
    await expect(scanDataset(root)).rejects.toThrow(/folders .*1000\.0Hz and .*1000Hz are the same frequency spelled twice/);
    await rm(join(root, 'plastic', '1000.0Hz'), { recursive: true });
    await cp(join(root, 'plastic'), join(root, 'Plastic'), { recursive: true });
    await expect(scanDataset(root)).rejects.toThrow(/folders .*Plastic and .*plastic differ only in case/);
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

  it('refuses numbers that are not plain decimals, implausible angles and a file listed twice', async () => {
    await writeToneWav(join(root, 'x.wav'), { freqHz: 500, seconds: 0.01 });
    const csv = join(root, 'm.csv');
    // Number('0x24') is 36: the old reader took a hexadecimal typo as a real angle.
    await writeFile(csv, 'path,material,freq_hz,angle_deg\nx.wav,box,500,0x24\n');
    await expect(readManifest(csv)).rejects.toThrow(/row 1: angle_deg must be a number, got "0x24" \(expected plain decimal digits/);
    for (const bad of ['1e1', 'Infinity', '+36', '36.', ' ']) {
      await writeFile(csv, `path,material,freq_hz,angle_deg\nx.wav,box,500,"${bad}"\n`);
      await expect(readManifest(csv), bad).rejects.toThrow(/angle_deg must be a number/);
    }
    await writeFile(csv, 'path,material,freq_hz,angle_deg\nx.wav,box,500,999\n');
    await expect(readManifest(csv)).rejects.toThrow(/row 1: angle_deg is 999; expected an angle from 0 to 360/);
    await writeFile(csv, 'path,material,freq_hz,angle_deg\nx.wav,box,500,0\n./x.wav,box,500,36\n');
    await expect(readManifest(csv)).rejects.toThrow(/row 2: .*x\.wav is listed again \(first in row 1\)/);
    expect([parseDecimal('36'), parseDecimal('36.5'), parseDecimal('-10'), parseDecimal('0x24'), parseDecimal('')]).toEqual([36, 36.5, -10, undefined, undefined]);
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

describe('datasetFingerprint', () => {
  it('changes with content, size, labels and files, not with the folder the data set sits in', async () => {
    await makeLayout(join(root, 'a'), 1);
    const items = await scanDataset(join(root, 'a'));
    const before = datasetFingerprint(items, { root: join(root, 'a') });
    expect(before.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(before.files).toBe(12);
    expect(before.bytes).toBe(items.reduce((n, i) => n + statSync(i.path).size, 0));
    expect(before.entries[0]).toMatchObject({ path: 'box/1000Hz/deg000/take01.wav', material: 'box', freqHz: 1000, angleDeg: 0 });
    expect(before.entries[0].sha256).toBe(createHash('sha256').update(readFileSync(items.find((i) => i.material === 'box' && i.freqHz === 1000 && i.angleDeg === 0)!.path)).digest('hex'));
    // The same files elsewhere: same fingerprint (paths are relative); root defaults to the common folder.
    await cp(join(root, 'a'), join(root, 'moved'), { recursive: true });
    expect(datasetFingerprint(await scanDataset(join(root, 'moved'))).sha256).toBe(before.sha256);

    // Change one take's content, add one, remove one, relabel one.
    await writeToneWav(join(root, 'a', 'box', '500Hz', 'deg036', 'take01.wav'), { freqHz: 500, seconds: 0.01, phase: 1 });
    await writeToneWav(join(root, 'a', 'box', '500Hz', 'deg036', 'take02.wav'), { freqHz: 500, seconds: 0.01, phase: 2 });
    await rm(join(root, 'a', 'plastic', '1000Hz', 'deg180', 'take01.wav'));
    await writeFile(join(root, 'a', 'plastic', '1000Hz', 'deg180', 'take09.wav'), readFileSync(join(root, 'moved', 'plastic', '1000Hz', 'deg180', 'take01.wav')));
    const after = datasetFingerprint(await scanDataset(join(root, 'a')), { root: join(root, 'a') });
    expect(after.sha256).not.toBe(before.sha256);
    const change = compareFingerprints(before, after);
    expect(change).toEqual({
      added: ['box/500Hz/deg036/take02.wav', 'plastic/1000Hz/deg180/take09.wav'],
      removed: ['plastic/1000Hz/deg180/take01.wav'],
      changed: ['box/500Hz/deg036/take01.wav'],
      relabelled: [],
    });
    expect(describeFingerprintChange(change, 1)).toBe(
      '2 added (box/500Hz/deg036/take02.wav, … 1 more); 1 removed (plastic/1000Hz/deg180/take01.wav); 1 changed (box/500Hz/deg036/take01.wav)',
    );
    // A manifest that relabels a file changes the fingerprint too.
    const movedItems = await scanDataset(join(root, 'moved'));
    const relabelled = movedItems.map((i, n) => (n === 0 ? { ...i, angleDeg: 72 } : i));
    const third = datasetFingerprint(relabelled, { root: join(root, 'moved') });
    const moved = datasetFingerprint(movedItems, { root: join(root, 'moved') });
    expect(third.sha256).not.toBe(moved.sha256);
    expect(compareFingerprints(moved, third)).toMatchObject({ relabelled: ['box/500Hz/deg000/take01.wav'], changed: [], added: [] });
    expect(() => datasetFingerprint([])).toThrow(/no items/);
  });
});
