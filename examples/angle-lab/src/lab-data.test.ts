import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeWav, type DatasetItem } from '@lab/audio-features';
import { defineExperiment, InputError, readRunState, readTrialStatus, resumeRun, runExperiment, type Experiment } from '@lab/experiment-runner';
import { groupTakes } from './fusion';
import {
  checkDataFingerprint,
  DATA_DEFAULTS,
  fingerprintListPath,
  inputName,
  loadItems,
  loadTakes,
  parseInput,
  recordDataFingerprint,
  splitTakes,
  type DataParams,
} from './lab-data';

const folders: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  folders.push(dir);
  return dir;
};
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

let phase = 0;
/** A short tone take, different from every other (its phase differs). */
async function tone(path: string, freqHz = 1000, seconds = 0.03) {
  const p = (phase += 0.1);
  mkdirSync(dirname(path), { recursive: true });
  await writeWav(path, { sampleRate: 16000, channels: [Float32Array.from({ length: Math.round(16000 * seconds) }, (_, i) => 0.5 * Math.sin((2 * Math.PI * freqHz * i) / 16000 + p))] });
}

/** plastic/1000Hz/{deg000,deg036}/take01..03.wav under a new folder. */
async function tinyDataSet(): Promise<string> {
  const root = tempDir('angle-lab-data-');
  for (const angle of ['deg000', 'deg036']) for (let t = 1; t <= 3; t++) await tone(join(root, 'plastic', '1000Hz', angle, `take0${t}.wav`));
  return root;
}

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

describe('loadItems: the data set is checked before anything runs', () => {
  it('reports every problem at once in one multi-line error', async () => {
    const root = await tinyDataSet();
    const p = (...parts: string[]) => join(root, 'plastic', '1000Hz', ...parts);
    await tone(p('deg999', 'take01.wav')); // became a 7th class before
    await writeWav(p('deg036', 'take04.wav'), { sampleRate: 16000, channels: [new Float32Array(800)] }); // all zero
    copyFileSync(p('deg000', 'take01.wav'), p('deg036', 'take05.wav')); // a duplicate take in another class
    symlinkSync(join(root, 'gone'), p('deg072')); // a class folder that vanished
    const error = await loadItems({ data: root, manifest: '' }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect(error?.message).toMatch(new RegExp(`^data set ${root}: 4 error\\(s\\); it cannot be used as it is`));
    const lines = error!.message.split('\n').slice(1);
    expect(lines).toEqual([
      `error   ${p('deg072')}: is a symbolic link to ${join(root, 'gone')}, which does not exist (expected a link to an existing file or folder, or the file itself)`,
      `error   ${p('deg999')}: is angle 999° (expected an angle from 0 to 360 degrees)`,
      `error   ${p('deg036', 'take04.wav')}: is silent: every sample is zero (expected a recording with sound (peak above -80 dBFS))`,
      `error   ${p('deg036', 'take05.wav')}: has the same content as ${p('deg000', 'take01.wav')} (expected each take recorded once (a copy would sit in a training and a test fold at once))`,
    ]);
  });

  it('a manifest: 0x24 is refused, not read as 36; the folds the caller needs are checked', async () => {
    const root = await tinyDataSet();
    const csv = join(root, 'list.csv');
    writeFileSync(csv, 'path,material,freq_hz,angle_deg\nplastic/1000Hz/deg000/take01.wav,plastic,1000,0\nplastic/1000Hz/deg036/take01.wav,plastic,1000,0x24\nplastic/1000Hz/deg036/take02.wav,plastic,1000,36\n');
    await expect(loadItems({ data: '', manifest: csv })).rejects.toThrow(/row 2: angle_deg "0x24" is not a plain decimal number/);
    await expect(loadItems({ data: root, manifest: '' }, {}, { folds: 4 })).rejects.toThrow(/2 error\(s\)[^]*deg000: has 3 take\(s\) \(expected at least 4 takes per class for 4-fold/);
    expect(await loadItems({ data: root, manifest: '' }, {}, { folds: 3 })).toHaveLength(6);
  });

  it('prints warnings (a followed link) and uses the data', async () => {
    const root = await tinyDataSet();
    const store = tempDir('angle-lab-store-');
    for (let t = 1; t <= 3; t++) await tone(join(store, `take0${t}.wav`));
    symlinkSync(store, join(root, 'plastic', '1000Hz', 'deg072'));
    const warnings: string[] = [];
    const items = await loadItems({ data: root, manifest: '' }, {}, { warn: (m) => warnings.push(m) });
    expect(items.map((i) => i.angleDeg)).toEqual([0, 0, 0, 36, 36, 36, 72, 72, 72]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/1 warning\(s\):\nwarning .*deg072: is a symbolic link to .*; followed/);
  });
});

describe('the data fingerprint: a resumed run refuses changed data', () => {
  const paramsOf = (root: string, cacheDir: string, dataFingerprint = ''): DataParams => ({ ...DATA_DEFAULTS, data: root, cacheDir, featureSize: 8, dataFingerprint });

  it('names the files added, removed and changed since the fingerprint was recorded', async () => {
    const root = await tinyDataSet();
    const cacheDir = tempDir('angle-lab-cache-');
    const fingerprint = await recordDataFingerprint(paramsOf(root, cacheDir));
    expect(fingerprint).toMatch(/^[0-9a-f]{64} \(6 files, \d+ bytes\)$/);
    const params = paramsOf(root, cacheDir, fingerprint);
    expect((await loadTakes(params, 'plastic', [1000])).groups).toHaveLength(6);
    // Recording again gives the same value (content, not time, decides).
    expect(await recordDataFingerprint(paramsOf(root, cacheDir))).toBe(fingerprint);

    await tone(join(root, 'plastic', '1000Hz', 'deg036', 'take02.wav')); // new content
    await tone(join(root, 'plastic', '1000Hz', 'deg036', 'take04.wav')); // added
    unlinkSync(join(root, 'plastic', '1000Hz', 'deg000', 'take03.wav')); // removed
    await expect(loadTakes(params, 'plastic', [1000])).rejects.toThrow(
      new RegExp(
        `^data set ${root} changed since this run was created: 1 added \\(plastic/1000Hz/deg036/take04\\.wav\\); 1 removed \\(plastic/1000Hz/deg000/take03\\.wav\\); 1 changed \\(plastic/1000Hz/deg036/take02\\.wav\\)\\. Recorded ${fingerprint.replace(/[()]/g, '\\$&')}, now [0-9a-f]{64} \\(6 files`,
      ),
    );
    // Without the recorded file list the mismatch is still refused, and says why the files are not named.
    rmSync(fingerprintListPath(params, fingerprint.slice(0, 64)));
    await expect(checkDataFingerprint(params)).rejects.toThrow(/changed since this run was created: which files differ is unknown: the recorded file list .* is missing/);
    await expect(checkDataFingerprint({ ...params, dataFingerprint: 'abc' })).rejects.toThrow(/dataFingerprint: expected "<64 hex digits>/);
    await expect(checkDataFingerprint({ ...params, dataFingerprint: '' })).resolves.toBeUndefined();
  });

  it('a manifest that relabels a file changes the fingerprint', async () => {
    const root = await tinyDataSet();
    const cacheDir = tempDir('angle-lab-cache-');
    const csv = join(root, 'list.csv');
    const rows = (angle: number) => `path,material,freq_hz,angle_deg\nplastic/1000Hz/deg000/take01.wav,plastic,1000,0\nplastic/1000Hz/deg036/take01.wav,plastic,1000,${angle}\n`;
    writeFileSync(csv, rows(36));
    const params = { ...DATA_DEFAULTS, manifest: csv, cacheDir, dataFingerprint: '' };
    const fingerprint = await recordDataFingerprint(params);
    writeFileSync(csv, rows(72));
    await expect(checkDataFingerprint({ ...params, dataFingerprint: fingerprint })).rejects.toThrow(/1 relabelled \(plastic\/1000Hz\/deg036\/take01\.wav\)/);
  });

  it('through the runner: interrupted, data changed, resumed: the finished trial is kept and the next refuses', async () => {
    const root = await tinyDataSet();
    const cacheDir = tempDir('angle-lab-cache-');
    const runsDir = tempDir('angle-lab-runs-');
    const controller = new AbortController();
    const loaded: string[] = [];
    // A trial that only loads its takes (the part of a real trial that reads the data).
    const experiment = defineExperiment({
      name: 'fingerprint-check',
      description: 'loads the takes',
      hypotheses: [],
      params: { ...DATA_DEFAULTS, material: 'plastic' },
      seeds: 2,
      backend: 'none',
      async trial(params, seed, ctx) {
        if (seed === 1 && ctx.attempt === 1) {
          controller.abort(new Error('test: interrupt'));
          throw new Error('interrupted');
        }
        const data = await loadTakes(params, params.material, [1000]);
        loaded.push(`${ctx.trialId}: ${data.groups.length}`);
        ctx.log({ takes: data.groups.length });
      },
    }) as unknown as Experiment;
    // What the demo does at run creation: the fingerprint goes into the run's params.
    const dataFingerprint = await recordDataFingerprint({ data: root, manifest: '', cacheDir });
    const quiet = { progress: 'none' as const, log: () => {}, report: false, workers: 0, backend: 'none' as const };
    const runDir = await runExperiment(experiment, { runsDir, overrides: { params: { data: root, cacheDir, dataFingerprint } }, signal: controller.signal, ...quiet });
    expect(readRunState(runDir)!.status).toBe('interrupted');
    expect(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')).params.dataFingerprint).toBe(dataFingerprint);

    await tone(join(root, 'plastic', '1000Hz', 'deg000', 'take04.wav')); // a take added before the resume
    await resumeRun(runDir, [experiment], quiet);
    expect(loaded).toEqual(['v0-s0: 6']);
    expect(readTrialStatus(runDir, 'v0-s0')!.status).toBe('completed');
    const resumed = readTrialStatus(runDir, 'v0-s1')!;
    expect(resumed.status).toBe('failed');
    expect(resumed.error!.message).toMatch(/changed since this run was created: 1 added \(plastic\/1000Hz\/deg000\/take04\.wav\)/);
  });
});
