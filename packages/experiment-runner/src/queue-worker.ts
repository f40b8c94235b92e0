// `lab worker`: pulls trials from a BullMQ queue and runs each in a child process, so the trial's CPU
// work never blocks this process's event loop and BullMQ's lock renewal (a starved lock reads as a dead worker).
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { connectionFor, checkQueueUrl, DEFAULT_QUEUE_NAME, type QueuedTrial } from './bullmq-executor';
import { ChildProcessExecutor } from './executor';
import { InputError } from './input-error';
import { loadExperiment } from './load-experiment';
import {
  codeIdentity,
  collectTrialOutput,
  dataFingerprint,
  identityMismatch,
  jobTrials,
  prepareScratch,
  ranOnHere,
  stableJobId,
  type RemoteResult,
} from './remote-trial';

export interface QueueWorkerOptions {
  queueUrl: string;
  queueName?: string;
  /** Trials this worker runs at once, each in its own child process. Default 1. */
  concurrency?: number;
  /** The checkout the coordinator's experiment paths are relative to. Default: cwd. */
  root?: string;
  /**
   * A folder every worker sees at the same path (NFS, a cluster file system). Checkpoints are kept there
   * under <run>/<job>, so a retry on any worker resumes from the last one. Without it a retry restarts
   * the trial from scratch.
   */
  checkpointDir?: string;
  /** BullMQ lock duration: a worker silent this long is taken for dead and its trial re-run. Default 30000 ms. */
  lockMs?: number;
  /** How often workers look for stalled jobs. Default: lockMs / 2. */
  stalledIntervalMs?: number;
  log?: (message: string) => void;
}

export interface QueueWorkerHandle {
  readonly worker: Worker;
  /** Stops taking jobs, waits for running trials (aborting them after `graceMs`), closes the connection. */
  close(graceMs?: number): Promise<void>;
}

function checkPositive(value: number | undefined, flag: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new InputError(`${flag}: expected a positive integer, got ${String(value)}`);
}

/** Refuses (for good: no other attempt) a job whose code or data differ from what this worker has. */
async function checkJob(data: QueuedTrial, experimentFile: string): Promise<void> {
  const where = `worker ${hostname()} (pid ${process.pid})`;
  if (!existsSync(experimentFile)) throw new UnrecoverableError(`${where}: experiment file ${experimentFile} not found (is --root the project checkout?)`);
  const codeProblem = identityMismatch(data.code, codeIdentity(experimentFile));
  if (codeProblem) throw new UnrecoverableError(`${where} refuses the trial: ${codeProblem}`);
  if (!Object.keys(data.data).length) return;
  const experiment = await loadExperiment(experimentFile, data.job.experimentName);
  for (const trial of jobTrials(data.job)) {
    const expected = data.data[trial.id];
    const here = await dataFingerprint(experiment, trial);
    if (expected !== undefined && here !== expected) {
      throw new UnrecoverableError(`${where} refuses trial ${trial.id}: data fingerprint ${String(here)} here, ${expected} in the run`);
    }
  }
}

export function startQueueWorker(options: QueueWorkerOptions): QueueWorkerHandle {
  const url = checkQueueUrl(options.queueUrl);
  checkPositive(options.concurrency, '--concurrency');
  checkPositive(options.lockMs, '--lock-ms');
  const concurrency = options.concurrency ?? 1;
  const root = resolve(options.root ?? process.cwd());
  const log = options.log ?? ((message: string) => console.warn(message));
  const executors = new Map<string, ChildProcessExecutor>();
  const lockMs = options.lockMs ?? 30_000;
  const closing = new AbortController();

  const childExecutor = (file: string) => {
    let executor = executors.get(file);
    if (!executor) {
      executor = new ChildProcessExecutor(concurrency, { experimentFile: file, onLog: log });
      executors.set(file, executor);
    }
    return executor;
  };

  const processor = async (job: Job<QueuedTrial>): Promise<RemoteResult> => {
    const data = job.data;
    const experimentFile = join(root, ...data.experimentPath.split('/'));
    await checkJob(data, experimentFile);
    const shared = options.checkpointDir !== undefined;
    const scratch = shared
      ? join(resolve(options.checkpointDir!), basename(data.job.runDir), stableJobId(data.job))
      : mkdtempSync(join(tmpdir(), 'lab-worker-'));
    prepareScratch(scratch, jobTrials(data.job), shared);
    let lastProgress = 0;
    try {
      const outcome = await childExecutor(experimentFile).run(
        { ...data.job, runDir: scratch, experimentFile, attempt: data.job.attempt + job.attemptsMade },
        {
          signal: closing.signal,
          onProgress: (done, total, note) => {
            // Progress goes through Redis: at most a few updates a second per trial.
            if (Date.now() - lastProgress < 250 && done < total) return;
            lastProgress = Date.now();
            void job.updateProgress({ done, total, ...(note !== undefined ? { note } : {}) }).catch(() => {});
          },
        },
      );
      // A failed trial throws, so BullMQ retries it (attempts, back-off) and reports the last error.
      if (outcome.status === 'failed') throw new Error(`trial ${data.job.trial.id} failed on ${hostname()}: ${outcome.error.message}`);
      if (outcome.status === 'aborted') throw new Error(`worker ${hostname()} stopped during trial ${data.job.trial.id}`);
      return { outcome, output: collectTrialOutput(scratch), ranOn: ranOnHere('bullmq', job.id) };
    } finally {
      if (!shared) rmSync(scratch, { recursive: true, force: true });
    }
  };

  const worker = new Worker<QueuedTrial, RemoteResult>(options.queueName ?? DEFAULT_QUEUE_NAME, processor, {
    connection: connectionFor(url),
    concurrency,
    lockDuration: lockMs,
    stalledInterval: options.stalledIntervalMs ?? Math.max(500, Math.floor(lockMs / 2)),
    // A trial whose worker died twice is most likely what kills workers (out of memory): fail it.
    maxStalledCount: 2,
  });
  worker.on('error', (error) => log(`worker: ${error.message}`));
  worker.on('failed', (job, error) => log(`job ${job?.id ?? '?'} (${job?.name ?? '?'}) attempt ${job?.attemptsMade ?? '?'}: ${error.message}`));

  return {
    worker,
    async close(graceMs = 10_000) {
      const timer = setTimeout(() => closing.abort(new Error('worker closing')), graceMs);
      try {
        await worker.close();
      } finally {
        clearTimeout(timer);
        await Promise.all([...executors.values()].map((e) => e.close()));
      }
    },
  };
}
