import { describe, expect, it } from 'vitest';
import { compile } from 'vega-lite';
import { cosineSimilarityMatrix } from './cosine-similarity';
import { GHMStatsRecorder } from './ghm-stats-recorder';
import { GNSTracker } from './gradient-noise-scale';
import { normHistogram } from './norm-histogram';
import { cosineHeatmapSpec, ghmBinsSpec, gnsVsEpochSpec, normHistogramSpec, tsneScatterSpec, VEGA_LITE_SCHEMA, type VegaLiteSpec } from './vega-specs';

/** Compiles with vega-lite and fails on any warning or error it logs. */
function compiles(spec: VegaLiteSpec): void {
  const messages: string[] = [];
  const logger = {
    level: () => logger,
    error: (...m: unknown[]) => (messages.push(`error ${m.join(' ')}`), logger),
    warn: (...m: unknown[]) => (messages.push(`warn ${m.join(' ')}`), logger),
    info: () => logger,
    debug: () => logger,
  };
  const out = compile(spec as never, { logger: logger as never });
  expect(messages).toEqual([]);
  expect(out.spec).toBeTruthy();
  expect(spec.$schema).toBe(VEGA_LITE_SCHEMA);
  expect(JSON.stringify(spec)).not.toMatch(/NaN/);
}

const embedding = (n: number, t = 0.95) => ({ points: Array.from({ length: n }, (_, i) => [i, i * i] as [number, number]), trustworthiness: t, perplexityUsed: 3 });

describe('Vega-Lite spec builders', () => {
  it('gnsVsEpochSpec: band, estimate, EMA and undefined-ratio markers from a tracker', () => {
    const tracker = new GNSTracker({ decay: 0.5 });
    tracker.update({ trSigma: 10, gSquared: 2, ci95: { bSimple: { low: 3, high: 9 } } as never }, 5);
    tracker.update({ trSigma: 10, gSquared: -1 }, 10);
    tracker.update({ trSigma: 8, gSquared: 1 }, 15);
    const spec = gnsVsEpochSpec(tracker.toJSON());
    compiles(spec);
    const values = (spec.data as { values: Record<string, unknown>[] }).values;
    expect(values.map((v) => v.epoch)).toEqual([5, 10, 15]);
    expect(values[1]).toMatchObject({ bSimple: null, undefinedRatio: true });
    expect(values[0]).toMatchObject({ bSimple: 5, low: 3, high: 9, bandHigh: 9, unboundedHigh: false });
    // All plotted values are positive, so the axis is logarithmic.
    expect(JSON.stringify(spec)).toContain('"type":"log"');
    // An interval without upper bound (high null = +∞) is still drawn, up to the largest finite value.
    const unbounded = gnsVsEpochSpec([
      { epoch: 1, bSimple: 4, low: 2, high: 12, ema: 4 },
      { epoch: 2, bSimple: 6, low: 3, high: null, ema: 5 },
    ]);
    compiles(unbounded);
    expect((unbounded.data as { values: Record<string, unknown>[] }).values[1]).toMatchObject({ high: null, bandHigh: 12, unboundedHigh: true });
    compiles(gnsVsEpochSpec([{ epoch: 1, bSimple: -2 }, { epoch: 2, bSimple: 4 }], { title: 'x' }));
    expect(JSON.stringify(gnsVsEpochSpec([{ epoch: 1, bSimple: -2 }]))).toContain('"type":"linear"');
  });

  it('tsneScatterSpec: one map, or one facet per epoch, coloured by batch, epoch or label', () => {
    const single = tsneScatterSpec({ embedding: embedding(6), labels: ['a', 'a', 'b', 'b', 'c', 'c'] }, { colorBy: 'label' });
    compiles(single);
    expect(single.title).toMatch(/trustworthiness 0.950/);
    const groups = [5, 10].map((epoch) => ({ embedding: embedding(4), epoch }));
    const faceted = tsneScatterSpec(groups);
    compiles(faceted);
    expect(faceted.facet).toEqual({ field: 'epoch', type: 'ordinal', title: 'epoch' });
    const overlaid = tsneScatterSpec(groups, { colorBy: 'epoch' });
    compiles(overlaid);
    expect(overlaid.facet).toBeUndefined();
    expect((overlaid.data as { values: unknown[] }).values).toHaveLength(8);
    expect(() => tsneScatterSpec(groups, { colorBy: 'label' })).toThrow(/needs labels/);
  });

  it('cosineHeatmapSpec and normHistogramSpec compile and carry the data', () => {
    const cos = cosineSimilarityMatrix([Float32Array.of(1, 0), Float32Array.of(1, 1), Float32Array.of(0, 0)]);
    const heat = cosineHeatmapSpec(cos, { labels: ['b0', 'b1', 'b2'] });
    compiles(heat);
    expect((heat.data as { values: unknown[] }).values).toHaveLength(9);
    expect(() => cosineHeatmapSpec([[1, 0]])).toThrow(/square/);
    const hist = normHistogram([1, 2, 2, 3, 5], 4);
    compiles(normHistogramSpec(hist));
    const perEpoch = normHistogramSpec([
      { epoch: 5, histogram: hist },
      { epoch: 10, histogram: hist },
    ]);
    compiles(perEpoch);
    expect((perEpoch.data as { values: unknown[] }).values).toHaveLength(8);
  });

  it('ghmBinsSpec compiles from a recorder, its JSON or its rows', () => {
    const recorder = new GHMStatsRecorder();
    [1, 2, 3].forEach((epoch) =>
      recorder.record(epoch, { edges: [0, 0.5, 1.000001], counts: [epoch, 4 - epoch], binWeights: [1 / epoch, 0.5], cumulativeCounts: [10, 20], meanWeightPerBin: [1, 2] }),
    );
    compiles(ghmBinsSpec(recorder));
    compiles(ghmBinsSpec(recorder.toJSON(), { counts: 'cumulative', weights: 'mean' }));
    expect(ghmBinsSpec(recorder.rows())).toEqual(ghmBinsSpec(recorder));
    expect(() => ghmBinsSpec({} as never)).toThrow(/GHMStatsRecorder/);
  });
});
