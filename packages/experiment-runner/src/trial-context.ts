import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { appendLine, fsyncFile, writeFileAtomic, writeJsonAtomic } from './atomic-write';
import type { BackendName } from './backend';
import type { TrialGroupHandle } from './trial-group';

export type MetricValue = number | string | boolean | null;
export type Metrics = { epoch?: number } & Record<string, MetricValue | undefined>;

/** A Vega-Lite specification (kept loose: the runner only stores and renders it). */
export type VegaLiteSpec = Record<string, unknown>;

export interface TrialCheckpoint {
  /** Saves state atomically; a resumed trial gets it back from `load()`. Metrics logged after the last save are discarded on resume. */
  save(state: object | Uint8Array): void;
  load(): unknown;
}

export interface TrialContext {
  trialId: string;
  trialDir: string;
  seed: number;
  /** Fold index (0..folds-1) when the run uses k-fold cross-validation. */
  fold?: number;
  /** Number of folds of the run, when it uses k-fold cross-validation. */
  folds?: number;
  /** The backend chosen for this run (`none` when the experiment uses no TF.js). */
  backend: BackendName | 'none';
  /** 1 for the first run of this trial, 2+ after a resume restarted it. */
  attempt: number;
  signal: AbortSignal;
  /** Appends one line to the run's metrics.jsonl (with the trial id). */
  log(metrics: Metrics): void;
  /** Saves `artifacts/<name>`: strings and bytes as given, other values as JSON. */
  artifact(name: string, data: string | Uint8Array | object): string;
  /** Saves a Vega-Lite spec; the report renders it to SVG and PNG. */
  figure(name: string, spec: VegaLiteSpec): string;
  checkpoint: TrialCheckpoint;
  progress(done: number, total: number, note?: string): void;
  /** Set when this trial runs fused with others (see ExperimentDefinition.fuse). */
  group?: TrialGroupHandle;
}

export const RESERVED_METRIC_KEYS = ['trial', 'seq', 'time'] as const;

export interface CheckpointRecord {
  /** Number of metrics lines this trial had logged when the checkpoint was saved. */
  seq: number;
  savedAt: string;
  kind: 'json' | 'bytes';
  state?: unknown;
  file?: string;
  /** Size and SHA-256 of the bytes file, so a truncated or damaged one is caught before use (absent in older runs). */
  bytes?: number;
  sha256?: string;
}

export interface TrialContextOptions extends Pick<TrialContext, 'trialId' | 'seed' | 'fold' | 'folds' | 'backend' | 'attempt' | 'signal' | 'group'> {
  runDir: string;
  onProgress?: (done: number, total: number, note?: string) => void;
  /** Called before every write; the worker process uses it to stop writing once its parent is gone. */
  beforeWrite?: () => void;
}

const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._ -]*$/;

/** Artifact and figure names become file names: no separators, no leading dots, no control characters. */
export function checkFileName(name: string, what: string): void {
  if (typeof name !== 'string' || !SAFE_NAME.test(name) || name.includes('..') || name.length > 120) {
    throw new Error(`${what} name ${JSON.stringify(name)}: expected letters, digits, '.', '_', '-' or spaces (no path separators, no leading dot, at most 120 characters)`);
  }
}

/** The trial's checkpoint.json, or undefined when it has none; throws naming the file when it cannot be read. */
export function readCheckpointRecord(trialDir: string): CheckpointRecord | undefined {
  const path = join(trialDir, 'checkpoint.json');
  if (!existsSync(path)) return undefined;
  let record: CheckpointRecord;
  try {
    record = JSON.parse(readFileSync(path, 'utf8')) as CheckpointRecord;
  } catch (error) {
    throw new Error(`checkpoint ${path} is not valid JSON (${(error as Error).message})`);
  }
  const kindOk = record?.kind === 'json' || (record?.kind === 'bytes' && typeof record.file === 'string' && /^checkpoint-[^/\\]*\.bin$/.test(record.file));
  if (record === null || typeof record !== 'object' || !Number.isInteger(record.seq) || record.seq < 0 || !kindOk) {
    throw new Error(`checkpoint ${path} is not a checkpoint record (expected seq, kind and, for bytes, the checkpoint-*.bin file)`);
  }
  return record;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The bytes a record names, checked against the size and hash it recorded; throws naming the file. */
function readCheckpointBytes(trialDir: string, record: CheckpointRecord): Uint8Array {
  const path = join(trialDir, record.file!);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new Error(`checkpoint ${join(trialDir, 'checkpoint.json')} names ${path}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (record.bytes !== undefined && bytes.length !== record.bytes) {
    throw new Error(`checkpoint file ${path} has ${bytes.length} bytes, ${record.bytes} were saved (${bytes.length < record.bytes ? 'truncated' : 'overwritten'})`);
  }
  if (record.sha256 !== undefined && sha256(bytes) !== record.sha256) throw new Error(`checkpoint file ${path} does not match the SHA-256 saved with it (damaged)`);
  return bytes;
}

/**
 * What is wrong with a trial's checkpoint, naming the file: checkpoint.json that is not valid JSON or
 * not a record, a bytes file that is missing, truncated or damaged. Undefined when it is usable or
 * there is none. Bytes saved by older runs carry no size: only their presence is checked.
 */
export function checkpointProblem(trialDir: string): string | undefined {
  try {
    const record = readCheckpointRecord(trialDir);
    if (record?.kind === 'bytes') readCheckpointBytes(trialDir, record);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Moves a trial's checkpoint (checkpoint.json and its bytes files) aside as `<name>.corrupt-<suffix>`,
 * so the trial restarts from scratch while the files stay for inspection. Returns the new paths.
 */
export function setCheckpointAside(trialDir: string, suffix = new Date().toISOString().replace(/[:.]/g, '-')): string[] {
  const moved: string[] = [];
  if (!existsSync(trialDir)) return moved;
  // checkpoint.json first: it is the commit point, and without it the trial has no checkpoint.
  for (const entry of ['checkpoint.json', ...readdirSync(trialDir).filter((e) => /^checkpoint-.*\.bin$/.test(e))]) {
    const from = join(trialDir, entry);
    if (!existsSync(from)) continue;
    const to = `${from}.corrupt-${suffix}`;
    renameSync(from, to);
    moved.push(to);
  }
  return moved;
}

/**
 * Removes a trial's checkpoint once its completion is recorded: resume never reruns a completed trial,
 * and a sweep's last checkpoints would otherwise fill the run folder (a ResNet-18 one is ~180 MB).
 * checkpoint.json goes first: it is the commit point that names the bytes file.
 */
export function discardCheckpoint(trialDir: string): void {
  if (!existsSync(trialDir)) return;
  rmSync(join(trialDir, 'checkpoint.json'), { force: true });
  for (const entry of readdirSync(trialDir)) {
    if (/^checkpoint-.*\.bin$/.test(entry)) rmSync(join(trialDir, entry), { force: true });
  }
}

export function createTrialContext(options: TrialContextOptions): TrialContext {
  const trialDir = join(options.runDir, 'trials', options.trialId);
  const metricsPath = join(options.runDir, 'metrics.jsonl');
  const guard = options.beforeWrite ?? (() => {});
  let previous: CheckpointRecord | undefined;
  let unreadable: Error | undefined;
  try {
    previous = readCheckpointRecord(trialDir);
  } catch (error) {
    // A resume sets such a checkpoint aside first; here (a checkpoint damaged since) load() names it.
    unreadable = error as Error;
  }
  // A restarted trial continues numbering where its checkpoint left off; lines beyond it were removed on resume.
  let seq = previous?.seq ?? 0;

  return {
    trialId: options.trialId,
    trialDir,
    seed: options.seed,
    ...(options.fold !== undefined ? { fold: options.fold } : {}),
    ...(options.folds !== undefined ? { folds: options.folds } : {}),
    backend: options.backend,
    attempt: options.attempt,
    signal: options.signal,
    ...(options.group ? { group: options.group } : {}),
    log(metrics) {
      if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) throw new Error(`ctx.log(${options.trialId}): expected an object of metrics`);
      for (const key of RESERVED_METRIC_KEYS) {
        if (key in metrics) throw new Error(`ctx.log(${options.trialId}): metric name "${key}" is reserved by the runner`);
      }
      for (const [key, value] of Object.entries(metrics)) {
        if (value !== null && value !== undefined && !['number', 'string', 'boolean'].includes(typeof value)) {
          throw new Error(`ctx.log(${options.trialId}): metric "${key}" must be a number, string, boolean or null, got ${typeof value}`);
        }
      }
      guard();
      appendLine(metricsPath, JSON.stringify({ trial: options.trialId, seq, time: new Date().toISOString(), ...metrics }));
      seq++;
    },
    artifact(name, data) {
      checkFileName(name, 'artifact');
      guard();
      const path = join(trialDir, 'artifacts', name);
      if (typeof data === 'string' || data instanceof Uint8Array) writeFileAtomic(path, data);
      else writeJsonAtomic(path, data);
      return path;
    },
    figure(name, spec) {
      checkFileName(name, 'figure');
      if (typeof spec !== 'object' || spec === null) throw new Error(`ctx.figure(${name}): expected a Vega-Lite spec object`);
      guard();
      const path = join(trialDir, 'figures', `${name}.vl.json`);
      writeJsonAtomic(path, spec);
      return path;
    },
    checkpoint: {
      save(state) {
        guard();
        const savedAt = new Date().toISOString();
        let record: CheckpointRecord;
        if (state instanceof Uint8Array) {
          const file = `checkpoint-${seq}-${Date.now()}.bin`;
          writeFileAtomic(join(trialDir, file), state);
          record = { seq, savedAt, kind: 'bytes', file, bytes: state.length, sha256: sha256(state) };
        } else {
          if (typeof state !== 'object' || state === null) throw new Error(`ctx.checkpoint.save(${options.trialId}): expected an object or bytes`);
          record = { seq, savedAt, kind: 'json', state };
        }
        // The lines this checkpoint counts must be on disk before it is, even across a power cut.
        fsyncFile(metricsPath);
        // checkpoint.json is the commit point: written last, it names the bytes file it belongs to.
        writeJsonAtomic(join(trialDir, 'checkpoint.json'), record);
        for (const entry of readdirSync(trialDir)) {
          if (/^checkpoint-.*\.bin$/.test(entry) && entry !== record.file) rmSync(join(trialDir, entry), { force: true });
        }
      },
      load() {
        if (unreadable) throw unreadable;
        const record = readCheckpointRecord(trialDir);
        if (!record) return undefined;
        if (record.kind === 'bytes') return readCheckpointBytes(trialDir, record);
        return record.state;
      },
    },
    progress(done, total, note) {
      options.onProgress?.(done, total, note);
    },
  };
}
