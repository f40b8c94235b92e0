import { join } from 'node:path';
import { writeJsonAtomic } from './atomic-write';
import type { Params } from './define-experiment';
import {
  byTrialThenSeq,
  formatMetricsProblem,
  readMetricsForReport,
  readRunConfig,
  readTrialStatus,
  type IncompleteMetricsOptions,
  type MetricsLine,
  type MetricsProblem,
  type RunConfig,
  type TrialStatus,
  type TrialStatusName,
} from './run-folder';
import { meanCI95, pairedComparison, type MeanCI, type PairedComparison } from './stats';
import { RESERVED_METRIC_KEYS } from './trial-context';

export interface TrialSummary {
  id: string;
  variant: number;
  variantLabel: string;
  seed: number;
  fold?: number;
  status: TrialStatusName | 'pending';
  attempt: number;
  durationMs?: number;
  error?: { message: string; stack?: string };
  /**
   * The trial's final values: the row of its last logged epoch (every line logged with that epoch,
   * or with the last step when no line has an epoch), overlaid by lines logged without an epoch after
   * it; metrics only ever logged without an epoch (say test accuracy after training) keep their last
   * value. A per-epoch metric that is null or absent in the last epoch's row is absent here (shown as
   * "–"), not taken from an earlier epoch: see `lastLogged` for that.
   */
  final: Record<string, number>;
  /**
   * Last logged numeric value of every metric, whatever its epoch, with that epoch: for metrics logged
   * only at some epochs (probes). Not the final value when it comes from an earlier epoch.
   */
  lastLogged: Record<string, { value: number; epoch?: number }>;
  /** Best value of the primary metric and the epoch it was reached. */
  best?: { value: number; epoch?: number };
  /** How many numeric values of the primary metric the trial logged (a best of one value is just that value). */
  primaryLogged?: number;
  /**
   * Set when the trial's metrics lines are incomplete (damaged, missing or repeated lines; only with
   * `allowIncomplete`): what is wrong, by file and line. Its values come from the lines that could be read.
   */
  incomplete?: string[];
}

export interface VariantSummary {
  variant: number;
  label: string;
  params: Params;
  /** Completed trials (seeds × folds) that enter the statistics. */
  n: number;
  failed: number;
  /** Mean ± 95 % CI over seeds/folds of each metric's final value. */
  metrics: Record<string, MeanCI>;
  /** Mean ± 95 % CI of the primary metric's best value. */
  best?: MeanCI;
}

export interface VariantComparison {
  metric: string;
  a: number;
  b: number;
  aLabel: string;
  bLabel: string;
  /** Trials paired by seed and fold. */
  result: PairedComparison;
}

export interface RunSummary {
  id: string;
  experiment: string;
  primaryMetric?: { name: string; goal: 'max' | 'min' };
  trials: TrialSummary[];
  variants: VariantSummary[];
  /** Every variant against variant 0 (the baseline) on the primary metric's final value. */
  comparisons: VariantComparison[];
  counts: { total: number; completed: number; failed: number; pending: number };
  /**
   * What was wrong with metrics.jsonl (damaged lines, gaps, repeats), by file and line: present only
   * when there was something. Completed trials among them are marked `incomplete`; a summary with such
   * trials is only made with `allowIncomplete`.
   */
  metricsProblems?: MetricsProblem[];
}

/** Keys of a metrics line that are counters rather than metrics to summarise. */
const NOT_SUMMARISED = new Set<string>([...RESERVED_METRIC_KEYS, 'epoch', 'step']);

/**
 * The final values of `metric` of two sets of completed trials, paired by seed and fold (the same
 * repetition of two variants, or of one variant in two runs). Unmatched trials are left out.
 */
export function pairByRepetition(a: TrialSummary[], b: TrialSummary[], metric: string): { a: number[]; b: number[] } {
  const key = (t: TrialSummary) => `${t.seed}/${t.fold ?? ''}`;
  const usable = (t: TrialSummary) => t.status === 'completed' && metric in t.final;
  const partners = new Map(b.filter(usable).map((t) => [key(t), t]));
  const pairs = { a: [] as number[], b: [] as number[] };
  for (const t of a.filter(usable)) {
    const partner = partners.get(key(t));
    if (!partner) continue;
    pairs.a.push(t.final[metric]);
    pairs.b.push(partner.final[metric]);
  }
  return pairs;
}

export function variantName(config: RunConfig, variant: number): string {
  const label = config.trials.find((t) => t.variant === variant)?.variantLabel;
  return label ? label : `variant ${variant}`;
}

function primaryMetricOf(config: RunConfig, lines: MetricsLine[]): { name: string; goal: 'max' | 'min'; compare?: 'first-variant' | 'none' } | undefined {
  if (config.experiment.primaryMetric) return config.experiment.primaryMetric;
  for (const line of lines) {
    for (const [key, value] of Object.entries(line)) {
      if (NOT_SUMMARISED.has(key) || typeof value !== 'number') continue;
      return { name: key, goal: /loss|error|err$|mse|mae|rmse/i.test(key) ? 'min' : 'max' };
    }
  }
  return undefined;
}

/** Which counter indexes a trial's rows: `epoch` if any line has one, else `step`, else none. */
function rowKeyOf(lines: MetricsLine[]): 'epoch' | 'step' | undefined {
  if (lines.some((l) => typeof l.epoch === 'number')) return 'epoch';
  if (lines.some((l) => typeof l.step === 'number')) return 'step';
  return undefined;
}

/** `final` and `lastLogged` of one trial's lines (in logging order); see `TrialSummary`. */
export function finalValues(lines: MetricsLine[]): { final: Record<string, number>; lastLogged: Record<string, { value: number; epoch?: number }> } {
  const isMetric = (key: string) => !NOT_SUMMARISED.has(key);
  const numeric = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
  const lastLogged: Record<string, { value: number; epoch?: number }> = {};
  for (const line of lines) {
    for (const [key, value] of Object.entries(line)) {
      if (isMetric(key) && numeric(value)) lastLogged[key] = { value, ...(typeof line.epoch === 'number' ? { epoch: line.epoch } : {}) };
    }
  }
  const rowKey = rowKeyOf(lines);
  if (!rowKey) return { final: Object.fromEntries(Object.entries(lastLogged).map(([k, v]) => [k, v.value])), lastLogged };
  const keyed = (l: MetricsLine) => typeof l[rowKey] === 'number';
  let lastIndex = -1;
  lines.forEach((l, i) => {
    if (keyed(l)) lastIndex = i;
  });
  const lastRow = lines[lastIndex][rowKey];
  const perRow = new Set(lines.filter(keyed).flatMap((l) => Object.keys(l).filter(isMetric)));
  const final: Record<string, number> = {};
  // Trial-level metrics (never logged with the row counter): their last value.
  for (const line of lines) {
    if (keyed(line)) continue;
    for (const [key, value] of Object.entries(line)) if (isMetric(key) && !perRow.has(key) && numeric(value)) final[key] = value;
  }
  // The last row, then what was logged without a counter after it (it happened later).
  lines.forEach((line, i) => {
    if (keyed(line) ? line[rowKey] !== lastRow : i < lastIndex) return;
    for (const [key, value] of Object.entries(line)) {
      if (!isMetric(key)) continue;
      if (numeric(value)) final[key] = value;
      else delete final[key];
    }
  });
  return { final, lastLogged };
}

/**
 * Reads a run folder and computes per-trial finals, per-variant mean ± 95 % CI and paired comparisons.
 * Throws IncompleteMetricsError when a completed trial's metrics lines are incomplete (a damaged line
 * of metrics.jsonl, a gap or repeat in its seq numbers), unless `allowIncomplete`: then those trials are
 * summarised from the lines that could be read and marked `incomplete`. Every problem goes to `warn`.
 */
export function summarizeRun(runDir: string, options: IncompleteMetricsOptions = {}): RunSummary {
  return summarizeChecked(runDir, options, 'summary').summary;
}

/** `summarizeRun` and the metrics lines it used (sorted by trial, then seq), read once. */
export function summarizeChecked(runDir: string, options: IncompleteMetricsOptions, what: string): { summary: RunSummary; lines: MetricsLine[] } {
  const config = readRunConfig(runDir);
  const statuses = new Map<string, TrialStatus | undefined>(config.trials.map((t) => [t.id, readTrialStatus(runDir, t.id)]));
  const completedIds = new Set(config.trials.filter((t) => statuses.get(t.id)?.status === 'completed').map((t) => t.id));
  const checked = readMetricsForReport(runDir, completedIds, what, options);
  const lines = checked.lines.sort(byTrialThenSeq);
  const problemsOf = new Map<string, string[]>();
  for (const p of checked.problems) {
    for (const id of p.trial === undefined ? [...completedIds] : [p.trial]) {
      if (!problemsOf.has(id)) problemsOf.set(id, []);
      problemsOf.get(id)!.push(formatMetricsProblem(p));
    }
  }
  const primary = primaryMetricOf(config, lines);
  const byTrial = new Map<string, MetricsLine[]>();
  for (const line of lines) {
    if (!byTrial.has(line.trial)) byTrial.set(line.trial, []);
    byTrial.get(line.trial)!.push(line);
  }
  const trials: TrialSummary[] = config.trials.map((spec) => {
    const status = statuses.get(spec.id);
    const own = byTrial.get(spec.id) ?? [];
    const { final, lastLogged } = finalValues(own);
    let best: { value: number; epoch?: number } | undefined;
    let primaryLogged = 0;
    for (const line of own) {
      const value = primary ? line[primary.name] : undefined;
      if (!primary || typeof value !== 'number' || !Number.isFinite(value)) continue;
      primaryLogged++;
      if (!best || (primary.goal === 'max' ? value > best.value : value < best.value)) {
        best = { value, ...(typeof line.epoch === 'number' ? { epoch: line.epoch } : {}) };
      }
    }
    return {
      id: spec.id,
      variant: spec.variant,
      variantLabel: spec.variantLabel,
      seed: spec.seed,
      ...(spec.fold !== undefined ? { fold: spec.fold } : {}),
      status: status?.status ?? 'pending',
      attempt: status?.attempt ?? 0,
      ...(status?.durationMs !== undefined ? { durationMs: status.durationMs } : {}),
      ...(status?.error ? { error: status.error } : {}),
      final,
      lastLogged,
      ...(best ? { best, primaryLogged } : {}),
      ...(status?.status === 'completed' && problemsOf.has(spec.id) ? { incomplete: problemsOf.get(spec.id)! } : {}),
    };
  });

  const variantIds = [...new Set(config.trials.map((t) => t.variant))].sort((a, b) => a - b);
  const variants: VariantSummary[] = variantIds.map((variant) => {
    const members = trials.filter((t) => t.variant === variant);
    const done = members.filter((t) => t.status === 'completed');
    const metricNames = [...new Set(done.flatMap((t) => Object.keys(t.final)))];
    const metrics: Record<string, MeanCI> = {};
    for (const name of metricNames) {
      const values = done.map((t) => t.final[name]).filter((v): v is number => typeof v === 'number');
      if (values.length) metrics[name] = meanCI95(values);
    }
    const bests = done.map((t) => t.best?.value).filter((v): v is number => typeof v === 'number');
    return {
      variant,
      label: variantName(config, variant),
      params: config.trials.find((t) => t.variant === variant)!.params,
      n: done.length,
      failed: members.filter((t) => t.status === 'failed').length,
      metrics,
      ...(bests.length ? { best: meanCI95(bests) } : {}),
    };
  });

  const comparisons: VariantComparison[] = [];
  if (primary && primary.compare !== 'none') {
    const baseline = trials.filter((t) => t.variant === variantIds[0]);
    for (const variant of variantIds.slice(1)) {
      const { a, b } = pairByRepetition(trials.filter((t) => t.variant === variant), baseline, primary.name);
      if (a.length === 0) continue;
      comparisons.push({
        metric: primary.name,
        a: variant,
        b: variantIds[0],
        aLabel: variantName(config, variant),
        bLabel: variantName(config, variantIds[0]),
        result: pairedComparison(a, b, { seed: variant }),
      });
    }
  }

  const completed = trials.filter((t) => t.status === 'completed').length;
  const failed = trials.filter((t) => t.status === 'failed').length;
  const summary: RunSummary = {
    id: config.id,
    experiment: config.experiment.name,
    ...(primary ? { primaryMetric: primary } : {}),
    trials,
    variants,
    comparisons,
    counts: { total: trials.length, completed, failed, pending: trials.length - completed - failed },
    ...(checked.problems.length ? { metricsProblems: checked.problems } : {}),
  };
  return { summary, lines };
}

/** Writes summary.json (see `summarizeRun` for `allowIncomplete`). */
export function writeSummary(runDir: string, options: IncompleteMetricsOptions = {}): RunSummary {
  const summary = summarizeRun(runDir, options);
  writeJsonAtomic(join(runDir, 'summary.json'), summary);
  return summary;
}
