import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
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

async function subfolders(path: string): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(compareText);
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
 * ignored. Sorted by material, frequency, angle, take.
 */
export async function scanDataset(root: string, filter: DatasetFilter = {}): Promise<DatasetItem[]> {
  const rootInfo = await stat(root).catch(() => undefined);
  if (!rootInfo?.isDirectory()) throw new Error(`scanDataset: ${root} is not a folder`);
  const items: DatasetItem[] = [];
  const materials = await subfolders(root);
  if (materials.length === 0) {
    throw new Error(`scanDataset: ${root} is empty; expected <material>/<freq>Hz/deg<angle>/*.wav below it`);
  }
  for (const material of materials) {
    for (const freqName of await subfolders(join(root, material))) {
      const freqMatch = FREQ_PATTERN.exec(freqName);
      if (!freqMatch) {
        throw new Error(
          `scanDataset: folder ${join(root, material, freqName)} does not parse as a frequency; expected <freq>Hz such as 1000Hz`,
        );
      }
      const freqHz = Number(freqMatch[1]);
      for (const angleName of await subfolders(join(root, material, freqName))) {
        const folder = join(root, material, freqName, angleName);
        const angleMatch = ANGLE_PATTERN.exec(angleName);
        if (!angleMatch) {
          throw new Error(`scanDataset: folder ${folder} does not parse as an angle; expected deg<angle> such as deg036`);
        }
        const angleDeg = Number(angleMatch[1]);
        if (!matches(filter, { material, freqHz, angleDeg })) continue;
        const files = (await readdir(folder, { withFileTypes: true }))
          .filter((e) => e.isFile() && !e.name.startsWith('.') && extname(e.name).toLowerCase() === '.wav')
          .map((e) => e.name);
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
  for (const [index, record] of records.entries()) {
    const line = `${csvPath} row ${index + 1}`;
    const number = (column: 'freq_hz' | 'angle_deg') => {
      const value = Number(record[column]);
      if (record[column] === '' || !Number.isFinite(value)) {
        throw new Error(`readManifest: ${line}: ${column} must be a number, got "${record[column]}"`);
      }
      return value;
    };
    if (!record.path) throw new Error(`readManifest: ${line}: empty path`);
    if (!record.material) throw new Error(`readManifest: ${line}: empty material`);
    const item = { material: record.material, freqHz: number('freq_hz'), angleDeg: number('angle_deg') };
    const path = isAbsolute(record.path) ? record.path : join(folder, record.path);
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
