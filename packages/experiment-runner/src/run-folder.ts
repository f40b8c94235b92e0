import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from './atomic-write';
import type { BackendName, BackendPreference } from './backend';
import type { Params, SweepSpec } from './define-experiment';
import type { TrialSpec } from './plan';
import { readCheckpointRecord } from './trial-context';
import { InputError } from './input-error';

export interface RunConfig {
  id: string;
  createdAt: string;
  experiment: { name: string; description: string; background?: string; hypotheses: string[]; file?: string; primaryMetric?: { name: string; goal: 'max' | 'min'; compare?: 'first-variant' | 'none' } };
  params: Params;
  sweep: SweepSpec;
  seeds: number[];
  folds?: number;
  varied: string[];
  trials: TrialSpec[];
  /** `native`: what @lab/tfjs-train said of its native kernels (e.g. "native kernels on onednn SGEMM"). */
  backend: { preference: BackendPreference | 'none'; name: BackendName | 'none'; fastTraining: boolean; native?: string; failures: string[] };
  executor: { kind: string; workers: number };
  failFast: boolean;
  versions: Record<string, string>;
  git: { commit: string | null; dirty: boolean | null };
  host: { hostname: string; platform: string; arch: string; cpus: number; node: string; user: string | null };
}

export type RunStatus = 'running' | 'completed' | 'failed' | 'interrupted';

export interface RunState {
  status: RunStatus;
  startedAt: string;
  finishedAt?: string;
  /** One entry per start: the first run and each resume. */
  sessions: { startedAt: string; finishedAt?: string; pid: number; status?: RunStatus }[];
}

export type TrialStatusName = 'running' | 'completed' | 'failed';

export interface TrialStatus {
  id: string;
  status: TrialStatusName;
  attempt: number;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  error?: { message: string; stack?: string };
}

export interface MetricsLine {
  trial: string;
  seq: number;
  time: string;
  [metric: string]: unknown;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** `YYYYMMDD_HHMMSS` in UTC. */
export function runTimestamp(date: Date): string {
  return `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}_${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
}

/** Experiment names may hold anything; folder names keep letters, digits, '-' and '_'. */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 60);
  return slug || 'experiment';
}

/**
 * Creates `runs/<YYYYMMDD_HHMMSS>_<name>/`. mkdir without `recursive` fails if the folder exists, so
 * two runs started in the same second (even in two processes) get `_2`, `_3`, ... instead of colliding.
 */
export function createRunDir(runsDir: string, name: string, now = new Date()): string {
  mkdirSync(runsDir, { recursive: true });
  const base = `${runTimestamp(now)}_${slugify(name)}`;
  for (let i = 1; i < 10_000; i++) {
    const dir = resolve(runsDir, i === 1 ? base : `${base}_${i}`);
    try {
      mkdirSync(dir);
      mkdirSync(join(dir, 'trials'));
      return dir;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  throw new Error(`createRunDir: could not find a free folder name for ${base} in ${runsDir}`);
}

function readJson<T>(path: string, what: string): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new InputError(`${what}: ${path} not found (is this a run folder?)`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new InputError(`${what}: ${path} is not valid JSON (${(error as Error).message})`);
  }
}

export function readRunConfig(runDir: string): RunConfig {
  return readJson<RunConfig>(join(runDir, 'config.json'), 'run config');
}

export function writeRunConfig(runDir: string, config: RunConfig): void {
  writeJsonAtomic(join(runDir, 'config.json'), config);
}

export function readRunState(runDir: string): RunState | undefined {
  const path = join(runDir, 'run.json');
  return existsSync(path) ? readJson<RunState>(path, 'run state') : undefined;
}

export function writeRunState(runDir: string, state: RunState): void {
  writeJsonAtomic(join(runDir, 'run.json'), state);
}

export function trialDir(runDir: string, trialId: string): string {
  return join(runDir, 'trials', trialId);
}

export function readTrialStatus(runDir: string, trialId: string): TrialStatus | undefined {
  const path = join(trialDir(runDir, trialId), 'status.json');
  return existsSync(path) ? readJson<TrialStatus>(path, `trial ${trialId} status`) : undefined;
}

export function writeTrialStatus(runDir: string, status: TrialStatus): void {
  // "running" needs no flush: if a power cut loses it, the trial simply counts as not started.
  writeJsonAtomic(join(trialDir(runDir, status.id), 'status.json'), status, { fsync: status.status !== 'running' });
}

/** Orders metrics lines by trial id, then by the order the trial logged them. */
export function byTrialThenSeq(a: Pick<MetricsLine, 'trial' | 'seq'>, b: Pick<MetricsLine, 'trial' | 'seq'>): number {
  return a.trial === b.trial ? a.seq - b.seq : a.trial < b.trial ? -1 : 1;
}

/** Parses metrics.jsonl, skipping a last line cut short by a kill (no closing newline or invalid JSON). */
export function readMetrics(runDir: string): MetricsLine[] {
  const path = join(runDir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  const lines: MetricsLine[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const parsed = JSON.parse(line) as MetricsLine;
      if (typeof parsed.trial === 'string' && typeof parsed.seq === 'number') lines.push(parsed);
    } catch {
      // A torn line from a killed writer carries nothing recoverable.
    }
  }
  return lines;
}

/**
 * Before a resume: keeps every line of completed trials and, for the others, only the lines their last
 * checkpoint covers (seq < checkpoint.seq), rewriting metrics.jsonl atomically. The restarted trial
 * then logs the rest again, so no line is lost or duplicated. Returns the number of lines dropped.
 */
export function pruneMetricsForResume(runDir: string, completed: Set<string>): number {
  const lines = readMetrics(runDir);
  const keepUpTo = new Map<string, number>();
  const kept: MetricsLine[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    if (!completed.has(line.trial) && !keepUpTo.has(line.trial)) {
      keepUpTo.set(line.trial, readCheckpointRecord(trialDir(runDir, line.trial))?.seq ?? 0);
    }
    if (!completed.has(line.trial) && line.seq >= (keepUpTo.get(line.trial) ?? 0)) continue;
    const key = `${line.trial}\u0000${line.seq}`;
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(line);
  }
  const dropped = lines.length - kept.length;
  const path = join(runDir, 'metrics.jsonl');
  if (existsSync(path)) writeFileAtomic(path, kept.map((l) => `${JSON.stringify(l)}\n`).join(''));
  return dropped;
}

/** A lock file naming the process that drives the run, so a second `lab resume` cannot run beside it. */
export function acquireRunLock(runDir: string): () => void {
  const path = join(runDir, 'run.lock');
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = liveLockHolder(runDir);
      if (pid !== undefined && pid !== process.pid) {
        throw new InputError(`run ${basename(runDir)} is in use by process ${pid} (remove ${path} if that is wrong)`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new Error(`could not lock run ${runDir}`);
}

/** The pid in run.lock when that process is alive; undefined for no lock or a stale one. */
function liveLockHolder(runDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(join(runDir, 'run.lock'), 'utf8').trim());
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface RunListing {
  id: string;
  dir: string;
  name: string;
  createdAt: string;
  status: RunStatus | 'unknown';
  trials: number;
  completed: number;
  failed: number;
  backend: string;
}

/** Every run folder under runsDir, newest first. */
export function listRuns(runsDir = 'runs'): RunListing[] {
  if (!existsSync(runsDir)) return [];
  const runs: RunListing[] = [];
  for (const entry of readdirSync(runsDir)) {
    const dir = resolve(runsDir, entry);
    try {
      // A broken link or an unreadable entry is not a run, and must not stop the listing.
      if (!statSync(dir).isDirectory() || !existsSync(join(dir, 'config.json'))) continue;
      const config = readRunConfig(dir);
      const state = readRunState(dir);
      let completed = 0;
      let failed = 0;
      for (const trial of config.trials) {
        const status = readTrialStatus(dir, trial.id)?.status;
        if (status === 'completed') completed++;
        if (status === 'failed') failed++;
      }
      runs.push({
        id: config.id,
        dir,
        name: config.experiment.name,
        createdAt: config.createdAt,
        // "running" in run.json but nobody holds the lock: the driving process was killed.
        status: state?.status === 'running' && liveLockHolder(dir) === undefined ? 'interrupted' : (state?.status ?? 'unknown'),
        trials: config.trials.length,
        completed,
        failed,
        backend: config.backend.name,
      });
    } catch {
      // A folder whose config cannot be read is not listed as a run.
    }
  }
  return runs.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}
