import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  assertValidDataset,
  compareFingerprints,
  datasetFingerprint,
  describeFingerprintChange,
  FeatureCache,
  formatDatasetProblems,
  loadFeatures,
  readManifest,
  scanDataset,
  stratifiedKFold,
  stratifiedSplit,
  validateDataset,
  validateManifest,
  type DatasetFilter,
  type DatasetFingerprint,
  type DatasetItem,
  type FeatureOptions,
} from '@lab/audio-features';
import { InputError, writeFileAtomic } from '@lab/experiment-runner';
import { groupTakes, stackChannels, type TakeGroup } from './fusion';
import { DEFAULT_CACHE_DIR, DEFAULT_DATA_ROOT } from './paths';

/** Where the recordings are; shared by every experiment's params. Empty strings mean the defaults. */
export type DataParams = {
  /** Folder in the lab's layout `<material>/<freq>Hz/deg<angle>/*.wav`; '' = the simulated data. */
  data: string;
  /** CSV manifest `path,material,freq_hz,angle_deg` (wins over `data` when set). */
  manifest: string;
  /** Feature cache folder; '' = `<repo>/.cache/angle-lab-features`. */
  cacheDir: string;
  /** Side of the square feature map (frequency band × time, resized). */
  featureSize: number;
  /**
   * The recordings' fingerprint when the run was created (`recordDataFingerprint`): every trial
   * refuses to train on other data, so a resumed run never mixes old and new recordings.
   * '' = not recorded (no check).
   */
  dataFingerprint: string;
};

export const DATA_DEFAULTS: DataParams = { data: '', manifest: '', cacheDir: '', featureSize: 64, dataFingerprint: '' };

export function featureOptionsOf(params: Pick<DataParams, 'featureSize'>): Partial<FeatureOptions> {
  return { height: params.featureSize, width: params.featureSize };
}

export function describeDataSource(params: Pick<DataParams, 'data' | 'manifest'>): string {
  if (params.manifest) return `The recordings listed in the manifest \`${params.manifest}\``;
  if (params.data) return `The recordings under \`${params.data}\``;
  return "The simulator's default data set (examples/angle-lab/data/simulated; see the README's simulator section)";
}

export interface LoadItemsOptions {
  /** Cross-validation folds the caller will make: every class (material, frequency, angle) needs as many takes. */
  folds?: number;
  /** Where the data set's warnings go; default console.warn, each distinct report once per process. */
  warn?: (message: string) => void;
}

const reported = new Set<string>();
const warnOnce = (message: string) => {
  if (reported.has(message)) return;
  reported.add(message);
  console.warn(message);
};

/**
 * The recordings of the data source, after checking the whole source (`validateDataset` /
 * `validateManifest` of @lab/audio-features): every problem is reported at once, errors throw one
 * multi-line `InputError` before anything runs, warnings (links followed, files ignored) are printed.
 */
export async function loadItems(
  params: Pick<DataParams, 'data' | 'manifest'>,
  filter: DatasetFilter = {},
  options: LoadItemsOptions = {},
): Promise<DatasetItem[]> {
  const source = params.manifest || params.data || DEFAULT_DATA_ROOT;
  const checks = { filter, ...(options.folds !== undefined ? { folds: options.folds } : {}) };
  const validation = params.manifest ? await validateManifest(params.manifest, checks) : await validateDataset(source, checks);
  if (validation.warnings.length) {
    (options.warn ?? warnOnce)(`data set ${source}: ${validation.warnings.length} warning(s):\n${formatDatasetProblems({ errors: [], warnings: validation.warnings })}`);
  }
  try {
    assertValidDataset(validation, source);
  } catch (error) {
    // Bad input, not a failed run: `pnpm demo` and `lab` exit with the usage code (2) on it.
    throw new InputError((error as Error).message);
  }
  if (params.manifest) return readManifest(params.manifest, filter);
  return scanDataset(source, filter);
}

/** The folder a fingerprint's relative paths start from: the data folder, or the manifest's folder. */
function fingerprintRoot(params: Pick<DataParams, 'data' | 'manifest'>): string {
  return params.manifest ? dirname(resolve(params.manifest)) : resolve(params.data || DEFAULT_DATA_ROOT);
}

/** Where the file list of a recorded fingerprint is kept, so that a later mismatch can name the files. */
export function fingerprintListPath(params: Pick<DataParams, 'cacheDir'>, sha256: string): string {
  return join(params.cacheDir || DEFAULT_CACHE_DIR, 'data-fingerprints', `${sha256}.json`);
}

/** The value of the `dataFingerprint` parameter: `<sha256> (<files> files, <bytes> bytes)`. */
export function fingerprintParam(fingerprint: Pick<DatasetFingerprint, 'sha256' | 'files' | 'bytes'>): string {
  return `${fingerprint.sha256} (${fingerprint.files} files, ${fingerprint.bytes} bytes)`;
}

const FINGERPRINT_PARAM = /^([0-9a-f]{64})(?: \((\d+) files, (\d+) bytes\))?$/;

/** The plain listing of the source (no validation): what a fingerprint covers. */
function listSource(params: Pick<DataParams, 'data' | 'manifest'>): Promise<DatasetItem[]> {
  return params.manifest ? readManifest(params.manifest) : scanDataset(params.data || DEFAULT_DATA_ROOT);
}

/**
 * Fingerprints every recording of the source (relative paths, sizes, content hashes, labels), keeps
 * its file list in `<cacheDir>/data-fingerprints/<sha256>.json`, and returns the value to put into
 * the run's `dataFingerprint` parameter when the run is created.
 */
export async function recordDataFingerprint(
  params: Pick<DataParams, 'data' | 'manifest' | 'cacheDir'>,
  items?: readonly DatasetItem[],
): Promise<string> {
  const root = fingerprintRoot(params);
  const fingerprint = datasetFingerprint(items ?? (await listSource(params)), { root });
  writeFileAtomic(fingerprintListPath(params, fingerprint.sha256), `${JSON.stringify({ root, ...fingerprint })}\n`);
  return fingerprintParam(fingerprint);
}

/**
 * Throws when the recordings differ from those `params.dataFingerprint` recorded at run creation,
 * naming the files added, removed, changed or relabelled (the first few of each), from the file
 * list `recordDataFingerprint` kept. Does nothing when no fingerprint was recorded.
 */
export async function checkDataFingerprint(params: Pick<DataParams, 'data' | 'manifest' | 'cacheDir' | 'dataFingerprint'>): Promise<void> {
  if (!params.dataFingerprint) return;
  const match = FINGERPRINT_PARAM.exec(params.dataFingerprint);
  if (!match) {
    throw new Error(`dataFingerprint: expected "<64 hex digits> (<n> files, <n> bytes)" as recordDataFingerprint writes it, got "${params.dataFingerprint}"`);
  }
  const source = params.manifest || params.data || DEFAULT_DATA_ROOT;
  const current = datasetFingerprint(await listSource(params), { root: fingerprintRoot(params) });
  if (current.sha256 === match[1]) return;
  const listPath = fingerprintListPath(params, match[1]);
  let detail: string;
  try {
    const recorded = JSON.parse(readFileSync(listPath, 'utf8')) as DatasetFingerprint;
    detail = describeFingerprintChange(compareFingerprints(recorded, current));
  } catch {
    detail = `which files differ is unknown: the recorded file list ${listPath} is missing or unreadable`;
  }
  throw new Error(
    `data set ${source} changed since this run was created: ${detail}. Recorded ${params.dataFingerprint}, now ${fingerprintParam(current)}. ` +
      'Trials that finished used the recorded data: restore it to resume this run, or start a new run on the new data.',
  );
}

/** Parses an input spec such as "1000Hz" or "500Hz+1000Hz+3000Hz" into frequencies. */
export function parseInput(input: string): number[] {
  const parts = input.split('+').map((p) => p.trim());
  const frequencies = parts.map((p) => {
    const match = /^(\d+(?:\.\d+)?)\s*Hz$/i.exec(p);
    if (!match) throw new Error(`input "${input}": expected frequencies like "1000Hz" or "500Hz+1000Hz+3000Hz"`);
    return Number(match[1]);
  });
  if (new Set(frequencies).size !== frequencies.length) throw new Error(`input "${input}": a frequency is repeated`);
  return frequencies;
}

export function inputName(frequencies: readonly number[]): string {
  return frequencies.map((f) => `${f}Hz`).join('+');
}

/** The takes of one material at the given frequencies, with their angle classes (sorted angles). */
export interface LabData {
  groups: TakeGroup[];
  angles: number[];
  labels: number[];
}

/**
 * The takes of a trial: validated and loaded (`loadItems`; pass `folds` to check that every class
 * has enough takes for them), then the whole source is checked against the run's `dataFingerprint`
 * (a resumed run refuses changed data instead of mixing it in).
 */
export async function loadTakes(params: DataParams, material: string, frequenciesHz: number[], options: LoadItemsOptions = {}): Promise<LabData> {
  const items = await loadItems(params, { materials: [material], freqsHz: frequenciesHz }, options);
  await checkDataFingerprint(params);
  const groups = groupTakes(items, frequenciesHz);
  const angles = [...new Set(groups.map((g) => g.angleDeg))].sort((a, b) => a - b);
  if (angles.length < 2) throw new Error(`data: material ${material} at ${frequenciesHz.join('+')} Hz has ${angles.length} angle class(es); need at least 2`);
  return { groups, angles, labels: groups.map((g) => angles.indexOf(g.angleDeg)) };
}

/** Channels-last features of every take (channel c = frequency c), read through the feature cache. */
export async function takeFeatures(params: DataParams, groups: readonly TakeGroup[]): Promise<Float32Array[]> {
  const cache = new FeatureCache(params.cacheDir || DEFAULT_CACHE_DIR);
  const channels = groups[0].items.length;
  const maps = await loadFeatures(
    groups.flatMap((g) => g.items),
    { cache, featureOptions: featureOptionsOf(params) },
  );
  return groups.map((_, g) => stackChannels(maps.slice(g * channels, (g + 1) * channels)).data);
}

/** [n, size, size, channels] tensor of the chosen takes (the caller disposes it). */
export function featureTensor(features: readonly Float32Array[], indices: readonly number[], size: number, channels: number): tf.Tensor4D {
  const one = size * size * channels;
  const data = new Float32Array(indices.length * one);
  indices.forEach((index, i) => data.set(features[index], i * one));
  return tf.tensor4d(data, [indices.length, size, size, channels], 'float32');
}

export interface SplitIndices {
  train: number[];
  validation: number[];
  /** Held-out fold (empty when the experiment uses a plain train/validation split). */
  test: number[];
}

/**
 * Seeded, stratified by angle, over takes (so a take is never in two parts, and runs on different
 * inputs with the same seed and fold use the same takes). With `folds`, fold `fold` is the held-out
 * test set and `validationFraction` of the rest selects the epoch; without, a train/validation split.
 */
export function splitTakes(
  groups: readonly TakeGroup[],
  options: { seed: number; fold?: number; folds?: number; validationFraction: number },
): SplitIndices {
  const indexed = groups.map((group, index) => ({ group, index, angleDeg: group.angleDeg }));
  const classOf = (e: { angleDeg: number }) => e.angleDeg;
  let rest = indexed;
  let test: typeof indexed = [];
  if (options.folds !== undefined && options.folds > 1) {
    const fold = options.fold ?? 0;
    const folds = stratifiedKFold(indexed, { k: options.folds, seed: options.seed, classOf });
    rest = folds[fold].train;
    test = folds[fold].test;
  }
  const { train, validation } = stratifiedSplit(rest, {
    validationFraction: options.validationFraction,
    seed: options.seed * 1000 + (options.fold ?? 0) + 1,
    classOf,
  });
  const ids = (list: typeof indexed) => list.map((e) => e.index);
  return { train: ids(train), validation: ids(validation), test: ids(test) };
}
