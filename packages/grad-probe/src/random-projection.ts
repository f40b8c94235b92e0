import { mixSeed, SeededRandom } from './seeded-random';
import type { VectorLike } from './vector-math';

export type ProjectionDistribution = 'gaussian' | 'achlioptas' | 'sparse';

export interface RandomProjectionOptions {
  /** Target dimension (a few hundred to a few thousand). */
  k: number;
  /** Same seed => same matrix => same projections. Default 0. */
  seed?: number;
  /**
   * `gaussian`: entries N(0, 1). `achlioptas`: entries √3·{+1, 0, −1} with probabilities
   * 1/6, 2/3, 1/6 (Achlioptas 2003). Both cost d·k per vector. `sparse`: each input coordinate is
   * hashed to `sparsity` output coordinates with random signs (a sparse JL transform / count
   * sketch, Kane & Nelson 2014): cost `sparsity`·d per vector, independent of k, and no matrix at
   * all — the only practical choice for models with millions of parameters (a dense projection of
   * an 11 M-parameter gradient to k = 2048 draws 22 G random numbers). Default `sparse`.
   */
  distribution?: ProjectionDistribution;
  /** Non-zeros per input coordinate for `sparse` (more = closer to a dense projection). Default min(8, k). */
  sparsity?: number;
  /**
   * How many matrix entries may be kept in memory between calls (float32). Blocks beyond this are
   * regenerated from their seed when needed. Default 2^24 (64 MB).
   */
  maxCachedEntries?: number;
}

export interface RandomProjectionJSON {
  k: number;
  seed: number;
  distribution: ProjectionDistribution;
  blockRows: number;
  sparsity: number | null;
}

/**
 * Seeded Johnson–Lindenstrauss projection x ↦ Rᵀx / √k, with R a d × k matrix of unit-variance
 * entries (or, for `sparse`, `sparsity` signed entries 1/√sparsity per row). Inner products are
 * preserved in expectation (E[(Rᵀx)·(Rᵀy)]/k = x·y), so cosines, norms and even the unbiased GNS
 * estimators can be computed in k dimensions.
 *
 * The matrix is never held whole: it is cut into blocks of `blockRows` input rows, and block b is
 * generated from `mixSeed(seed, b)` alone (a `sparse` row from `mixSeed(seed, row)`). The matrix
 * therefore does not depend on d (the first d rows are the same for every input length), and a
 * vector may be fed in segments (one per variable) without ever being concatenated.
 */
export class RandomProjection {
  static readonly blockRows = 256;
  readonly k: number;
  readonly seed: number;
  readonly distribution: ProjectionDistribution;
  readonly sparsity: number | null;
  private readonly maxCachedBlocks: number;
  private readonly cache = new Map<number, Float32Array>();

  constructor(options: RandomProjectionOptions) {
    const { k, seed = 0, distribution = 'sparse', maxCachedEntries = 2 ** 24, sparsity = Math.min(8, options?.k) } = options ?? ({} as RandomProjectionOptions);
    if (!Number.isInteger(k) || k < 1) {
      throw new Error(`grad-probe RandomProjection: options.k must be a positive integer, got ${k}`);
    }
    if (!Number.isFinite(seed)) {
      throw new Error(`grad-probe RandomProjection: options.seed must be a finite number, got ${seed}`);
    }
    if (distribution !== 'gaussian' && distribution !== 'achlioptas' && distribution !== 'sparse') {
      throw new Error(`grad-probe RandomProjection: options.distribution must be 'gaussian', 'achlioptas' or 'sparse', got ${String(distribution)}`);
    }
    if (distribution === 'sparse' && !(Number.isInteger(sparsity) && sparsity >= 1 && sparsity <= k)) {
      throw new Error(`grad-probe RandomProjection: options.sparsity must be an integer in [1, k = ${k}], got ${sparsity}`);
    }
    this.k = k;
    this.seed = Math.floor(seed);
    this.distribution = distribution;
    this.sparsity = distribution === 'sparse' ? sparsity : null;
    this.maxCachedBlocks = Math.max(1, Math.floor(maxCachedEntries / (k * RandomProjection.blockRows)));
  }

  /** Projects one vector to k dimensions. */
  project(vector: VectorLike): Float32Array {
    return this.projectSegments([vector]);
  }

  /**
   * Projects the concatenation of `segments` (e.g. one gradient per variable, in order) without
   * building the concatenated vector.
   */
  projectSegments(segments: readonly VectorLike[]): Float32Array {
    const out = new Float64Array(this.k);
    let offset = 0;
    for (const segment of segments) {
      this.accumulate(out, segment, offset);
      offset += segment.length;
    }
    return this.finish(out);
  }

  /**
   * Projects several vectors of the same length, generating each block of the matrix once for
   * all of them (use this rather than repeated `project` when the matrix cannot be cached).
   */
  projectMany(vectors: readonly VectorLike[]): Float32Array[] {
    if (vectors.length === 0) return [];
    const d = vectors[0].length;
    vectors.forEach((v, i) => {
      if (v.length !== d) {
        throw new Error(`grad-probe RandomProjection.projectMany: vector ${i} has length ${v.length}, expected ${d}`);
      }
    });
    const outs = vectors.map(() => new Float64Array(this.k));
    if (this.sparsity !== null) {
      vectors.forEach((v, i) => this.accumulate(outs[i], v, 0));
      return outs.map((o) => this.finish(o));
    }
    const rows = RandomProjection.blockRows;
    for (let start = 0; start < d; start += rows) {
      const end = Math.min(d, start + rows);
      const block = this.block(start / rows);
      vectors.forEach((v, i) => this.applyBlock(outs[i], v, start, end, -start, block));
    }
    return outs.map((o) => this.finish(o));
  }

  toJSON(): RandomProjectionJSON {
    return { k: this.k, seed: this.seed, distribution: this.distribution, blockRows: RandomProjection.blockRows, sparsity: this.sparsity };
  }

  /** Adds the contribution of `data`, occupying global rows [offset, offset + data.length). */
  private accumulate(out: Float64Array, data: VectorLike, offset: number): void {
    if (this.sparsity !== null) {
      this.accumulateSparse(out, data, offset, this.sparsity);
      return;
    }
    const rows = RandomProjection.blockRows;
    const end = offset + data.length;
    let row = offset;
    while (row < end) {
      const blockIndex = Math.floor(row / rows);
      const blockEnd = Math.min(end, (blockIndex + 1) * rows);
      this.applyBlock(out, data, row - offset, blockEnd - offset, offset - blockIndex * rows, this.block(blockIndex));
      row = blockEnd;
    }
  }

  /**
   * out += Σ_{i in [from, to)} data[i] · block[(i + shift)], where `shift` maps a data index to a
   * row inside the block.
   */
  private applyBlock(out: Float64Array, data: VectorLike, from: number, to: number, shift: number, block: Float32Array): void {
    const k = this.k;
    for (let i = from; i < to; i++) {
      const x = data[i];
      if (x === 0) continue;
      const base = (i + shift) * k;
      for (let j = 0; j < k; j++) out[j] += x * block[base + j];
    }
  }

  /**
   * Row r of the sparse matrix has `sparsity` entries ±1 at columns drawn from hashes of
   * (seed, r, t); columns may repeat (their signs are independent, so inner products stay unbiased).
   */
  private accumulateSparse(out: Float64Array, data: VectorLike, offset: number, sparsity: number): void {
    const k = this.k;
    const seed = mixSeed(this.seed, 0x5bd1e995);
    for (let i = 0; i < data.length; i++) {
      const x = data[i];
      if (x === 0) continue;
      const rowSeed = mixSeed(seed, offset + i);
      for (let t = 0; t < sparsity; t++) {
        const h = mixSeed(rowSeed, t);
        // Low bits pick the column, the top bit the sign.
        out[(h & 0x7fffffff) % k] += h & 0x80000000 ? -x : x;
      }
    }
  }

  private block(index: number): Float32Array {
    const cached = this.cache.get(index);
    if (cached) return cached;
    const k = this.k;
    const size = RandomProjection.blockRows * k;
    const block = new Float32Array(size);
    const rng = new SeededRandom(mixSeed(this.seed, index));
    if (this.distribution === 'gaussian') {
      for (let i = 0; i < size; i++) block[i] = rng.nextGaussian();
    } else {
      const s = Math.sqrt(3);
      for (let i = 0; i < size; i++) {
        // 2^32 mod 6 = 4, so the bias of `% 6` is below 1e-9.
        const r = rng.nextUint32() % 6;
        block[i] = r === 0 ? s : r === 1 ? -s : 0;
      }
    }
    if (this.cache.size >= this.maxCachedBlocks) {
      const oldest = this.cache.keys().next().value as number;
      this.cache.delete(oldest);
    }
    this.cache.set(index, block);
    return block;
  }

  private finish(out: Float64Array): Float32Array {
    const scale = 1 / Math.sqrt(this.sparsity ?? this.k);
    const result = new Float32Array(this.k);
    for (let j = 0; j < this.k; j++) result[j] = out[j] * scale;
    return result;
  }
}
