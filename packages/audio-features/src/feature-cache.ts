import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from './atomic-write';
import type { FeatureMap } from './features';
import { PACKAGE_VERSION } from './version';

export interface FeatureCacheStats {
  /** Entries found intact and belonging to the recording asked for. */
  hits: number;
  /** Lookups that found no usable entry (corrupt, mismatched and old-format entries included). */
  misses: number;
  /** Entries that failed the length or checksum check and were discarded. */
  corrupt: number;
  /** Intact entries that belong to another key or recording (copied over this one): discarded, with a warning. */
  mismatched: number;
  /** Entries written. */
  writes: number;
}

/** The recording an entry was computed from: stored in the entry and checked when it is read. */
export interface FeatureSource {
  /** The file's name or path (informative: it names the recording in warnings; not compared). */
  name: string;
  /** Size in bytes. */
  size: number;
  /** sha256 of the file's content, 64 hex digits. */
  sha256: string;
}

export interface FeatureCacheOptions {
  /** Where warnings go (an entry that belongs to another recording); default console.warn. */
  onWarning?: (message: string) => void;
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

const MAGIC = 0x32434641; // "AFC2" little-endian
const OLD_MAGIC = 0x31434641; // "AFC1": entries without their source (before 0.2); read as misses
/** magic, height, width, checksum, key, source sha256, source size (u64), name length; then name, payload. */
const FIXED_BYTES = 4 + 4 + 4 + 32 + 32 + 32 + 8 + 4;
const CHECKSUMMED_FROM = 44;
const MAX_NAME_BYTES = 4096;

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * A folder of feature maps keyed by sha256(file content) + every feature parameter + this package's
 * version. Each entry also holds its key and the identity of the recording it was computed from
 * (name, size, content sha256); an entry whose stored key or source differs from the lookup's (an
 * entry copied over another) counts as `mismatched`: a miss with a warning, never a hit.
 * Entry layout (little-endian): "AFC2", height u32, width u32, sha256 of everything after it, key
 * (32 bytes), source sha256 (32 bytes, zeros when unknown), source size u64, name length u32, name
 * (UTF-8), then height·width float32. An entry whose length or checksum is wrong counts as
 * `corrupt`, is deleted, and the caller recomputes it. Writes go to a temporary file in the same
 * folder and are renamed into place, so readers never see a half-written entry from us.
 */
export class FeatureCache {
  readonly dir: string;
  private readonly counts: FeatureCacheStats = { hits: 0, misses: 0, corrupt: 0, mismatched: 0, writes: 0 };
  private readonly warn: (message: string) => void;

  constructor(dir: string, options: FeatureCacheOptions = {}) {
    if (!dir) throw new Error('FeatureCache: dir must be a folder path');
    this.dir = dir;
    this.warn = options.onWarning ?? ((message) => console.warn(message));
  }

  /** The identity of a recording: its name, size and content hash (what an entry records and `get` checks). */
  static source(name: string, content: Uint8Array): FeatureSource {
    return { name, size: content.length, sha256: sha256(content).toString('hex') };
  }

  /**
   * Cache key of a file's bytes (or of its `FeatureCache.source`, which gives the same key without
   * hashing the bytes again) under the given parameters (plain JSON-able values).
   */
  static key(content: Uint8Array | FeatureSource, params: unknown): string {
    const contentHash = content instanceof Uint8Array ? sha256(content) : hexBytes(content.sha256, 'FeatureCache.key: source.sha256');
    return createHash('sha256')
      .update(contentHash)
      .update(stableStringify({ params, package: '@lab/audio-features', version: PACKAGE_VERSION }))
      .digest('hex');
  }

  /** Where the entry for `key` lives. */
  pathOf(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`FeatureCache: key must be 64 hex digits, got "${key}"`);
    return join(this.dir, key.slice(0, 2), `${key}.f32`);
  }

  /**
   * The entry for `key`, or undefined (missing, corrupt, or belonging to another key or to another
   * recording than `source`). Synchronous, like `set`: an entry is a few kilobytes, and
   * fs/promises' thread-pool round trips cost more than the read itself.
   */
  get(key: string, source?: FeatureSource): FeatureMap | undefined {
    const path = this.pathOf(key);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.counts.misses++;
      return undefined;
    }
    const entry = decodeEntry(bytes);
    if (entry === 'old') {
      this.counts.misses++;
      rmSync(path, { force: true });
      return undefined;
    }
    if (!entry) {
      this.counts.corrupt++;
      this.counts.misses++;
      rmSync(path, { force: true });
      return undefined;
    }
    const wrongKey = entry.key !== key;
    const wrongSource = source !== undefined && entry.source.sha256 !== ZERO_HASH && (entry.source.sha256 !== source.sha256 || entry.source.size !== source.size);
    if (wrongKey || wrongSource) {
      this.counts.mismatched++;
      this.counts.misses++;
      rmSync(path, { force: true });
      const stored = `${entry.source.name || 'an unnamed recording'} (${entry.source.size} bytes, sha256 ${entry.source.sha256.slice(0, 12)}…)`;
      const asked = source ? `${source.name} (${source.size} bytes, sha256 ${source.sha256.slice(0, 12)}…)` : 'this lookup';
      this.warn(
        `FeatureCache: entry ${path} ${wrongKey ? `was written for key ${entry.key.slice(0, 12)}…, not ${key.slice(0, 12)}…,` : 'was computed'} from ${stored}, not from ${asked}; ignored and recomputed (was it copied over another entry?)`,
      );
      return undefined;
    }
    this.counts.hits++;
    return entry.map;
  }

  /** Stores `map` under `key` atomically (temporary file in the same folder, then rename), with its source. */
  set(key: string, map: FeatureMap, source?: FeatureSource): void {
    const path = this.pathOf(key);
    const size = map.height * map.width;
    if (map.data.length !== size) {
      throw new Error(`FeatureCache.set: data has ${map.data.length} values, expected ${map.height}×${map.width}`);
    }
    const name = Buffer.from(source?.name ?? '', 'utf8').subarray(0, MAX_NAME_BYTES);
    const entry = Buffer.alloc(FIXED_BYTES + name.length + size * 4);
    entry.writeUInt32LE(MAGIC, 0);
    entry.writeUInt32LE(map.height, 4);
    entry.writeUInt32LE(map.width, 8);
    Buffer.from(key, 'hex').copy(entry, 44);
    if (source) {
      hexBytes(source.sha256, 'FeatureCache.set: source.sha256').copy(entry, 76);
      if (!Number.isSafeInteger(source.size) || source.size < 0) throw new Error(`FeatureCache.set: source.size must be a byte count, got ${source.size}`);
      entry.writeBigUInt64LE(BigInt(source.size), 108);
    }
    entry.writeUInt32LE(name.length, 116);
    name.copy(entry, FIXED_BYTES);
    const payload = FIXED_BYTES + name.length;
    for (let i = 0; i < size; i++) entry.writeFloatLE(map.data[i], payload + 4 * i);
    sha256(entry.subarray(CHECKSUMMED_FROM)).copy(entry, 12);
    mkdirSync(join(this.dir, key.slice(0, 2)), { recursive: true });
    writeFileAtomicSync(path, entry);
    this.counts.writes++;
  }

  /** The cached entry, or `compute()`'s result, stored for next time (with `source`, checked on later reads). */
  async getOrCompute(key: string, compute: () => FeatureMap | Promise<FeatureMap>, source?: FeatureSource): Promise<FeatureMap> {
    const cached = this.get(key, source);
    if (cached) return cached;
    const map = await compute();
    this.set(key, map, source);
    return map;
  }

  stats(): FeatureCacheStats {
    return { ...this.counts };
  }

  toJSON(): FeatureCacheStats & { dir: string } {
    return { dir: this.dir, ...this.counts };
  }
}

const ZERO_HASH = '0'.repeat(64);

function hexBytes(hex: string, what: string): Buffer {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${what} must be 64 lower-case hex digits, got "${hex}"`);
  return Buffer.from(hex, 'hex');
}

interface DecodedEntry {
  map: FeatureMap;
  key: string;
  source: FeatureSource;
}

function decodeEntry(bytes: Buffer): DecodedEntry | 'old' | undefined {
  if (bytes.length >= 4 && bytes.readUInt32LE(0) === OLD_MAGIC) return 'old';
  if (bytes.length < FIXED_BYTES || bytes.readUInt32LE(0) !== MAGIC) return undefined;
  const height = bytes.readUInt32LE(4);
  const width = bytes.readUInt32LE(8);
  const nameBytes = bytes.readUInt32LE(116);
  if (nameBytes > MAX_NAME_BYTES || bytes.length !== FIXED_BYTES + nameBytes + 4 * height * width) return undefined;
  if (!sha256(bytes.subarray(CHECKSUMMED_FROM)).equals(bytes.subarray(12, CHECKSUMMED_FROM))) return undefined;
  const payload = FIXED_BYTES + nameBytes;
  const data = new Float32Array(height * width);
  for (let i = 0; i < data.length; i++) data[i] = bytes.readFloatLE(payload + 4 * i);
  return {
    map: { data, height, width },
    key: bytes.subarray(44, 76).toString('hex'),
    source: {
      name: bytes.subarray(FIXED_BYTES, payload).toString('utf8'),
      size: Number(bytes.readBigUInt64LE(108)),
      sha256: bytes.subarray(76, 108).toString('hex'),
    },
  };
}
