import { describe, expect, it } from 'vitest';
import { GHMStatsRecorder } from './ghm-stats-recorder';

// The shape of @lab/ghm-loss stats() (plain data; this package does not import it).
const stats = (counts: number[], binWeights: number[]) => ({
  edges: [0, 0.5, 1.000001],
  counts,
  accumulator: counts,
  binWeights,
  nonEmptyBins: counts.filter((c) => c > 0).length,
  meanWeightPerBin: binWeights,
  cumulativeCounts: counts.map((c) => 2 * c),
  total: 4,
  calls: 1,
});

describe('GHMStatsRecorder', () => {
  it('keeps a copy per epoch, sorted, and flattens it to rows', () => {
    const recorder = new GHMStatsRecorder();
    const s10 = stats([1, 3], [2, 0.5]);
    recorder.record(10, s10).record(5, stats([4, 0], [1, 0]));
    s10.counts[0] = 99; // later mutation of the caller's object must not leak in
    expect(recorder.stats()).toEqual({ epochs: [5, 10], bins: 2 });
    expect(recorder.rows()).toEqual([
      { epoch: 5, bin: 0, binStart: 0, binEnd: 0.5, count: 4, weight: 1, cumulativeCount: 8, meanWeight: 1 },
      { epoch: 5, bin: 1, binStart: 0.5, binEnd: 1.000001, count: 0, weight: 0, cumulativeCount: 0, meanWeight: 0 },
      { epoch: 10, bin: 0, binStart: 0, binEnd: 0.5, count: 1, weight: 2, cumulativeCount: 2, meanWeight: 2 },
      { epoch: 10, bin: 1, binStart: 0.5, binEnd: 1.000001, count: 3, weight: 0.5, cumulativeCount: 6, meanWeight: 0.5 },
    ]);
    const restored = GHMStatsRecorder.fromJSON(JSON.parse(JSON.stringify(recorder.toJSON())));
    expect(restored.rows()).toEqual(recorder.rows());
    expect(restored.toJSON().records[0].stats.calls).toBe(1);
  });

  it('accepts minimal stats and rejects malformed ones', () => {
    const recorder = new GHMStatsRecorder().record(1, { edges: [0, 1], counts: [2] });
    expect(recorder.rows()[0]).toMatchObject({ count: 2, weight: null, meanWeight: null });
    expect(() => recorder.record(2, { edges: [0, 1], counts: [1, 2] })).toThrow(/stats.edges must be 3 increasing numbers/);
    expect(() => recorder.record(2, { edges: [0, 1], counts: [1], binWeights: [1, 2] })).toThrow(/stats.binWeights must have one number per bin/);
    expect(() => recorder.record(NaN, { edges: [0, 1], counts: [1] })).toThrow(/epoch/);
  });
});
