import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { BackendPreference } from './backend';
import type { RunPlan } from './plan';
import type { ReportContext, ReportSection } from './report-types';
import type { TrialContext } from './trial-context';
import { InputError } from './input-error';

export type Params = Record<string, unknown>;

/** Grid axes are crossed with each other and with every list entry; a missing part counts as one empty variant. */
export interface SweepSpec {
  grid?: Record<string, unknown[]>;
  list?: Record<string, unknown>[];
}

export type TrialFunction<P extends Params = Params> = (params: P, seed: number, ctx: TrialContext) => Promise<void>;

export interface PrimaryMetric {
  /** Metric name as logged with `ctx.log`. */
  name: string;
  /** Whether larger values are better (accuracy) or smaller (loss). */
  goal: 'max' | 'min';
  /**
   * Which paired comparisons the generic report makes: every variant against the first (default), or
   * none, for experiments whose own report section compares the right pairs (e.g. within a frequency).
   */
  compare?: 'first-variant' | 'none';
}

export interface ExperimentDefinition<P extends Params = Params> {
  name: string;
  description: string;
  background?: string;
  hypotheses: string[];
  /** A zod schema, or an object of defaults from which a strict schema is inferred. */
  params: z.ZodType<P> | P;
  sweep?: SweepSpec;
  /** Explicit seeds, or a count n meaning seeds 0..n-1. */
  seeds: number[] | number;
  /** k-fold cross-validation: every variant × seed runs once per fold (`ctx.fold` = 0..k-1). */
  folds?: number;
  /** Markdown describing data, model and procedure, given the base (un-swept) parameters. */
  // Method syntax (not property syntax) on purpose: TypeScript checks method parameters bivariantly,
  // so an Experiment<{ lr: number }> can be passed wherever an Experiment<Params> is expected.
  method?(params: P): string;
  trial(params: P, seed: number, ctx: TrialContext): Promise<void>;
  report?(ctx: ReportContext): ReportSection[] | Promise<ReportSection[]>;
  /** TF.js backend preference; 'none' for trials that use no TF.js (no backend is loaded). Default 'auto'. */
  backend?: BackendPreference | 'none';
  /** The metric compared between variants in the report's statistics; default: the first metric logged. */
  primaryMetric?: PrimaryMetric;
  /**
   * Checks a planned run (every trial's validated parameters, seeds, folds) before anything is
   * written: `runExperiment` (and `lab run`) calls it once the plan is built and before the run folder
   * is created, and refuses the run with an InputError (exit code 2) listing the problems. Returns the
   * problems, one line each, each naming the field and what was expected (`params.epochs: expected a
   * positive integer, got -1`); an empty list when the plan can run. For what the schema cannot say:
   * ranges, and whether the data a trial names exists. Not called by `resumeRun` (its plan ran before).
   */
  checkPlan?(plan: RunPlan): string[] | Promise<string[]>;
  /**
   * Fused trials: trials whose `key` is equal (and not null) may run together in one worker as
   * one computation; each then gets `ctx.group` (see TrialGroupHandle) and must finish as it
   * would alone. Declare it only when `trial` uses `ctx.group`. `bytesPerTrial` (an estimate of
   * one trial's memory) bounds the groups `--fuse auto` makes.
   */
  fuse?: { key(params: P): string | null; bytesPerTrial?(params: P): number };
  /**
   * A fingerprint of the data a trial with these parameters reads (a hash of its files, a data-set
   * version). The queue and cluster executors compute it on the coordinator and on each worker, and a
   * worker whose data differs refuses the trial instead of training on other data.
   */
  dataFingerprint?(params: P): string | Promise<string>;
  /** What one trial needs on a Slurm cluster (`lab run --executor slurm`); the CLI's options win. */
  resources?: TrialResources;
}

/** Per-trial resources, as sbatch options: `--cpus-per-task`, `--mem` (e.g. "4G"), `--time` (e.g. "01:00:00"), `--gres`, `--partition`. */
export interface TrialResources {
  cpusPerTask?: number;
  mem?: string;
  time?: string;
  gres?: string;
  partition?: string;
}

const EXPERIMENT_BRAND = Symbol.for('@lab/experiment-runner/experiment');

export interface Experiment<P extends Params = Params> extends ExperimentDefinition<P> {
  /** Validates (and fills defaults of) one trial's parameters. */
  readonly schema: z.ZodType<P>;
  /** Parameters before any override or sweep. */
  readonly defaults: P;
  /** Absolute path of the module that called defineExperiment (worker processes import it); best effort. */
  readonly file?: string;
  readonly [EXPERIMENT_BRAND]: true;
}

export function isExperiment(value: unknown): value is Experiment {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[EXPERIMENT_BRAND] === true;
}

function isZodSchema(value: unknown): value is z.ZodType {
  return typeof value === 'object' && value !== null && typeof (value as { safeParse?: unknown }).safeParse === 'function';
}

/** A strict schema whose types follow the defaults, so `--set lr=abc` or a misspelt key fails naming the field. */
export function schemaFromDefaults(defaults: Params): z.ZodType<Params> {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, value] of Object.entries(defaults)) shape[key] = schemaForValue(value);
  return z.strictObject(shape);
}

function schemaForValue(value: unknown): z.ZodType {
  if (typeof value === 'number') return z.number();
  if (typeof value === 'string') return z.string();
  if (typeof value === 'boolean') return z.boolean();
  if (Array.isArray(value)) return z.array(z.unknown());
  if (value !== null && typeof value === 'object') return schemaFromDefaults(value as Params);
  return z.unknown();
}

/** Formats zod issues as `where: path: message` lines, so every error names its field. */
export function formatIssues(where: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      const keys = issue.code === 'unrecognized_keys' ? ` (${(issue as { keys: string[] }).keys.join(', ')})` : '';
      return `${where}: ${path || '(root)'}: ${issue.message}${keys}`;
    })
    .join('\n');
}

export function defineExperiment<S extends z.ZodType<Params>>(
  definition: Omit<ExperimentDefinition<z.output<S>>, 'params'> & { params: S },
): Experiment<z.output<S>>;
export function defineExperiment<P extends Params>(definition: ExperimentDefinition<P> & { params: P }): Experiment<P>;
export function defineExperiment(definition: ExperimentDefinition<Params>): Experiment<Params> {
  const where = `experiment ${JSON.stringify(definition?.name)}`;
  if (typeof definition !== 'object' || definition === null) throw new InputError('defineExperiment: expected a definition object');
  if (typeof definition.name !== 'string' || definition.name.trim() === '') throw new InputError('defineExperiment: name must be a non-empty string');
  if (typeof definition.description !== 'string') throw new InputError(`${where}: description must be a string`);
  if (!Array.isArray(definition.hypotheses) || !definition.hypotheses.every((h) => typeof h === 'string')) {
    throw new InputError(`${where}: hypotheses must be an array of strings`);
  }
  if (typeof definition.trial !== 'function') throw new InputError(`${where}: trial must be a function (params, seed, ctx) => Promise<void>`);
  resolveSeeds(definition.seeds, `${where}: seeds`);
  if (definition.folds !== undefined && (!Number.isInteger(definition.folds) || definition.folds < 1)) {
    throw new InputError(`${where}: folds must be a positive integer, got ${String(definition.folds)}`);
  }
  const schema = isZodSchema(definition.params) ? (definition.params as z.ZodType<Params>) : schemaFromDefaults(definition.params as Params);
  let defaults: Params = {};
  const parsed = schema.safeParse(isZodSchema(definition.params) ? {} : definition.params);
  if (parsed.success) defaults = parsed.data;
  else if (!isZodSchema(definition.params)) throw new InputError(formatIssues(`${where} params`, parsed.error));
  return Object.freeze({ ...definition, schema, defaults, file: callerFile(), [EXPERIMENT_BRAND]: true as const });
}

export function resolveSeeds(seeds: unknown, where: string): number[] {
  if (typeof seeds === 'number') {
    if (!Number.isInteger(seeds) || seeds < 1) throw new InputError(`${where}: a seed count must be a positive integer, got ${seeds}`);
    return Array.from({ length: seeds }, (_, i) => i);
  }
  if (!Array.isArray(seeds) || seeds.length === 0 || !seeds.every((s) => Number.isInteger(s))) {
    throw new InputError(`${where}: expected a positive integer count or a non-empty array of integers`);
  }
  if (new Set(seeds).size !== seeds.length) throw new InputError(`${where}: seeds must not repeat`);
  return [...seeds];
}

/** The first stack frame outside this file: the experiment module that worker processes will import. */
function callerFile(): string | undefined {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  for (const frame of stack) {
    const match = /(file:\/\/[^\s)]+|\/[^\s():]+):\d+:\d+\)?\s*$/.exec(frame);
    if (!match) continue;
    const file = match[1].startsWith('file://') ? fileURLToPath(match[1]) : match[1];
    if (/define-experiment\.[cm]?[jt]s$/.test(file) || /[/\\]dist[/\\]index\.c?js$/.test(file) || file.includes('/node_modules/')) continue;
    // A test file cannot be imported by a worker process outside its test runner: treat it as unknown,
    // so runs default to in-process execution.
    if (/\.(test|spec)\.[cm]?[jt]sx?$/.test(file)) return undefined;
    return file;
  }
  return undefined;
}
