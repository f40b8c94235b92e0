import type { FuseSetting } from './trial-group';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from './atomic-write';
import type { BackendName, BackendPreference, WebGpuAdapter } from './backend';
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
  /** `native`: what @lab/tfjs-train said of its native kernels (e.g. "native kernels on onednn SGEMM"); `adapter`: webgpu's GPU adapter. */
  backend: { preference: BackendPreference | 'none'; name: BackendName | 'none'; adapter?: WebGpuAdapter; fastTraining: boolean; native?: string; failures: string[] };
  /** `settings`: how to reach a queue or cluster executor again (see Executor.settings), for `lab resume`. */
  executor: { kind: string; workers: number; settings?: Record<string, string | number> };
  /**
   * How the trials compute, the same for every trial of the run: `threadsPerWorker` is the threads of the
   * native kernels (OMP_NUM_THREADS) in each trial's process. A resume gives its workers this value
   * whatever its worker count. Absent in runs recorded before it existed, or with an executor that does not say.
   */
  /** How trials computed: native-kernel threads per worker; fused trials ('auto', 'off' or at most K per group). */
  execution?: { threadsPerWorker?: number; fuse?: FuseSetting };
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
  /** Which machine (and process, queue job) ran the trial, when its executor says (queue and cluster executors). */
  ranOn?: { host: string; pid?: number; executor?: string; jobId?: string };
  /** The trials this one trained with as one computation (fused trials), when it did. */
  fusedWith?: string[];
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

/**
 * A metrics.jsonl line that could not be used (not JSON, cut short, not a metrics line, a repeated
 * seq), or a line missing from a trial (a gap in its seq numbers). `line` is 1-based; for a gap it is
 * the line that follows the gap.
 */
export interface MetricsProblem {
  file: string;
  line: number;
  /** The trial the line belongs to, when it can be told (from the line's text or from the gap). */
  trial?: string;
  seq?: number;
  reason: string;
}

export interface CheckedMetrics {
  /** Every usable line, in file order. */
  lines: MetricsLine[];
  problems: MetricsProblem[];
}

interface RawMetricsLine {
  /** 1-based line number. */
  number: number;
  text: string;
  parsed?: MetricsLine;
  /** Why the line is unusable; undefined for a good line. */
  bad?: string;
  /** Trial and seq read from the text of an unusable line, when they can be. */
  trial?: string;
  seq?: number;
}

function metricsPath(runDir: string): string {
  return join(runDir, 'metrics.jsonl');
}

/** Every line of metrics.jsonl with its number; empty lines are skipped, a last line without its line break is marked. */
function scanMetrics(path: string): RawMetricsLine[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const parts = text.split('\n');
  const out: RawMetricsLine[] = [];
  parts.forEach((part, i) => {
    if (!part.trim()) return;
    const cutShort = i === parts.length - 1;
    const raw: RawMetricsLine = { number: i + 1, text: part };
    try {
      const parsed = JSON.parse(part) as MetricsLine;
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && typeof parsed.trial === 'string' && Number.isInteger(parsed.seq) && parsed.seq >= 0) {
        raw.parsed = parsed;
      } else {
        raw.bad = 'not a metrics line (expected an object with a "trial" string and a "seq" integer)';
      }
    } catch (error) {
      raw.bad = `not valid JSON (${(error as Error).message})`;
    }
    if (cutShort) raw.bad = raw.bad ? `cut short (no line break at the end of the file) and ${raw.bad}` : undefined;
    if (raw.bad) {
      // The runner writes "trial" then "seq" first: a damaged line usually still says whose it was.
      const trial = /"trial"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(part)?.[1];
      const seq = /"seq"\s*:\s*(\d+)\s*[,}]/.exec(part)?.[1];
      if (trial !== undefined) raw.trial = trial;
      if (seq !== undefined) raw.seq = Number(seq);
    }
    out.push(raw);
  });
  return out;
}

/** Problems of scanned lines: each unusable line, then each trial's repeated and missing seq numbers. */
function problemsOf(path: string, raw: RawMetricsLine[]): MetricsProblem[] {
  const problems: MetricsProblem[] = [];
  const bySeq = new Map<string, Map<number, number>>();
  /** Seq numbers that damaged lines still name: not missing, already reported. */
  const claimed = new Map<string, Map<number, number>>();
  for (const r of raw) {
    if (r.bad) {
      problems.push({ file: path, line: r.number, ...(r.trial !== undefined ? { trial: r.trial } : {}), ...(r.seq !== undefined ? { seq: r.seq } : {}), reason: r.bad });
      if (r.trial !== undefined && r.seq !== undefined) {
        if (!claimed.has(r.trial)) claimed.set(r.trial, new Map());
        claimed.get(r.trial)!.set(r.seq, r.number);
      }
      continue;
    }
    const { trial, seq } = r.parsed!;
    if (!bySeq.has(trial)) bySeq.set(trial, new Map());
    const seen = bySeq.get(trial)!;
    const first = seen.get(seq);
    if (first !== undefined) problems.push({ file: path, line: r.number, trial, seq, reason: `seq ${seq} logged a second time (first at line ${first})` });
    else seen.set(seq, r.number);
  }
  for (const [trial, seen] of bySeq) {
    const max = Math.max(...seen.keys());
    const bad = claimed.get(trial) ?? new Map<number, number>();
    const lineOf = (seq: number) => seen.get(seq) ?? bad.get(seq);
    for (let seq = 0; seq < max; seq++) {
      if (lineOf(seq) !== undefined) continue;
      let end = seq;
      while (lineOf(end + 1) === undefined) end++;
      const next = lineOf(end + 1)!;
      problems.push({ file: path, line: next, trial, seq, reason: `no line with seq ${seq === end ? seq : `${seq}–${end}`}: ${seq === end ? 'a line' : `${end - seq + 1} lines`} of this trial missing before line ${next}` });
      seq = end;
    }
  }
  return problems.sort((a, b) => a.line - b.line);
}

/** Reads metrics.jsonl and says what is wrong with it: unusable lines, and gaps and repeats in each trial's seq numbers. */
export function readMetricsChecked(runDir: string): CheckedMetrics {
  const path = metricsPath(runDir);
  const raw = scanMetrics(path);
  return { lines: raw.filter((r) => r.parsed).map((r) => r.parsed!), problems: problemsOf(path, raw) };
}

/** `metrics.jsonl:17: trial v0-s1: not valid JSON (...)`. */
export function formatMetricsProblem(problem: MetricsProblem): string {
  return `${problem.file}:${problem.line}: ${problem.trial !== undefined ? `trial ${problem.trial}: ` : 'trial unknown: '}${problem.reason}`;
}

/**
 * Parses metrics.jsonl. Unusable lines (a last line cut short by a kill, a damaged line, a repeated
 * seq) are left out, and every such problem is passed to `warn` (default: console.warn) with its file
 * and line number. Use `readMetricsChecked` to get the problems as data.
 */
export function readMetrics(runDir: string, options: { warn?: (message: string) => void } = {}): MetricsLine[] {
  const { lines, problems } = readMetricsChecked(runDir);
  const warn = options.warn ?? ((message: string) => console.warn(message));
  for (const p of problems) warn(`metrics line left out: ${formatMetricsProblem(p)}`);
  return lines;
}

export interface IncompleteMetricsOptions {
  /**
   * Go on when a completed trial's metrics lines are incomplete (damaged, missing or repeated lines):
   * its statistics are computed from the lines that could be read, and flagged. Default false: refuse.
   * The CLI's `--allow-incomplete`.
   */
  allowIncomplete?: boolean;
  /** Where the problems are reported. Default: console.warn. */
  warn?: (message: string) => void;
}

/**
 * Thrown by the report, the summary, compare and export when a completed trial's metrics lines are
 * incomplete, and `allowIncomplete` was not given: its final values and the statistics built on them
 * would silently change.
 */
export class IncompleteMetricsError extends InputError {
  override name = 'IncompleteMetricsError';
  constructor(
    readonly problems: MetricsProblem[],
    what: string,
  ) {
    const shown = problems.slice(0, 10).map((p) => `  ${formatMetricsProblem(p)}`);
    if (problems.length > 10) shown.push(`  … and ${problems.length - 10} more`);
    const trials = [...new Set(problems.map((p) => p.trial ?? 'unknown'))];
    super(
      `${what}: the metrics of ${trials.includes('unknown') ? 'some trial (a damaged line names none)' : `completed trial${trials.length === 1 ? '' : 's'} ${trials.join(', ')}`} are incomplete, so final values and statistics would be wrong:\n${shown.join('\n')}\n` +
        'Repair or remove those lines in metrics.jsonl, or pass allowIncomplete (lab --allow-incomplete) to go on without them; the output then says which trials are incomplete.',
    );
  }
}

/**
 * metrics.jsonl for a summary, report or export: refuses (IncompleteMetricsError) when a problem
 * touches a completed trial, or a damaged line names no trial, unless `allowIncomplete`; every
 * problem is passed to `warn`. Problems of trials that did not complete only warn: their lines are
 * not in the statistics.
 */
export function readMetricsForReport(runDir: string, completed: ReadonlySet<string>, what: string, options: IncompleteMetricsOptions = {}): CheckedMetrics {
  const checked = readMetricsChecked(runDir);
  const blocking = checked.problems.filter((p) => p.trial === undefined || completed.has(p.trial));
  if (blocking.length && !options.allowIncomplete) throw new IncompleteMetricsError(blocking, what);
  const warn = options.warn ?? ((message: string) => console.warn(message));
  for (const p of checked.problems) {
    const allowed = p.trial === undefined || completed.has(p.trial);
    warn(`${what}: metrics line left out: ${formatMetricsProblem(p)}${allowed ? ' (allowed: incomplete trials are reported and flagged)' : ' (the trial did not complete: not in the statistics)'}`);
  }
  return checked;
}

export interface PruneResult {
  /** Usable lines removed: past an unfinished trial's checkpoint (logged again when it restarts), or repeated. */
  dropped: number;
  /** Unusable lines kept as they were (they could not be shown to be superseded), with their new line numbers. */
  keptUnusable: MetricsProblem[];
  /** Where the file as it was went, when a line that could not be parsed was removed. */
  movedAside?: string;
}

/**
 * Before a resume: keeps every line of completed trials and, for the others, only the lines their last
 * checkpoint covers (seq < checkpoint.seq), rewriting metrics.jsonl atomically. The restarted trial
 * then logs the rest again, so no line is lost or duplicated.
 *
 * A line that cannot be parsed is never dropped in silence: when its text names an unfinished trial
 * and a seq past that trial's checkpoint (a line cut short by a kill, say), it is superseded and
 * removed, the file as it was being kept first as `metrics.jsonl.corrupt-<time>`; any other
 * unusable line is kept as it is, so reports go on naming it. Every such line is passed to `warn`.
 */
export function pruneMetricsForResume(runDir: string, completed: ReadonlySet<string>, warn: (message: string) => void = (m) => console.warn(m)): PruneResult {
  const path = metricsPath(runDir);
  const raw = scanMetrics(path);
  const keepUpTo = new Map<string, number>();
  const checkpointSeq = (trial: string): number => {
    if (!keepUpTo.has(trial)) {
      let seq = 0;
      try {
        seq = readCheckpointRecord(trialDir(runDir, trial))?.seq ?? 0;
      } catch {
        // An unreadable checkpoint restarts the trial from scratch (the resume sets it aside and says so).
      }
      keepUpTo.set(trial, Number.isInteger(seq) && seq > 0 ? seq : 0);
    }
    return keepUpTo.get(trial)!;
  };
  const kept: RawMetricsLine[] = [];
  const seen = new Set<string>();
  let dropped = 0;
  const droppedUnusable: RawMetricsLine[] = [];
  for (const line of raw) {
    if (line.bad) {
      const superseded = line.trial !== undefined && line.seq !== undefined && !completed.has(line.trial) && line.seq >= checkpointSeq(line.trial);
      if (superseded) droppedUnusable.push(line);
      else kept.push(line);
      continue;
    }
    const { trial, seq } = line.parsed!;
    if (!completed.has(trial) && seq >= checkpointSeq(trial)) {
      dropped++;
      continue;
    }
    const key = `${trial}\u0000${seq}`;
    if (seen.has(key)) {
      dropped++;
      continue;
    }
    seen.add(key);
    kept.push(line);
  }
  const keptUnusable: MetricsProblem[] = [];
  kept.forEach((line, i) => {
    if (!line.bad) return;
    const problem: MetricsProblem = { file: path, line: i + 1, ...(line.trial !== undefined ? { trial: line.trial } : {}), ...(line.seq !== undefined ? { seq: line.seq } : {}), reason: line.bad };
    keptUnusable.push(problem);
    warn(`resume: metrics line ${line.number} kept as it is (now line ${i + 1}): ${formatMetricsProblem({ ...problem, line: line.number })}; reports refuse its trial until it is repaired or --allow-incomplete is given`);
  });
  const result: PruneResult = { dropped, keptUnusable };
  if (dropped === 0 && droppedUnusable.length === 0 && kept.every((l, i) => l.number === i + 1) && (raw.length === 0 || readFileSync(path, 'utf8').endsWith('\n'))) return result;
  if (droppedUnusable.length) {
    const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    copyFileSync(path, aside);
    result.movedAside = aside;
    for (const line of droppedUnusable) {
      warn(`resume: metrics line ${line.number} removed: trial ${line.trial} seq ${line.seq} is past its checkpoint and is logged again; the line was ${line.bad} (the file as it was is kept as ${aside})`);
    }
  }
  writeFileAtomic(path, kept.map((l) => `${l.text}\n`).join(''));
  return result;
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
  /** `unreadable`: a file of the run could not be read (see `problem`); what could be read is filled in. */
  status: RunStatus | 'unknown' | 'unreadable';
  trials: number;
  completed: number;
  failed: number;
  backend: string;
  /** The executor kind (local kinds, bullmq, slurm) and, for trials that say where they ran, the hosts. */
  executor?: string;
  hosts?: string[];
  /** Why the run is unreadable: the file and what is wrong with it. */
  problem?: string;
}

/** Files only a run folder has: an entry with one of them but no readable config.json is a damaged run. */
const RUN_MARKERS = ['config.json', 'run.json', 'metrics.jsonl', 'trials'];

/** One entry of runsDir as a listing; undefined when it is plainly not a run folder. */
function listRun(dir: string): RunListing | undefined {
  const unreadable = (problem: string, partial: Partial<RunListing> = {}): RunListing => ({
    id: basename(dir),
    dir,
    name: '',
    createdAt: '',
    trials: 0,
    completed: 0,
    failed: 0,
    backend: '',
    ...partial,
    status: 'unreadable',
    problem,
  });
  try {
    if (!statSync(dir).isDirectory()) return undefined;
  } catch (error) {
    // A link whose target is gone, or an entry we may not look at: name it rather than hide it.
    return unreadable(`${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (error) {
    return unreadable(`${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!RUN_MARKERS.some((m) => entries.includes(m))) return undefined;
  let config: RunConfig;
  try {
    config = readRunConfig(dir);
    if (!config || typeof config !== 'object' || !Array.isArray(config.trials)) throw new InputError(`run config: ${join(dir, 'config.json')} is not a run config (no trials list)`);
  } catch (error) {
    return unreadable((error as Error).message);
  }
  const listing: RunListing = {
    id: typeof config.id === 'string' ? config.id : basename(dir),
    dir,
    name: config.experiment?.name ?? '',
    createdAt: config.createdAt ?? '',
    status: 'unknown',
    trials: config.trials.length,
    completed: 0,
    failed: 0,
    backend: config.backend?.name ?? '',
    ...(config.executor?.kind ? { executor: config.executor.kind } : {}),
  };
  const hosts = new Set<string>();
  const problems: string[] = [];
  try {
    const state = readRunState(dir);
    // "running" in run.json but nobody holds the lock: the driving process was killed.
    listing.status = state?.status === 'running' && liveLockHolder(dir) === undefined ? 'interrupted' : (state?.status ?? 'unknown');
  } catch (error) {
    problems.push((error as Error).message);
  }
  for (const trial of config.trials) {
    try {
      const record = readTrialStatus(dir, trial.id);
      const status = record?.status;
      if (status === 'completed') listing.completed++;
      if (status === 'failed') listing.failed++;
      if (record?.ranOn?.host) hosts.add(record.ranOn.host);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (hosts.size) listing.hosts = [...hosts].sort();
  if (problems.length) return { ...listing, status: 'unreadable', problem: problems.join('; ') };
  return listing;
}

/**
 * Every run folder under runsDir, newest first. A run with a file that cannot be read (config.json,
 * run.json, a trial's status.json) is listed as `unreadable` with the reason, never left out.
 */
export function listRuns(runsDir = 'runs'): RunListing[] {
  if (!existsSync(runsDir)) return [];
  const runs: RunListing[] = [];
  for (const entry of readdirSync(runsDir)) {
    const listing = listRun(resolve(runsDir, entry));
    if (listing) runs.push(listing);
  }
  return runs.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** One line of `lab ls`: id, status, trials done and failed, backend; an unreadable run with its reason. */
export function formatRunListing(run: RunListing): string {
  const counts = `${run.completed}/${run.trials} done${run.failed ? `, ${run.failed} failed` : ''}`;
  if (run.status === 'unreadable') return `${run.id}  ${'unreadable'.padEnd(11)} ${run.trials ? `${counts}  ` : ''}${run.problem ?? ''}`;
  // Only executors that record where trials ran (queue, cluster) add this; a local run's line is unchanged.
  const where = run.hosts?.length ? `  executor ${run.executor ?? '?'} on ${run.hosts.join(', ')}` : '';
  return `${run.id}  ${run.status.padEnd(11)} ${counts}  backend ${run.backend}${where}`;
}
