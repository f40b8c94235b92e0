import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import {
  FeatureCache,
  loadFeatures,
  type DatasetItem,
} from '@lab/audio-features';
import {
  checkFileOption,
  checkFolderOption,
  ChildProcessExecutor,
  checkWritableFolderOption,
  describeFileError,
  EXIT,
  formatTrialFailures,
  InputError,
  planRun,
  readRunConfig,
  readRunState,
  readTrialStatus,
  runExperiment,
  writeFileAtomic,
  type FuseSetting,
  type BackendPreference,
  type Executor,
  type Experiment,
  type ProgressMode,
  type RunOverrides,
  type RunStatus,
} from '@lab/experiment-runner';
import { EXPERIMENTS } from './experiments';
import { readIndexEntries, renderIndex } from './index-page';
import { describeDataSource, featureOptionsOf, loadItems, recordDataFingerprint } from './lab-data';
import { DEFAULT_CACHE_DIR, DEFAULT_DATA_ROOT, DEFAULT_RUNS_DIR } from './paths';
import { checkLabPlan, scaleOverrides, type Scale } from './scales';
import { DEFAULT_SIMULATION, simulateDataset } from './simulator';

/** An experiment with the settings to run it with (data parameters are added by the demo). */
export interface DemoExperiment {
  experiment: Experiment;
  overrides?: RunOverrides;
}

export interface DemoOptions {
  scale: Scale;
  /** Recordings in the lab's layout; default: the simulated data (generated when absent). */
  data?: string;
  /** CSV manifest of recordings (instead of `data`). */
  manifest?: string;
  /** Where the run folders and the index page go. */
  out?: string;
  workers?: number;
  /** Fused trials (the runner's --fuse); default auto. */
  fuse?: FuseSetting;
  backend?: BackendPreference;
  /** Names of the experiments to run (default: all). */
  only?: string[];
  cacheDir?: string;
  progress?: ProgressMode;
  log?: (message: string) => void;
  /** What went wrong (failed trials, an interruption); default: console.error. */
  warn?: (message: string) => void;
  /**
   * Aborting (Ctrl-C in the CLI) stops the running experiment cleanly: its run is marked interrupted
   * and stays resumable, the experiments after it are not started, and the index is written.
   */
  signal?: AbortSignal;
  /** Called as soon as an experiment's run folder exists. */
  onRunDir?: (experiment: string, runDir: string) => void;
  /** Instead of the lab's experiments at `scale` (and `only`): these (tests, other apps). */
  experiments?: readonly DemoExperiment[];
}

export interface DemoRun {
  experiment: string;
  runDir: string;
  report: string;
  status: RunStatus | 'unknown';
  /** One line per distinct reason a trial failed (empty when none did). */
  failures: string[];
}

export interface DemoResult {
  out: string;
  indexHtml: string;
  indexMarkdown: string;
  runs: DemoRun[];
  /** Set when the demo was stopped (`signal`): the experiment that was running, if any, and those not started. */
  interrupted?: { experiment?: string; runDir?: string; notStarted: string[] };
  seconds: number;
  /** As `lab run`: 0 all trials completed, 1 some failed, 3 a run incomplete, 130 interrupted. */
  exitCode: number;
}

export function selectExperiments(only: readonly string[] | undefined): Experiment[] {
  if (!only || only.length === 0) return [...EXPERIMENTS];
  const known = EXPERIMENTS.map((e) => e.name);
  const unknown = only.filter((name) => !known.includes(name));
  if (unknown.length) throw new InputError(`--only: unknown experiment(s) ${unknown.join(', ')}; expected some of ${known.join(', ')}`);
  return EXPERIMENTS.filter((e) => only.includes(e.name));
}

/**
 * Checks the paths of the options before any work, naming the option, the path and what was expected:
 * `data` an existing folder, `manifest` an existing file, `out` a folder this user can write in or create.
 */
export function checkDemoPaths(options: Pick<DemoOptions, 'data' | 'manifest' | 'out'>): void {
  if (options.data !== undefined && options.manifest !== undefined) throw new InputError('--data and --manifest: give one of them, not both');
  if (options.data !== undefined) checkFolderOption('--data', options.data, 'a folder of recordings in the layout <material>/<freq>Hz/deg<angle>/*.wav');
  if (options.manifest !== undefined) checkFileOption('--manifest', options.manifest, 'a CSV file with the columns path,material,freq_hz,angle_deg');
  checkWritableFolderOption('--out', options.out ?? DEFAULT_RUNS_DIR, 'a folder for the run folders and the index page');
}

/** Makes sure the recordings exist: the simulated default set is generated on first use. */
export async function prepareData(options: Pick<DemoOptions, 'data' | 'manifest'>, log: (m: string) => void): Promise<void> {
  if (options.manifest) {
    checkFileOption('--manifest', options.manifest, 'a CSV file with the columns path,material,freq_hz,angle_deg');
    return;
  }
  if (options.data) {
    checkFolderOption('--data', options.data, 'a folder of recordings in the layout <material>/<freq>Hz/deg<angle>/*.wav');
    return;
  }
  if (existsSync(join(DEFAULT_DATA_ROOT, 'simulation.json'))) return;
  log(`generating the simulated recordings (${DEFAULT_SIMULATION.materials.length} materials × ${DEFAULT_SIMULATION.frequenciesHz.length} frequencies × ${DEFAULT_SIMULATION.anglesDeg.length} angles × ${DEFAULT_SIMULATION.takes} takes) in ${DEFAULT_DATA_ROOT} ...`);
  try {
    const result = await simulateDataset({ root: DEFAULT_DATA_ROOT });
    log(`  ${result.files} WAV files in ${result.seconds.toFixed(1)} s`);
  } catch (error) {
    throw new Error(`generating the simulated recordings: ${describeFileError(error, DEFAULT_DATA_ROOT)}`);
  }
}

/** Throws an InputError listing every problem of the planned runs (parameters; with `items`, folds and splits against the data). */
export function checkDemoPlans(planned: readonly DemoExperiment[], items?: readonly DatasetItem[]): void {
  const problems = planned.flatMap(({ experiment, overrides }) => checkLabPlan(experiment.name, planRun(experiment, overrides), items));
  if (problems.length) throw new InputError(problems.join('\n'));
}

function statusOf(runDir: string): RunStatus | 'unknown' {
  try {
    return readRunState(runDir)?.status ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The exit code of the whole demo: the worst of its runs, as `lab run` gives for one. */
function exitCodeOf(runs: readonly DemoRun[], interrupted: boolean): number {
  if (interrupted) return EXIT.interrupted;
  if (runs.some((r) => r.status === 'failed')) return EXIT.trialsFailed;
  if (runs.some((r) => r.status !== 'completed')) return EXIT.incomplete;
  return EXIT.ok;
}

/**
 * Runs the selected experiments at one scale, each into its own run folder, and writes the index page
 * of every run in the output folder. Options, parameters and the data are checked before anything is
 * written (InputError, naming the option or field); failed trials are told with their reason.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const log = options.log ?? ((m: string) => console.log(m));
  const warn = options.warn ?? ((m: string) => console.error(m));
  const started = Date.now();
  const out = resolve(options.out ?? DEFAULT_RUNS_DIR);
  const selected: DemoExperiment[] = options.experiments ? [...options.experiments] : selectExperiments(options.only).map((experiment) => ({ experiment }));
  checkDemoPaths(options);
  const dataParams = {
    data: options.manifest ? '' : options.data ? resolve(options.data) : '',
    manifest: options.manifest ? resolve(options.manifest) : '',
    cacheDir: resolve(options.cacheDir ?? DEFAULT_CACHE_DIR),
  };
  const planned: DemoExperiment[] = selected.map(({ experiment, overrides }) => ({
    experiment,
    overrides: options.experiments
      ? { ...overrides, params: { ...(overrides?.params ?? {}), ...dataParams } }
      : scaleOverrides(experiment.name, options.scale, dataParams),
  }));
  // Every parameter, then the data's class sizes and splits, are checked before the feature pass and
  // before any run folder exists: a bad setting fails here, naming its field, not later in every trial.
  checkDemoPlans(planned);
  await prepareData(options, log);
  const items = await loadItems(dataParams);
  checkDemoPlans(planned, items);
  // Recorded in every run's parameters, so a resume refuses data that changed in between.
  // Parameter schemas are strict: experiments without the field (custom ones) go without it.
  const dataFingerprint = await recordDataFingerprint(dataParams, items);
  for (const p of planned) {
    if ('dataFingerprint' in p.experiment.defaults) p.overrides = { ...p.overrides, params: { ...(p.overrides?.params ?? {}), dataFingerprint } };
  }

  // One pass over all recordings before the workers start: reports bad files early and fills the
  // feature cache, so parallel trials only read it.
  const first = planned[0];
  const featureSize = Number(first.overrides?.params?.featureSize ?? first.experiment.defaults.featureSize ?? 64);
  const cache = new FeatureCache(dataParams.cacheDir);
  try {
    await loadFeatures(items, { cache, featureOptions: featureOptionsOf({ featureSize }) });
  } catch (error) {
    throw new Error(`feature pass: ${describeFileError(error, dataParams.cacheDir)}`);
  }
  log(`data: ${items.length} recordings. ${describeDataSource(dataParams)}.\nfeatures: ${featureSize}×${featureSize}, ${cache.stats().hits} from the cache, ${cache.stats().misses} computed`);

  const runs: DemoRun[] = [];
  let backendName = '';
  let interrupted: DemoResult['interrupted'];
  let failure: unknown;
  const workers = sharedWorkers(planned.map((p) => p.experiment), options.workers, log);
  try {
    for (const [index, { experiment, overrides }] of planned.entries()) {
      if (options.signal?.aborted) {
        interrupted = { notStarted: planned.slice(index).map((p) => p.experiment.name) };
        break;
      }
      const t0 = Date.now();
      log(`\n== ${experiment.name} (${options.experiments ? 'custom' : options.scale}) ==`);
      let runDir: string | undefined;
      try {
        runDir = await runExperiment(experiment, {
          runsDir: out,
          ...(overrides ? { overrides } : {}),
          ...(workers ? { executor: workers, keepExecutor: true } : options.workers !== undefined ? { workers: options.workers } : {}),
          ...(options.fuse !== undefined ? { fuse: options.fuse } : {}),
          // Default: the experiment's own choice, else auto.
          ...(options.backend ? { backend: options.backend } : {}),
          progress: options.progress ?? 'auto',
          log: (m) => log(`  ${m}`),
          ...(options.signal ? { signal: options.signal } : {}),
          onRunDir: (dir) => {
            runDir = dir;
            options.onRunDir?.(experiment.name, dir);
          },
        });
      } catch (error) {
        // Whatever stopped the run (a full disk, say), the index of what finished is still written below.
        failure = error instanceof InputError ? error : new Error(`${experiment.name}: ${describeFileError(error, runDir ?? out)}`);
        if (runDir) runs.push({ experiment: experiment.name, runDir, report: join(runDir, 'report.html'), status: statusOf(runDir), failures: [] });
        break;
      }
      const seconds = (Date.now() - t0) / 1000;
      const config = readRunConfig(runDir);
      backendName = `${config.backend.name}${config.backend.fastTraining ? ' with @lab/tfjs-train kernels' : ''}${config.backend.native ? ` (${config.backend.native})` : ''}`;
      const report = join(runDir, 'report.html');
      const status = statusOf(runDir);
      const failures = formatTrialFailures(runDir);
      runs.push({ experiment: experiment.name, runDir, report, status, failures });
      const done = config.trials.filter((t) => readTrialStatus(runDir!, t.id)?.status === 'completed').length;
      log(`  ${experiment.name}: ${status}, ${done}/${config.trials.length} trials in ${seconds.toFixed(0)} s -> ${status === 'interrupted' ? runDir : report}`);
      for (const line of failures) warn(`  ${experiment.name}: ${line}`);
      if (options.signal?.aborted) {
        const notStarted = planned.slice(index + 1).map((p) => p.experiment.name);
        interrupted = status === 'completed' ? { notStarted } : { experiment: experiment.name, runDir, notStarted };
        break;
      }
    }
  } finally {
    await workers?.close();
  }

  const seconds = (Date.now() - started) / 1000;
  const indexHtml = join(out, 'index.html');
  const indexMarkdown = join(out, 'index.md');
  try {
    const index = renderIndex(readIndexEntries(out), {
      title: `angle-lab demo (${options.scale} scale)`,
      scale: options.scale,
      data: describeDataSource(dataParams).replace(/`/g, ''),
      backend: backendName || '–',
      createdAt: new Date(started).toISOString(),
      totalSeconds: seconds,
      current: runs.map((r) => r.runDir.split(/[\\/]/).pop()!),
    });
    writeFileAtomic(indexMarkdown, index.markdown);
    writeFileAtomic(indexHtml, index.html);
  } catch (error) {
    const message = `writing the index: ${describeFileError(error, indexMarkdown)}`;
    if (failure) warn(`angle-lab: ${message}`);
    else failure = new Error(message);
  }
  if (failure) throw failure;
  return { out, indexHtml, indexMarkdown, runs, ...(interrupted ? { interrupted } : {}), seconds, exitCode: exitCodeOf(runs, interrupted !== undefined) };
}

/**
 * One set of worker processes for all the experiments of a demo run (undefined: each run makes its
 * own, as with --workers 0 or a single experiment): started and warmed up once instead of once per
 * experiment, which had cost each worker ~1 s of start-up and ~2 s of slower first steps (V8
 * compiling) per experiment. Each trial job names its own experiment's module file.
 */
function sharedWorkers(experiments: Experiment[], workers: number | undefined, log: (message: string) => void): Executor | undefined {
  const count = workers ?? availableParallelism();
  const file = experiments[0]?.file;
  if (count === 0 || experiments.length < 2 || file == null || experiments.some((e) => e.file == null)) return undefined;
  return new ChildProcessExecutor(count, { experimentFile: file, onLog: (m) => log(`  ${m}`) });
}
