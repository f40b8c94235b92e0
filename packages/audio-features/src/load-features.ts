import { readFileSync } from 'node:fs';
import { checkSampleRates, type DatasetItem } from './dataset';
import { FeatureCache } from './feature-cache';
import { computeFeatures, resolveFeatureOptions, type FeatureMap, type FeatureOptions } from './features';
import { decodeWav } from './wav';

export interface LoadFeaturesOptions<T extends Pick<DatasetItem, 'path'>> {
  featureOptions?: Partial<FeatureOptions>;
  /** Where computed maps are kept; left out, every map is computed. */
  cache?: FeatureCache;
  /** The tone each clip's band is centred on (default: `item.freqHz`). */
  toneHzOf?: (item: T) => number;
}

/**
 * Feature maps of the items, in order: each file is decoded (channels mixed to mono) and run through
 * `computeFeatures`, or read from the cache (an entry is used only when it was computed from this
 * recording: same content hash and size). All files must share one sample rate (checked from the
 * headers first, so a mixed set fails before any work); the error lists the rates.
 */
export async function loadFeatures<T extends Pick<DatasetItem, 'path'> & Partial<Pick<DatasetItem, 'freqHz'>>>(
  items: readonly T[],
  opts: LoadFeaturesOptions<T> = {},
): Promise<FeatureMap[]> {
  if (items.length === 0) throw new Error('loadFeatures: no items');
  const options = resolveFeatureOptions(opts.featureOptions);
  const toneHzOf =
    opts.toneHzOf ??
    ((item: T) => {
      if (typeof item.freqHz !== 'number') throw new Error(`loadFeatures: ${item.path} has no freqHz; pass toneHzOf`);
      return item.freqHz;
    });
  const sampleRate = await checkSampleRates(items);
  const compute = (item: T, bytes: Uint8Array, toneHz: number) => {
    const audio = decodeWav(bytes, { name: item.path, channel: 'mix' });
    if (audio.sampleRate !== sampleRate) {
      throw new Error(`loadFeatures: ${item.path} changed while loading (sample rate ${audio.sampleRate}, was ${sampleRate})`);
    }
    try {
      return computeFeatures(audio.channels[0], audio.sampleRate, toneHz, options);
    } catch (error) {
      throw new Error(`loadFeatures: ${item.path}: ${(error as Error).message}`);
    }
  };
  const maps: FeatureMap[] = [];
  for (const item of items) {
    // Synchronous reads on purpose: the work per file is synchronous (decode + STFT, milliseconds),
    // so async I/O overlaps nothing, and its thread-pool round trips made a cache hit ~3× slower.
    const bytes: Uint8Array = readFileSync(item.path);
    const toneHz = toneHzOf(item);
    if (!opts.cache) {
      maps.push(compute(item, bytes, toneHz));
      continue;
    }
    // The entry records which recording it was computed from; a lookup that finds another's
    // (an entry copied over this one) is a miss with a warning, never a hit.
    const source = FeatureCache.source(item.path, bytes);
    const key = FeatureCache.key(source, { featureOptions: options, toneHz, channel: 'mix' });
    maps.push(await opts.cache.getOrCompute(key, () => compute(item, bytes, toneHz), source));
  }
  return maps;
}
