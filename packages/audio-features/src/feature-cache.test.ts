import { copyFile, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
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
    expect(cache.stats()).toEqual({ hits: 1, misses: 1, corrupt: 0, mismatched: 0, writes: 1 });
    expect(JSON.parse(JSON.stringify(cache))).toEqual({ dir, hits: 1, misses: 1, corrupt: 0, mismatched: 0, writes: 1 });
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
    expect(cache.stats()).toEqual({ hits: 1, misses: 4, corrupt: 3, mismatched: 0, writes: 4 });
    // the recomputed entry is good again
    await cache.getOrCompute(key, compute);
    expect(computed).toBe(4);
  });

  it('an entry copied over another is a miss with a warning, never a hit', async () => {
    const warnings: string[] = [];
    const cache = new FeatureCache(dir, { onWarning: (m) => warnings.push(m) });
    const contentA = new Uint8Array([1, 2, 3]);
    const contentB = new Uint8Array([4, 5, 6, 7]);
    const sourceA = FeatureCache.source('plastic/1000Hz/deg000/take01.wav', contentA);
    const sourceB = FeatureCache.source('plastic/1000Hz/deg036/take01.wav', contentB);
    // The source gives the same key as the bytes (no second hash needed).
    expect(FeatureCache.key(sourceA, { p: 1 })).toBe(FeatureCache.key(contentA, { p: 1 }));
    const keyA = FeatureCache.key(sourceA, { p: 1 });
    const keyB = FeatureCache.key(sourceB, { p: 1 });
    const mapB = { data: Float32Array.from({ length: 12 }, (_, i) => 100 + i), height: 3, width: 4 };
    cache.set(keyA, map, sourceA);
    cache.set(keyB, mapB, sourceB);
    expect(Array.from(cache.get(keyB, sourceB)!.data)).toEqual(Array.from(mapB.data));

    // Someone copies A's entry over B's: intact bytes, valid checksum, but A's features.
    await copyFile(cache.pathOf(keyA), cache.pathOf(keyB));
    let computed = 0;
    const result = await cache.getOrCompute(keyB, () => (computed++, mapB), sourceB);
    expect(computed).toBe(1);
    expect(Array.from(result.data)).toEqual(Array.from(mapB.data));
    expect(cache.stats()).toMatchObject({ hits: 1, mismatched: 1, corrupt: 0, misses: 1, writes: 3 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/entry .*\.f32 was written for key [0-9a-f]{12}…, not [0-9a-f]{12}…, from plastic\/1000Hz\/deg000\/take01\.wav \(3 bytes, .*not from plastic\/1000Hz\/deg036\/take01\.wav \(4 bytes.*ignored and recomputed/);
    // The recomputed entry is B's again: a hit from now on.
    expect(Array.from(cache.get(keyB, sourceB)!.data)).toEqual(Array.from(mapB.data));
    expect(cache.stats().hits).toBe(2);

    // Same key asked for with another recording (a caller whose key does not cover the content).
    expect(cache.get(keyA, sourceB)).toBeUndefined();
    expect(cache.stats().mismatched).toBe(2);
    expect(warnings[1]).toMatch(/was computed from plastic\/1000Hz\/deg000\/take01\.wav .*not from plastic\/1000Hz\/deg036/);
    // Without a source the key alone is checked.
    cache.set(keyA, map);
    expect(cache.get(keyA)).toBeDefined();
    expect(cache.get(keyA, sourceA)).toBeDefined();
  });

  it('reads an entry of the old format (without its source) as a miss, not as corrupt', async () => {
    const cache = new FeatureCache(dir, { onWarning: () => {} });
    const key = FeatureCache.key(new Uint8Array([3]), {});
    cache.set(key, map);
    const bytes = await readFile(cache.pathOf(key));
    bytes.writeUInt32LE(0x31434641, 0); // "AFC1"
    await writeFile(cache.pathOf(key), bytes);
    expect(cache.get(key)).toBeUndefined();
    expect(cache.stats()).toMatchObject({ misses: 1, corrupt: 0, mismatched: 0 });
  });

  it('rejects bad keys and shapes', async () => {
    const cache = new FeatureCache(dir);
    expect(() => cache.pathOf('../../etc/passwd')).toThrow(/key must be 64 hex digits/);
    const key = FeatureCache.key(new Uint8Array([1]), {});
    expect(() => cache.set(key, { data: new Float32Array(5), height: 2, width: 3 })).toThrow(/5 values, expected 2×3/);
  });
});
