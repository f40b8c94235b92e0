import { copyFile, cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import wavefile from 'wavefile';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readManifest, scanDataset } from './dataset';
import { assertValidDataset, formatDatasetProblems, validateDataset, validateManifest, wavPeak, type DatasetValidation } from './dataset-validation';
import { writeToneWav } from './test-wav';
import { decodeWav, encodeWav, parseWavHeader, writeWav } from './wav';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'audio-features-validate-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

let phase = 0;
/** A distinct take each call (the phase differs), so that no two takes are duplicates by accident. */
const take = (path: string, freqHz: number, opts: { sampleRate?: number; seconds?: number } = {}) =>
  writeToneWav(path, { freqHz, seconds: 0.03, phase: (phase += 0.1), ...opts });

/** plastic × {500, 1000} Hz × {deg000, deg036, deg072} × 3 takes. */
async function makeClean(base: string) {
  for (const freq of [500, 1000]) {
    for (const angle of ['deg000', 'deg036', 'deg072']) {
      for (let t = 1; t <= 3; t++) await take(join(base, 'plastic', `${freq}Hz`, angle, `take0${t}.wav`), freq);
    }
  }
}

/** `kind relative/path` per problem, sorted: the whole report in one comparable value. */
function summary(v: DatasetValidation, base = root) {
  const line = (p: { kind: string; path: string }) => `${p.kind} ${relative(base, p.path.replace(/ row \d+$/, '')) || '.'}${/ row \d+$/.test(p.path) ? p.path.match(/ row \d+$/)![0] : ''}`;
  return { errors: v.errors.map(line).sort(), warnings: v.warnings.map(line).sort() };
}

describe('validateDataset', () => {
  it('a clean data set: no problems, and the same items as scanDataset', async () => {
    await makeClean(root);
    await writeFile(join(root, 'simulation.json'), '{}'); // non-audio files are nobody's business
    const v = await validateDataset(root, { folds: 3 });
    expect(v.errors).toEqual([]);
    expect(v.warnings).toEqual([]);
    expect(v.items).toEqual(await scanDataset(root));
    const filtered = await validateDataset(root, { filter: { freqsHz: [1000], anglesDeg: [36] } });
    expect(filtered.items).toEqual(await scanDataset(root, { freqsHz: [1000], anglesDeg: [36] }));
  });

  it('reports every problem at once, each naming its path and what was expected', async () => {
    await makeClean(root);
    const p = (...parts: string[]) => join(root, ...parts);
    // Duplicate spellings of one angle and one frequency; wrong case; material in two cases.
    await take(p('plastic', '1000Hz', 'deg36', 'take09.wav'), 1000);
    await take(p('plastic', '1000.0Hz', 'deg000', 'take01.wav'), 1000);
    await take(p('plastic', '3000hz', 'deg000', 'take01.wav'), 3000);
    await take(p('Plastic', '500Hz', 'deg000', 'take01.wav'), 500);
    // Angles that are not plain decimal numbers, or implausible; an unparseable name.
    await take(p('plastic', '500Hz', 'deg0x24', 'take01.wav'), 500);
    await take(p('plastic', '500Hz', 'deg999', 'take01.wav'), 500);
    await mkdir(p('plastic', '500Hz', 'angle36'));
    // A duplicate take (same bytes in another class), a 1-sample WAV and an all-zero WAV.
    await copyFile(p('plastic', '500Hz', 'deg000', 'take01.wav'), p('plastic', '500Hz', 'deg072', 'take04.wav'));
    await writeWav(p('plastic', '500Hz', 'deg036', 'take04.wav'), { sampleRate: 16000, channels: [new Float32Array([0.5])] });
    await writeWav(p('plastic', '500Hz', 'deg036', 'take05.wav'), { sampleRate: 16000, channels: [new Float32Array(480)] });
    // A file that is not a WAV at all, and one at another sample rate.
    await writeFile(p('plastic', '1000Hz', 'deg072', 'take04.wav'), 'not a wav');
    await take(p('plastic', '1000Hz', 'deg072', 'take05.wav'), 1000, { sampleRate: 8000, seconds: 0.05 });
    // Audio that would be ignored: at the wrong depth, not WAV, hidden.
    await take(p('stray.wav'), 500);
    await take(p('plastic', '1000Hz', 'loose.wav'), 1000);
    await take(p('plastic', '1000Hz', 'deg000', 'session2', 'take01.wav'), 1000);
    await writeFile(p('plastic', '1000Hz', 'deg000', 'take04.flac'), 'fLaC');
    await writeFile(p('plastic', '1000Hz', 'deg000', 'take05.mp3'), 'ID3');
    await writeFile(p('plastic', '1000Hz', 'deg000', '._take01.wav'), 'AppleDouble');
    // Broken symbolic links to a class folder and to a take (the old scan skipped links silently).
    await symlink(p('gone'), p('plastic', '500Hz', 'deg108'));
    await symlink(p('nowhere.wav'), p('plastic', '500Hz', 'deg000', 'take04.wav'));

    const v = await validateDataset(root, { folds: 3 });
    const s = summary(v);
    expect(s.errors).toEqual(
      [
        'bad-folder-name plastic/500Hz/angle36',
        'bad-number plastic/500Hz/deg0x24',
        'broken-symlink plastic/500Hz/deg000/take04.wav',
        'broken-symlink plastic/500Hz/deg108',
        'duplicate-spelling Plastic',
        'duplicate-spelling plastic/1000.0Hz',
        'duplicate-spelling plastic/1000Hz/deg36',
        'duplicate-take plastic/500Hz/deg072/take04.wav',
        'implausible-angle plastic/500Hz/deg999',
        'mixed-sample-rates .',
        'silent plastic/500Hz/deg036/take05.wav',
        // 1000.0Hz/deg000 and 1000Hz/deg36 count with the class they spell twice (an error of their own).
        'too-few-takes Plastic/500Hz/deg000',
        'too-few-takes plastic/3000hz/deg000',
        'too-short plastic/500Hz/deg036/take04.wav',
        'unreadable-wav plastic/1000Hz/deg072/take04.wav',
        'unsupported-audio plastic/1000Hz/deg000/take04.flac',
        'unsupported-audio plastic/1000Hz/deg000/take05.mp3',
        'wrong-case plastic/3000hz',
      ].sort(),
    );
    expect(s.warnings).toEqual(
      [
        'hidden-file plastic/1000Hz/deg000/._take01.wav',
        'missing-class plastic/3000hz/deg036',
        'missing-class plastic/3000hz/deg072',
        'wrong-depth plastic/1000Hz/deg000/session2/take01.wav',
        'wrong-depth plastic/1000Hz/loose.wav',
        'wrong-depth stray.wav',
      ].sort(),
    );
    // Each entry says what is wrong and what was expected.
    const find = (kind: string, end: string) => [...v.errors, ...v.warnings].find((e) => e.kind === kind && e.path.endsWith(end))!;
    expect(find('bad-number', 'deg0x24')).toMatchObject({ problem: '"0x24" is not a plain decimal number', expected: expect.stringMatching(/deg<angle> such as deg036/) });
    expect(find('implausible-angle', 'deg999')).toMatchObject({ problem: 'is angle 999°', expected: 'an angle from 0 to 360 degrees' });
    expect(find('duplicate-spelling', 'deg36').problem).toBe(`is the same angle as ${join(root, 'plastic', '1000Hz', 'deg036')}`);
    expect(find('duplicate-spelling', '1000.0Hz').problem).toBe(`is the same frequency as ${join(root, 'plastic', '1000Hz')}`);
    expect(find('wrong-case', '3000hz')).toMatchObject({ problem: 'is spelled "3000hz"', expected: '"3000Hz" (names are case-sensitive)' });
    expect(find('duplicate-take', 'take04.wav').problem).toBe(`has the same content as ${join(root, 'plastic', '500Hz', 'deg000', 'take01.wav')}`);
    expect(find('too-short', 'take04.wav').problem).toBe('has 1 sample(s) per channel (0.1 ms)');
    expect(find('silent', 'take05.wav').problem).toBe('is silent: every sample is zero');
    expect(find('too-few-takes', join('3000hz', 'deg000'))).toMatchObject({ problem: 'has 1 take(s)', expected: expect.stringMatching(/at least 3 takes per class for 3-fold/) });
    expect(find('mixed-sample-rates', '').problem).toMatch(/16000 Hz: \d+ file\(s\).*; 8000 Hz: 1 file\(s\), e\.g\. .*take05\.wav/);
    expect(find('unsupported-audio', 'take04.flac').expected).toMatch(/WAV \(\.wav\) takes/);
    expect(find('broken-symlink', 'take04.wav').problem).toMatch(/is a symbolic link to .*nowhere\.wav, which does not exist/);
    // Each problem once: nothing double-counted.
    expect(new Set(s.errors).size).toBe(s.errors.length);

    // The message lists all of them, one per line.
    expect(() => assertValidDataset(v, root)).toThrow(/18 error\(s\), 6 warning\(s\); it cannot be used as it is/);
    const text = formatDatasetProblems(v);
    expect(text.split('\n')).toHaveLength(24);
    expect(text).toContain(`error   ${join(root, 'plastic', '500Hz', 'deg999')}: is angle 999° (expected an angle from 0 to 360 degrees)`);
    expect(text).toContain(`warning ${join(root, 'stray.wav')}: is a WAV file at the top of the data set; ignored`);
  });

  it('follows a symbolic link to a class folder and says so; a linked copy of a class is a duplicate', async () => {
    await makeClean(join(root, 'data'));
    await mkdir(join(root, 'store', 'deg108'), { recursive: true });
    for (let t = 1; t <= 3; t++) await take(join(root, 'store', 'deg108', `take0${t}.wav`), 500);
    await symlink(join(root, 'store', 'deg108'), join(root, 'data', 'plastic', '500Hz', 'deg108'));
    let v = await validateDataset(join(root, 'data'));
    expect(v.errors).toEqual([]);
    expect(summary(v, join(root, 'data')).warnings).toEqual(['missing-class plastic/1000Hz/deg108', 'symlink plastic/500Hz/deg108']);
    expect(v.warnings.find((w) => w.kind === 'symlink')!.problem).toMatch(/is a symbolic link to .*store\/deg108; followed/);
    expect(v.items.filter((i) => i.angleDeg === 108)).toHaveLength(3);
    // A class folder linked to another class: its takes are the other class's takes.
    await symlink(join(root, 'data', 'plastic', '1000Hz', 'deg036'), join(root, 'data', 'plastic', '1000Hz', 'deg144'));
    v = await validateDataset(join(root, 'data'), { filter: { freqsHz: [1000] } });
    expect(summary(v, join(root, 'data')).errors).toEqual([
      'duplicate-take plastic/1000Hz/deg144/take01.wav',
      'duplicate-take plastic/1000Hz/deg144/take02.wav',
      'duplicate-take plastic/1000Hz/deg144/take03.wav',
    ]);
  });

  it('a material asked for in another case, a frequency not there, a missing root', async () => {
    await makeClean(root);
    await cp(join(root, 'plastic'), join(root, 'Box'), { recursive: true });
    await rm(join(root, 'plastic'), { recursive: true });
    const v = await validateDataset(root, { filter: { materials: ['box'], freqsHz: [500, 3000] } });
    expect(summary(v).errors).toEqual(['no-recordings .', 'wrong-case Box']);
    expect(v.errors.find((e) => e.kind === 'wrong-case')!.expected).toBe('"box", the name asked for (names are case-sensitive)');
    const w = await validateDataset(root, { filter: { materials: ['Box'], freqsHz: [500, 3000] } });
    expect(summary(w).errors).toEqual(['not-found .']);
    expect(w.errors[0].problem).toBe('has no recordings at 3000 Hz');
    const none = await validateDataset(join(root, 'nope'));
    expect(none.errors).toEqual([{ path: join(root, 'nope'), kind: 'not-a-folder', problem: 'does not exist', expected: expect.stringContaining('<material>/<freq>Hz/deg<angle>') }]);
    await expect(validateDataset(root, { folds: 0 })).rejects.toThrow(/folds must be a positive integer/);
  });

  it('a near-silent take is an error at the default −80 dBFS, and the threshold is an option', async () => {
    await makeClean(root);
    await writeToneWav(join(root, 'plastic', '500Hz', 'deg000', 'take04.wav'), { freqHz: 500, seconds: 0.03, amplitude: 5e-5 });
    const v = await validateDataset(root);
    expect(summary(v).errors).toEqual(['silent plastic/500Hz/deg000/take04.wav']);
    expect(v.errors[0].problem).toMatch(/is silent: its peak is -8\d\.\d dBFS/);
    expect((await validateDataset(root, { silenceDb: -100 })).errors).toEqual([]);
    expect(summary(await validateDataset(root, { minFrames: 1000 })).errors).toHaveLength(19);
  });
});

describe('validateManifest', () => {
  it('reports repeated paths, two labels for one file, non-decimal and implausible numbers, missing files, case clashes', async () => {
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) await take(join(root, 'audio', `${name}.wav`), 1000);
    await copyFile(join(root, 'audio', 'a.wav'), join(root, 'audio', 'a-copy.wav'));
    await symlink(join(root, 'audio', 'f.wav'), join(root, 'audio', 'f-link.wav'));
    await writeFile(join(root, 'audio', 'g.flac'), 'fLaC');
    const csv = join(root, 'manifest.csv');
    await writeFile(
      csv,
      [
        'path,material,freq_hz,angle_deg',
        'audio/a.wav,plastic,1000,0', // row 1
        'audio/b.wav,plastic,1000,36', // row 2
        './audio/a.wav,plastic,1000,0', // row 3: the same file again
        `${join(root, 'audio', 'b.wav')},plastic,1000,72`, // row 4: b again, another label
        'audio/c.wav,plastic,1000,0x24', // row 5: hexadecimal
        'audio/d.wav,plastic,1000,999', // row 6: implausible
        'audio/missing.wav,plastic,1000,0', // row 7
        'audio/e.wav,Plastic,1000,36', // row 8: case clash
        'audio/a-copy.wav,plastic,1000,36', // row 9: duplicate content
        'audio/f-link.wav,plastic,1000,0', // row 10: a link (followed)
        'audio/g.flac,plastic,1000,36', // row 11
        'audio/f.wav,plastic,1e3,36', // row 12: 1e3 is not plain decimal
      ].join('\n'),
    );
    const v = await validateManifest(csv, { folds: 2 });
    expect(summary(v).errors).toEqual(
      [
        'bad-number manifest.csv row 12',
        'bad-number manifest.csv row 5',
        'conflicting-labels manifest.csv row 4',
        'duplicate-row manifest.csv row 3',
        'duplicate-spelling manifest.csv row 8',
        'duplicate-take audio/a-copy.wav',
        'implausible-angle manifest.csv row 6',
        'missing-file audio/missing.wav',
        'too-few-takes manifest.csv: Plastic 1000 Hz 36°',
        'unsupported-audio audio/g.flac',
      ].sort(),
    );
    expect(summary(v).warnings).toEqual(['symlink audio/f-link.wav']);
    const find = (kind: string) => v.errors.find((e) => e.kind === kind)!;
    expect(find('conflicting-labels').problem).toBe(`gives ${join(root, 'audio', 'b.wav')} a second label: plastic 1000 Hz 72° here, plastic 1000 Hz 36° in row 2`);
    expect(find('duplicate-row').problem).toBe(`lists ${join(root, 'audio', 'a.wav')} again (first in row 1)`);
    expect(v.errors.find((e) => e.path.endsWith('row 5'))!.problem).toBe('angle_deg "0x24" is not a plain decimal number');
    expect(find('duplicate-spelling').problem).toBe('material "Plastic" differs only in case from "plastic"');
    // The usable rows (the Plastic one is an error of its own, but is read, so its content is checked too).
    expect(v.items.map((i) => `${i.material} ${i.angleDeg} ${i.take}`)).toEqual([
      'Plastic 36 e',
      'plastic 0 a',
      'plastic 0 f-link',
      'plastic 36 a-copy',
      'plastic 36 b',
    ]);
  });

  it('a clean manifest gives the items readManifest gives; a broken header is one clear error', async () => {
    for (let i = 0; i < 4; i++) await take(join(root, `t${i}.wav`), 500);
    const csv = join(root, 'm.csv');
    await writeFile(csv, 'path,material,freq_hz,angle_deg\nt0.wav,box,500,0\nt1.wav,box,500,0\nt2.wav,box,500,36\nt3.wav,box,500,36\n');
    const v = await validateManifest(csv, { folds: 2 });
    expect(v.errors).toEqual([]);
    expect(v.warnings).toEqual([]);
    expect(v.items).toEqual(await readManifest(csv));
    expect(summary(await validateManifest(csv, { folds: 3 })).errors).toEqual(['too-few-takes m.csv: box 500 Hz 0°', 'too-few-takes m.csv: box 500 Hz 36°']);
    await writeFile(csv, 'path,material,freq\nt0.wav,box,500\n');
    expect(await validateManifest(csv)).toMatchObject({ errors: [{ kind: 'bad-manifest', path: csv, problem: 'lacks the column(s) freq_hz, angle_deg' }] });
    expect((await validateManifest(join(root, 'none.csv'))).errors[0]).toMatchObject({ kind: 'unreadable', problem: 'does not exist' });
  });
});

describe('wavPeak', () => {
  it('reads the peak straight from the PCM data, equal to decodeWav, for every depth and RIFX', () => {
    const channels = [Float32Array.from({ length: 500 }, (_, i) => 0.7 * Math.sin(i / 7)), Float32Array.from({ length: 500 }, (_, i) => -0.9 * Math.cos(i / 5))];
    const decodedPeak = (bytes: Uint8Array) => Math.max(...decodeWav(bytes).channels.map((c) => c.reduce((p, v) => Math.max(p, Math.abs(v)), 0)));
    for (const bitDepth of ['16', '24', '32', '32f'] as const) {
      const bytes = encodeWav({ sampleRate: 8000, channels }, { bitDepth });
      expect(wavPeak(bytes, parseWavHeader(bytes)), bitDepth).toBeCloseTo(decodedPeak(bytes), 6);
    }
    const eight = new wavefile.WaveFile();
    eight.fromScratch(1, 8000, '8', [128, 0, 255, 130]);
    const eightBytes = eight.toBuffer();
    expect(wavPeak(eightBytes, parseWavHeader(eightBytes))).toBe(1);
    expect(decodedPeak(eightBytes)).toBe(1);
    const rifx = new wavefile.WaveFile();
    rifx.fromScratch(1, 8000, '24', [0, -4000000, 300]);
    rifx.toRIFX();
    const rifxBytes = rifx.toBuffer();
    expect(wavPeak(rifxBytes, parseWavHeader(rifxBytes))).toBeCloseTo(decodedPeak(rifxBytes), 9);
    expect(wavPeak(rifxBytes, parseWavHeader(rifxBytes))).toBeCloseTo(4000000 / 2 ** 23, 9);
  });
});
