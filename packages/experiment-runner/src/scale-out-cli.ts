// The command-line side of the queue and cluster executors: `lab run --executor bullmq|slurm`, the
// `lab worker` and `lab slurm-task` commands, and reconnecting a resumed run to its executor.
import type { CAC, Command } from 'cac';
import { BullMQExecutor } from './bullmq-executor';
import type { Experiment } from './define-experiment';
import { abortOnSignals, EXIT } from './exit-codes';
import type { Executor } from './executor';
import { InputError } from './input-error';
import { loadExperiment } from './load-experiment';
import { startQueueWorker } from './queue-worker';
import { readRunConfig } from './run-folder';
import { runSlurmTask, SlurmExecutor } from './slurm-executor';

export const EXECUTOR_KINDS = ['local', 'bullmq', 'slurm'] as const;
export type ExecutorKind = (typeof EXECUTOR_KINDS)[number];

/** Adds the options of `lab run` (and `lab resume`) that choose and configure the executor. */
export function withExecutorOptions(command: Command): Command {
  return command
    .option('--executor <kind>', 'Where trials run: local (worker processes here) | bullmq (`lab worker`s on a Redis queue) | slurm (sbatch --array); default: local, on resume the one recorded')
    .option('--queue <url>', 'bullmq: the Redis/Valkey URL, e.g. redis://10.0.0.5:6379')
    .option('--queue-name <name>', 'bullmq: queue name (default lab-trials)')
    .option('--attempts <n>', 'bullmq, slurm: executions of a trial before it is marked failed (default 3 on bullmq, 2 on slurm)')
    .option('--root <dir>', 'bullmq: the project checkout the experiment path is relative to, the same on every worker (default: cwd)')
    .option('--throttle <k>', 'slurm: array tasks running at once (--array=...%K, default 16)')
    .option('--partition <name>', 'slurm: partition of every trial')
    .option('--cpus-per-task <n>', 'slurm: CPUs per trial')
    .option('--mem <size>', 'slurm: memory per trial (e.g. 4G)')
    .option('--time <limit>', 'slurm: time limit per trial ([D-]HH:MM:SS)')
    .option('--gres <spec>', 'slurm: generic resources per trial (e.g. gpu:1)');
}

function optionalInteger(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InputError(`${flag}: expected a positive integer, got ${String(value)}`);
  return n;
}

const optionalString = (value: unknown) => (value === undefined ? undefined : String(value));

/** Checks `--executor` and its options before any work; undefined for local (the runner's own executors). */
export function parseExecutorKind(value: unknown): ExecutorKind {
  const kind = String(value ?? 'local');
  if (!(EXECUTOR_KINDS as readonly string[]).includes(kind)) throw new InputError(`--executor: expected one of ${EXECUTOR_KINDS.join(', ')}, got ${kind}`);
  return kind as ExecutorKind;
}

/** The executor `lab run` options ask for, or undefined for the local one (chosen by --workers as before). */
export function executorFromOptions(options: Record<string, unknown>, experiment: Experiment, log: (m: string) => void): Executor | undefined {
  const kind = parseExecutorKind(options.executor);
  if (kind === 'local') {
    for (const flag of ['queue', 'throttle', 'partition']) {
      if (options[flag] !== undefined) throw new InputError(`--${flag}: only with --executor bullmq or slurm`);
    }
    return undefined;
  }
  const attempts = optionalInteger(options.attempts, '--attempts');
  if (kind === 'bullmq') {
    if (options.queue === undefined) throw new InputError('--queue: --executor bullmq needs the Redis URL, e.g. --queue redis://127.0.0.1:6379');
    return new BullMQExecutor({
      queueUrl: String(options.queue),
      experiment,
      log,
      ...(options.queueName !== undefined ? { queueName: String(options.queueName) } : {}),
      ...(options.root !== undefined ? { projectRoot: String(options.root) } : {}),
      ...(attempts !== undefined ? { attempts } : {}),
    });
  }
  const cpus = optionalInteger(options.cpusPerTask, '--cpus-per-task');
  const throttle = optionalInteger(options.throttle, '--throttle');
  const resources = Object.fromEntries(
    Object.entries({ cpusPerTask: cpus, mem: optionalString(options.mem), time: optionalString(options.time), gres: optionalString(options.gres), partition: optionalString(options.partition) }).filter(([, v]) => v !== undefined),
  );
  return new SlurmExecutor({ experiment, log, resources, ...(throttle !== undefined ? { throttle } : {}), ...(attempts !== undefined ? { attempts } : {}) });
}

const RESUME_FLAGS = ['queue', 'queueName', 'root', 'attempts', 'throttle', 'partition', 'cpusPerTask', 'mem', 'time', 'gres'];

/**
 * The executor a resumed run goes on with: the queue or cluster recorded in its config.json (options
 * given to `lab resume` win), or undefined for a run of the local executors.
 */
export async function executorForResume(runDir: string, options: Record<string, unknown>, log: (m: string) => void): Promise<Executor | undefined> {
  const config = readRunConfig(runDir);
  const recorded = config.executor.kind === 'bullmq' || config.executor.kind === 'slurm' ? config.executor.kind : undefined;
  const kind = options.executor !== undefined ? parseExecutorKind(options.executor) : recorded;
  if (!kind || kind === 'local') return undefined;
  if (!config.experiment.file) throw new InputError(`resume ${runDir}: the experiment's module file is not recorded in config.json`);
  const experiment = await loadExperiment(config.experiment.file, config.experiment.name);
  const settings = kind === recorded ? (config.executor.settings ?? {}) : {};
  const fromSettings: Record<string, unknown> = {
    executor: kind,
    ...(settings.queue !== undefined ? { queue: settings.queue } : {}),
    ...(settings.queueName !== undefined ? { queueName: settings.queueName } : {}),
    ...(settings.attempts !== undefined ? { attempts: settings.attempts } : {}),
    ...(settings.throttle !== undefined ? { throttle: settings.throttle } : {}),
    ...Object.fromEntries(['partition', 'cpusPerTask', 'mem', 'time', 'gres'].filter((k) => settings[k] !== undefined).map((k) => [k, settings[k]])),
  };
  const given = Object.fromEntries(Object.entries(options).filter(([key, value]) => value !== undefined && RESUME_FLAGS.includes(key)));
  return executorFromOptions({ ...fromSettings, ...given }, experiment, log);
}

/** `lab worker`: runs until SIGINT/SIGTERM, then finishes (or after a grace period aborts) its trials. */
export function addWorkerCommand(cli: CAC, setResult: (result: Promise<number>) => void): void {
  cli
    .command('worker', 'Run trials from a BullMQ queue (lab run --executor bullmq) until stopped; each trial in a child process')
    .option('--queue <url>', 'Redis/Valkey URL, e.g. redis://10.0.0.5:6379 (required)')
    .option('--queue-name <name>', 'Queue name (default lab-trials)')
    .option('--concurrency <n>', 'Trials at once on this machine (default 1)')
    .option('--root <dir>', "The project checkout the runs' experiment paths are relative to (default: cwd)")
    .option('--checkpoint-dir <dir>', 'A folder all workers share (NFS): checkpoints go there, so a retried trial resumes; without it a retry restarts the trial')
    .option('--lock-ms <ms>', 'A worker silent this long is taken for dead and its trial re-run elsewhere (default 30000)')
    .example('  $ lab worker --queue redis://10.0.0.5:6379 --concurrency 2')
    .action((options: Record<string, unknown>) => {
      setResult(
        (async () => {
          if (options.queue === undefined) throw new InputError('--queue: expected the Redis URL the coordinator uses, e.g. --queue redis://127.0.0.1:6379');
          const concurrency = optionalInteger(options.concurrency, '--concurrency');
          const lockMs = optionalInteger(options.lockMs, '--lock-ms');
          const handle = startQueueWorker({
            queueUrl: String(options.queue),
            ...(options.queueName !== undefined ? { queueName: String(options.queueName) } : {}),
            ...(concurrency !== undefined ? { concurrency } : {}),
            ...(options.root !== undefined ? { root: String(options.root) } : {}),
            ...(options.checkpointDir !== undefined ? { checkpointDir: String(options.checkpointDir) } : {}),
            ...(lockMs !== undefined ? { lockMs } : {}),
            log: (m) => process.stderr.write(`lab worker: ${m}\n`),
          });
          await handle.worker.waitUntilReady();
          process.stdout.write(`lab worker: pid ${process.pid} waiting for trials on ${String(options.queue)}\n`);
          const signals = abortOnSignals((sig) => `\nlab worker: ${sig}: finishing the running trials (again to quit at once)\n`);
          await new Promise<void>((done) => signals.signal.addEventListener('abort', () => done(), { once: true }));
          signals.dispose();
          await handle.close();
          return EXIT.ok;
        })(),
      );
    });
}

/** `lab slurm-task <manifest> <index>`: what each array task runs (written into the sbatch script). */
export function addSlurmTaskCommand(cli: CAC, setResult: (result: Promise<number>) => void): void {
  cli.command('slurm-task <manifest> <index>', 'Internal: run one trial of a Slurm array (lab run --executor slurm)').action((manifest: string, index: string) => {
    setResult(
      (async () => {
        const n = Number(index);
        if (!Number.isInteger(n) || n < 0) throw new InputError(`slurm-task: index: expected a non-negative integer, got ${index}`);
        await runSlurmTask(manifest, n);
        return EXIT.ok;
      })(),
    );
  });
}
