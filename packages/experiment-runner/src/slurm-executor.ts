// The cluster executor: trials as `sbatch --array` tasks. Each task runs one job into its own folder
// under <run>/slurm/ on the cluster's shared file system (checkpoints live there, so a requeued task
// resumes); the coordinator, the run folder's only other writer, merges a finished task's output.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeFileAtomic, writeJsonAtomic } from './atomic-write';
import { selectBackend, type BackendName } from './backend';
import type { Experiment, TrialResources } from './define-experiment';
import { runTrialHere, type Executor, type TrialEvents, type TrialJob, type TrialOutcome } from './executor';
import { InputError } from './input-error';
import { loadExperiment } from './load-experiment';
import { collectTrialOutput, jobTrials, mergeTrialOutput, prepareScratch, ranOnHere, stableJobId, withRanOn, type RanOn } from './remote-trial';

const run = promisify(execFile);

export interface SlurmExecutorOptions {
  experiment: Experiment;
  /** Array tasks running at once (`--array=...%K`). Default 16. */
  throttle?: number;
  /** Submissions of a trial before it is marked failed (a failed trial or a task that died), counting the first. Default 2. */
  attempts?: number;
  /** Per-trial resources; override the experiment's `resources`. */
  resources?: TrialResources;
  /** How often squeue and the task folders are read. Default 5000 ms. */
  pollMs?: number;
  /** Extra sbatch options, passed as given (e.g. "--account=lab"). */
  sbatchOptions?: string[];
  log?: (message: string) => void;
}

/** What a task writes when its trial ends (completed or failed): the coordinator's signal to merge. */
interface TaskOutcome {
  outcome: TrialOutcome;
  ranOn: RanOn;
}

interface Watched {
  job: TrialJob;
  key: string;
  task?: string;
  submissions: number;
  events: TrialEvents;
  resolve: (outcome: TrialOutcome) => void;
  done: Promise<TrialOutcome>;
}

function checkResources(resources: TrialResources): TrialResources {
  const { cpusPerTask, mem, time } = resources;
  if (cpusPerTask !== undefined && (!Number.isInteger(cpusPerTask) || cpusPerTask < 1)) throw new InputError(`--cpus-per-task: expected a positive integer, got ${String(cpusPerTask)}`);
  if (mem !== undefined && !/^\d+[KMGT]?$/.test(mem)) throw new InputError(`--mem: expected a size such as 4000 or 4G, got ${JSON.stringify(mem)}`);
  if (time !== undefined && !/^(\d+-)?\d+(:\d{2}){0,2}$/.test(time)) throw new InputError(`--time: expected minutes or [D-]HH:MM:SS, got ${JSON.stringify(time)}`);
  return resources;
}

function sbatchResourceArgs(resources: TrialResources): string[] {
  const args: string[] = [];
  if (resources.cpusPerTask !== undefined) args.push(`--cpus-per-task=${resources.cpusPerTask}`);
  if (resources.mem) args.push(`--mem=${resources.mem}`);
  if (resources.time) args.push(`--time=${resources.time}`);
  if (resources.gres) args.push(`--gres=${resources.gres}`);
  if (resources.partition) args.push(`--partition=${resources.partition}`);
  return args;
}

/** The `lab` entry a task runs: from source (tsx) in the repository, dist/cli.js when published. */
function labEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts') ? join(dirname(here), '..', 'bin', 'lab.mjs') : join(dirname(here), 'cli.js');
}

/** The folder of one job on the shared file system: its private run folder, checkpoints and outcome. */
export function slurmJobDir(job: TrialJob): string {
  return join(job.runDir, 'slurm', 'jobs', stableJobId(job));
}

/** The end of a task's output file, so the reason it died is in the trial's error, not only on the cluster. */
function taskOutputTail(runDir: string, task: string): string {
  const path = join(runDir, 'slurm', `${task}.out`);
  if (!existsSync(path)) return '';
  const tail = readFileSync(path, 'utf8').trim().split('\n').slice(-6).join('\n');
  return `; ${path}${tail ? ` ends with:\n${tail}` : ' is empty'}`;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class SlurmExecutor implements Executor {
  readonly kind = 'slurm';
  readonly concurrency = 100_000;
  readonly settings: Record<string, string | number>;
  private readonly throttle: number;
  private readonly attempts: number;
  private readonly resources: TrialResources;
  private readonly pollMs: number;
  private readonly watched = new Map<string, Watched>();
  private batch: Watched[] = [];
  private flushing?: NodeJS.Immediate;
  private timer?: NodeJS.Timeout;
  private polling = false;

  constructor(private readonly options: SlurmExecutorOptions) {
    this.throttle = options.throttle ?? 16;
    this.attempts = options.attempts ?? 2;
    if (!Number.isInteger(this.throttle) || this.throttle < 1) throw new InputError(`--throttle: expected a positive integer, got ${String(options.throttle)}`);
    if (!Number.isInteger(this.attempts) || this.attempts < 1) throw new InputError(`--attempts: expected a positive integer, got ${String(options.attempts)}`);
    this.resources = checkResources({ ...options.experiment.resources, ...options.resources });
    this.pollMs = options.pollMs ?? 5000;
    this.settings = {
      throttle: this.throttle,
      attempts: this.attempts,
      pollMs: this.pollMs,
      ...Object.fromEntries(Object.entries(this.resources).filter(([, v]) => v !== undefined)),
    } as Record<string, string | number>;
  }

  run(job: TrialJob, events: TrialEvents): Promise<TrialOutcome> {
    const key = stableJobId(job);
    // A duplicate of a job being watched joins it instead of submitting the trial twice.
    const same = this.watched.get(key);
    if (same) return same.done;
    let resolveOutcome!: (outcome: TrialOutcome) => void;
    const done = new Promise<TrialOutcome>((resolve) => (resolveOutcome = resolve));
    const entry: Watched = { job, key, submissions: 0, events, resolve: resolveOutcome, done };
    this.watched.set(key, entry);
    events.signal.addEventListener('abort', () => this.finish(entry, { status: 'aborted' }), { once: true });
    // A task that finished, or is still queued or running, from before the coordinator died is not submitted
    // again. It counts as no submission: if it vanished without an outcome, the resume submits it again.
    const previous = this.submissions(job.runDir)[key];
    if (previous) entry.task = previous;
    else this.submitLater(entry);
    this.startPolling();
    return done;
  }

  private submissionsPath(runDir: string): string {
    return join(runDir, 'slurm', 'submissions.json');
  }

  /** job key → the array task (`<array id>_<index>`) last submitted for it. */
  private submissions(runDir: string): Record<string, string> {
    const path = this.submissionsPath(runDir);
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>) : {};
  }

  /** Jobs handed to `run` in the same tick go into one array. */
  private submitLater(entry: Watched): void {
    rmSync(join(slurmJobDir(entry.job), 'outcome.json'), { force: true });
    this.batch.push(entry);
    this.flushing ??= setImmediate(() => {
      this.flushing = undefined;
      const batch = this.batch.filter((e) => this.watched.has(e.key));
      this.batch = [];
      if (batch.length) void this.submit(batch).catch((error: unknown) => batch.forEach((e) => this.finish(e, { status: 'failed', error: { message: `sbatch: ${(error as Error).message}` } })));
    });
  }

  private async submit(batch: Watched[]): Promise<void> {
    const runDir = batch[0]!.job.runDir;
    const dir = join(runDir, 'slurm');
    mkdirSync(dir, { recursive: true });
    const stamp = `${Date.now()}`;
    const manifest = join(dir, `manifest-${stamp}.json`);
    writeJsonAtomic(manifest, { jobs: batch.map((e) => ({ ...e.job, attempt: e.job.attempt + e.submissions })) });
    const script = join(dir, `array-${stamp}.sh`);
    writeFileAtomic(script, `#!/bin/sh\n# One trial per array task (lab slurm-task); written by @lab/experiment-runner.\nexec ${quote(process.execPath)} ${quote(labEntry())} slurm-task ${quote(manifest)} "$SLURM_ARRAY_TASK_ID"\n`);
    const args = [
      '--parsable',
      `--job-name=lab-${basename(runDir)}`,
      `--array=0-${batch.length - 1}%${this.throttle}`,
      // Preempted or on a failed node: Slurm requeues the task, which resumes from its checkpoint.
      '--requeue',
      `--output=${join(dir, '%A_%a.out')}`,
      `--chdir=${dir}`,
      ...sbatchResourceArgs(this.resources),
      ...(this.options.sbatchOptions ?? []),
      script,
    ];
    const { stdout } = await run('sbatch', args);
    const arrayId = stdout.trim().split(';')[0]!;
    const recorded = this.submissions(runDir);
    batch.forEach((e, index) => {
      e.task = `${arrayId}_${index}`;
      e.submissions++;
      recorded[e.key] = e.task;
    });
    writeJsonAtomic(this.submissionsPath(runDir), recorded);
    this.options.log?.(`slurm: submitted array ${arrayId} (${batch.length} trial${batch.length === 1 ? '' : 's'}, ${this.throttle} at once)`);
  }

  private startPolling(): void {
    this.timer ??= setInterval(() => void this.poll(), this.pollMs);
  }

  /** Tasks of this run that Slurm still holds (pending, running, requeued), by `<array id>_<index>`. */
  private async liveTasks(runDir: string): Promise<Set<string> | undefined> {
    try {
      const { stdout } = await run('squeue', ['-h', '-r', '-o', '%i', `--name=lab-${basename(runDir)}`]);
      return new Set(stdout.split('\n').map((l) => l.trim()).filter(Boolean));
    } catch (error) {
      this.options.log?.(`slurm: squeue failed (${(error as Error).message.split('\n')[0]}); trying again`);
      return undefined;
    }
  }

  private async poll(): Promise<void> {
    if (this.polling || !this.watched.size) return;
    this.polling = true;
    try {
      const runDirs = new Set([...this.watched.values()].map((e) => e.job.runDir));
      const live = new Map<string, Set<string> | undefined>();
      for (const dir of runDirs) live.set(dir, await this.liveTasks(dir));
      for (const entry of [...this.watched.values()]) {
        if (!entry.task) continue;
        const outcome = this.readOutcome(entry);
        if (outcome) this.settle(entry, outcome);
        else if (live.get(entry.job.runDir)?.has(entry.task) === false && !this.readOutcome(entry)) {
          this.retryOrFail(entry, `Slurm task ${entry.task} ended without an outcome (killed, out of memory or time?)${taskOutputTail(entry.job.runDir, entry.task)}`);
        }
      }
    } finally {
      this.polling = false;
    }
  }

  private readOutcome(entry: Watched): TaskOutcome | undefined {
    const path = join(slurmJobDir(entry.job), 'outcome.json');
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as TaskOutcome) : undefined;
  }

  private settle(entry: Watched, result: TaskOutcome): void {
    if (result.outcome.status === 'failed') return this.retryOrFail(entry, result.outcome.error.message, result.ranOn);
    if (result.outcome.status === 'completed') mergeTrialOutput(entry.job.runDir, jobTrials(entry.job), collectTrialOutput(slurmJobDir(entry.job)));
    this.finish(entry, withRanOn(result.outcome, result.ranOn));
  }

  private retryOrFail(entry: Watched, message: string, ranOn?: RanOn): void {
    if (entry.submissions < this.attempts) {
      this.options.log?.(`slurm: trial ${entry.job.trial.id}: ${message}; submitting it again (attempt ${entry.submissions + 1} of ${this.attempts})`);
      entry.task = undefined;
      this.submitLater(entry);
      return;
    }
    this.finish(entry, { status: 'failed', error: { message }, ...(ranOn ? { ranOn } : {}) } as TrialOutcome);
  }

  private finish(entry: Watched, outcome: TrialOutcome): void {
    if (this.watched.get(entry.key) !== entry) return;
    this.watched.delete(entry.key);
    if (outcome.status === 'aborted' && entry.task) void run('scancel', [entry.task]).catch(() => {});
    entry.resolve(outcome);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * `lab slurm-task <manifest> <index>`: runs one job of an array in this process, into its folder on the
 * shared file system, and writes outcome.json last (atomically) so the coordinator never reads half of it.
 */
export async function runSlurmTask(manifestPath: string, index: number): Promise<void> {
  const { jobs } = JSON.parse(readFileSync(manifestPath, 'utf8')) as { jobs: TrialJob[] };
  const job = jobs[index];
  if (!job) throw new InputError(`slurm-task: ${manifestPath} has no job ${index} (it has ${jobs.length})`);
  const scratch = slurmJobDir(job);
  // A requeued task (preemption, node failure) keeps the checkpoint and resumes from it.
  prepareScratch(scratch, jobTrials(job), true);
  rmSync(join(scratch, 'outcome.json'), { force: true });
  const experiment = await loadExperiment(job.experimentFile!, job.experimentName);
  if (job.backend !== 'none') await selectBackend(job.backend as BackendName, { log: (m) => console.warn(m) });
  const outcome = await runTrialHere(experiment, { ...job, runDir: scratch }, { signal: new AbortController().signal });
  writeJsonAtomic(join(scratch, 'outcome.json'), { outcome, ranOn: ranOnHere('slurm', process.env.SLURM_ARRAY_JOB_ID ? `${process.env.SLURM_ARRAY_JOB_ID}_${process.env.SLURM_ARRAY_TASK_ID}` : undefined) } satisfies TaskOutcome);
}
