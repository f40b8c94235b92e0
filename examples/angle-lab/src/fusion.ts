import type { DatasetItem, FeatureMap } from '@lab/audio-features';

/** One recording session of a reflector position: the same take at one or more tone frequencies. */
export interface TakeGroup {
  /** `material/deg<angle>/<take>`: what a take means across frequencies. */
  key: string;
  material: string;
  angleDeg: number;
  take: string;
  /** One item per requested frequency, in the order of the requested frequencies. */
  items: DatasetItem[];
}

/** A multi-channel feature map, channels last ([H, W, C] row-major), as the models take it. */
export interface ChannelStack {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

export function takeKey(item: Pick<DatasetItem, 'material' | 'angleDeg' | 'take'>): string {
  return `${item.material}/deg${String(item.angleDeg).padStart(3, '0')}/${item.take}`;
}

/**
 * Groups items into takes that exist at every one of `frequenciesHz` (the fusion input needs all of
 * them). A take missing at some frequency is an error naming it: silently dropping it would change
 * the class balance between the fused and the single-frequency runs.
 */
export function groupTakes(items: readonly DatasetItem[], frequenciesHz: readonly number[]): TakeGroup[] {
  if (frequenciesHz.length === 0) throw new Error('groupTakes: frequenciesHz is empty');
  const byKey = new Map<string, Map<number, DatasetItem>>();
  for (const item of items) {
    if (!frequenciesHz.includes(item.freqHz)) continue;
    const key = takeKey(item);
    const perFrequency = byKey.get(key) ?? new Map<number, DatasetItem>();
    if (perFrequency.has(item.freqHz)) {
      throw new Error(`groupTakes: take ${key} has two recordings at ${item.freqHz} Hz (${perFrequency.get(item.freqHz)!.path} and ${item.path})`);
    }
    perFrequency.set(item.freqHz, item);
    byKey.set(key, perFrequency);
  }
  if (byKey.size === 0) throw new Error(`groupTakes: no recordings at ${frequenciesHz.join(', ')} Hz`);
  const groups: TakeGroup[] = [];
  for (const [key, perFrequency] of byKey) {
    const missing = frequenciesHz.filter((f) => !perFrequency.has(f));
    if (missing.length) throw new Error(`groupTakes: take ${key} has no recording at ${missing.join(', ')} Hz`);
    const first = perFrequency.get(frequenciesHz[0])!;
    groups.push({ key, material: first.material, angleDeg: first.angleDeg, take: first.take, items: frequenciesHz.map((f) => perFrequency.get(f)!) });
  }
  // Same order as scanDataset (material, angle, take), so that seeded splits line up across inputs.
  return groups.sort((a, b) => (a.material < b.material ? -1 : a.material > b.material ? 1 : a.angleDeg - b.angleDeg || (a.take < b.take ? -1 : a.take > b.take ? 1 : 0)));
}

/** Interleaves single-channel maps of one shape into one channels-last map (channel c = maps[c]). */
export function stackChannels(maps: readonly FeatureMap[]): ChannelStack {
  if (maps.length === 0) throw new Error('stackChannels: no feature maps');
  const { height, width } = maps[0];
  const size = height * width;
  maps.forEach((map, c) => {
    if (map.height !== height || map.width !== width || map.data.length !== size) {
      throw new Error(`stackChannels: map ${c} is ${map.height}×${map.width} (${map.data.length} values), map 0 is ${height}×${width}`);
    }
  });
  const channels = maps.length;
  const data = new Float32Array(size * channels);
  for (let c = 0; c < channels; c++) {
    const source = maps[c].data;
    for (let p = 0; p < size; p++) data[p * channels + c] = source[p];
  }
  return { data, height, width, channels };
}
