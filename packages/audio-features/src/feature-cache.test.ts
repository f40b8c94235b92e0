import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FeatureCache, stableStringify } from './feature-cache';
import { DEFAULT_FEATURE_OPTIONS } from './features';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'audio-features-cache-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const map = { data: Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 2), height: 3, width: 4 };

describe('FeatureCache', () => {
  it('keys depend on content and on every parameter, not on key order', () => {
    const content = new Uint8Array([1, 2, 3]);
    const base = FeatureCache.key(content, { featureOptions: DEFAULT_FEATURE_OPTIONS, toneHz: 1000 });
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(FeatureCache.key(content, { toneHz: 1000, featureOptions: { ...DEFAULT_FEATURE_OPTIONS } })).toBe(base);
    expect(FeatureCache.key(new Uint8Array([1, 2, 4]), { featureOptions: DEFAULT_FEATURE_OPTIONS, toneHz: 1000 })).not.toBe(base);
    expect(FeatureCache.key(content, { featureOptions: DEFAULT_FEATURE_OPTIONS, toneHz: 500 })).not.toBe(base);
    expect(FeatureCache.key(content, { featureOptions: { ...DEFAULT_FEATURE_OPTIONS, hopSize: 128 }, toneHz: 1000 })).not.toBe(base);
    expect(stableStringify({ b: [1, { d: 2, c: 3 }], a: 'x' })).toBe('{"a":"x","b":[1,{"c":3,"d":2}]}');
  });

  it('misses, writes, then hits with the same values', async () => {
    const cache = new FeatureCache(dir);
    const key = FeatureCache.key(new Uint8Array([9]), { p: 1 });
    expect(cache.get(key)).toBeUndefined();
    cache.set(key, map);
    const again = cache.get(key);
    expect(again?.height).toBe(3);
    expect(again?.width).toBe(4);
    expect(Array.from(again!.data)).toEqual(Array.from(map.data));
    expect(cache.stats()).toEqual({ hits: 1, misses: 1, corrupt: 0, writes: 1 });
    expect(JSON.parse(JSON.stringify(cache))).toEqual({ dir, hits: 1, misses: 1, corrupt: 0, writes: 1 });
    // a fresh instance (another process) reads the same entry
    expect(Array.from(new FeatureCache(dir).get(key)!.data)).toEqual(Array.from(map.data));
    // no temporary files are left behind
    const shard = (await readdir(dir))[0];
    expect(await readdir(join(dir, shard))).toEqual([`${key}.f32`]);
  });

  it('detects truncated and bit-flipped entries, counts them and recomputes', async () => {
    const cache = new FeatureCache(dir);
    const key = FeatureCache.key(new Uint8Array([7]), { p: 2 });
    let computed = 0;
    const compute = () => {
      computed++;
      return map;
    };
    await cache.getOrCompute(key, compute);
    await cache.getOrCompute(key, compute);
    expect(computed).toBe(1);

    await truncate(cache.pathOf(key), 50); // a partial write
    expect(Array.from((await cache.getOrCompute(key, compute)).data)).toEqual(Array.from(map.data));
    expect(computed).toBe(2);

    const bytes = await readFile(cache.pathOf(key));
    bytes[bytes.length - 3] ^= 0x40; // one flipped bit in the payload: same length, bad checksum
    await writeFile(cache.pathOf(key), bytes);
    expect(Array.from((await cache.getOrCompute(key, compute)).data)).toEqual(Array.from(map.data));
    expect(computed).toBe(3);

    await writeFile(cache.pathOf(key), 'garbage');
    await cache.getOrCompute(key, compute);
    expect(computed).toBe(4);
    expect(cache.stats()).toEqual({ hits: 1, misses: 4, corrupt: 3, writes: 4 });
    // the recomputed entry is good again
    await cache.getOrCompute(key, compute);
    expect(computed).toBe(4);
  });

  it('rejects bad keys and shapes', async () => {
    const cache = new FeatureCache(dir);
    expect(() => cache.pathOf('../../etc/passwd')).toThrow(/key must be 64 hex digits/);
    const key = FeatureCache.key(new Uint8Array([1]), {});
    expect(() => cache.set(key, { data: new Float32Array(5), height: 2, width: 3 })).toThrow(/5 values, expected 2×3/);
  });
});
