// What executors that run trials away from the run folder share: a private scratch run folder per job,
// the output a finished job sends back, the coordinator's merge of it, and the code identity workers check.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, relative, sep } from 'node:path';
import { appendLine, writeFileAtomic } from './atomic-write';
import type { Experiment } from './define-experiment';
import type { TrialJob, TrialOutcome } from './executor';
import type { TrialSpec } from './plan';
import { readTrialStatus } from './run-folder';
import { gitInfo, ownVersion } from './run-experiment';
import { readCheckpointRecord } from './trial-context';

/** The trials one job runs: its trial, plus the members of a fused group when the job carries one. */
export function jobTrials(job: TrialJob): TrialSpec[] {
  return job.group?.length ? job.group.map((m) => m.trial) : [job.trial];
}

/**
 * A job id that is the same every time the coordinator (or a resumed one) enqueues the same trials of
 * the same run, so a queue drops a duplicate enqueue and a resume finds the job a worker already ran.
 */
export function stableJobId(job: TrialJob): string {
  const trials = jobTrials(job).map((t) => ({ id: t.id, params: t.params, seed: t.seed, fold: t.fold ?? null }));
  const hash = createHash('sha256').update(JSON.stringify({ run: basename(job.runDir), experiment: job.experimentName, trials })).digest('hex');
  // BullMQ refuses ':' in custom ids and integer-looking ids; the run id keeps `redis-cli` listings readable.
  return `${basename(job.runDir).replace(/[^A-Za-z0-9_.-]/g, '_')}-${hash.slice(0, 24)}`;
}

/** A file of a trial's folder, sent from the worker to the coordinator. */
export interface TrialFile {
  /** Relative to the run folder, '/'-separated: `trials/<id>/artifacts/<name>`. */
  path: string;
  base64: string;
}

/** What a worker sends back for a job: metrics lines as logged, and the files its trials wrote. */
export interface TrialOutput {
  lines: string[];
  files: TrialFile[];
}

/** Where a job ran, recorded in the trial's status.json and shown by the report and `lab ls`. */
export interface RanOn {
  host: string;
  pid: number;
  executor: string;
  jobId?: string;
}

/** A job's outcome as a worker returns it: the trial's outcome untouched, its output, where it ran. */
export interface RemoteResult {
  outcome: TrialOutcome;
  output: TrialOutput;
  ranOn: RanOn;
}

export function ranOnHere(executor: string, jobId?: string): RanOn {
  return { host: hostname(), pid: process.pid, executor, ...(jobId !== undefined ? { jobId } : {}) };
}

const CHECKPOINT_FILE = /(^|\/)checkpoint(\.json|-.*\.bin)$/;

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((entry) => statSync(join(dir, entry)).isFile());
}

/**
 * Prepares a job's scratch run folder. Without `keepCheckpoint` it starts empty (a retry restarts the
 * trial); with it, a checkpoint left by an earlier attempt is kept and the metrics lines logged after it
 * are dropped, exactly as `lab resume` prunes a run folder, so the retry neither loses nor repeats lines.
 */
export function prepareScratch(scratch: string, trials: TrialSpec[], keepCheckpoint: boolean): void {
  if (!keepCheckpoint) rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const metricsPath = join(scratch, 'metrics.jsonl');
  if (!keepCheckpoint || !existsSync(metricsPath)) return;
  const keepUpTo = new Map(trials.map((t) => [t.id, readCheckpointRecord(join(scratch, 'trials', t.id))?.seq ?? 0]));
  const kept = readFileSync(metricsPath, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        const parsed = JSON.parse(line) as { trial?: string; seq?: number };
        return typeof parsed.seq === 'number' && parsed.seq < (keepUpTo.get(parsed.trial ?? '') ?? 0);
      } catch {
        return false; // a line cut short by the killed attempt
      }
    });
  writeFileAtomic(metricsPath, kept.length ? `${kept.join('\n')}\n` : '');
  // Outputs of the earlier attempt are rewritten by the retry; stale ones must not be sent back.
  for (const t of trials) {
    for (const sub of ['artifacts', 'figures']) rmSync(join(scratch, 'trials', t.id, sub), { recursive: true, force: true });
  }
}

/** Reads what a finished job wrote into its scratch run folder: metrics lines and trial files (not checkpoints). */
export function collectTrialOutput(scratch: string): TrialOutput {
  const metricsPath = join(scratch, 'metrics.jsonl');
  const lines = existsSync(metricsPath) ? readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l.trim() !== '') : [];
  const files = listFiles(join(scratch, 'trials'))
    .map((entry) => entry.split(sep).join('/'))
    .filter((entry) => !CHECKPOINT_FILE.test(entry) && !/(^|\/)status\.json$/.test(entry) && !/\.tmp-/.test(entry))
    .map((entry) => ({ path: `trials/${entry}`, base64: readFileSync(join(scratch, 'trials', entry)).toString('base64') }));
  return { lines, files };
}

/**
 * Writes a job's output into the run folder (the coordinator is its only writer). A trial already
 * recorded as completed is left as it is: a late result (a worker that lost its lock, a duplicate) never
 * overwrites a finished one. Returns false when nothing was written for that reason.
 */
export function mergeTrialOutput(runDir: string, trials: TrialSpec[], output: TrialOutput): boolean {
  if (trials.some((t) => readTrialStatus(runDir, t.id)?.status === 'completed')) return false;
  const ids = new Set(trials.map((t) => t.id));
  for (const file of output.files) {
    const [top, id] = file.path.split('/');
    // Only the job's own trial folders: a malformed or hostile result cannot write elsewhere.
    if (top !== 'trials' || !id || !ids.has(id) || file.path.includes('..')) throw new Error(`result file ${file.path}: not inside the job's trial folders`);
    writeFileAtomic(join(runDir, ...file.path.split('/')), Buffer.from(file.base64, 'base64'));
  }
  const metricsPath = join(runDir, 'metrics.jsonl');
  for (const line of output.lines) {
    const trial = (JSON.parse(line) as { trial?: string }).trial;
    if (trial === undefined || !ids.has(trial)) throw new Error(`result metrics line for trial ${String(trial)}: not one of the job's trials`);
    appendLine(metricsPath, line);
  }
  return true;
}

/** What must match between the coordinator and a worker for a worker to run a run's trials. */
export interface CodeIdentity {
  runner: string;
  git: string | null;
  /** SHA-256 of the experiment module's source: catches an edited file on an unchanged commit. */
  experimentSha256: string;
}

export function codeIdentity(experimentFile: string): CodeIdentity {
  return {
    runner: ownVersion(),
    git: gitInfo(dirname(experimentFile)).commit,
    experimentSha256: createHash('sha256').update(readFileSync(experimentFile)).digest('hex'),
  };
}

/** Why a worker must refuse a job (code or data differ from the run's), or undefined when they match. */
export function identityMismatch(expected: CodeIdentity, actual: CodeIdentity): string | undefined {
  const differs = (['runner', 'git', 'experimentSha256'] as const).filter((key) => expected[key] !== actual[key]);
  if (!differs.length) return undefined;
  return `code version differs from the run's: ${differs.map((key) => `${key} ${String(actual[key])} here, ${String(expected[key])} in the run`).join('; ')}`;
}

/** The experiment's data fingerprint for one trial's parameters, or undefined when it declares none. */
export async function dataFingerprint(experiment: Experiment, trial: TrialSpec): Promise<string | undefined> {
  return experiment.dataFingerprint ? String(await experiment.dataFingerprint(trial.params)) : undefined;
}

/** The experiment module's path relative to the project root the coordinator and workers share ('/'-separated). */
export function relativeExperimentPath(root: string, file: string): string {
  const rel = relative(root, file);
  if (rel.startsWith('..')) throw new Error(`experiment file ${file} is outside the project root ${root}`);
  return rel.split(sep).join('/');
}

/** The outcome with where it ran: the scheduler records `ranOn` in the trial's status.json (TrialStatus.ranOn). */
export function withRanOn(outcome: TrialOutcome, ranOn: RanOn): TrialOutcome {
  return Object.assign({}, outcome, { ranOn });
}
