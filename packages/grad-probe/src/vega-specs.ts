import type { CosineSimilarityResult } from './cosine-similarity';
import { ghmRows, type GHMBinRow, type GHMStatsRecorder, type GHMStatsRecorderJSON } from './ghm-stats-recorder';
import type { GNSHistoryEntry, GNSTrackerJSON } from './gradient-noise-scale';
import type { NormHistogram } from './norm-histogram';
import type { TsneEmbedding } from './tsne-embedding';

/** A Vega-Lite specification as plain JSON (rendering is left to the caller). */
export type VegaLiteSpec = Record<string, unknown>;

export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

interface CommonOptions {
  title?: string;
  width?: number;
  height?: number;
}

function base(options: CommonOptions, defaultTitle: string): VegaLiteSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title ?? defaultTitle,
  };
}

function size(options: CommonOptions, width: number, height: number): { width: number; height: number } {
  return { width: options.width ?? width, height: options.height ?? height };
}

export interface GNSPoint {
  epoch: number;
  bSimple: number | null;
  /** 95 % interval of B_simple; null high means unbounded. */
  low?: number | null;
  high?: number | null;
  /** B_simple from the EMAs of numerator and denominator. */
  ema?: number | null;
}

function gnsPoints(input: readonly GNSPoint[] | readonly GNSHistoryEntry[] | GNSTrackerJSON): GNSPoint[] {
  const list: readonly (GNSPoint | GNSHistoryEntry)[] = Array.isArray(input) ? input : (input as GNSTrackerJSON)?.history;
  if (!Array.isArray(list)) throw new Error('grad-probe gnsVsEpochSpec: expected GNS points, tracker history entries or GNSTracker.toJSON()');
  return list.map((p, i) => {
    if ('step' in p) {
      return { epoch: p.step, bSimple: p.bSimple, low: p.bSimpleLow, high: p.bSimpleHigh, ema: p.bSimpleEma };
    }
    if (!Number.isFinite((p as GNSPoint).epoch)) throw new Error(`grad-probe gnsVsEpochSpec: point ${i} has no finite epoch`);
    return p as GNSPoint;
  });
}

/**
 * B_simple per probed epoch with its bootstrap 95 % band and the EMA ratio; epochs whose |G|²
 * estimate was ≤ 0 (B_simple undefined) are marked by a dashed vertical rule, and a band without
 * upper bound reaches the top of the plotted values (`unboundedHigh` in the data). The y axis is
 * logarithmic when every plotted value is positive.
 */
export function gnsVsEpochSpec(
  input: readonly GNSPoint[] | readonly GNSHistoryEntry[] | GNSTrackerJSON,
  options: CommonOptions & { yScale?: 'log' | 'linear' } = {},
): VegaLiteSpec {
  const points = gnsPoints(input);
  const finite = points.flatMap((p) => [p.bSimple, p.low, p.high, p.ema]).filter((x): x is number => x != null);
  // An interval unbounded above (null high = +∞) is drawn up to the largest finite value plotted,
  // so the band still shows where the estimate is uncertain; `high` itself stays null.
  const cap = finite.length > 0 ? Math.max(...finite) : null;
  const values = points.map((p) => ({
    epoch: p.epoch,
    bSimple: p.bSimple ?? null,
    low: p.low ?? null,
    high: p.high ?? null,
    bandHigh: p.low == null ? null : (p.high ?? cap),
    unboundedHigh: p.low != null && p.high == null,
    ema: p.ema ?? null,
    undefinedRatio: p.bSimple == null,
  }));
  const yScale = options.yScale ?? (finite.length > 0 && finite.every((x) => x > 0) ? 'log' : 'linear');
  const y = { type: 'quantitative', title: 'B_simple = tr(Σ)/|G|² (dimensionless)', scale: { type: yScale } };
  return {
    ...base(options, 'Gradient noise scale vs epoch'),
    ...size(options, 480, 280),
    data: { values },
    encoding: { x: { field: 'epoch', type: 'quantitative', title: 'epoch' } },
    layer: [
      {
        transform: [{ filter: 'isValid(datum.low) && isValid(datum.bandHigh)' }],
        mark: { type: 'area', opacity: 0.2, color: '#4c78a8' },
        encoding: { y: { field: 'low', ...y }, y2: { field: 'bandHigh' } },
      },
      {
        transform: [{ filter: 'isValid(datum.bSimple)' }],
        mark: { type: 'line', point: true },
        encoding: {
          y: { field: 'bSimple', ...y },
          color: { datum: 'estimate (bootstrap 95 % band)' },
          tooltip: [
            { field: 'epoch', type: 'quantitative' },
            { field: 'bSimple', type: 'quantitative', format: '.4g' },
            { field: 'low', type: 'quantitative', format: '.4g' },
            { field: 'high', type: 'quantitative', format: '.4g' },
          ],
        },
      },
      {
        transform: [{ filter: 'isValid(datum.ema)' }],
        mark: { type: 'line', strokeDash: [6, 3] },
        encoding: { y: { field: 'ema', ...y }, color: { datum: 'EMA ratio' } },
      },
      {
        transform: [{ filter: 'datum.undefinedRatio' }],
        mark: { type: 'rule', strokeDash: [2, 2], color: '#e45756' },
        encoding: { tooltip: [{ field: 'epoch', type: 'quantitative', title: '|G|² ≤ 0 at epoch' }] },
      },
    ],
  };
}

export interface TsneScatterGroup {
  embedding: Pick<TsneEmbedding, 'points'> & Partial<TsneEmbedding>;
  /** The probed epoch this map belongs to. */
  epoch?: number;
  /** One label per point (e.g. the angle of the batch or sample). */
  labels?: readonly (string | number)[];
}

/**
 * t-SNE scatter of gradient directions. Colour by `batch` (point index), `epoch` or `label`.
 * Several groups (probed epochs) are faceted by epoch with independent axes (t-SNE coordinates of
 * different runs are not comparable), unless colouring by epoch, which overlays them.
 */
export function tsneScatterSpec(
  groups: TsneScatterGroup | readonly TsneScatterGroup[],
  options: CommonOptions & { colorBy?: 'batch' | 'epoch' | 'label'; columns?: number } = {},
): VegaLiteSpec {
  const list = Array.isArray(groups) ? (groups as readonly TsneScatterGroup[]) : [groups as TsneScatterGroup];
  const colorBy = options.colorBy ?? 'batch';
  const values = list.flatMap((group, g) => {
    if (!Array.isArray(group?.embedding?.points)) throw new Error(`grad-probe tsneScatterSpec: group ${g} has no embedding.points`);
    if (group.labels && group.labels.length !== group.embedding.points.length) {
      throw new Error(`grad-probe tsneScatterSpec: group ${g} has ${group.labels.length} labels for ${group.embedding.points.length} points`);
    }
    return group.embedding.points.map(([x, y], i) => ({
      x,
      y,
      batch: i,
      epoch: group.epoch ?? g,
      label: group.labels?.[i] ?? null,
      trustworthiness: group.embedding.trustworthiness ?? null,
      perplexity: group.embedding.perplexityUsed ?? null,
    }));
  });
  if (colorBy === 'label' && values.some((v) => v.label === null)) {
    throw new Error("grad-probe tsneScatterSpec: colorBy 'label' needs labels for every group");
  }
  const colorType = colorBy === 'epoch' ? 'ordinal' : 'nominal';
  const layerSpec = {
    ...size(options, 260, 260),
    mark: { type: 'point', filled: true, size: 70 },
    encoding: {
      x: { field: 'x', type: 'quantitative', axis: { title: 't-SNE 1' } },
      y: { field: 'y', type: 'quantitative', axis: { title: 't-SNE 2' } },
      color: { field: colorBy, type: colorType },
      tooltip: [
        { field: 'batch', type: 'quantitative' },
        { field: 'epoch', type: 'quantitative' },
        { field: 'label', type: 'nominal' },
        { field: 'trustworthiness', type: 'quantitative', format: '.3f' },
        { field: 'perplexity', type: 'quantitative', format: '.2f' },
      ],
    },
  };
  const defaultTitle =
    list.length === 1 && list[0].embedding.trustworthiness != null
      ? `t-SNE of gradient directions (trustworthiness ${list[0].embedding.trustworthiness.toFixed(3)})`
      : 't-SNE of gradient directions';
  if (list.length > 1 && colorBy !== 'epoch') {
    return {
      ...base(options, defaultTitle),
      data: { values },
      facet: { field: 'epoch', type: 'ordinal', title: 'epoch' },
      columns: options.columns ?? 3,
      spec: layerSpec,
      resolve: { scale: { x: 'independent', y: 'independent' } },
    };
  }
  return { ...base(options, defaultTitle), data: { values }, ...layerSpec };
}

/** Heat map of a cosine-similarity matrix on a fixed diverging scale [−1, 1]. */
export function cosineHeatmapSpec(
  input: CosineSimilarityResult | readonly (readonly number[])[],
  options: CommonOptions & { labels?: readonly (string | number)[] } = {},
): VegaLiteSpec {
  const matrix: readonly (readonly number[])[] = Array.isArray(input) ? (input as readonly (readonly number[])[]) : (input as CosineSimilarityResult)?.matrix;
  if (matrix == null || typeof matrix.every !== 'function' || !matrix.every((row): boolean => Array.isArray(row) && row.length === matrix.length)) {
    throw new Error('grad-probe cosineHeatmapSpec: expected a square matrix or a cosineSimilarityMatrix result');
  }
  const labels = options.labels ?? matrix.map((_, i) => i);
  if (labels.length !== matrix.length) throw new Error(`grad-probe cosineHeatmapSpec: ${labels.length} labels for ${matrix.length} rows`);
  const order = labels.map(String);
  const values = matrix.flatMap((row, i) => row.map((cosine, j) => ({ row: String(labels[i]), col: String(labels[j]), cosine })));
  return {
    ...base(options, 'Cosine similarity between gradients'),
    ...size(options, 320, 320),
    data: { values },
    mark: 'rect',
    encoding: {
      x: { field: 'col', type: 'ordinal', sort: order, title: null },
      y: { field: 'row', type: 'ordinal', sort: order, title: null },
      color: { field: 'cosine', type: 'quantitative', scale: { scheme: 'redblue', domain: [-1, 1], reverse: true } },
      tooltip: [
        { field: 'row', type: 'nominal' },
        { field: 'col', type: 'nominal' },
        { field: 'cosine', type: 'quantitative', format: '.3f' },
      ],
    },
  };
}

/**
 * Bar histogram of gradient norms. Several histograms (one per probed epoch) are faceted in rows.
 */
export function normHistogramSpec(
  input: NormHistogram | readonly { epoch: number; histogram: NormHistogram }[],
  options: CommonOptions & { xTitle?: string } = {},
): VegaLiteSpec {
  const groups = Array.isArray(input) ? (input as readonly { epoch: number; histogram: NormHistogram }[]) : [{ epoch: null, histogram: input as NormHistogram }];
  const values = groups.flatMap(({ epoch, histogram }, g) => {
    if (!Array.isArray(histogram?.edges) || !Array.isArray(histogram?.counts) || histogram.edges.length !== histogram.counts.length + 1) {
      throw new Error(`grad-probe normHistogramSpec: histogram ${g} must have edges.length = counts.length + 1`);
    }
    return histogram.counts.map((count, i) => ({ epoch, binStart: histogram.edges[i], binEnd: histogram.edges[i + 1], count }));
  });
  const layer = {
    ...size(options, 420, groups.length > 1 ? 120 : 240),
    mark: 'bar',
    encoding: {
      x: { field: 'binStart', type: 'quantitative', bin: { binned: true }, title: options.xTitle ?? 'per-sample gradient norm' },
      x2: { field: 'binEnd' },
      y: { field: 'count', type: 'quantitative', title: 'samples' },
      tooltip: [
        { field: 'binStart', type: 'quantitative', format: '.4g' },
        { field: 'binEnd', type: 'quantitative', format: '.4g' },
        { field: 'count', type: 'quantitative' },
      ],
    },
  };
  if (groups.length > 1) {
    return {
      ...base(options, 'Gradient norm histograms'),
      data: { values },
      facet: { row: { field: 'epoch', type: 'ordinal', title: 'epoch' } },
      spec: layer,
    };
  }
  return { ...base(options, 'Gradient norm histogram'), data: { values }, ...layer };
}

/**
 * GHM bin counts (top) and bin weights (bottom) over epochs, one line per bin, coloured in bin order
 * (turbo: blue = small g … red = large g). By default the latest-batch `count` and `weight`; pass
 * `counts: 'cumulative'` / `weights: 'mean'` to plot the per-epoch totals (`cumulativeCounts`,
 * `meanWeightPerBin` of ghm-loss stats()).
 */
export function ghmBinsSpec(
  input: GHMStatsRecorder | GHMStatsRecorderJSON | readonly GHMBinRow[],
  options: CommonOptions & { counts?: 'latest' | 'cumulative'; weights?: 'latest' | 'mean' } = {},
): VegaLiteSpec {
  let rows: readonly GHMBinRow[];
  if (Array.isArray(input)) rows = input as readonly GHMBinRow[];
  else if (typeof (input as GHMStatsRecorder)?.rows === 'function') rows = (input as GHMStatsRecorder).rows();
  else if (Array.isArray((input as GHMStatsRecorderJSON)?.records)) {
    rows = (input as GHMStatsRecorderJSON).records.flatMap(({ epoch, stats }) => ghmRows(epoch, stats));
  } else throw new Error('grad-probe ghmBinsSpec: expected a GHMStatsRecorder, its toJSON() or its rows()');
  const countField = options.counts === 'cumulative' ? 'cumulativeCount' : 'count';
  const weightField = options.weights === 'mean' ? 'meanWeight' : 'weight';
  const values = rows.map((r) => ({ ...r, binRange: `[${r.binStart.toFixed(2)}, ${r.binEnd.toFixed(2)})` }));
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch' };
  // Vega-Lite's default for an ordinal colour is one sequential blue, whose neighbouring shades are
  // indistinguishable at ~10 bins; turbo keeps the bin order (blue → red = small → large g) and
  // changes hue between adjacent bins. The legend names each bin with its g range when every
  // epoch used the same edges (ghm-loss edges are fixed per loss).
  const ranges = new Map<number, string>();
  let sameEdges = true;
  for (const v of values) {
    const seen = ranges.get(v.bin);
    if (seen === undefined) ranges.set(v.bin, v.binRange);
    else if (seen !== v.binRange) sameEdges = false;
  }
  const legendLabels = sameEdges && ranges.size > 0 ? Object.fromEntries([...ranges].map(([bin, range]) => [bin, `${bin}: ${range}`])) : null;
  const color = {
    field: 'bin',
    type: 'ordinal',
    title: legendLabels ? 'bin: g range' : 'bin',
    scale: { scheme: 'turbo' },
    legend: {
      symbolType: 'stroke',
      symbolStrokeWidth: 3,
      ...(legendLabels ? { labelExpr: `${JSON.stringify(legendLabels)}[datum.value] || datum.label` } : {}),
    },
  };
  const tooltip = [
    { field: 'epoch', type: 'quantitative' },
    { field: 'binRange', type: 'nominal', title: 'g range' },
    { field: countField, type: 'quantitative' },
    { field: weightField, type: 'quantitative', format: '.4g' },
  ];
  const panel = size(options, 420, 200);
  return {
    ...base(options, 'GHM gradient-norm bins over epochs'),
    data: { values },
    vconcat: [
      {
        ...panel,
        transform: [{ filter: `isValid(datum.${countField})` }],
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: countField, type: 'quantitative', title: countField === 'count' ? 'samples in bin (last batch)' : 'samples in bin (epoch)' }, color, tooltip },
      },
      {
        ...panel,
        transform: [{ filter: `isValid(datum.${weightField})` }],
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: weightField, type: 'quantitative', title: weightField === 'weight' ? 'GHM bin weight (last batch)' : 'mean GHM weight (epoch)' }, color, tooltip },
      },
    ],
  };
}
