import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { ANGLE_RANGE_DEG, compareItems, isPlausibleAngle, parseDecimal, type DatasetFilter, type DatasetItem } from './dataset';
import { decodeWav, parseWavHeader, type WavInfo } from './wav';

/** What kind of problem a `DatasetProblem` is (stable names, for code that filters them). */
export type DatasetProblemKind =
  | 'not-a-folder'
  | 'no-recordings'
  | 'not-found'
  | 'bad-folder-name'
  | 'bad-number'
  | 'wrong-case'
  | 'duplicate-spelling'
  | 'implausible-angle'
  | 'implausible-frequency'
  | 'empty-folder'
  | 'too-few-takes'
  | 'missing-class'
  | 'duplicate-take'
  | 'duplicate-row'
  | 'conflicting-labels'
  | 'bad-manifest'
  | 'missing-file'
  | 'unreadable'
  | 'unreadable-wav'
  | 'too-short'
  | 'silent'
  | 'mixed-sample-rates'
  | 'symlink'
  | 'broken-symlink'
  | 'wrong-depth'
  | 'unsupported-audio'
  | 'hidden-file';

/** One problem of a data set: where, what is wrong, and what was expected there. */
export interface DatasetProblem {
  /** The file or folder (for a manifest cell: `<csv> row <n>`). */
  path: string;
  kind: DatasetProblemKind;
  problem: string;
  expected: string;
}

export interface DatasetValidation {
  /** Problems that make the data set unusable as it is: a run must not start. */
  errors: DatasetProblem[];
  /** Things that were done about the data that the user should know (links followed, files ignored). */
  warnings: DatasetProblem[];
  /** The recordings that match the filter, sorted like `scanDataset` (meaningful when there are no errors). */
  items: DatasetItem[];
}

export interface DatasetValidationOptions {
  /** Only these recordings are read and counted (folder names are checked everywhere). */
  filter?: DatasetFilter;
  /** Cross-validation folds the caller will make: every class (material, frequency, angle) needs this many takes. */
  folds?: number;
  /** Fewest samples (per channel) a take may have; default 256 (16 ms at 16 kHz). */
  minFrames?: number;
  /** A take whose peak is below this level (dB re full scale) is silent; default −80. */
  silenceDb?: number;
}

export const DEFAULT_MIN_FRAMES = 256;
export const DEFAULT_SILENCE_DB = -80;

const LAYOUT = '<root>/<material>/<freq>Hz/deg<angle>/<take>.wav';

/** Audio formats that are not WAV: found where takes are expected, they would be ignored. */
const OTHER_AUDIO = new Set(
  ['mp3', 'mp2', 'flac', 'ogg', 'oga', 'opus', 'm4a', 'aac', 'alac', 'aif', 'aiff', 'aifc', 'wma', 'wv', 'ape', 'au', 'snd', 'caf', 'amr', 'mka', 'webm', 'w64', 'rf64'].map(
    (e) => `.${e}`,
  ),
);
const isWav = (name: string) => extname(name).toLowerCase() === '.wav';
const isOtherAudio = (name: string) => OTHER_AUDIO.has(extname(name).toLowerCase());

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

class Problems {
  readonly errors: DatasetProblem[] = [];
  readonly warnings: DatasetProblem[] = [];
  error(kind: DatasetProblemKind, path: string, problem: string, expected: string): void {
    this.errors.push({ path, kind, problem, expected });
  }
  warning(kind: DatasetProblemKind, path: string, problem: string, expected: string): void {
    this.warnings.push({ path, kind, problem, expected });
  }
  result(items: DatasetItem[]): DatasetValidation {
    return { errors: this.errors, warnings: this.warnings, items };
  }
}

function matchesFilter(filter: DatasetFilter, item: Pick<DatasetItem, 'material' | 'freqHz' | 'angleDeg'>): boolean {
  return (
    (!filter.materials || filter.materials.includes(item.material)) &&
    (!filter.freqsHz || filter.freqsHz.includes(item.freqHz)) &&
    (!filter.anglesDeg || filter.anglesDeg.includes(item.angleDeg))
  );
}

function checkOptions(options: DatasetValidationOptions, where: string): void {
  if (options.folds !== undefined && !(Number.isInteger(options.folds) && options.folds >= 1)) {
    throw new Error(`${where}: folds must be a positive integer, got ${options.folds}`);
  }
  if (options.minFrames !== undefined && !(Number.isInteger(options.minFrames) && options.minFrames >= 1)) {
    throw new Error(`${where}: minFrames must be a positive integer, got ${options.minFrames}`);
  }
  if (options.silenceDb !== undefined && !Number.isFinite(options.silenceDb)) {
    throw new Error(`${where}: silenceDb must be a finite number of dB, got ${options.silenceDb}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Folder layout

interface Listing {
  folders: string[];
  files: string[];
}

/**
 * The visible folders and files of `dir`, symbolic links followed (and reported), broken links
 * reported, hidden audio files reported as ignored. Other hidden entries are skipped quietly.
 */
async function listFolder(dir: string, problems: Problems): Promise<Listing> {
  const listing: Listing = { folders: [], files: [] };
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => compareText(a.name, b.name));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.name.startsWith('.')) {
      if (!entry.isDirectory() && (isWav(entry.name) || isOtherAudio(entry.name))) {
        problems.warning('hidden-file', path, 'is a hidden audio file; ignored', 'takes with visible names (macOS "._" files can be deleted)');
      }
      continue;
    }
    let kind: 'folder' | 'file' | 'other' = entry.isDirectory() ? 'folder' : entry.isFile() ? 'file' : 'other';
    if (entry.isSymbolicLink()) {
      const target = await stat(path).catch(() => undefined);
      const to = await readlink(path).catch(() => '?');
      if (!target) {
        problems.error('broken-symlink', path, `is a symbolic link to ${to}, which does not exist`, 'a link to an existing file or folder, or the file itself');
        continue;
      }
      kind = target.isDirectory() ? 'folder' : target.isFile() ? 'file' : 'other';
      problems.warning('symlink', path, `is a symbolic link to ${to}; followed (its ${kind === 'folder' ? 'folder is read' : 'target is used'} as if it were here)`, 'regular files and folders, or links you meant to follow');
    }
    if (kind === 'folder') listing.folders.push(entry.name);
    else if (kind === 'file') listing.files.push(entry.name);
  }
  return listing;
}

/** Reports audio files lying where no take belongs (`where` says where that is). */
function reportStrayFiles(dir: string, files: readonly string[], where: string, problems: Problems): void {
  for (const name of files) {
    const path = join(dir, name);
    if (isWav(name)) problems.warning('wrong-depth', path, `is a WAV file ${where}; ignored`, `takes at ${LAYOUT}`);
    else if (isOtherAudio(name)) problems.warning('unsupported-audio', path, `is ${extname(name).slice(1)} audio ${where}; ignored`, `WAV takes at ${LAYOUT}`);
  }
}

/** Audio below an angle folder (one level too deep or more): reported, never read. Links are not followed here. */
async function reportNested(dir: string, problems: Problems, depth = 0): Promise<void> {
  if (depth > 4) return;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries.sort((a, b) => compareText(a.name, b.name))) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await reportNested(path, problems, depth + 1);
    else if (isWav(entry.name) || isOtherAudio(entry.name)) {
      problems.warning('wrong-depth', path, 'is an audio file in a subfolder of an angle folder; ignored', `takes directly in the angle folder: ${LAYOUT}`);
    }
  }
}

/** Parses `<prefix><number><suffix>` names (case-insensitively), reporting what is wrong with them. */
function parseFolderName(
  path: string,
  name: string,
  spec: { pattern: RegExp; canonical: (digits: string) => string; what: string; example: string },
  problems: Problems,
): number | undefined {
  const match = spec.pattern.exec(name);
  if (!match) {
    problems.error('bad-folder-name', path, `does not parse as ${spec.what}`, `${spec.example} (layout ${LAYOUT})`);
    return undefined;
  }
  const digits = match[1];
  const value = parseDecimal(digits);
  if (value === undefined) {
    problems.error('bad-number', path, `"${digits}" is not a plain decimal number`, `${spec.example}: plain decimal digits`);
    return undefined;
  }
  if (name !== spec.canonical(digits)) {
    problems.error('wrong-case', path, `is spelled "${name}"`, `"${spec.canonical(digits)}" (names are case-sensitive)`);
  }
  return value;
}

const FREQ_NAME = { pattern: /^(.*?)hz$/i, canonical: (d: string) => `${d}Hz`, what: 'a frequency', example: '<freq>Hz such as 1000Hz' };
const ANGLE_NAME = { pattern: /^deg(.*)$/i, canonical: (d: string) => `deg${d}`, what: 'an angle', example: 'deg<angle> such as deg036' };

/**
 * Folder names in the order they are checked: the usual spelling of a value (`1000Hz`, `deg036`)
 * before others, so that of `deg036` and `deg36` the unusual one is reported as the second spelling.
 */
function usualFirst(names: readonly string[], usual: (name: string) => boolean): string[] {
  return [...names].sort((a, b) => Number(!usual(a)) - Number(!usual(b)) || compareText(a, b));
}
const usualFreq = (name: string) => {
  const m = /^(\d+(?:\.\d+)?)Hz$/.exec(name);
  return m !== null && String(Number(m[1])) === m[1];
};
const usualAngle = (name: string) => {
  const m = /^deg(\d+(?:\.\d+)?)$/.exec(name);
  return m !== null && String(Number(m[1])).padStart(3, '0') === m[1];
};

/** Reports a second folder whose name means the same value as an earlier one (`deg36` next to `deg036`). */
function checkSpelling(seen: Map<number, string>, value: number, path: string, what: string, problems: Problems): void {
  const other = seen.get(value);
  if (other !== undefined) {
    problems.error('duplicate-spelling', path, `is the same ${what} as ${other}`, `one folder per ${what} (the takes of both would silently form one class)`);
  } else {
    seen.set(value, path);
  }
}

/** Checks material names: the same name in two cases, a name the filter asks for in another case, names not in lower case. */
function checkMaterialNames(names: readonly { name: string; path: string }[], filter: DatasetFilter, problems: Problems): void {
  const byLower = new Map<string, string>();
  const requested = filter.materials ?? [];
  const warned = new Set<string>();
  // Lower-case spellings first, so that of `Plastic` and `plastic` the odd one is reported.
  const ordered = [...names].sort((a, b) => Number(a.name !== a.name.toLowerCase()) - Number(b.name !== b.name.toLowerCase()));
  for (const { name, path } of ordered) {
    const lower = name.toLowerCase();
    const other = byLower.get(lower);
    const wanted = requested.find((r) => r !== name && r.toLowerCase() === lower && !requested.includes(name));
    if (other !== undefined && other !== name) {
      problems.error('duplicate-spelling', path, `material "${name}" differs only in case from "${other}"`, 'one spelling per material (a case-insensitive file system would merge them)');
    } else if (wanted !== undefined) {
      problems.error('wrong-case', path, `material is spelled "${name}"`, `"${wanted}", the name asked for (names are case-sensitive)`);
    } else if (name !== lower && !warned.has(name)) {
      warned.add(name);
      problems.warning('wrong-case', path, `material "${name}" is not in lower case`, `lower-case material names such as "${lower}" (experiments select materials by exact name)`);
    }
    if (other === undefined) byLower.set(lower, name);
  }
}

/**
 * Checks a data set laid out as `<root>/<material>/<freq>Hz/deg<angle>/*.wav` and reports every
 * problem at once (nothing is dropped without a word): folder names that do not parse, numbers that
 * are not plain decimals (`deg0x24`), wrong case (`1000hz`, `Plastic` when `plastic` is asked for),
 * one value spelled twice (`deg36` next to `deg036`), implausible angles (outside 0–360), empty
 * angle folders, too few takes per class for `folds`, an angle missing at one frequency of a
 * material, duplicate takes (same content), unreadable, too short or silent WAVs, mixed sample
 * rates, symbolic links (followed, and said so; broken ones are errors), audio at the wrong depth,
 * non-WAV audio files, hidden audio files. Content checks read the recordings that match the filter.
 */
export async function validateDataset(root: string, options: DatasetValidationOptions = {}): Promise<DatasetValidation> {
  checkOptions(options, 'validateDataset');
  const filter = options.filter ?? {};
  const problems = new Problems();
  const rootInfo = await stat(root).catch(() => undefined);
  if (!rootInfo?.isDirectory()) {
    problems.error('not-a-folder', root, rootInfo ? 'is not a folder' : 'does not exist', `a folder laid out as ${LAYOUT}`);
    return problems.result([]);
  }
  const candidates: DatasetItem[] = [];
  const top = await listFolder(root, problems);
  reportStrayFiles(root, top.files, 'at the top of the data set', problems);
  if (top.folders.length === 0) problems.error('no-recordings', root, 'has no material folders', `a folder laid out as ${LAYOUT}`);
  checkMaterialNames(top.folders.map((name) => ({ name, path: join(root, name) })), filter, problems);
  for (const material of top.folders) {
    const materialDir = join(root, material);
    const freqs = await listFolder(materialDir, problems);
    reportStrayFiles(materialDir, freqs.files, 'in a material folder', problems);
    if (freqs.folders.length === 0) problems.warning('empty-folder', materialDir, 'has no <freq>Hz folders; nothing is read from it', LAYOUT);
    const freqSeen = new Map<number, string>();
    for (const freqName of usualFirst(freqs.folders, usualFreq)) {
      const freqDir = join(materialDir, freqName);
      const freqHz = parseFolderName(freqDir, freqName, FREQ_NAME, problems);
      if (freqHz === undefined) continue;
      if (!(freqHz > 0)) {
        problems.error('implausible-frequency', freqDir, `is ${freqHz} Hz`, 'a frequency above 0 Hz');
        continue;
      }
      checkSpelling(freqSeen, freqHz, freqDir, 'frequency', problems);
      const angles = await listFolder(freqDir, problems);
      reportStrayFiles(freqDir, angles.files, 'in a frequency folder', problems);
      if (angles.folders.length === 0) problems.warning('empty-folder', freqDir, 'has no deg<angle> folders; nothing is read from it', LAYOUT);
      const angleSeen = new Map<number, string>();
      for (const angleName of usualFirst(angles.folders, usualAngle)) {
        const angleDir = join(freqDir, angleName);
        const angleDeg = parseFolderName(angleDir, angleName, ANGLE_NAME, problems);
        if (angleDeg === undefined) continue;
        if (!isPlausibleAngle(angleDeg)) {
          problems.error('implausible-angle', angleDir, `is angle ${angleDeg}°`, `an angle from ${ANGLE_RANGE_DEG[0]} to ${ANGLE_RANGE_DEG[1]} degrees`);
          continue;
        }
        checkSpelling(angleSeen, angleDeg, angleDir, 'angle', problems);
        const takes = await listFolder(angleDir, problems);
        for (const sub of takes.folders) await reportNested(join(angleDir, sub), problems);
        const wanted = matchesFilter(filter, { material, freqHz, angleDeg });
        for (const name of takes.files.filter(isOtherAudio)) {
          problems[wanted ? 'error' : 'warning']('unsupported-audio', join(angleDir, name), `is ${extname(name).slice(1)} audio, which is not read`, 'WAV (.wav) takes: convert it (e.g. ffmpeg -i take.flac take.wav) or move it out');
        }
        const wavs = takes.files.filter(isWav);
        if (wavs.length === 0 && wanted) problems.error('empty-folder', angleDir, 'has no .wav files', 'at least one take <name>.wav in every angle folder');
        for (const file of wavs) {
          candidates.push({ path: join(angleDir, file), material, freqHz, angleDeg, take: basename(file, extname(file)) });
        }
      }
    }
  }
  const items = candidates.filter((item) => matchesFilter(filter, item)).sort(compareItems);
  checkRequested(items, filter, root, problems);
  // A missing class is named by the folder it would have, beside the example item's angle folder.
  const classFolder = (item: DatasetItem, missing = false) =>
    missing ? join(dirname(dirname(item.path)), `deg${String(item.angleDeg).padStart(3, '0')}`) : dirname(item.path);
  checkClasses(items, options, classFolder, problems);
  checkContent(items, options, root, problems);
  return problems.result(items);
}

// ---------------------------------------------------------------------------------------------
// Manifest

const MANIFEST_COLUMNS = ['path', 'material', 'freq_hz', 'angle_deg'] as const;

const labelOf = (item: Pick<DatasetItem, 'material' | 'freqHz' | 'angleDeg'>) => `${item.material} ${item.freqHz} Hz ${item.angleDeg}°`;

/**
 * Checks a CSV manifest `path,material,freq_hz,angle_deg` (relative paths against the CSV's folder)
 * and the files it lists, reporting every problem at once: missing columns, empty cells, numbers
 * that are not plain decimals (`0x24`), implausible angles and frequencies, a path listed twice
 * (with the same label, or with two labels), missing files, symbolic links (followed, said so),
 * non-WAV audio, material names differing only in case, and the content and class checks of
 * `validateDataset`.
 */
export async function validateManifest(csvPath: string, options: DatasetValidationOptions = {}): Promise<DatasetValidation> {
  checkOptions(options, 'validateManifest');
  const filter = options.filter ?? {};
  const problems = new Problems();
  const format = `a CSV file with the header ${MANIFEST_COLUMNS.join(',')} and one row per take`;
  let records: Record<string, string>[];
  try {
    records = parse(await readFile(csvPath, 'utf8'), { columns: true, skip_empty_lines: true, trim: true, bom: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    problems.error(code ? 'unreadable' : 'bad-manifest', csvPath, code === 'ENOENT' ? 'does not exist' : `cannot be read: ${(error as Error).message}`, format);
    return problems.result([]);
  }
  if (records.length === 0) {
    problems.error('bad-manifest', csvPath, 'has no rows', format);
    return problems.result([]);
  }
  const missing = MANIFEST_COLUMNS.filter((c) => !(c in records[0]));
  if (missing.length) {
    problems.error('bad-manifest', csvPath, `lacks the column(s) ${missing.join(', ')}`, format);
    return problems.result([]);
  }
  const folder = dirname(resolve(csvPath));
  const candidates: DatasetItem[] = [];
  const rows = new Map<string, { row: number; label: string }>();
  const materials: { name: string; path: string }[] = [];
  for (const [index, record] of records.entries()) {
    const row = index + 1;
    const where = `${csvPath} row ${row}`;
    let usable = true;
    if (!record.path) {
      problems.error('bad-manifest', where, 'path is empty', 'the path of a WAV file, relative to the manifest or absolute');
      usable = false;
    }
    if (!record.material) {
      problems.error('bad-manifest', where, 'material is empty', 'a material name such as plastic');
      usable = false;
    } else if (!materials.some((m) => m.name === record.material)) {
      materials.push({ name: record.material, path: where });
    }
    const freqHz = parseDecimal(record.freq_hz);
    if (freqHz === undefined) {
      problems.error('bad-number', where, `freq_hz "${record.freq_hz}" is not a plain decimal number`, 'a frequency in Hz in plain decimal digits, such as 1000');
      usable = false;
    } else if (!(freqHz > 0)) {
      problems.error('implausible-frequency', where, `freq_hz is ${freqHz}`, 'a frequency above 0 Hz');
      usable = false;
    }
    const angleDeg = parseDecimal(record.angle_deg);
    if (angleDeg === undefined) {
      problems.error('bad-number', where, `angle_deg "${record.angle_deg}" is not a plain decimal number`, 'an angle in degrees in plain decimal digits, such as 36 or 36.5');
      usable = false;
    } else if (!isPlausibleAngle(angleDeg)) {
      problems.error('implausible-angle', where, `angle_deg is ${angleDeg}`, `an angle from ${ANGLE_RANGE_DEG[0]} to ${ANGLE_RANGE_DEG[1]} degrees`);
      usable = false;
    }
    if (!record.path) continue;
    const path = resolve(folder, record.path);
    const label = usable ? labelOf({ material: record.material, freqHz: freqHz!, angleDeg: angleDeg! }) : 'an unusable label';
    const earlier = rows.get(path);
    if (earlier) {
      if (earlier.label === label) {
        problems.error('duplicate-row', where, `lists ${path} again (first in row ${earlier.row})`, 'each file once');
      } else {
        problems.error('conflicting-labels', where, `gives ${path} a second label: ${label} here, ${earlier.label} in row ${earlier.row}`, 'one label per file');
      }
      continue;
    }
    rows.set(path, { row, label });
    const link = await readlink(path).catch(() => undefined);
    const info = await stat(path).catch(() => undefined);
    if (!info) {
      if (link !== undefined) problems.error('broken-symlink', path, `(row ${row}) is a symbolic link to ${link}, which does not exist`, 'a link to an existing file, or the file itself');
      else problems.error('missing-file', path, `(row ${row}) does not exist`, 'an existing WAV file (relative paths are resolved against the manifest\'s folder)');
      continue;
    }
    if (!info.isFile()) {
      problems.error('missing-file', path, `(row ${row}) is not a file`, 'a WAV file');
      continue;
    }
    if (link !== undefined) problems.warning('symlink', path, `(row ${row}) is a symbolic link to ${link}; followed`, 'regular files, or links you meant to follow');
    if (isOtherAudio(path)) {
      problems.error('unsupported-audio', path, `(row ${row}) is ${extname(path).slice(1)} audio, which is not read`, 'WAV (.wav) takes: convert it (e.g. ffmpeg -i take.flac take.wav)');
      continue;
    }
    if (usable) candidates.push({ path, material: record.material, freqHz: freqHz!, angleDeg: angleDeg!, take: basename(path, extname(path)) });
  }
  checkMaterialNames(materials, filter, problems);
  const items = candidates.filter((item) => matchesFilter(filter, item)).sort(compareItems);
  checkRequested(items, filter, csvPath, problems);
  checkClasses(items, options, (item) => `${csvPath}: ${labelOf(item)}`, problems);
  checkContent(items, options, csvPath, problems);
  return problems.result(items);
}

// ---------------------------------------------------------------------------------------------
// Checks shared by both sources

/** No recordings at all, or none of a material / frequency the filter asks for. */
function checkRequested(items: readonly DatasetItem[], filter: DatasetFilter, source: string, problems: Problems): void {
  if (items.length === 0) {
    const asked = Object.entries(filter).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${JSON.stringify(v)}`);
    problems.error('no-recordings', source, `has no recordings${asked.length ? ` matching ${asked.join(', ')}` : ''}`, `WAV takes (${LAYOUT})`);
    return;
  }
  for (const material of filter.materials ?? []) {
    if (!items.some((i) => i.material === material)) problems.error('not-found', source, `has no recordings of material "${material}"`, `the material asked for, e.g. ${join(source, material)}`);
  }
  for (const freqHz of filter.freqsHz ?? []) {
    if (!items.some((i) => i.freqHz === freqHz)) problems.error('not-found', source, `has no recordings at ${freqHz} Hz`, `the frequency asked for, e.g. <material>/${freqHz}Hz`);
  }
  for (const angleDeg of filter.anglesDeg ?? []) {
    if (!items.some((i) => i.angleDeg === angleDeg)) problems.error('not-found', source, `has no recordings at ${angleDeg}°`, 'the angle asked for');
  }
}

/** Too few takes per class for the folds; an angle missing at one frequency of a material. */
function checkClasses(
  items: readonly DatasetItem[],
  options: DatasetValidationOptions,
  classPath: (item: DatasetItem, missing?: boolean) => string,
  problems: Problems,
): void {
  const classes = new Map<string, { path: string; count: number }>();
  for (const item of items) {
    const key = `${item.material}\u0000${item.freqHz}\u0000${item.angleDeg}`;
    const entry = classes.get(key) ?? { path: classPath(item), count: 0 };
    entry.count++;
    classes.set(key, entry);
  }
  if (options.folds !== undefined && options.folds > 1) {
    for (const { path, count } of classes.values()) {
      if (count < options.folds) {
        problems.error('too-few-takes', path, `has ${count} take(s)`, `at least ${options.folds} takes per class for ${options.folds}-fold cross-validation (every fold tests each class)`);
      }
    }
  }
  const byMaterial = new Map<string, Map<number, Set<number>>>();
  for (const item of items) {
    const freqs = byMaterial.get(item.material) ?? new Map<number, Set<number>>();
    const angles = freqs.get(item.freqHz) ?? new Set<number>();
    angles.add(item.angleDeg);
    freqs.set(item.freqHz, angles);
    byMaterial.set(item.material, freqs);
  }
  for (const [material, freqs] of byMaterial) {
    const all = [...new Set([...freqs.values()].flatMap((s) => [...s]))].sort((a, b) => a - b);
    for (const [freqHz, angles] of freqs) {
      for (const angleDeg of all.filter((a) => !angles.has(a))) {
        const example = items.find((i) => i.material === material && i.freqHz === freqHz)!;
        const where = classPath({ ...example, angleDeg }, true);
        problems.warning('missing-class', where, `${material} at ${freqHz} Hz has no recordings at ${angleDeg}°, which other frequencies of ${material} have`, 'the same angle classes at every frequency of a material');
      }
    }
  }
}

/** Peak absolute sample value over all channels, read straight from the PCM data (decodeWav for anything unusual). */
export function wavPeak(bytes: Uint8Array, info: WavInfo, name = 'WAV buffer'): number {
  const width = info.bitsPerSample / 8;
  const isFloat = info.formatCode === 3;
  const plain = info.blockAlign === info.numChannels * width && (isFloat ? width === 4 || width === 8 : [1, 2, 3, 4].includes(width));
  if (!plain) {
    const audio = decodeWav(bytes, { name });
    return audio.channels.reduce((peak, c) => c.reduce((p, v) => Math.max(p, Math.abs(v)), peak), 0);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + info.dataOffset, info.frames * info.blockAlign);
  const little = info.container === 'RIFF';
  const count = info.frames * info.numChannels;
  let peak = 0;
  if (isFloat) {
    for (let i = 0; i < count; i++) {
      const v = Math.abs(width === 4 ? view.getFloat32(i * 4, little) : view.getFloat64(i * 8, little));
      if (!Number.isFinite(v)) throw new Error(`${name}: non-finite sample at index ${i}`);
      if (v > peak) peak = v;
    }
    return peak;
  }
  let max = 0;
  for (let i = 0; i < count; i++) {
    let v: number;
    if (width === 1) v = view.getUint8(i) - 128;
    else if (width === 2) v = view.getInt16(i * 2, little);
    else if (width === 4) v = view.getInt32(i * 4, little);
    else {
      const o = i * 3;
      const [b0, b1, b2] = little ? [view.getUint8(o), view.getUint8(o + 1), view.getUint8(o + 2)] : [view.getUint8(o + 2), view.getUint8(o + 1), view.getUint8(o)];
      v = ((b2 << 24) | (b1 << 16) | (b0 << 8)) >> 8;
    }
    if (v < 0) v = -v;
    if (v > max) max = v;
  }
  return max / 2 ** (info.bitsPerSample - 1);
}

/** Reads every item: duplicate content, unreadable WAVs, too short, silent, mixed sample rates. */
function checkContent(items: readonly DatasetItem[], options: DatasetValidationOptions, source: string, problems: Problems): void {
  const minFrames = options.minFrames ?? DEFAULT_MIN_FRAMES;
  const silenceDb = options.silenceDb ?? DEFAULT_SILENCE_DB;
  const firstWith = new Map<string, string>();
  const rates = new Map<number, string[]>();
  for (const item of items) {
    let bytes: Uint8Array;
    try {
      // Synchronous on purpose (as in loadFeatures): the work per file is synchronous and small.
      bytes = readFileSync(item.path);
    } catch (error) {
      problems.error('unreadable', item.path, `cannot be read: ${(error as Error).message}`, 'a readable WAV file');
      continue;
    }
    const hash = createHash('sha256').update(bytes).digest('hex');
    const first = firstWith.get(hash);
    if (first !== undefined) {
      problems.error('duplicate-take', item.path, `has the same content as ${first}`, 'each take recorded once (a copy would sit in a training and a test fold at once)');
    } else {
      firstWith.set(hash, item.path);
    }
    let info: WavInfo;
    let peak: number;
    try {
      info = parseWavHeader(bytes, item.path);
      peak = info.frames >= minFrames ? wavPeak(bytes, info, item.path) : Number.NaN;
    } catch (error) {
      const message = (error as Error).message;
      problems.error('unreadable-wav', item.path, message.startsWith(`${item.path}: `) ? message.slice(item.path.length + 2) : message, 'a PCM (8/16/24/32-bit) or IEEE float (32/64-bit) WAV file');
      continue;
    }
    rates.set(info.sampleRate, [...(rates.get(info.sampleRate) ?? []), item.path]);
    if (info.frames < minFrames) {
      problems.error('too-short', item.path, `has ${info.frames} sample(s) per channel (${((1000 * info.frames) / info.sampleRate).toFixed(1)} ms)`, `a recording of at least ${minFrames} samples`);
    } else if (peak === 0) {
      problems.error('silent', item.path, 'is silent: every sample is zero', `a recording with sound (peak above ${silenceDb} dBFS)`);
    } else if (20 * Math.log10(peak) < silenceDb) {
      problems.error('silent', item.path, `is silent: its peak is ${(20 * Math.log10(peak)).toFixed(1)} dBFS`, `a recording with sound (peak above ${silenceDb} dBFS)`);
    }
  }
  if (rates.size > 1) {
    const detail = [...rates.entries()]
      .sort((a, b) => b[1].length - a[1].length)
      .map(([rate, paths]) => `${rate} Hz: ${paths.length} file(s), e.g. ${paths[0]}`)
      .join('; ');
    problems.error('mixed-sample-rates', source, `mixes sample rates (${detail})`, 'one sample rate for every take (resample the files first)');
  }
}

/**
 * Every problem on its own line, errors first: `error   <path>: <problem> (expected <expected>)`.
 */
export function formatDatasetProblems(validation: Pick<DatasetValidation, 'errors' | 'warnings'>): string {
  const line = (severity: string, p: DatasetProblem) => `${severity} ${p.path}: ${p.problem} (expected ${p.expected})`;
  return [...validation.errors.map((p) => line('error  ', p)), ...validation.warnings.map((p) => line('warning', p))].join('\n');
}

/** Throws one error listing every problem when `validation` has errors; returns the warnings. */
export function assertValidDataset(validation: DatasetValidation, source: string): DatasetProblem[] {
  if (validation.errors.length === 0) return validation.warnings;
  const { errors, warnings } = validation;
  throw new Error(
    `data set ${source}: ${errors.length} error(s)${warnings.length ? `, ${warnings.length} warning(s)` : ''}; it cannot be used as it is (fix these, then start again):\n${formatDatasetProblems(validation)}`,
  );
}
