import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BackendName } from './backend';
import type { Experiment } from './define-experiment';
import type { TrialSpec } from './plan';
import { createTrialContext } from './trial-context';
import { InputError } from './input-error';
import { createTrialGroup, type TrialGroupHandle } from './trial-group';

export interface TrialJob {
  runDir: string;
  trial: TrialSpec;
  experimentName: string;
  /** Module that exports the experiment; required by executors that run trials in other processes. */
  experimentFile?: string;
  backend: BackendName | 'none';
  attempt: number;
  /** Number of folds of the run (k-fold cross-validation). */
  folds?: number;
  /**
   * Fused trials (see ExperimentDefinition.fuse): every trial of the group, `trial` first, each
   * with its own attempt number. They run together in one process; the outcome then has `members`.
   */
  group?: GroupMember[];
}

export interface GroupMember {
  trial: TrialSpec;
  attempt: number;
}

export interface TrialEvents {
  /** `trialId` names the member of a group job the progress is of (absent: the job's trial). */
  onProgress?(done: number, total: number, note?: string, trialId?: string): void;
  /** A group job's member has finished (reported as soon as it does, before the others). */
  onMemberOutcome?(trialId: string, outcome: TrialOutcome): void;
  /** Aborting asks the trial to stop (`ctx.signal`); the outcome is then `aborted`. */
  signal: AbortSignal;
}

export type TrialOutcome = (
  | { status: 'completed' }
  | { status: 'failed'; error: { message: string; stack?: string } }
  | { status: 'aborted' }
) & {
  /** A group job's outcome of each member, by trial id (the job's own status is its first member's). */
  members?: Record<string, TrialOutcome>;
};

/**
 * Where trials run. The scheduler only calls `run` up to `concurrency` times at once, so a
 * distributed executor (a job queue) can be added without touching trials or the scheduler.
 */
export interface Executor {
  readonly kind: string;
  readonly concurrency: number;
  /**
   * The OMP_NUM_THREADS each trial's process computes with (the native kernels' threads), when the
   * executor sets it; recorded in config.json (`execution.threadsPerWorker`).
   */
  readonly threadsPerWorker?: string;
  /**
   * Whether the executor runs fused trials (a job with `group`) and reports each member's outcome.
   * The local executors do; for others the runner sends every trial as a job of its own.
   */
  readonly runsGroups?: boolean;
  /** How to reach the executor again (a queue URL, Slurm options): recorded in config.json for `lab resume`. */
  readonly settings?: Record<string, string | number>;
  run(job: TrialJob, events: TrialEvents): Promise<TrialOutcome>;
  close(): Promise<void>;
}

export function errorRecord(error: unknown): { message: string; stack?: string } {
  if (error instanceof Error) return { message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  return { message: String(error) };
}

/** Runs one trial of an experiment in the current process. Shared by the in-process executor and worker processes. */
export async function runTrialHere(
  experiment: Experiment,
  job: TrialJob,
  events: TrialEvents,
  beforeWrite?: () => void,
  group?: TrialGroupHandle,
): Promise<TrialOutcome> {
  if (job.group != null && job.group.length > 1) return runTrialGroupHere(experiment, job, job.group, events, beforeWrite);
  const ctx = createTrialContext({
    runDir: job.runDir,
    trialId: job.trial.id,
    seed: job.trial.seed,
    ...(job.trial.fold !== undefined ? { fold: job.trial.fold } : {}),
    ...(job.folds !== undefined ? { folds: job.folds } : {}),
    backend: job.backend,
    attempt: job.attempt,
    signal: events.signal,
    ...(events.onProgress ? { onProgress: events.onProgress } : {}),
    ...(beforeWrite ? { beforeWrite } : {}),
    ...(group ? { group } : {}),
  });
  try {
    await experiment.trial(structuredClone(job.trial.params), job.trial.seed, ctx);
    if (events.signal.aborted) return { status: 'aborted' };
    return { status: 'completed' };
  } catch (error) {
    if (events.signal.aborted) return { status: 'aborted' };
    return { status: 'failed', error: errorRecord(error) };
  }
}

/**
 * Runs a group of fused trials in this process: each member's trial function with its own context
 * (and `ctx.group`), all at once; a member that throws fails alone. Each member's outcome goes to
 * `events.onMemberOutcome` as soon as it is known.
 */
async function runTrialGroupHere(
  experiment: Experiment,
  job: TrialJob,
  members: GroupMember[],
  events: TrialEvents,
  beforeWrite?: () => void,
): Promise<TrialOutcome> {
  const group = createTrialGroup(members.map((m) => m.trial.id));
  const { group: _members, ...single } = job;
  const outcomes = await Promise.all(
    members.map(async ({ trial, attempt }, index) => {
      const memberJob: TrialJob = { ...single, trial, attempt };
      const memberEvents: TrialEvents = {
        signal: events.signal,
        ...(events.onProgress ? { onProgress: (done: number, total: number, note?: string) => events.onProgress!(done, total, note, trial.id) } : {}),
      };
      let outcome: TrialOutcome;
      try {
        outcome = await runTrialHere(experiment, memberJob, memberEvents, beforeWrite, group.handles[index]);
      } finally {
        group.memberEnded(index);
      }
      events.onMemberOutcome?.(trial.id, outcome);
      return [trial.id, outcome] as const;
    }),
  );
  return { ...outcomes[0][1], members: Object.fromEntries(outcomes) };
}

/**
 * Runs trials inside the calling process, `concurrency` at a time (async trials interleave; CPU-bound
 * ones do not run in parallel). For debugging and for experiments that are not in a module file.
 */
export class InProcessExecutor implements Executor {
  readonly kind = 'in-process';
  readonly runsGroups = true;
  constructor(
    private readonly experiment: Experiment,
    readonly concurrency = 1,
  ) {}

  run(job: TrialJob, events: TrialEvents): Promise<TrialOutcome> {
    return runTrialHere(this.experiment, job, events);
  }

  async close(): Promise<void> {}
}

/** Messages between the scheduler and a worker process. */
export type ToWorker = { type: 'run'; job: TrialJob } | { type: 'abort' };
export type FromWorker =
  | { type: 'progress'; done: number; total: number; note?: string; trialId?: string }
  | { type: 'member-outcome'; trialId: string; outcome: TrialOutcome }
  | { type: 'outcome'; outcome: TrialOutcome }
  | { type: 'log'; message: string };

interface WorkerSlot {
  child: ChildProcess;
  busy: boolean;
}

function workerEntry(): { script: string; needsTsx: boolean } {
  const here = fileURLToPath(import.meta.url);
  const fromSource = extname(here) === '.ts';
  return { script: join(dirname(here), fromSource ? 'worker-main.ts' : 'worker-main.js'), needsTsx: fromSource };
}

function tsxLoaderUrl(): string | undefined {
  try {
    return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  } catch {
    return undefined;
  }
}

/**
 * Threads as @lab/tfjs-train's native kernels read OMP_NUM_THREADS: its leading positive integer
 * ("4" and "4,2" give 4), else undefined (unset, empty or not a number: they then use every core).
 */
export function parseThreads(value: string | undefined): number | undefined {
  const threads = Number.parseInt(value ?? '', 10);
  return Number.isInteger(threads) && threads > 0 ? threads : undefined;
}

/**
 * The OMP_NUM_THREADS a worker process gets: the user's own when set; else `threads` (a resumed run
 * passes the value recorded when it started, so all its trials compute with the same thread count);
 * else cores / workers (at least 1).
 */
export function workerThreads(workers: number, env: NodeJS.ProcessEnv = process.env, cores = availableParallelism(), threads?: number): string {
  if (env.OMP_NUM_THREADS != null && env.OMP_NUM_THREADS !== '') return env.OMP_NUM_THREADS;
  if (threads !== undefined) return String(threads);
  return String(Math.max(1, Math.floor(cores / workers)));
}

/**
 * The environment of a worker process: the parent's, plus OMP_NUM_THREADS = cores / workers
 * (at least 1) unless the user set it (see `workerThreads`). Multithreaded kernels (@lab/tfjs-train's native
 * convolutions, oneDNN, OpenBLAS, tfjs-node) read it, so `workers` trials at once share the
 * cores instead of each starting a thread per core and oversubscribing them.
 */
export function workerEnvironment(workers: number, env: NodeJS.ProcessEnv = process.env, cores = availableParallelism(), threads?: number): NodeJS.ProcessEnv {
  return { ...env, OMP_NUM_THREADS: workerThreads(workers, env, cores, threads) };
}

/**
 * Runs each trial in a long-lived child process (one per slot), which imports the experiment module
 * by file path. A process that crashes fails only its trial and is replaced. Children exit when the
 * scheduler disappears (IPC disconnect), so a `kill -9` of the run leaves no orphan writing files.
 */
export class ChildProcessExecutor implements Executor {
  readonly kind = 'child-process';
  readonly runsGroups = true;
  private readonly slots: WorkerSlot[] = [];
  private readonly execArgv: string[];
  private readonly script: string;
  /** The OMP_NUM_THREADS every worker process gets (fixed when the executor is made). */
  readonly threadsPerWorker: string;

  /**
   * `threads`: OMP_NUM_THREADS for the workers instead of cores / workers (a resumed run passes the
   * value it recorded); the user's own OMP_NUM_THREADS still wins.
   */
  constructor(
    readonly concurrency: number,
    private readonly options: { experimentFile: string; onLog?: (message: string) => void; threads?: number },
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new InputError(`workers: expected a positive integer, got ${concurrency}`);
    if (!existsSync(options.experimentFile)) throw new InputError(`experiment file ${options.experimentFile} not found`);
    const entry = workerEntry();
    this.script = entry.script;
    const needsTsx = entry.needsTsx || /\.[cm]?tsx?$/.test(options.experimentFile);
    const loader = needsTsx ? tsxLoaderUrl() : undefined;
    if (needsTsx && !loader) throw new InputError(`experiment file ${options.experimentFile} is TypeScript: install tsx to run it in worker processes`);
    this.execArgv = loader ? ['--import', loader] : [];
    if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1)) {
      throw new InputError(`threads per worker: expected a positive integer, got ${String(options.threads)}`);
    }
    this.threadsPerWorker = workerThreads(concurrency, process.env, availableParallelism(), options.threads);
  }

  private spawn(): WorkerSlot {
    // execArgv is explicit so the children never inherit the parent's flags (a test runner's, an inspector's).
    const child = fork(this.script, [], {
      execArgv: this.execArgv,
      env: { ...process.env, OMP_NUM_THREADS: this.threadsPerWorker },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    // Without a listener an 'error' event (a failed spawn, a broken IPC pipe) would crash the scheduler; the exit handler reports the trial.
    child.on('error', (error) => this.options.onLog?.(`worker process ${child.pid ?? '?'}: ${error.message}`));
    const slot: WorkerSlot = { child, busy: false };
    this.slots.push(slot);
    return slot;
  }

  async run(job: TrialJob, events: TrialEvents): Promise<TrialOutcome> {
    const slot = this.slots.find((s) => !s.busy && s.child.exitCode === null && s.child.signalCode === null && s.child.connected) ?? this.spawn();
    slot.busy = true;
    const { child } = slot;
    try {
      return await new Promise<TrialOutcome>((resolvePromise) => {
        let settled = false;
        const finish = (outcome: TrialOutcome) => {
          if (settled) return;
          settled = true;
          child.off('message', onMessage);
          child.off('exit', onExit);
          events.signal.removeEventListener('abort', onAbort);
          resolvePromise(outcome);
        };
        const onMessage = (message: FromWorker) => {
          if (message.type === 'progress') events.onProgress?.(message.done, message.total, message.note, message.trialId);
          else if (message.type === 'member-outcome') events.onMemberOutcome?.(message.trialId, message.outcome);
          else if (message.type === 'log') this.options.onLog?.(message.message);
          else if (message.type === 'outcome') finish(message.outcome);
        };
        const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
          this.remove(slot);
          if (events.signal.aborted) finish({ status: 'aborted' });
          else finish({ status: 'failed', error: { message: `worker process exited during the trial (${signal ? `signal ${signal}` : `exit code ${code}`})` } });
        };
        const onAbort = () => {
          if (child.connected) child.send({ type: 'abort' } satisfies ToWorker);
        };
        child.on('message', onMessage);
        child.on('exit', onExit);
        events.signal.addEventListener('abort', onAbort, { once: true });
        try {
          // A job names its own experiment's file: one executor may serve several runs (keepExecutor).
          child.send({ type: 'run', job: { ...job, experimentFile: job.experimentFile ?? this.options.experimentFile } } satisfies ToWorker);
        } catch (error) {
          // The process died between being picked and being sent the job.
          this.remove(slot);
          finish({ status: 'failed', error: errorRecord(error) });
          return;
        }
        if (events.signal.aborted) onAbort();
      });
    } finally {
      slot.busy = false;
    }
  }

  private remove(slot: WorkerSlot): void {
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots.splice(index, 1);
  }

  async close(): Promise<void> {
    const exits = this.slots.map(
      (slot) =>
        new Promise<void>((done) => {
          if (slot.child.exitCode !== null || slot.child.signalCode !== null) return done();
          const timer = setTimeout(() => slot.child.kill('SIGKILL'), 5000);
          slot.child.once('exit', () => {
            clearTimeout(timer);
            done();
          });
          if (slot.child.connected) slot.child.disconnect();
          else slot.child.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
    this.slots.length = 0;
  }
}
