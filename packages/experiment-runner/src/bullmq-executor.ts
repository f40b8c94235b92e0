// The coordinator's side of the queue executor: enqueues trials on BullMQ (Redis or Valkey) for
// `lab worker` processes on any machine, and writes the run folder itself from the results they send.
import { Job, Queue, QueueEvents } from 'bullmq';
import { resolve } from 'node:path';
import type { Experiment } from './define-experiment';
import type { Executor, TrialEvents, TrialJob, TrialOutcome } from './executor';
import { InputError } from './input-error';
import {
  codeIdentity,
  dataFingerprint,
  jobTrials,
  mergeTrialOutput,
  relativeExperimentPath,
  stableJobId,
  type CodeIdentity,
  type RemoteResult,
  withRanOn,
} from './remote-trial';

export const DEFAULT_QUEUE_NAME = 'lab-trials';

/** What a queued job carries: the trial job untouched, plus what a worker needs to find and check the code. */
export interface QueuedTrial {
  job: TrialJob;
  /** The experiment module relative to the project root (workers resolve it against their own root). */
  experimentPath: string;
  code: CodeIdentity;
  /** Per trial id, the experiment's data fingerprint on the coordinator (absent when it declares none). */
  data: Record<string, string>;
}

export interface BullMQExecutorOptions {
  /** redis://host:port[/db] or rediss:// (TLS); Valkey speaks the same protocol. */
  queueUrl: string;
  queueName?: string;
  experiment: Experiment;
  /** The folder the experiment file is named relative to, the same checkout on every worker (default: cwd). */
  projectRoot?: string;
  /** Executions of a trial before it is marked failed, counting the first (BullMQ `attempts`). Default 3. */
  attempts?: number;
  /** First retry delay, doubled each retry (BullMQ exponential back-off). Default 1000 ms. */
  backoffMs?: number;
  /** Trials enqueued at once (the scheduler's concurrency); the workers decide how many run. Default 1000. */
  maxQueued?: number;
  log?: (message: string) => void;
}

/** A queue URL is checked up front so a typo is an InputError naming the flag, not a hang on connect. */
export function checkQueueUrl(url: string, flag = '--queue'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InputError(`${flag}: expected a Redis URL such as redis://127.0.0.1:6379, got ${JSON.stringify(url)}`);
  }
  if (!['redis:', 'rediss:', 'valkey:', 'valkeys:'].includes(parsed.protocol)) {
    throw new InputError(`${flag}: expected a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
  }
  return url.replace(/^valkey/, 'redis');
}

function positiveInteger(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1) throw new InputError(`${field}: expected a positive integer, got ${String(value)}`);
  return value;
}

/** BullMQ's options for a connection from a URL; `maxRetriesPerRequest: null` is what its blocking commands require. */
export function connectionFor(url: string): { url: string; maxRetriesPerRequest: null } {
  return { url, maxRetriesPerRequest: null };
}

export class BullMQExecutor implements Executor {
  readonly kind = 'bullmq';
  readonly concurrency: number;
  /** Recorded in config.json (`executor.settings`) so `lab resume` reconnects to the same queue. */
  readonly settings: Record<string, string | number>;
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly root: string;
  private code?: CodeIdentity;

  constructor(private readonly options: BullMQExecutorOptions) {
    const url = checkQueueUrl(options.queueUrl);
    this.attempts = positiveInteger(options.attempts ?? 3, '--attempts');
    this.backoffMs = options.backoffMs ?? 1000;
    if (!Number.isFinite(this.backoffMs) || this.backoffMs < 0) throw new InputError(`--backoff-ms: expected a non-negative number, got ${String(options.backoffMs)}`);
    this.concurrency = positiveInteger(options.maxQueued ?? 1000, 'maxQueued');
    this.root = resolve(options.projectRoot ?? process.cwd());
    const name = options.queueName ?? DEFAULT_QUEUE_NAME;
    this.settings = { queue: url, queueName: name, attempts: this.attempts, backoffMs: this.backoffMs };
    this.queue = new Queue(name, { connection: connectionFor(url) });
    this.events = new QueueEvents(name, { connection: connectionFor(url) });
    // Without a listener a lost connection would be an unhandled 'error' event; ioredis reconnects by itself.
    this.queue.on('error', (error) => options.log?.(`queue ${name}: ${error.message}`));
    this.events.on('error', (error) => options.log?.(`queue ${name} events: ${error.message}`));
  }

  private async queuedTrial(job: TrialJob): Promise<QueuedTrial> {
    if (!job.experimentFile) throw new InputError('the bullmq executor needs the experiment module file (experimentFile)');
    this.code ??= codeIdentity(job.experimentFile);
    const data: Record<string, string> = {};
    for (const trial of jobTrials(job)) {
      const fingerprint = await dataFingerprint(this.options.experiment, trial);
      if (fingerprint !== undefined) data[trial.id] = fingerprint;
    }
    return { job, experimentPath: relativeExperimentPath(this.root, job.experimentFile), code: this.code, data };
  }

  /**
   * Enqueues with a stable job id: BullMQ ignores an add whose id exists, so a duplicate enqueue, or a
   * resume after the coordinator died, joins the job already queued, running or finished. Only a job
   * that failed for good is removed and enqueued afresh (a resume retries failed trials).
   */
  private async enqueue(job: TrialJob): Promise<Job> {
    const jobId = stableJobId(job);
    const existing = await Job.fromId(this.queue, jobId);
    if (existing && (await existing.getState()) === 'failed') await existing.remove();
    else if (existing) return existing;
    await this.events.waitUntilReady();
    return this.queue.add(job.trial.id, await this.queuedTrial(job), {
      jobId,
      attempts: this.attempts,
      backoff: { type: 'exponential', delay: this.backoffMs },
      // Kept after completion: a resumed coordinator takes the result of a trial finished while it was away.
      removeOnComplete: false,
      removeOnFail: false,
    });
  }

  private readonly inFlight = new Map<string, Promise<TrialOutcome>>();

  run(job: TrialJob, events: TrialEvents): Promise<TrialOutcome> {
    // The same job twice in this coordinator waits for one result, merged once.
    const key = stableJobId(job);
    const running = this.inFlight.get(key) ?? this.runOnce(job, events).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, running);
    return running;
  }

  private async runOnce(job: TrialJob, events: TrialEvents): Promise<TrialOutcome> {
    const queued = await this.enqueue(job);
    const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
      const p = data as { done?: number; total?: number; note?: string } | null;
      if (jobId === queued.id && typeof p?.done === 'number' && typeof p.total === 'number') events.onProgress?.(p.done, p.total, p.note);
    };
    this.events.on('progress', onProgress);
    try {
      const result = await this.finished(queued, events.signal);
      if (result === 'aborted') return { status: 'aborted' };
      if ('failed' in result) return { status: 'failed', error: { message: result.failed } };
      const written = mergeTrialOutput(job.runDir, jobTrials(job), result.output);
      if (!written) this.options.log?.(`trial ${job.trial.id}: a result arrived for a trial already completed; kept the finished one`);
      return withRanOn(result.outcome, result.ranOn);
    } finally {
      this.events.off('progress', onProgress);
    }
  }

  /** The job's result, its failure (attempts spent, a refusing worker) or 'aborted' when the run stops first. */
  private async finished(job: Job, signal: AbortSignal): Promise<RemoteResult | { failed: string } | 'aborted'> {
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<'aborted'>((done) => {
      onAbort = () => done('aborted');
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    const settled = job.waitUntilFinished(this.events).then(
      (value: unknown) => value as RemoteResult,
      (error: unknown) => ({ failed: (error as Error).message }),
    );
    try {
      const result = await Promise.race([settled, aborted]);
      // A stopped run takes back the trials no worker has started; running ones finish and a resume collects them.
      if (result === 'aborted') await job.remove().catch(() => {});
      return result;
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.events.close(), this.queue.close()]);
  }
}
