import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from './atomic-write';
import type { FeatureMap } from './features';
import { PACKAGE_VERSION } from './version';

export interface FeatureCacheStats {
  /** Entries found intact. */
  hits: number;
  /** Lookups that found no usable entry (corrupt entries included). */
  misses: number;
  /** Entries that failed the length or checksum check and were discarded. */
  corrupt: number;
  /** Entries written. */
  writes: number;
}

/** JSON with object keys sorted at every level, so equal parameters always give the same text. */
export function stableStringify(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return JSON.stringify(String(value));
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

const MAGIC = 0x31434641; // "AFC1" little-endian
const HEADER_BYTES = 4 + 4 + 4 + 32;

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * A folder of feature maps keyed by sha256(file content) + every feature parameter + this package's
 * version. Entry layout (little-endian): "AFC1", height u32, width u32, sha256 of the payload,
 * then height·width float32. An entry whose length or checksum is wrong counts as `corrupt`, is
 * deleted, and the caller recomputes it. Writes go to a temporary file in the same folder and are
 * renamed into place, so readers never see a half-written entry from us.
 */
export class FeatureCache {
  readonly dir: string;
  private readonly counts: FeatureCacheStats = { hits: 0, misses: 0, corrupt: 0, writes: 0 };

  constructor(dir: string) {
    if (!dir) throw new Error('FeatureCache: dir must be a folder path');
    this.dir = dir;
  }

  /** Cache key of a file's bytes under the given parameters (plain JSON-able values). */
  static key(content: Uint8Array, params: unknown): string {
    return createHash('sha256')
      .update(sha256(content))
      .update(stableStringify({ params, package: '@lab/audio-features', version: PACKAGE_VERSION }))
      .digest('hex');
  }

  /** Where the entry for `key` lives. */
  pathOf(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`FeatureCache: key must be 64 hex digits, got "${key}"`);
    return join(this.dir, key.slice(0, 2), `${key}.f32`);
  }

  /**
   * The entry for `key`, or undefined (missing or corrupt). Synchronous, like `set`: an entry is a
   * few kilobytes, and fs/promises' thread-pool round trips cost more than the read itself.
   */
  get(key: string): FeatureMap | undefined {
    const path = this.pathOf(key);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.counts.misses++;
      return undefined;
    }
    const map = decodeEntry(bytes);
    if (!map) {
      this.counts.corrupt++;
      this.counts.misses++;
      rmSync(path, { force: true });
      return undefined;
    }
    this.counts.hits++;
    return map;
  }

  /** Stores `map` under `key` atomically (temporary file in the same folder, then rename). */
  set(key: string, map: FeatureMap): void {
    const path = this.pathOf(key);
    const size = map.height * map.width;
    if (map.data.length !== size) {
      throw new Error(`FeatureCache.set: data has ${map.data.length} values, expected ${map.height}×${map.width}`);
    }
    const payload = new Uint8Array(size * 4);
    const view = new DataView(payload.buffer);
    for (let i = 0; i < size; i++) view.setFloat32(4 * i, map.data[i], true);
    const entry = Buffer.alloc(HEADER_BYTES + payload.length);
    entry.writeUInt32LE(MAGIC, 0);
    entry.writeUInt32LE(map.height, 4);
    entry.writeUInt32LE(map.width, 8);
    sha256(payload).copy(entry, 12);
    entry.set(payload, HEADER_BYTES);
    mkdirSync(join(this.dir, key.slice(0, 2)), { recursive: true });
    writeFileAtomicSync(path, entry);
    this.counts.writes++;
  }

  /** The cached entry, or `compute()`'s result, stored for next time. */
  async getOrCompute(key: string, compute: () => FeatureMap | Promise<FeatureMap>): Promise<FeatureMap> {
    const cached = this.get(key);
    if (cached) return cached;
    const map = await compute();
    this.set(key, map);
    return map;
  }

  stats(): FeatureCacheStats {
    return { ...this.counts };
  }

  toJSON(): FeatureCacheStats & { dir: string } {
    return { dir: this.dir, ...this.counts };
  }
}

function decodeEntry(bytes: Buffer): FeatureMap | undefined {
  if (bytes.length < HEADER_BYTES || bytes.readUInt32LE(0) !== MAGIC) return undefined;
  const height = bytes.readUInt32LE(4);
  const width = bytes.readUInt32LE(8);
  if (bytes.length !== HEADER_BYTES + 4 * height * width) return undefined;
  const payload = bytes.subarray(HEADER_BYTES);
  if (!sha256(payload).equals(bytes.subarray(12, HEADER_BYTES))) return undefined;
  const data = new Float32Array(height * width);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(4 * i, true);
  return { data, height, width };
}
