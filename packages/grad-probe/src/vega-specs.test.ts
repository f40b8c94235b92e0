import { describe, expect, it } from 'vitest';
import { compile } from 'vega-lite';
import { cosineSimilarityMatrix } from './cosine-similarity';
import { GHMStatsRecorder } from './ghm-stats-recorder';
import { GNSTracker } from './gradient-noise-scale';
import { normHistogram } from './norm-histogram';
import { scheme } from 'vega-scale';
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


/** sRGB "rgb(r, g, b)" or "#rrggbb" → CIE L*a*b* (D65), textbook formulas (CIE 15:2004). */
function lab(color: string): [number, number, number] {
  const m = /^rgb\((\d+), ?(\d+), ?(\d+)\)$/.exec(color) ?? /^#(..)(..)(..)$/.exec(color);
  if (!m) throw new Error(`unparsed colour ${color}`);
  const [r, g, b] = m.slice(1, 4).map((c) => (color.startsWith('#') ? parseInt(c, 16) : Number(c)) / 255).map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  const xyz = [
    (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
    0.2126 * r + 0.7152 * g + 0.0722 * b,
    (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
  ].map((t) => (t > (6 / 29) ** 3 ? Math.cbrt(t) : t / (3 * (6 / 29) ** 2) + 4 / 29));
  return [116 * xyz[1] - 16, 500 * (xyz[0] - xyz[1]), 200 * (xyz[1] - xyz[2])];
}

/**
 * The colours Vega gives the bins of an ordinal colour scale compiled by Vega-Lite: a continuous
 * scheme sampled at i/(count + 1), i = 1…count (vega-scale quantizeInterpolator). Vega-Lite's
 * default ordinal range is the "blues" scheme.
 */
function ordinalBinColours(spec: VegaLiteSpec, count: number): string[] {
  const scales = (compile(spec as never).spec.scales ?? []) as { name: string; range?: unknown }[];
  const range = scales.find((sc) => sc.name === 'color')?.range as { scheme?: string } | string | undefined;
  const name = typeof range === 'object' && range?.scheme ? range.scheme : 'blues';
  const interpolate = scheme(name) as (t: number) => string;
  return Array.from({ length: count }, (_, i) => interpolate((i + 1) / (count + 1)));
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

  it('ghmBinsSpec colours 10 bins in order with clearly different adjacent colours, legend labelled by g range', () => {
    const bins = 10;
    const edges = Array.from({ length: bins + 1 }, (_, i) => i / bins + (i === bins ? 1e-6 : 0));
    const recorder = new GHMStatsRecorder();
    [1, 2].forEach((epoch) => recorder.record(epoch, { edges, counts: Array.from({ length: bins }, (_, i) => i + epoch), binWeights: Array(bins).fill(1) }));
    const spec = ghmBinsSpec(recorder);
    compiles(spec);
    const colours = ordinalBinColours(spec, bins).map(lab);
    const deltaE = colours.slice(1).map((c, i) => Math.hypot(c[0] - colours[i][0], c[1] - colours[i][1], c[2] - colours[i][2]));
    // ΔE*ab ≈ 2.3 is a just-noticeable difference; the former single-hue blues gave adjacent bins
    // ΔE 5.3–8.8 (measured), shades hard to tell apart in thin lines; turbo gives 21–60.
    expect(Math.min(...deltaE)).toBeGreaterThan(12);
    const color = ((spec.vconcat as { encoding: { color: Record<string, unknown> } }[])[0].encoding.color);
    expect(color).toMatchObject({ field: 'bin', type: 'ordinal', title: 'bin: g range' });
    const labelExpr = (color.legend as { labelExpr: string }).labelExpr;
    expect(labelExpr).toContain('"0":"0: [0.00, 0.10)"');
    expect(labelExpr).toContain('"9":"9: [0.90, 1.00)"');
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
