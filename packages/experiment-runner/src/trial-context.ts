import { existsSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { appendLine, fsyncFile, writeFileAtomic, writeJsonAtomic } from './atomic-write';
import type { BackendName } from './backend';

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
}

export const RESERVED_METRIC_KEYS = ['trial', 'seq', 'time'] as const;

export interface CheckpointRecord {
  /** Number of metrics lines this trial had logged when the checkpoint was saved. */
  seq: number;
  savedAt: string;
  kind: 'json' | 'bytes';
  state?: unknown;
  file?: string;
}

export interface TrialContextOptions extends Pick<TrialContext, 'trialId' | 'seed' | 'fold' | 'folds' | 'backend' | 'attempt' | 'signal'> {
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

export function readCheckpointRecord(trialDir: string): CheckpointRecord | undefined {
  const path = join(trialDir, 'checkpoint.json');
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as CheckpointRecord;
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
  const previous = readCheckpointRecord(trialDir);
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
          record = { seq, savedAt, kind: 'bytes', file };
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
        const record = readCheckpointRecord(trialDir);
        if (!record) return undefined;
        if (record.kind === 'bytes' && record.file) return new Uint8Array(readFileSync(join(trialDir, record.file)));
        return record.state;
      },
    },
    progress(done, total, note) {
      options.onProgress?.(done, total, note);
    },
  };
}
