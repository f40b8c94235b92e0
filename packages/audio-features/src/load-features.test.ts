import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanDataset } from './dataset';
import { FeatureCache } from './feature-cache';
import { computeFeatures, resolveFeatureOptions } from './features';
import { loadFeatures } from './load-features';
import { writeToneWav } from './test-wav';
import { readWav } from './wav';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'audio-features-load-'));
  for (const freq of [500, 1000]) {
    for (const angle of ['deg000', 'deg036']) {
      await writeToneWav(join(root, 'data', 'plastic', `${freq}Hz`, angle, 'take01.wav'), {
        freqHz: freq,
        seconds: 0.3,
        phase: angle === 'deg036' ? 1 : 0,
      });
    }
  }
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const featureOptions = { height: 16, width: 20, durationSeconds: 0.3 };

describe('loadFeatures', () => {
  it('computes each item at its own tone, the same as computeFeatures', async () => {
    const items = await scanDataset(join(root, 'data'));
    const maps = await loadFeatures(items, { featureOptions });
    expect(maps).toHaveLength(4);
    const audio = await readWav(items[3].path, { channel: 'mix' });
    const direct = computeFeatures(audio.channels[0], audio.sampleRate, 1000, featureOptions);
    expect(Array.from(maps[3].data)).toEqual(Array.from(direct.data));
    expect(maps[3]).toMatchObject({ height: 16, width: 20 });
  });

  it('uses the cache: second pass all hits with identical maps; parameters change the key', async () => {
    const items = await scanDataset(join(root, 'data'));
    const cache = new FeatureCache(join(root, 'cache'));
    const first = await loadFeatures(items, { featureOptions, cache });
    expect(cache.stats()).toEqual({ hits: 0, misses: 4, corrupt: 0, mismatched: 0, writes: 4 });
    const second = await loadFeatures(items, { featureOptions, cache });
    expect(cache.stats()).toMatchObject({ hits: 4, misses: 4 });
    expect(second.map((m) => Array.from(m.data))).toEqual(first.map((m) => Array.from(m.data)));
    await loadFeatures(items, { featureOptions: { ...featureOptions, floorDb: -60 }, cache });
    expect(cache.stats()).toMatchObject({ hits: 4, misses: 8 });
    await loadFeatures(items, { featureOptions, cache, toneHzOf: () => 750 });
    expect(cache.stats()).toMatchObject({ hits: 4, misses: 12 });
  });

  it('never uses an entry that was computed from another recording (entry copied over another)', async () => {
    const items = await scanDataset(join(root, 'data'));
    const warnings: string[] = [];
    const cache = new FeatureCache(join(root, 'cache-copied'), { onWarning: (m) => warnings.push(m) });
    const reference = await loadFeatures(items, { featureOptions });
    await loadFeatures(items, { featureOptions, cache });
    // Copy the entry of take 0 over the entry of take 3 (every entry is intact on its own).
    const shards = await readdir(join(root, 'cache-copied'));
    const entries = (await Promise.all(shards.map(async (s) => (await readdir(join(root, 'cache-copied', s))).map((f) => join(root, 'cache-copied', s, f))))).flat();
    expect(entries).toHaveLength(4);
    const entryOf = async (index: number) => {
      const bytes = await readFile(items[index].path);
      const key = FeatureCache.key(bytes, { featureOptions: resolveFeatureOptions(featureOptions), toneHz: items[index].freqHz, channel: 'mix' });
      return cache.pathOf(key);
    };
    await copyFile(await entryOf(0), await entryOf(3));
    const again = await loadFeatures(items, { featureOptions, cache });
    expect(again.map((m) => Array.from(m.data))).toEqual(reference.map((m) => Array.from(m.data)));
    expect(cache.stats()).toMatchObject({ hits: 3, mismatched: 1 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(items[0].path);
    expect(warnings[0]).toContain(items[3].path);
  });

  it('rejects mixed sample rates before computing anything', async () => {
    await writeToneWav(join(root, 'mixed', 'plastic', '500Hz', 'deg000', 'a.wav'), { freqHz: 500, sampleRate: 16000, seconds: 0.1 });
    await writeToneWav(join(root, 'mixed', 'plastic', '500Hz', 'deg036', 'b.wav'), { freqHz: 500, sampleRate: 48000, seconds: 0.1 });
    const items = await scanDataset(join(root, 'mixed'));
    const cache = new FeatureCache(join(root, 'cache-mixed'));
    await expect(loadFeatures(items, { cache })).rejects.toThrow(/mixed sample rates \(16000 Hz: 1 file\(s\), e\.g\. .*a\.wav; 48000 Hz: 1 file/);
    expect(cache.stats().writes).toBe(0);
  });

  it('needs items and a tone', async () => {
    await expect(loadFeatures([])).rejects.toThrow(/no items/);
    const items = await scanDataset(join(root, 'data'));
    await expect(loadFeatures([{ path: items[0].path }])).rejects.toThrow(/has no freqHz; pass toneHzOf/);
    await expect(loadFeatures(items, { toneHzOf: () => 12000 })).rejects.toThrow(
      /loadFeatures: .*take01\.wav: computeFeatures: toneHz must be between 0 and the Nyquist frequency 8000 Hz, got 12000/,
    );
  });
});
