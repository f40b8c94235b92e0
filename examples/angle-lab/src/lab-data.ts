import * as tf from '@tensorflow/tfjs-core';
import {
  FeatureCache,
  loadFeatures,
  readManifest,
  scanDataset,
  stratifiedKFold,
  stratifiedSplit,
  type DatasetFilter,
  type DatasetItem,
  type FeatureOptions,
} from '@lab/audio-features';
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
};

export const DATA_DEFAULTS: DataParams = { data: '', manifest: '', cacheDir: '', featureSize: 64 };

export function featureOptionsOf(params: Pick<DataParams, 'featureSize'>): Partial<FeatureOptions> {
  return { height: params.featureSize, width: params.featureSize };
}

export function describeDataSource(params: Pick<DataParams, 'data' | 'manifest'>): string {
  if (params.manifest) return `The recordings listed in the manifest \`${params.manifest}\``;
  if (params.data) return `The recordings under \`${params.data}\``;
  return "The simulator's default data set (examples/angle-lab/data/simulated; see the README's simulator section)";
}

export async function loadItems(params: Pick<DataParams, 'data' | 'manifest'>, filter: DatasetFilter = {}): Promise<DatasetItem[]> {
  if (params.manifest) return readManifest(params.manifest, filter);
  return scanDataset(params.data || DEFAULT_DATA_ROOT, filter);
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

export async function loadTakes(params: DataParams, material: string, frequenciesHz: number[]): Promise<LabData> {
  const items = await loadItems(params, { materials: [material], freqsHz: frequenciesHz });
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
