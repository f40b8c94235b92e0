import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { parse } from 'csv-parse/sync';
import { readWavInfoSync } from './wav';

/** One recording of the angle task. */
export interface DatasetItem {
  path: string;
  material: string;
  freqHz: number;
  angleDeg: number;
  /** The file's base name without extension (e.g. `take03`). */
  take: string;
}

export interface DatasetFilter {
  materials?: readonly string[];
  freqsHz?: readonly number[];
  anglesDeg?: readonly number[];
}

const FREQ_PATTERN = /^(\d+(?:\.\d+)?)Hz$/;
const ANGLE_PATTERN = /^deg(\d+(?:\.\d+)?)$/;
/** What a number in a folder name or a manifest cell must look like: plain decimal digits (`36`, `36.5`, `-10`). */
const DECIMAL_PATTERN = /^-?\d+(?:\.\d+)?$/;

/** Angles outside this range are refused (a typo such as `deg999` would otherwise become a class). */
export const ANGLE_RANGE_DEG = [0, 360] as const;

/**
 * `text` as a number when it is written as plain decimal digits, else undefined. `Number()` alone
 * would also accept `0x24` (36), `1e1`, `Infinity` and an empty string (0).
 */
export function parseDecimal(text: string): number | undefined {
  return DECIMAL_PATTERN.test(text) ? Number(text) : undefined;
}

export function isPlausibleAngle(angleDeg: number): boolean {
  return angleDeg >= ANGLE_RANGE_DEG[0] && angleDeg <= ANGLE_RANGE_DEG[1];
}

/** Plain code-unit order, so that sorting never depends on the machine's locale. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Deterministic order: material, frequency, angle, take, path. */
export function compareItems(a: DatasetItem, b: DatasetItem): number {
  return (
    compareText(a.material, b.material) ||
    a.freqHz - b.freqHz ||
    a.angleDeg - b.angleDeg ||
    compareText(a.take, b.take) ||
    compareText(a.path, b.path)
  );
}

function matches(filter: DatasetFilter, item: Omit<DatasetItem, 'path' | 'take'>): boolean {
  return (
    (!filter.materials || filter.materials.includes(item.material)) &&
    (!filter.freqsHz || filter.freqsHz.includes(item.freqHz)) &&
    (!filter.anglesDeg || filter.anglesDeg.includes(item.angleDeg))
  );
}

/** Is the entry (a symbolic link followed to its target) a folder / a file? Broken links are neither. */
async function kindOf(folder: string, entry: { name: string; isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }) {
  if (!entry.isSymbolicLink()) return entry.isDirectory() ? 'folder' : entry.isFile() ? 'file' : 'other';
  const target = await stat(join(folder, entry.name)).catch(() => undefined);
  return target?.isDirectory() ? 'folder' : target?.isFile() ? 'file' : 'other';
}

/** Visible entries of `path` of one kind, symbolic links followed, in code-unit order. */
async function entriesOf(path: string, kind: 'folder' | 'file'): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(path, { withFileTypes: true })) {
    if (!entry.name.startsWith('.') && (await kindOf(path, entry)) === kind) names.push(entry.name);
  }
  return names.sort(compareText);
}

const subfolders = (path: string) => entriesOf(path, 'folder');

/** Throws when two folder names of one level parse to the same value (`deg36` next to `deg036`). */
function checkOneSpelling(parent: string, seen: Map<number, string>, value: number, name: string, what: string): void {
  const other = seen.get(value);
  if (other !== undefined) {
    throw new Error(
      `scanDataset: folders ${join(parent, other)} and ${join(parent, name)} are the same ${what} spelled twice; expected one folder per ${what}`,
    );
  }
  seen.set(value, name);
}

function describeFilter(filter: DatasetFilter): string {
  const parts = Object.entries(filter)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${JSON.stringify(v)}`);
  return parts.length ? ` matching ${parts.join(', ')}` : '';
}

/**
 * Finds `<root>/<material>/<freq>Hz/deg<angle>/*.wav` (e.g. `plastic/1000Hz/deg036/take03.wav`).
 * Folder names are checked even when a filter excludes them; hidden entries and non-.wav files are
 * ignored; symbolic links to folders and files are followed. Throws at the first problem (a name
 * that does not parse, an angle outside 0–360, the same frequency or angle spelled twice, an empty
 * angle folder); `validateDataset` reports every problem at once. Sorted by material, frequency,
 * angle, take.
 */
export async function scanDataset(root: string, filter: DatasetFilter = {}): Promise<DatasetItem[]> {
  const rootInfo = await stat(root).catch(() => undefined);
  if (!rootInfo?.isDirectory()) throw new Error(`scanDataset: ${root} is not a folder`);
  const items: DatasetItem[] = [];
  const materials = await subfolders(root);
  if (materials.length === 0) {
    throw new Error(`scanDataset: ${root} is empty; expected <material>/<freq>Hz/deg<angle>/*.wav below it`);
  }
  const byLowerCase = new Map<string, string>();
  for (const material of materials) {
    const other = byLowerCase.get(material.toLowerCase());
    if (other !== undefined) {
      throw new Error(
        `scanDataset: folders ${join(root, other)} and ${join(root, material)} differ only in case; expected one folder per material`,
      );
    }
    byLowerCase.set(material.toLowerCase(), material);
  }
  for (const material of materials) {
    const freqs = new Map<number, string>();
    for (const freqName of await subfolders(join(root, material))) {
      const freqMatch = FREQ_PATTERN.exec(freqName);
      if (!freqMatch) {
        throw new Error(
          `scanDataset: folder ${join(root, material, freqName)} does not parse as a frequency; expected <freq>Hz such as 1000Hz`,
        );
      }
      const freqHz = Number(freqMatch[1]);
      checkOneSpelling(join(root, material), freqs, freqHz, freqName, 'frequency');
      const angles = new Map<number, string>();
      for (const angleName of await subfolders(join(root, material, freqName))) {
        const folder = join(root, material, freqName, angleName);
        const angleMatch = ANGLE_PATTERN.exec(angleName);
        if (!angleMatch) {
          throw new Error(`scanDataset: folder ${folder} does not parse as an angle; expected deg<angle> such as deg036`);
        }
        const angleDeg = Number(angleMatch[1]);
        if (!isPlausibleAngle(angleDeg)) {
          throw new Error(`scanDataset: folder ${folder} is angle ${angleDeg}°; expected an angle from ${ANGLE_RANGE_DEG[0]} to ${ANGLE_RANGE_DEG[1]}`);
        }
        checkOneSpelling(join(root, material, freqName), angles, angleDeg, angleName, 'angle');
        if (!matches(filter, { material, freqHz, angleDeg })) continue;
        const files = (await entriesOf(folder, 'file')).filter((name) => extname(name).toLowerCase() === '.wav');
        if (files.length === 0) throw new Error(`scanDataset: folder ${folder} is empty (no .wav files)`);
        for (const file of files) {
          items.push({ path: join(folder, file), material, freqHz, angleDeg, take: basename(file, extname(file)) });
        }
      }
    }
  }
  if (items.length === 0) throw new Error(`scanDataset: no .wav files under ${root}${describeFilter(filter)}`);
  return items.sort(compareItems);
}

const MANIFEST_COLUMNS = ['path', 'material', 'freq_hz', 'angle_deg'] as const;

/**
 * Reads a CSV manifest with a header `path,material,freq_hz,angle_deg` (any column order, extra
 * columns ignored, quoted fields allowed). Relative paths are resolved against the CSV's folder;
 * every file must exist. Sorted like `scanDataset`.
 */
export async function readManifest(csvPath: string, filter: DatasetFilter = {}): Promise<DatasetItem[]> {
  const text = await readFile(csvPath, 'utf8');
  let records: Record<string, string>[];
  try {
    records = parse(text, { columns: true, skip_empty_lines: true, trim: true, bom: true });
  } catch (error) {
    throw new Error(`readManifest: ${csvPath}: ${(error as Error).message}`);
  }
  if (records.length === 0) throw new Error(`readManifest: ${csvPath} has no rows (expected a header and one row per file)`);
  const missing = MANIFEST_COLUMNS.filter((c) => !(c in records[0]));
  if (missing.length) {
    throw new Error(`readManifest: ${csvPath} lacks column(s) ${missing.join(', ')}; expected header ${MANIFEST_COLUMNS.join(',')}`);
  }
  const folder = dirname(resolve(csvPath));
  const items: DatasetItem[] = [];
  const rowOf = new Map<string, number>();
  for (const [index, record] of records.entries()) {
    const line = `${csvPath} row ${index + 1}`;
    const number = (column: 'freq_hz' | 'angle_deg') => {
      const value = parseDecimal(record[column]);
      if (value === undefined) {
        throw new Error(`readManifest: ${line}: ${column} must be a number, got "${record[column]}" (expected plain decimal digits such as 36 or 36.5)`);
      }
      return value;
    };
    if (!record.path) throw new Error(`readManifest: ${line}: empty path`);
    if (!record.material) throw new Error(`readManifest: ${line}: empty material`);
    const item = { material: record.material, freqHz: number('freq_hz'), angleDeg: number('angle_deg') };
    if (!isPlausibleAngle(item.angleDeg)) {
      throw new Error(`readManifest: ${line}: angle_deg is ${item.angleDeg}; expected an angle from ${ANGLE_RANGE_DEG[0]} to ${ANGLE_RANGE_DEG[1]}`);
    }
    if (!(item.freqHz > 0)) throw new Error(`readManifest: ${line}: freq_hz is ${item.freqHz}; expected a frequency above 0 Hz`);
    const path = resolve(folder, record.path);
    const earlier = rowOf.get(path);
    if (earlier !== undefined) {
      throw new Error(`readManifest: ${line}: ${path} is listed again (first in row ${earlier}); expected each file once, with one label`);
    }
    rowOf.set(path, index + 1);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) throw new Error(`readManifest: ${line}: file not found: ${path}`);
    if (!matches(filter, item)) continue;
    items.push({ ...item, path, take: basename(path, extname(path)) });
  }
  if (items.length === 0) throw new Error(`readManifest: no rows of ${csvPath}${describeFilter(filter)}`);
  return items.sort(compareItems);
}

/**
 * Reads every file's WAV header and returns the common sample rate; throws naming the rates, how
 * many files have each, and an example file of each, when they differ.
 */
export async function checkSampleRates(items: readonly Pick<DatasetItem, 'path'>[]): Promise<number> {
  if (items.length === 0) throw new Error('checkSampleRates: no items');
  const byRate = new Map<number, string[]>();
  for (const item of items) {
    const { sampleRate } = readWavInfoSync(item.path);
    const paths = byRate.get(sampleRate) ?? [];
    paths.push(item.path);
    byRate.set(sampleRate, paths);
  }
  if (byRate.size > 1) {
    const detail = [...byRate.entries()]
      .sort((a, b) => b[1].length - a[1].length)
      .map(([rate, paths]) => `${rate} Hz: ${paths.length} file(s), e.g. ${paths[0]}`)
      .join('; ');
    throw new Error(`mixed sample rates (${detail}); resample the files to one rate first`);
  }
  return [...byRate.keys()][0];
}

/** Items per class, classes in sorted order. */
export function classCounts<T>(items: readonly T[], classOf: (item: T) => string | number): Map<string | number, number> {
  const counts = new Map<string | number, number>();
  for (const item of items) {
    const key = classOf(item);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return new Map([...counts.entries()].sort(([a], [b]) => compareKeys(a, b)));
}

/** Numbers before strings, numbers ascending, strings in code-unit order. */
export function compareKeys(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return compareText(a, b);
}

/** Throws naming every class with fewer than `minPerClass` items. */
export function checkClassCounts<T>(
  items: readonly T[],
  minPerClass: number,
  classOf: (item: T) => string | number,
  purpose = 'this split',
): void {
  const tooFew = [...classCounts(items, classOf).entries()].filter(([, n]) => n < minPerClass);
  if (tooFew.length) {
    const detail = tooFew.map(([key, n]) => `${key} has ${n}`).join(', ');
    throw new Error(`too few items per class for ${purpose}: ${detail}; each class needs at least ${minPerClass}`);
  }
}

/** One file of a data set as `datasetFingerprint` records it. */
export interface DatasetFingerprintEntry {
  /** Relative to the fingerprint's root, with `/` separators. */
  path: string;
  size: number;
  /** sha256 of the file's content, hex. */
  sha256: string;
  material: string;
  freqHz: number;
  angleDeg: number;
}

/** What a data set was: a sha256 over every file's relative path, size, content hash and label. */
export interface DatasetFingerprint {
  /** sha256 hex of the entries (sorted by path), one line per file. */
  sha256: string;
  files: number;
  bytes: number;
  entries: DatasetFingerprintEntry[];
}

/** The deepest folder that holds every path. */
function commonFolder(paths: readonly string[]): string {
  let parts = dirname(resolve(paths[0])).split(sep);
  for (const path of paths.slice(1)) {
    const other = dirname(resolve(path)).split(sep);
    let n = 0;
    while (n < parts.length && n < other.length && parts[n] === other[n]) n++;
    parts = parts.slice(0, n);
  }
  return parts.join(sep) || sep;
}

/**
 * A fingerprint of the items' files: relative path (to `root`, default the deepest folder holding
 * them all, so a moved data set keeps its fingerprint), size, sha256 of the content, and the label
 * (material, frequency, angle: a manifest that relabels a file changes the fingerprint). Reads every
 * file once (~0.1 ms for a 50 kB take).
 */
export function datasetFingerprint(
  items: readonly Pick<DatasetItem, 'path' | 'material' | 'freqHz' | 'angleDeg'>[],
  opts: { root?: string } = {},
): DatasetFingerprint {
  if (items.length === 0) throw new Error('datasetFingerprint: no items');
  const root = resolve(opts.root ?? commonFolder(items.map((i) => i.path)));
  const entries = items
    .map((item) => {
      const bytes = readFileSync(item.path);
      const path = relative(root, resolve(item.path)).split(sep).join('/');
      return {
        path,
        size: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
        material: item.material,
        freqHz: item.freqHz,
        angleDeg: item.angleDeg,
      };
    })
    .sort((a, b) => compareText(a.path, b.path));
  const hash = createHash('sha256');
  for (const e of entries) hash.update(`${JSON.stringify(e.path)}\t${e.size}\t${e.sha256}\t${JSON.stringify(e.material)}\t${e.freqHz}\t${e.angleDeg}\n`);
  return { sha256: hash.digest('hex'), files: entries.length, bytes: entries.reduce((n, e) => n + e.size, 0), entries };
}

/** Files by relative path: in `after` only, in `before` only, with other content, with another label. */
export interface DatasetFingerprintChange {
  added: string[];
  removed: string[];
  changed: string[];
  relabelled: string[];
}

export function compareFingerprints(
  before: Pick<DatasetFingerprint, 'entries'>,
  after: Pick<DatasetFingerprint, 'entries'>,
): DatasetFingerprintChange {
  const old = new Map(before.entries.map((e) => [e.path, e]));
  const now = new Map(after.entries.map((e) => [e.path, e]));
  const change: DatasetFingerprintChange = { added: [], removed: [], changed: [], relabelled: [] };
  for (const [path, e] of now) {
    const o = old.get(path);
    if (!o) change.added.push(path);
    else if (o.sha256 !== e.sha256 || o.size !== e.size) change.changed.push(path);
    else if (o.material !== e.material || o.freqHz !== e.freqHz || o.angleDeg !== e.angleDeg) change.relabelled.push(path);
  }
  for (const path of old.keys()) if (!now.has(path)) change.removed.push(path);
  for (const list of Object.values(change)) list.sort(compareText);
  return change;
}

/** "2 added (a.wav, b.wav), 1 changed (c.wav)": at most `max` names per kind. */
export function describeFingerprintChange(change: DatasetFingerprintChange, max = 5): string {
  const parts = (['added', 'removed', 'changed', 'relabelled'] as const)
    .filter((kind) => change[kind].length > 0)
    .map((kind) => {
      const list = change[kind];
      const more = list.length > max ? `, … ${list.length - max} more` : '';
      return `${list.length} ${kind} (${list.slice(0, max).join(', ')}${more})`;
    });
  return parts.length ? parts.join('; ') : 'no file differs';
}
