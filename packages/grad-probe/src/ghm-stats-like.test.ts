import { describe, expect, expectTypeOf, it } from 'vitest';
import { GHMStatsRecorder, type GHMStatsLike } from './ghm-stats-recorder';

/**
 * Field for field the `GHMStats` interface of @lab/ghm-loss (packages/ghm-loss/src), copied rather
 * than imported because this package is a leaf. Declared as an `interface` on purpose: interfaces
 * get no implicit index signature, which is what made the real one need a cast before.
 * `tsc --noEmit` on this package type-checks this file, so the assignments below fail to compile
 * if GHMStatsLike stops accepting that shape.
 */
interface GhmLossGHMStats {
  edges: number[];
  counts: number[];
  accumulator: number[];
  binWeights: number[];
  nonEmptyBins: number;
  meanWeightPerBin: number[];
  cumulativeCounts: number[];
  total: number;
  calls: number;
}

describe('GHMStatsLike accepts ghm-loss GHMStats without a cast', () => {
  it('type-checks and records every field', () => {
    const stats: GhmLossGHMStats = {
      edges: [0, 0.5, 1.000001],
      counts: [3, 1],
      accumulator: [0, 0],
      binWeights: [2 / 3, 2],
      nonEmptyBins: 2,
      meanWeightPerBin: [2 / 3, 2],
      cumulativeCounts: [3, 1],
      total: 4,
      calls: 1,
    };
    expectTypeOf<GhmLossGHMStats>().toExtend<GHMStatsLike>();
    const like: GHMStatsLike = stats;
    const recorder = new GHMStatsRecorder().record(0, stats);
    expect(recorder.toJSON().records[0].stats).toEqual(stats);
    expect(recorder.rows().map((r) => r.weight)).toEqual([2 / 3, 2]);
    expect(like.counts).toEqual([3, 1]);
  });
});
