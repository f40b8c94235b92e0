/**
 * Shared pieces of the experiments' reports: trials joined with their parameters, groups summarised
 * as mean ± 95 % CI, paired comparisons by seed and fold, and the Vega-Lite figures the reports use.
 */
import {
  describeComparison,
  describeMeanCI,
  formatNumber,
  formatP,
  meanCI95,
  pairedComparison,
  type MeanCI,
  type PairedComparison,
  type ReportContext,
  type ReportTable,
  type VegaLiteSpec,
} from '@lab/experiment-runner';

export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** A completed trial with its parameters and final metric values. */
export interface TrialRow {
  id: string;
  variant: number;
  label: string;
  seed: number;
  fold?: number;
  params: Record<string, unknown>;
  final: Record<string, number>;
}

export function completedTrials(ctx: Pick<ReportContext, 'config' | 'trials'>): TrialRow[] {
  const specs = new Map(ctx.config.trials.map((t) => [t.id, t]));
  return ctx.trials
    .filter((t) => t.status === 'completed')
    .map((t) => ({
      id: t.id,
      variant: t.variant,
      label: t.variantLabel,
      seed: t.seed,
      ...(t.fold !== undefined ? { fold: t.fold } : {}),
      params: specs.get(t.id)?.params ?? {},
      final: t.final,
    }));
}

export function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

export function pairKey(row: Pick<TrialRow, 'seed' | 'fold'>): string {
  return `${row.seed}/${row.fold ?? ''}`;
}

/** Values of `metric` for the rows that have it. */
export function valuesOf(rows: readonly TrialRow[], metric: string): number[] {
  return rows.map((r) => r.final[metric]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

export function meanCIOf(rows: readonly TrialRow[], metric: string): MeanCI | undefined {
  const values = valuesOf(rows, metric);
  return values.length ? meanCI95(values) : undefined;
}

export function ciText(ci: MeanCI | undefined): string {
  return ci ? describeMeanCI(ci) : '–';
}

export function meanText(rows: readonly TrialRow[], metric: string): string {
  const values = valuesOf(rows, metric);
  return values.length ? formatNumber(values.reduce((s, v) => s + v, 0) / values.length) : '–';
}

/** Pairs rows of a and b with the same key (default: seed and fold) that both have `metric`. */
export function pairUp(
  a: readonly TrialRow[],
  b: readonly TrialRow[],
  metric: string,
  key: (row: TrialRow) => string = pairKey,
): { a: number[]; b: number[] } {
  const byKey = new Map(b.map((row) => [key(row), row]));
  const out = { a: [] as number[], b: [] as number[] };
  for (const row of a) {
    const other = byKey.get(key(row));
    if (!other) continue;
    const x = row.final[metric];
    const y = other.final[metric];
    if (Number.isFinite(x) && Number.isFinite(y)) {
      out.a.push(x);
      out.b.push(y);
    }
  }
  return out;
}

export interface Comparison {
  labelA: string;
  labelB: string;
  metric: string;
  result: PairedComparison;
}

export function compare(
  a: readonly TrialRow[],
  b: readonly TrialRow[],
  labels: { a: string; b: string; metric: string },
  key?: (row: TrialRow) => string,
): Comparison | undefined {
  const pairs = pairUp(a, b, labels.metric, key);
  if (pairs.a.length === 0) return undefined;
  return { labelA: labels.a, labelB: labels.b, metric: labels.metric, result: pairedComparison(pairs.a, pairs.b, { seed: 7 }) };
}

/**
 * Fewer than 3 pairs, or differences that are all equal: the t-test's p is then meaningless (with
 * zero spread it is 0 or 1 whatever the effect), so no verdict of significance is drawn.
 */
export function isDegenerate(c: Comparison): boolean {
  return c.result.n < 3 || (c.result.ci95 !== null && c.result.ci95[0] === c.result.ci95[1]);
}

export function comparisonSentence(c: Comparison): string {
  const sentence = describeComparison(c.result, { a: c.labelA, b: c.labelB, metric: c.metric });
  const claimsSignificance = c.result.tTest !== null && c.result.tTest.p < ALPHA;
  return claimsSignificance && isDegenerate(c)
    ? `${sentence} With ${c.result.n} pairs${c.result.n >= 3 ? ' whose differences are all equal' : ''} this t-test is degenerate, so the difference is not treated as significant.`
    : sentence;
}

/** Significance level of every verdict in the reports (paired t-test, as the runner's sentences use). */
export const ALPHA = 0.05;

export function isSignificant(c: Comparison): boolean {
  return !isDegenerate(c) && c.result.tTest !== null && c.result.tTest.p < ALPHA;
}

/** One row per comparison: the numbers behind `comparisonSentence`. */
export function comparisonTable(comparisons: readonly Comparison[], caption: string): ReportTable {
  return {
    columns: ['comparison', 'n pairs', 'mean A', 'mean B', 'difference A − B', '95 % CI', 'paired t-test', 'Wilcoxon signed-rank', 'significant at 5 %'],
    rows: comparisons.map((c) => [
      `${c.labelA} − ${c.labelB}`,
      c.result.n,
      formatNumber(c.result.meanA),
      formatNumber(c.result.meanB),
      formatNumber(c.result.diff),
      c.result.ci95 ? `${formatNumber(c.result.ci95[0])} to ${formatNumber(c.result.ci95[1])}` : '–',
      c.result.tTest ? formatP(c.result.tTest.p) : '–',
      c.result.wilcoxon ? `${formatP(c.result.wilcoxon.p)}${c.result.wilcoxon.exact ? ' (exact)' : ''}` : '–',
      c.result.tTest ? (isSignificant(c) ? 'yes' : isDegenerate(c) ? 'no (too few pairs)' : 'no') : 'not testable',
    ]),
    caption,
  };
}

export function percent(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(digits)} %`;
}

export function angleLabel(angleDeg: number): string {
  return `deg${String(angleDeg).padStart(3, '0')}`;
}

/** Elementwise mean of matrices, skipping null entries (null where every matrix is null). */
export function meanMatrix(matrices: readonly (readonly (number | null)[])[][]): (number | null)[][] {
  if (matrices.length === 0) return [];
  return matrices[0].map((row, i) =>
    row.map((_, j) => {
      const values = matrices.map((m) => m[i][j]).filter((v): v is number => v !== null && Number.isFinite(v));
      return values.length ? values.reduce((s, v) => s + v, 0) / values.length : null;
    }),
  );
}

export function sumMatrix(matrices: readonly (readonly number[])[][]): number[][] {
  if (matrices.length === 0) return [];
  return matrices[0].map((row, i) => row.map((_, j) => matrices.reduce((s, m) => s + m[i][j], 0)));
}

// ---------------------------------------------------------------- figures

export interface BarPoint {
  group: string;
  series: string;
  mean: number;
  lo: number;
  hi: number;
}

/** Grouped bars (x = group, one bar per series) with 95 % CI whiskers. */
export function groupedBarSpec(points: readonly BarPoint[], options: { title: string; yTitle: string; xTitle: string }): VegaLiteSpec {
  const x = { field: 'group', type: 'nominal', title: options.xTitle, sort: null };
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title,
    width: Math.max(240, 90 * unique(points.map((p) => p.group)).length),
    height: 240,
    data: { values: points },
    encoding: { x, xOffset: { field: 'series', type: 'nominal', sort: null }, color: { field: 'series', type: 'nominal', title: null, sort: null } },
    layer: [
      { mark: 'bar', encoding: { y: { field: 'mean', type: 'quantitative', title: options.yTitle } } },
      { mark: { type: 'rule', color: 'black' }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
    ],
  };
}

/** Per-epoch curves: mean line and standard-error band over the trials of each series. */
export function curveSpec(values: readonly { epoch: number; value: number; series: string }[], options: { title: string; yTitle: string }): VegaLiteSpec {
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch' };
  const color = { field: 'series', type: 'nominal', title: null };
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title,
    width: 480,
    height: 260,
    data: { values },
    layer: [
      { mark: { type: 'errorband', extent: 'stderr' }, encoding: { x, y: { field: 'value', type: 'quantitative', title: options.yTitle }, color } },
      { mark: 'line', encoding: { x, y: { aggregate: 'mean', field: 'value', type: 'quantitative', title: options.yTitle }, color } },
    ],
  };
}

export interface MatrixCell {
  panel: string;
  row: string;
  col: string;
  value: number | null;
  text: string;
}

/** Heat maps (one panel per `panel`, rows × columns) with the cell text printed in each cell. */
export function heatmapSpec(
  cells: readonly MatrixCell[],
  options: { title: string; rowTitle: string; colTitle: string; valueTitle: string; domain?: [number, number]; columns?: number; cellSize?: number },
): VegaLiteSpec {
  const panels = unique(cells.map((c) => c.panel));
  const rows = unique(cells.map((c) => c.row));
  const cols = unique(cells.map((c) => c.col));
  const cell = options.cellSize ?? 36;
  const inner = {
    width: cell * cols.length,
    height: cell * rows.length,
    encoding: {
      x: { field: 'col', type: 'ordinal', title: options.colTitle, sort: cols },
      y: { field: 'row', type: 'ordinal', title: options.rowTitle, sort: rows },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: { field: 'value', type: 'quantitative', title: options.valueTitle, scale: { scheme: 'viridis', ...(options.domain ? { domain: options.domain } : {}) } },
        },
      },
      {
        mark: { type: 'text', fontSize: cell >= 44 ? 10 : 9 },
        encoding: {
          text: { field: 'text', type: 'nominal' },
          color: { condition: { test: `datum.value !== null && datum.value > ${options.domain ? (options.domain[0] + options.domain[1]) / 2 : 0.5}`, value: 'black' }, value: 'white' },
        },
      },
    ],
  };
  if (panels.length <= 1) return { $schema: VEGA_LITE_SCHEMA, title: options.title, data: { values: cells }, ...inner };
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title,
    data: { values: cells },
    facet: { field: 'panel', type: 'nominal', title: null, sort: panels },
    columns: options.columns ?? 3,
    spec: inner,
  };
}

/** Per-epoch lines of one quantity, one line per series, optional band [lo, hi]. */
export function seriesLineSpec(
  values: readonly { epoch: number; value: number | null; lo?: number | null; hi?: number | null; series: string }[],
  options: { title: string; yTitle: string; log?: boolean },
): VegaLiteSpec {
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch' };
  const scale = options.log ? { type: 'log' } : {};
  const color = { field: 'series', type: 'nominal', title: null };
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: options.title,
    width: 480,
    height: 260,
    data: { values },
    layer: [
      {
        transform: [{ filter: 'isValid(datum.lo) && isValid(datum.hi)' }],
        mark: { type: 'area', opacity: 0.15 },
        encoding: { x, y: { field: 'lo', type: 'quantitative', scale }, y2: { field: 'hi' }, color },
      },
      {
        transform: [{ filter: 'isValid(datum.value)' }],
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'value', type: 'quantitative', title: options.yTitle, scale }, color },
      },
    ],
  };
}
