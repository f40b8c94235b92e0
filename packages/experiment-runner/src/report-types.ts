import type { MetricsLine, RunConfig } from './run-folder';
import type { describeComparison, describeMeanCI, formatNumber, meanCI95, pairedComparison } from './stats';
import type { RunSummary, TrialSummary } from './summary';
import type { VegaLiteSpec } from './trial-context';

export interface ReportTable {
  columns: string[];
  rows: (string | number | boolean | null)[][];
  caption?: string;
}

export interface ReportFigure {
  /** File name stem under figures/ (letters, digits, '.', '_', '-'). */
  name: string;
  spec: VegaLiteSpec;
  caption?: string;
}

/** A section an experiment adds to its report; every string is escaped in the HTML. */
export interface ReportSection {
  title: string;
  /** Markdown (headings, lists, **bold**, `code`; raw HTML is shown as text). */
  markdown?: string;
  tables?: ReportTable[];
  figures?: ReportFigure[];
  /** Where it goes: under Results (default) or under Conclusions. */
  placement?: 'results' | 'conclusions';
}

export interface ReportContext {
  runDir: string;
  config: RunConfig;
  summary: RunSummary;
  trials: TrialSummary[];
  /** All metrics lines, ordered by trial then sequence. */
  metrics: MetricsLine[];
  metricsOf(trialId: string): MetricsLine[];
  /** Text of `trials/<id>/artifacts/<name>`, or undefined when missing. */
  readArtifact(trialId: string, name: string): string | undefined;
  stats: {
    meanCI95: typeof meanCI95;
    pairedComparison: typeof pairedComparison;
    describeComparison: typeof describeComparison;
    describeMeanCI: typeof describeMeanCI;
    formatNumber: typeof formatNumber;
  };
}
