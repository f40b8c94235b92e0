import { readMetricsForReport, readRunConfig, readTrialStatus, type IncompleteMetricsOptions } from './run-folder';
import { RESERVED_METRIC_KEYS } from './trial-context';

/** RFC 4180 field: quoted when it holds a comma, quote or line break. */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Keys of a metrics line that have their own column before the metrics. */
const FIXED_COLUMNS = new Set<string>([...RESERVED_METRIC_KEYS, 'epoch']);

/**
 * All metrics of all trials of a run as one CSV: one row per logged line, with the trial's variant,
 * seed, fold and swept parameters as columns, then every metric (empty where a line lacks it).
 * Throws IncompleteMetricsError when a completed trial's lines are incomplete (a damaged line, a gap
 * or repeat in its seq numbers) unless `options.allowIncomplete`; every problem goes to `options.warn`.
 */
export function exportCsv(runDir: string, options: IncompleteMetricsOptions = {}): string {
  const config = readRunConfig(runDir);
  const trials = new Map(config.trials.map((t) => [t.id, t]));
  const order = new Map(config.trials.map((t, i) => [t.id, i]));
  const completed = new Set(config.trials.filter((t) => readTrialStatus(runDir, t.id)?.status === 'completed').map((t) => t.id));
  const lines = readMetricsForReport(runDir, completed, 'export', options).lines.sort((a, b) => (a.trial === b.trial ? a.seq - b.seq : (order.get(a.trial) ?? 0) - (order.get(b.trial) ?? 0)));
  const metricNames: string[] = [];
  for (const line of lines) {
    for (const key of Object.keys(line)) {
      if (!FIXED_COLUMNS.has(key) && !metricNames.includes(key)) metricNames.push(key);
    }
  }
  const paramNames = config.varied;
  const header = ['trial', 'variant', 'seed', 'fold', ...paramNames, 'seq', 'time', 'epoch', ...metricNames];
  const rows = lines.map((line) => {
    const spec = trials.get(line.trial);
    return [
      line.trial,
      spec?.variant,
      spec?.seed,
      spec?.fold,
      ...paramNames.map((p) => spec?.params[p]),
      line.seq,
      line.time,
      line.epoch,
      ...metricNames.map((m) => line[m]),
    ];
  });
  return [header, ...rows].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}
