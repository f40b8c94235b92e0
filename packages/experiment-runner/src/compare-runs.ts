import { readRunConfig, type IncompleteMetricsOptions } from './run-folder';
import { formatNumber, formatP, pairedComparison, describeMeanCI, type MeanCI, type PairedComparison } from './stats';
import { pairByRepetition, summarizeRun } from './summary';
import { InputError } from './input-error';

export interface CompareRow {
  run: string;
  variant: string;
  n: number;
  value: MeanCI | undefined;
}

export interface CrossRunComparison {
  variant: string;
  /** Later run minus first run, trials paired by seed and fold. */
  a: string;
  b: string;
  result: PairedComparison;
}

export interface RunComparison {
  metric: string;
  rows: CompareRow[];
  comparisons: CrossRunComparison[];
}

/**
 * Compares runs on one metric (default: the first run's primary metric): each variant's final value
 * per run, and for variants present in two runs a paired comparison of the later run against the first.
 * A run with a completed trial whose metrics lines are incomplete is refused unless `allowIncomplete`
 * (see `summarizeRun`).
 */
export function compareRuns(runDirs: string[], options: { metric?: string } & IncompleteMetricsOptions = {}): RunComparison {
  if (runDirs.length === 0) throw new InputError('compareRuns: expected at least one run folder');
  const { metric: _metric, ...checks } = options;
  const summaries = runDirs.map((dir) => ({ dir, config: readRunConfig(dir), summary: summarizeRun(dir, checks) }));
  const metric = options.metric ?? summaries[0].summary.primaryMetric?.name;
  if (!metric) throw new InputError(`compareRuns: ${runDirs[0]} logged no numeric metric; pass a metric name`);
  const logged = new Set(summaries.flatMap(({ summary }) => summary.trials.flatMap((t) => [...Object.keys(t.final), ...Object.keys(t.lastLogged ?? {})])));
  if (!logged.has(metric)) throw new InputError(`compareRuns: metric "${metric}" was not logged by these runs (found: ${[...logged].join(', ') || 'none'})`);
  const rows: CompareRow[] = [];
  for (const { config, summary } of summaries) {
    for (const v of summary.variants) rows.push({ run: config.id, variant: v.label, n: v.n, value: v.metrics[metric] });
  }
  const comparisons: CrossRunComparison[] = [];
  const [first, ...rest] = summaries;
  for (const other of rest) {
    for (const v of other.summary.variants) {
      const base = first.summary.variants.find((x) => x.label === v.label);
      if (!base) continue;
      const { a, b } = pairByRepetition(
        other.summary.trials.filter((t) => t.variant === v.variant),
        first.summary.trials.filter((t) => t.variant === base.variant),
        metric,
      );
      if (a.length) comparisons.push({ variant: v.label, a: other.config.id, b: first.config.id, result: pairedComparison(a, b) });
    }
  }
  return { metric, rows, comparisons };
}

/** Plain-text tables for the terminal. */
export function formatRunComparison(comparison: RunComparison): string {
  const lines = [`${comparison.metric} (final value: the last epoch's, mean ± 95 % CI half-width)`, ''];
  for (const row of comparison.rows) lines.push(`  ${row.run}  ${row.variant || '(single variant)'}: ${row.value ? describeMeanCI(row.value) : `– (n = ${row.n})`}`);
  if (comparison.comparisons.length) {
    lines.push('', 'paired by seed/fold, later run − first run:');
    for (const c of comparison.comparisons) {
      const r = c.result;
      if (r.allDifferencesEqual) {
        lines.push(`  ${c.variant || '(single variant)'}: all ${r.n} paired differences are equal (d = ${formatNumber(r.diff)}): no test possible, n = ${r.n}`);
        continue;
      }
      lines.push(
        `  ${c.variant || '(single variant)'}: ${formatNumber(r.diff)}${r.ci95 ? ` (95 % CI ${formatNumber(r.ci95[0])} to ${formatNumber(r.ci95[1])})` : ''}, t-test ${r.tTest ? formatP(r.tTest.p) : 'p = –'}, Wilcoxon ${r.wilcoxon ? formatP(r.wilcoxon.p) : 'p = –'}, n = ${r.n}`,
      );
    }
  }
  return lines.join('\n');
}
