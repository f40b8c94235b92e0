import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, hostname, userInfo } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend, type BackendName, type BackendPreference } from './backend';
import type { Experiment } from './define-experiment';
import { ChildProcessExecutor, InProcessExecutor, parseThreads, type Executor, type TrialOutcome } from './executor';
import { loadExperiment } from './load-experiment';
import { planTrialGroups } from './trial-group';
import { loadConfigFile, mergeOverrides, planRun, type RunOverrides, type RunPlan, type TrialSpec } from './plan';
import { createProgress, type ProgressMode, type ProgressReporter } from './progress';
import { buildReport } from './report';
import {
  acquireRunLock,
  createRunDir,
  IncompleteMetricsError,
  pruneMetricsForResume,
  readRunConfig,
  readRunState,
  readTrialStatus,
  writeRunConfig,
  writeRunState,
  writeTrialStatus,
  type RunConfig,
  type RunState,
  type RunStatus,
  type TrialStatus,
} from './run-folder';
import { writeSummary } from './summary';
import { InputError } from './input-error';
import { checkFuseSetting, type FuseSetting } from './trial-group';
import { checkpointProblem, discardCheckpoint, setCheckpointAside } from './trial-context';

export interface ExecuteOptions {
  /** Parallel trials: child processes by default (one per core); 0 runs trials in this process. */
  workers?: number;
  /** Stop at the first failed trial (others are aborted and can be resumed). */
  failFast?: boolean;
  progress?: ProgressMode | ProgressReporter;
  /** Messages for the user (backend attempts, warnings). Default: console.warn. */
  log?: (message: string) => void;
  /** Aborting stops the run; unfinished trials stay resumable. */
  signal?: AbortSignal;
  /** Build report.md/report.html at the end (default true). */
  report?: boolean;
  /** A custom executor (a job queue, say); overrides `workers`. */
  executor?: Executor;
  /**
   * Leave `executor` open when the run ends (the caller closes it): a caller running several
   * experiments one after another keeps one set of worker processes, already started and warmed
   * up (the lab's demo: about 3 s per worker and experiment of start-up and JIT warm-up saved).
   */
  keepExecutor?: boolean;
  /**
   * Fused trials (experiments that declare `fuse`): 'auto' (their default), 'off', or at most K
   * trials per group. A resume keeps the run's recorded setting unless this is given.
   */
  fuse?: FuseSetting;
}

export interface RunOptions extends ExecuteOptions {
  runsDir?: string;
  overrides?: RunOverrides;
  /** A YAML or JSON file of `{ params, sweep, seeds, folds }`, applied before `overrides`. */
  configFile?: string;
  backend?: BackendPreference | 'none';
  /** Folder-name suffix instead of the experiment name. */
  name?: string;
  /** Module exporting the experiment, for worker processes; default: where defineExperiment was called. */
  experimentFile?: string;
  /** Called as soon as the run folder exists (before any trial runs). */
  onRunDir?: (runDir: string) => void;
}

/** Worker processes each report the same backend warnings: the user hears each message once per run. */
function logEachOnce(log: (message: string) => void): (message: string) => void {
  const seen = new Set<string>();
  return (message) => {
    if (seen.has(message)) return;
    seen.add(message);
    log(message);
  };
}

/** This package's version, from its package.json (source or dist layout). */
export function ownVersion(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, '..', 'package.json'), join(here, '..', '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@lab/experiment-runner' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return 'unknown';
}

function nearestPackageJson(from: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

const TRACKED_PACKAGES = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-backend-webgpu', 'webgpu', '@lab/tfjs-train'];

/** Versions of node, this package, TF.js packages and the experiment package's dependencies that resolve. */
export function collectVersions(experimentFile?: string): Record<string, string> {
  const versions: Record<string, string> = { node: process.versions.node, '@lab/experiment-runner': ownVersion() };
  const base = experimentFile ? dirname(experimentFile) : process.cwd();
  const names = new Set(TRACKED_PACKAGES);
  const manifest = nearestPackageJson(base);
  if (manifest) {
    try {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
      for (const name of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).slice(0, 40)) names.add(name);
    } catch {
      // an unreadable manifest only means fewer versions recorded
    }
  }
  const require = createRequire(join(base, 'noop.js'));
  for (const name of names) {
    let dir: string | undefined;
    try {
      dir = dirname(require.resolve(`${name}/package.json`));
    } catch {
      try {
        const entry = require.resolve(name);
        const manifestPath = nearestPackageJson(dirname(entry));
        dir = manifestPath ? dirname(manifestPath) : undefined;
      } catch {
        continue;
      }
    }
    try {
      const pkg = JSON.parse(readFileSync(join(dir!, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name && pkg.version) versions[name] = pkg.version;
    } catch {
      // not resolvable: not recorded
    }
  }
  return versions;
}

export function gitInfo(cwd: string): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

function safeUser(): string | null {
  try {
    return userInfo().username;
  } catch {
    return null;
  }
}

/**
 * `threads`: OMP_NUM_THREADS for worker processes instead of cores / workers (a resume passes the
 * value the run recorded); the user's own OMP_NUM_THREADS still wins.
 */
function makeExecutor(experiment: Experiment, file: string | undefined, workers: number | undefined, trials: number, log: (m: string) => void, threads?: number): Executor {
  const requested = workers ?? availableParallelism();
  if (!Number.isInteger(requested) || requested < 0) throw new InputError(`workers: expected a non-negative integer, got ${String(workers)}`);
  if (requested === 0) return new InProcessExecutor(experiment, 1);
  if (!file) {
    if (workers !== undefined) throw new InputError(`workers: ${workers} worker processes need the experiment's module file (pass experimentFile)`);
    log(`experiment ${experiment.name}: its module file is unknown, so trials run in this process`);
    return new InProcessExecutor(experiment, 1);
  }
  return new ChildProcessExecutor(Math.max(1, Math.min(requested, trials)), { experimentFile: file, onLog: log, ...(threads !== undefined ? { threads } : {}) });
}

/**
 * The native-kernel threads each trial computes with: the OMP_NUM_THREADS the executor gives its
 * workers (read as @lab/tfjs-train reads it: every core when it is not a number), or in this process
 * the threads its native kernels were set up with. Undefined for an executor that does not say.
 */
function threadsUsed(executor: Executor, nativeThreads: number | undefined): number | undefined {
  if (executor.threadsPerWorker !== undefined) return parseThreads(executor.threadsPerWorker) ?? availableParallelism();
  if (executor instanceof InProcessExecutor) return nativeThreads ?? parseThreads(process.env.OMP_NUM_THREADS) ?? availableParallelism();
  return undefined;
}

/** What the executor's trials would compute with when nothing is recorded or set: cores / workers (every core in this process). */
function defaultThreads(executor: Executor): number {
  const cores = availableParallelism();
  return executor instanceof InProcessExecutor ? cores : Math.max(1, Math.floor(cores / executor.concurrency));
}

/**
 * The fused-trials setting of a run: the one asked for, else the one recorded (resume), else
 * 'auto' where the experiment can fuse trials; always 'off' where it cannot (and said once).
 */
function fuseSetting(experiment: Experiment, executor: Executor, asked: FuseSetting | undefined, recorded: unknown, log: (message: string) => void): FuseSetting {
  if (experiment.fuse == null) {
    if (asked !== undefined && asked !== 'off') log(`fuse: experiment ${experiment.name} does not declare fused trials (fuse), so its trials run one by one`);
    return 'off';
  }
  if (!executor.runsGroups) {
    if (asked !== undefined && asked !== 'off') log(`fuse: the ${executor.kind} executor runs every trial as a job of its own; fused trials need the local executors`);
    return 'off';
  }
  if (asked !== undefined) return checkFuseSetting(asked, 'fuse');
  return recorded === undefined ? 'auto' : checkFuseSetting(recorded, 'config.json execution.fuse');
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The threads per worker recorded in config.json, checked (a hand-edited value is refused, not guessed at). */
function recordedThreads(runDir: string, config: RunConfig): number | undefined {
  const recorded: unknown = config.execution?.threadsPerWorker;
  if (recorded === undefined) return undefined;
  if (typeof recorded !== 'number' || !Number.isInteger(recorded) || recorded < 1) {
    throw new InputError(`resume ${runDir}: config.json execution.threadsPerWorker: expected a positive integer, got ${JSON.stringify(recorded)}`);
  }
  return recorded;
}

/**
 * Plans the run from the experiment, a config file and overrides (the later winning). When the plan is
 * invalid and the config file alone already makes it so, the error names the file as well as the field.
 */
function planWithSources(experiment: Experiment, configFile: string | undefined, overrides: RunOverrides | undefined): RunPlan {
  const fromFile = configFile ? loadConfigFile(configFile) : undefined;
  try {
    return planRun(experiment, mergeOverrides(fromFile, overrides));
  } catch (error) {
    if (!fromFile || !(error instanceof InputError)) throw error;
    try {
      planRun(experiment, fromFile);
    } catch (fileError) {
      throw new InputError((fileError as Error).message.split('\n').map((line) => `config file ${configFile}: ${line}`).join('\n'));
    }
    throw error;
  }
}

/**
 * Plans the trials, creates `runs/<YYYYMMDD_HHMMSS>_<name>/` with its config.json, runs the trials
 * and writes summary.json and the report. Returns the run folder. An invalid plan (a parameter, a
 * config file, or a problem the experiment's `checkPlan` finds) throws an InputError before any
 * backend is loaded or folder created.
 */
export async function runExperiment(experiment: Experiment, options: RunOptions = {}): Promise<string> {
  const log = logEachOnce(options.log ?? ((message: string) => console.warn(message)));
  const plan = planWithSources(experiment, options.configFile, options.overrides);
  // The experiment's own check (ranges, data), before a backend is loaded or the run folder exists.
  const problems = (await experiment.checkPlan?.(plan)) ?? [];
  if (problems.length) throw new InputError(problems.join('\n'));
  const file = options.experimentFile ? resolve(options.experimentFile) : experiment.file;

  const preference = options.backend ?? experiment.backend ?? 'auto';
  let backend: RunConfig['backend'] = { preference, name: 'none', fastTraining: false, failures: [] };
  let nativeThreads: number | undefined;
  if (preference !== 'none') {
    const chosen = await selectBackend(preference, { log });
    backend = { preference, name: chosen.name, ...(chosen.adapter != null ? { adapter: chosen.adapter } : {}), fastTraining: chosen.fastTraining, ...(chosen.native != null ? { native: chosen.native } : {}), failures: chosen.failures };
    nativeThreads = chosen.nativeThreads;
  }
  const executor = options.executor ?? makeExecutor(experiment, file, options.workers, plan.trials.length, log);
  const threadsPerWorker = threadsUsed(executor, nativeThreads);

  const runDir = createRunDir(options.runsDir ?? 'runs', options.name ?? experiment.name);
  const now = new Date();
  const config: RunConfig = {
    id: basename(runDir),
    createdAt: now.toISOString(),
    experiment: {
      name: experiment.name,
      description: experiment.description,
      ...(experiment.background !== undefined ? { background: experiment.background } : {}),
      hypotheses: experiment.hypotheses,
      ...(file ? { file } : {}),
      ...(experiment.primaryMetric ? { primaryMetric: experiment.primaryMetric } : {}),
    },
    params: plan.baseParams,
    sweep: plan.sweep,
    seeds: plan.seeds,
    ...(plan.folds !== undefined ? { folds: plan.folds } : {}),
    varied: plan.varied,
    trials: plan.trials,
    backend,
    executor: { kind: executor.kind, workers: executor.concurrency, ...(executor.settings ? { settings: executor.settings } : {}) },
    execution: { ...(threadsPerWorker !== undefined ? { threadsPerWorker } : {}), fuse: fuseSetting(experiment, executor, options.fuse, undefined, log) },
    failFast: options.failFast ?? false,
    versions: collectVersions(file),
    git: gitInfo(file ? dirname(file) : process.cwd()),
    host: { hostname: hostname(), platform: process.platform, arch: process.arch, cpus: availableParallelism(), node: process.version, user: safeUser() },
  };
  writeRunConfig(runDir, config);
  options.onRunDir?.(runDir);
  await executeRun(runDir, experiment, config, executor, options, log);
  return runDir;
}

/**
 * Finishes an interrupted run: completed trials are kept as they are, the others (interrupted or
 * failed) restart from their last checkpoint, metrics lines past that checkpoint having been removed.
 * `experiments` may map names to experiments (or list them); by default the module recorded in
 * config.json is imported.
 */
export async function resumeRun(
  runDir: string,
  experiments?: Record<string, Experiment> | Experiment[],
  options: ExecuteOptions = {},
): Promise<string> {
  const log = logEachOnce(options.log ?? ((message: string) => console.warn(message)));
  const config = readRunConfig(runDir);
  const list = Array.isArray(experiments) ? experiments : experiments ? Object.values(experiments) : [];
  let experiment = list.find((e) => e.name === config.experiment.name);
  if (!experiment) {
    if (!config.experiment.file) throw new InputError(`resume ${runDir}: experiment ${JSON.stringify(config.experiment.name)} not given and its module file is not recorded`);
    experiment = await loadExperiment(config.experiment.file, config.experiment.name);
  }
  const file = config.experiment.file ?? experiment.file;
  // Every trial of a run computes with the threads per worker recorded when it started, whatever the
  // worker count now: GEMMs (oneDNN, OpenBLAS) may round differently with another thread count.
  const recorded = recordedThreads(runDir, config);
  const userThreads = process.env.OMP_NUM_THREADS ? process.env.OMP_NUM_THREADS : undefined;
  const executor = options.executor ?? makeExecutor(experiment, file, options.workers ?? (config.executor.kind === 'in-process' ? 0 : config.executor.workers), config.trials.length, log, recorded);
  let nativeThreads: number | undefined;
  if (config.backend.name !== 'none') {
    // In this process the native kernels are set up by selectBackend: with the recorded threads, unless the user set OMP_NUM_THREADS.
    const threads = executor instanceof InProcessExecutor && userThreads === undefined ? recorded : undefined;
    const chosen = await selectBackend(config.backend.name as BackendName, { log, ...(threads !== undefined ? { threads } : {}) });
    config.backend = { ...config.backend, fastTraining: chosen.fastTraining, ...(chosen.native != null ? { native: chosen.native } : {}) };
    nativeThreads = chosen.nativeThreads;
  }
  const used = threadsUsed(executor, nativeThreads);
  if (recorded !== undefined && used !== undefined) {
    const inProcess = executor instanceof InProcessExecutor;
    const who = inProcess ? 'trials in this process compute' : `each of the ${plural(executor.concurrency, 'worker')} computes`;
    if (used !== recorded) {
      const why = userThreads !== undefined ? `OMP_NUM_THREADS=${userThreads} is set, so ` : '';
      const fix = userThreads !== undefined ? ` (unset OMP_NUM_THREADS to keep ${recorded})` : '';
      log(
        `resume: warning: ${why}${who.replace(/ compute(s?)$/, ' will compute')} with ${plural(used, 'native-kernel thread')}, but this run's finished trials computed with ${recorded} (config.json execution.threadsPerWorker); numbers may differ from theirs${fix}`,
      );
    } else if (userThreads === undefined && defaultThreads(executor) !== recorded) {
      const otherwise = inProcess ? `the ${defaultThreads(executor)} (every core) they would get otherwise` : `the ${defaultThreads(executor)} that ${plural(executor.concurrency, 'worker')} would get`;
      log(
        `resume: ${who} with ${plural(recorded, 'native-kernel thread')}${inProcess ? '' : ` (OMP_NUM_THREADS=${recorded})`}, as recorded when the run started, not ${otherwise}: every trial of the run computes with the same thread count`,
      );
    }
  }
  config.executor = { kind: executor.kind, workers: executor.concurrency, ...(executor.settings ? { settings: executor.settings } : {}) };
  // A run recorded before threads per worker were: from now on its trials keep this session's.
  if (recorded === undefined && used !== undefined) config.execution = { ...config.execution, threadsPerWorker: used };
  config.execution = { ...config.execution, fuse: fuseSetting(experiment, executor, options.fuse, config.execution?.fuse, log) };
  writeRunConfig(runDir, config);
  await executeRun(runDir, experiment, config, executor, { ...options, failFast: options.failFast ?? config.failFast }, log);
  return runDir;
}

async function executeRun(runDir: string, experiment: Experiment, config: RunConfig, executor: Executor, options: ExecuteOptions, log: (message: string) => void): Promise<void> {
  const release = acquireRunLock(runDir);
  const progress: ProgressReporter = typeof options.progress === 'object' ? options.progress : createProgress(options.progress ?? 'auto');
  const startedAt = new Date().toISOString();
  const previous = readRunState(runDir);
  const state: RunState = {
    status: 'running',
    startedAt: previous?.startedAt ?? startedAt,
    sessions: [...(previous?.sessions ?? []), { startedAt, pid: process.pid }],
  };
  writeRunState(runDir, state);

  const completed = new Set(config.trials.filter((t) => readTrialStatus(runDir, t.id)?.status === 'completed').map((t) => t.id));
  // A checkpoint that cannot be used (cut short, missing bytes file) would fail its trial on every
  // resume: it is set aside, named, and the trial restarts from scratch (its lines are logged again).
  for (const trial of config.trials) {
    if (completed.has(trial.id)) continue;
    const dir = join(runDir, 'trials', trial.id);
    const problem = checkpointProblem(dir);
    if (!problem) continue;
    const moved = setCheckpointAside(dir);
    log(`resume: trial ${trial.id}: ${problem}; the trial restarts from scratch (set aside: ${moved.join(', ')})`);
  }
  pruneMetricsForResume(runDir, completed, log);
  const pending: TrialSpec[] = config.trials.filter((t) => !completed.has(t.id));

  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) controller.abort(options.signal.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });

  let failures = 0;
  let interrupted = 0;
  progress.start(config.trials.length, completed.size);
  // Fused trials: trials that train as one computation run as one job (a group of one: alone).
  const queue = planTrialGroups(pending, experiment, config.execution?.fuse ?? 'off', executor.concurrency);
  const jobs = queue.length;
  /** Writes a finished trial's status (and drops its checkpoint once completed). */
  const record = (trial: TrialSpec, attempt: number, started: number, outcome: TrialOutcome, fusedWith: string[] | undefined): void => {
    const durationMs = Date.now() - started;
    // Queue and cluster executors say which machine ran the trial (TrialStatus.ranOn).
    const ranOn = (outcome as { ranOn?: TrialStatus['ranOn'] }).ranOn;
    const base = { id: trial.id, attempt, startedAt: new Date(started).toISOString(), finishedAt: new Date().toISOString(), durationMs, ...(ranOn ? { ranOn } : {}), ...(fusedWith ? { fusedWith } : {}) };
    if (outcome.status === 'completed') {
      writeTrialStatus(runDir, { ...base, status: 'completed' });
      discardCheckpoint(join(runDir, 'trials', trial.id));
      progress.trialFinished(trial.id, 'completed', durationMs);
    } else if (outcome.status === 'failed') {
      failures++;
      writeTrialStatus(runDir, { ...base, status: 'failed', error: outcome.error });
      progress.trialFinished(trial.id, 'failed', durationMs);
      if (options.failFast) controller.abort(new Error(`trial ${trial.id} failed (fail-fast)`));
    } else {
      interrupted++;
      // Left as "running": a resume restarts it from its last checkpoint.
      progress.trialFinished(trial.id, 'interrupted', durationMs);
    }
  };
  const runNext = async (): Promise<void> => {
    for (let unit = queue.shift(); unit && !controller.signal.aborted; unit = queue.shift()) {
      const started = Date.now();
      const members = unit.map((trial) => {
        const attempt = (readTrialStatus(runDir, trial.id)?.attempt ?? 0) + 1;
        writeTrialStatus(runDir, { id: trial.id, status: 'running', attempt, startedAt: new Date(started).toISOString() });
        progress.trialStarted(trial.id);
        return { trial, attempt };
      });
      const ids = unit.map((t) => t.id);
      const recorded = new Set<string>();
      // A member of a group is recorded as soon as it finishes, so a later crash of the group cannot lose it.
      const finish = (id: string, outcome: TrialOutcome) => {
        const member = members.find((m) => m.trial.id === id);
        if (member == null || recorded.has(id)) return;
        recorded.add(id);
        record(member.trial, member.attempt, started, outcome, unit.length > 1 ? ids.filter((other) => other !== id) : undefined);
      };
      const [first] = members;
      const outcome = await executor.run(
        {
          runDir,
          trial: first.trial,
          experimentName: config.experiment.name,
          ...(config.experiment.file ? { experimentFile: config.experiment.file } : {}),
          backend: config.backend.name,
          attempt: first.attempt,
          ...(config.folds !== undefined ? { folds: config.folds } : {}),
          ...(unit.length > 1 ? { group: members } : {}),
        },
        {
          signal: controller.signal,
          onProgress: (done, total, note, trialId) => progress.trialProgress(trialId ?? first.trial.id, done, total, note),
          onMemberOutcome: finish,
        },
      );
      for (const { trial } of members) finish(trial.id, outcome.members?.[trial.id] ?? outcome);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(executor.concurrency, jobs)) }, runNext));
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort);
    progress.stop();
    if (!options.keepExecutor) await executor.close();
  }
  // The run's own summary goes on when a completed trial's lines are damaged (counts decide the status):
  // summary.json flags those trials, and the report below refuses them until told otherwise.
  const summary = writeSummary(runDir, { allowIncomplete: true, warn: log });
  const status: RunStatus =
    summary.counts.pending > 0 || interrupted > 0 ? (failures > 0 && options.failFast ? 'failed' : 'interrupted') : summary.counts.failed > 0 ? 'failed' : 'completed';
  const finishedAt = new Date().toISOString();
  state.status = status;
  state.finishedAt = finishedAt;
  state.sessions[state.sessions.length - 1] = { ...state.sessions[state.sessions.length - 1], finishedAt, status };
  writeRunState(runDir, state);
  try {
    if (options.report !== false) await buildReport(runDir, experiment, { warn: () => {} });
  } catch (error) {
    if (!(error instanceof IncompleteMetricsError)) throw error;
    log(`report not written: ${error.message}`);
  } finally {
    release();
  }
}
