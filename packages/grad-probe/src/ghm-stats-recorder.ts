/**
 * The parts of @lab/ghm-loss `stats()` this recorder reads, as plain data (no import: this
 * package is a leaf). ghm-loss's `GHMStats` interface is assignable to it as it is (no cast).
 *
 * There is deliberately no index signature: an interface such as `GHMStats` has no implicit index
 * signature, so `[field: string]: unknown` made it unassignable without a cast. The other
 * `GHMStats` fields are listed as optional instead, so an object literal copied from `stats()`
 * still type-checks; any further fields of a non-literal value are accepted by TypeScript's
 * structural typing, and `record()` keeps every field of the JSON as it is.
 */
export interface GHMStatsLike {
  /** bins + 1 increasing bin edges over the gradient norm g. */
  edges: readonly number[];
  /** Samples per bin in the batch the stats describe. */
  counts: readonly number[];
  /** Weight GHM gave each sample of the bin in the latest call. */
  binWeights?: readonly (number | null)[];
  /** Samples per bin summed over calls since the loss was built or reset (e.g. one epoch). */
  cumulativeCounts?: readonly number[];
  /** Mean weight of the samples that fell in each bin over the same calls. */
  meanWeightPerBin?: readonly number[];
  /** EMA of the counts (kept, not plotted). */
  accumulator?: readonly number[];
  /** Non-empty bins in the latest call (kept, not plotted). */
  nonEmptyBins?: number;
  /** Normaliser of the latest call (kept, not plotted). */
  total?: number;
  /** Calls since construction or reset (kept, not plotted). */
  calls?: number;
}

export interface GHMStatsRecord {
  epoch: number;
  stats: GHMStatsLike;
}

/** One row per (epoch, bin): the long format the Vega-Lite builders plot. */
export interface GHMBinRow {
  epoch: number;
  bin: number;
  binStart: number;
  binEnd: number;
  count: number;
  weight: number | null;
  cumulativeCount: number | null;
  meanWeight: number | null;
}

export interface GHMStatsRecorderJSON {
  records: GHMStatsRecord[];
}

function validate(stats: GHMStatsLike, where: string): void {
  if (stats == null || typeof stats !== 'object') throw new Error(`${where}: stats must be the plain object from ghm-loss stats()`);
  const { edges, counts } = stats;
  if (!Array.isArray(counts) || counts.length === 0 || !counts.every((c) => Number.isFinite(c) && c >= 0)) {
    throw new Error(`${where}: stats.counts must be a non-empty array of non-negative numbers`);
  }
  if (!Array.isArray(edges) || edges.length !== counts.length + 1 || !edges.every((e, i) => Number.isFinite(e) && (i === 0 || e > edges[i - 1]))) {
    throw new Error(`${where}: stats.edges must be ${counts.length + 1} increasing numbers (counts.length + 1)`);
  }
  for (const field of ['binWeights', 'cumulativeCounts', 'meanWeightPerBin'] as const) {
    const values = stats[field];
    if (values === undefined || values === null) continue;
    if (!Array.isArray(values) || values.length !== counts.length || !values.every((w) => w === null || Number.isFinite(w))) {
      throw new Error(`${where}: stats.${field} must have one number per bin (${counts.length})`);
    }
  }
}

/** Flattens one epoch's stats into rows (shared with ghmBinsSpec for JSON input). */
export function ghmRows(epoch: number, stats: GHMStatsLike): GHMBinRow[] {
  return stats.counts.map((count, bin) => ({
    epoch,
    bin,
    binStart: stats.edges[bin],
    binEnd: stats.edges[bin + 1],
    count,
    weight: stats.binWeights?.[bin] ?? null,
    cumulativeCount: stats.cumulativeCounts?.[bin] ?? null,
    meanWeight: stats.meanWeightPerBin?.[bin] ?? null,
  }));
}

/**
 * Keeps the GHM bin statistics of each epoch so their evolution can be plotted with the rest.
 * Record `stats()` at the end of each epoch: `counts`/`binWeights` describe the epoch's last batch;
 * calling the loss's `reset()` at the start of each epoch makes `cumulativeCounts` and
 * `meanWeightPerBin` describe the whole epoch.
 */
export class GHMStatsRecorder {
  private readonly records: GHMStatsRecord[] = [];

  /** Stores a deep copy of `stats` for `epoch` (a later record for the same epoch replaces it). */
  record(epoch: number, stats: GHMStatsLike): this {
    const where = 'grad-probe GHMStatsRecorder.record';
    if (!Number.isFinite(epoch)) throw new Error(`${where}: epoch must be a finite number, got ${epoch}`);
    validate(stats, where);
    const copy = JSON.parse(JSON.stringify(stats)) as GHMStatsLike;
    const existing = this.records.findIndex((r) => r.epoch === epoch);
    if (existing >= 0) this.records[existing] = { epoch, stats: copy };
    else this.records.push({ epoch, stats: copy });
    this.records.sort((a, b) => a.epoch - b.epoch);
    return this;
  }

  stats(): { epochs: number[]; bins: number | null } {
    return {
      epochs: this.records.map((r) => r.epoch),
      bins: this.records.length > 0 ? this.records[this.records.length - 1].stats.counts.length : null,
    };
  }

  rows(): GHMBinRow[] {
    return this.records.flatMap(({ epoch, stats }) => ghmRows(epoch, stats));
  }

  toJSON(): GHMStatsRecorderJSON {
    return { records: JSON.parse(JSON.stringify(this.records)) as GHMStatsRecord[] };
  }

  static fromJSON(json: GHMStatsRecorderJSON): GHMStatsRecorder {
    if (json == null || !Array.isArray(json.records)) {
      throw new Error('grad-probe GHMStatsRecorder.fromJSON: expected { records: [...] } from toJSON()');
    }
    const recorder = new GHMStatsRecorder();
    for (const r of json.records) recorder.record(r.epoch, r.stats);
    return recorder;
  }
}
