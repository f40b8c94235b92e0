export { writeFileAtomic, writeJsonAtomic, appendLine } from './atomic-write';
export { selectBackend, BACKEND_PREFERENCES } from './backend';
export type { BackendName, BackendPreference, BackendSelection, SelectBackendOptions, WebGpuAdapter, WebGpuOptions } from './backend';
export { compareRuns, formatRunComparison } from './compare-runs';
export type { CompareRow, CrossRunComparison, RunComparison } from './compare-runs';
export { defineExperiment, isExperiment, schemaFromDefaults, resolveSeeds } from './define-experiment';
export type { Experiment, ExperimentDefinition, Params, PrimaryMetric, SweepSpec, TrialFunction } from './define-experiment';
export { ChildProcessExecutor, InProcessExecutor } from './executor';
export type { Executor, GroupMember, TrialEvents, TrialJob, TrialOutcome } from './executor';
export { exportCsv } from './export-csv';
export { renderVegaLite } from './figures';
export { abortOnSignals, EXIT, exitCodeFor, formatTrialFailures, trialFailures } from './exit-codes';
export {
  checkFileOption,
  checkFolderOption,
  checkWritableFileOption,
  checkWritableFolderOption,
  describeFileError,
  glueNegativeOptionValues,
  InputError,
} from './input-error';
export type { RenderedFigure } from './figures';
export { escapeHtml, escapeMarkdown, markdownToHtml } from './html';
export { loadExperiment, loadExperiments } from './load-experiment';
export { loadConfigFile, mergeOverrides, parseSetArgs, planRun } from './plan';
export type { RunOverrides, RunPlan, TrialSpec } from './plan';
export { createProgress, PlainProgress, SilentProgress, TtyProgress } from './progress';
export type { ProgressMode, ProgressReporter } from './progress';
export { buildReport } from './report';
export type { ReportResult } from './report';
export type { ReportContext, ReportFigure, ReportSection, ReportTable } from './report-types';
export {
  createRunDir,
  formatMetricsProblem,
  formatRunListing,
  IncompleteMetricsError,
  listRuns,
  readMetrics,
  readMetricsChecked,
  readRunConfig,
  readRunState,
  readTrialStatus,
} from './run-folder';
export type {
  CheckedMetrics,
  IncompleteMetricsOptions,
  MetricsLine,
  MetricsProblem,
  RunConfig,
  RunListing,
  RunState,
  RunStatus,
  TrialStatus,
} from './run-folder';
export { resumeRun, runExperiment } from './run-experiment';
export type { ExecuteOptions, RunOptions } from './run-experiment';
export {
  describeComparison,
  describeMeanCI,
  formatMeanCI,
  formatNumber,
  formatP,
  meanCI95,
  pairedComparison,
  pairedTTest,
  signFlipPermutationTest,
  wilcoxonSignedRank,
} from './stats';
export type { MeanCI, PairedComparison } from './stats';
export { finalValues, summarizeRun } from './summary';
export type { RunSummary, TrialSummary, VariantComparison, VariantSummary } from './summary';
export type { Metrics, MetricValue, TrialCheckpoint, TrialContext, VegaLiteSpec } from './trial-context';
export { createTrialGroup, describeFusedTrials, parseFuse, planTrialGroups } from './trial-group';
export type { FuseSetting, TrialGroupHandle } from './trial-group';
export { BullMQExecutor, checkQueueUrl, DEFAULT_QUEUE_NAME } from './bullmq-executor';
export type { BullMQExecutorOptions, QueuedTrial } from './bullmq-executor';
export { startQueueWorker } from './queue-worker';
export type { QueueWorkerHandle, QueueWorkerOptions } from './queue-worker';
export { runSlurmTask, SlurmExecutor, slurmJobDir } from './slurm-executor';
export type { SlurmExecutorOptions } from './slurm-executor';
export { codeIdentity, collectTrialOutput, identityMismatch, mergeTrialOutput, stableJobId } from './remote-trial';
export type { CodeIdentity, RanOn, RemoteResult, TrialFile, TrialOutput } from './remote-trial';
export { describeTrialHosts } from './trial-hosts';
export type { TrialResources } from './define-experiment';
