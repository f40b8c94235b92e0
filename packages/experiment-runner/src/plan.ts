import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { formatIssues, resolveSeeds, type Experiment, type Params, type SweepSpec } from './define-experiment';
import { InputError } from './input-error';

/** What a user may change without touching the experiment file: from `--set`, a config file, or code. */
export interface RunOverrides {
  params?: Params;
  sweep?: SweepSpec;
  seeds?: number[] | number;
  folds?: number;
}

export interface TrialSpec {
  /** Stable id, also the trial's folder name: `v<variant>-s<seed>[-f<fold>]`. */
  id: string;
  variant: number;
  /** Human label of what this variant varies, e.g. `lr=0.001, loss=ghm` (empty when nothing varies). */
  variantLabel: string;
  params: Params;
  seed: number;
  fold?: number;
}

export interface RunPlan {
  baseParams: Params;
  sweep: SweepSpec;
  seeds: number[];
  folds?: number;
  /** Parameter names that differ between variants. */
  varied: string[];
  trials: TrialSpec[];
}

const sweepSchema = z.strictObject({
  grid: z.record(z.string(), z.array(z.unknown()).min(1)).optional(),
  list: z.array(z.record(z.string(), z.unknown())).min(1).optional(),
});

const configFileSchema = z.strictObject({
  params: z.record(z.string(), z.unknown()).optional(),
  sweep: sweepSchema.optional(),
  seeds: z.union([z.number().int().positive(), z.array(z.number().int()).min(1)]).optional(),
  folds: z.number().int().positive().optional(),
});

/** Reads a YAML or JSON file of `{ params, sweep, seeds, folds }`; errors name the file and the field. */
export function loadConfigFile(path: string): RunOverrides {
  let text: string;
  try {
    if (statSync(path).isDirectory()) throw new InputError(`config file ${path}: is a folder; expected a YAML or JSON file of { params, sweep, seeds, folds }`);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`config file ${path}: cannot read (${(error as Error).message}); expected a YAML or JSON file of { params, sweep, seeds, folds }`);
  }
  let data: unknown;
  try {
    data = extname(path) === '.json' ? JSON.parse(text) : YAML.parse(text);
  } catch (error) {
    throw new InputError(`config file ${path}: not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'} (${(error as Error).message})`);
  }
  const parsed = configFileSchema.safeParse(data ?? {});
  if (!parsed.success) throw new InputError(formatIssues(`config file ${path}`, parsed.error));
  return parsed.data as RunOverrides;
}

/**
 * Parses `--set key=value` items. Values are read as YAML scalars/flow collections, so `lr=5e-4` is a
 * number, `aug=true` a boolean, `sizes=[2,4]` an array and `loss=ghm` a string. Dotted keys set nested
 * params (`model.depth=3`); `seeds` and `folds` set the run's seeds and folds.
 */
export function parseSetArgs(items: string[]): RunOverrides {
  const result: RunOverrides = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new InputError(`--set ${item}: expected key=value`);
    const key = item.slice(0, eq).trim();
    const raw = item.slice(eq + 1);
    let value: unknown;
    try {
      value = raw === '' ? '' : YAML.parse(raw);
    } catch {
      value = raw;
    }
    if (key === 'seeds') {
      result.seeds = value as number[] | number;
      continue;
    }
    if (key === 'folds') {
      result.folds = value as number;
      continue;
    }
    result.params ??= {};
    let target = result.params;
    const parts = key.split('.');
    for (const part of parts.slice(0, -1)) {
      if (typeof target[part] !== 'object' || target[part] === null) target[part] = {};
      target = target[part] as Params;
    }
    target[parts[parts.length - 1]] = value;
  }
  return result;
}

/** Later overrides win; params are merged deeply, sweep/seeds/folds replaced. */
export function mergeOverrides(...layers: (RunOverrides | undefined)[]): RunOverrides {
  const merged: RunOverrides = {};
  for (const layer of layers) {
    if (!layer) continue;
    if (layer.params) merged.params = deepMerge(merged.params ?? {}, layer.params);
    if (layer.sweep) merged.sweep = layer.sweep;
    if (layer.seeds !== undefined) merged.seeds = layer.seeds;
    if (layer.folds !== undefined) merged.folds = layer.folds;
  }
  return merged;
}

function deepMerge(base: Params, patch: Params): Params {
  const out: Params = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const prev = out[key];
    out[key] =
      isPlainObject(prev) && isPlainObject(value) ? deepMerge(prev as Params, value as Params) : value;
  }
  return out;
}

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function cartesian(grid: Record<string, unknown[]>): Params[] {
  let points: Params[] = [{}];
  for (const [key, values] of Object.entries(grid)) {
    points = points.flatMap((point) => values.map((value) => ({ ...point, [key]: value })));
  }
  return points;
}

function formatValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Expands an experiment and overrides into the list of trials: (grid × list) variants × seeds × folds.
 * `--set` params win over sweep values; a grid axis that is set explicitly collapses to that value.
 * Every trial's params are validated by the experiment's schema, errors naming the field and variant.
 */
export function planRun(experiment: Experiment, overrides: RunOverrides = {}): RunPlan {
  const seeds = resolveSeeds(overrides.seeds ?? experiment.seeds, 'seeds');
  const folds = overrides.folds ?? experiment.folds;
  // One fold would hold every item out (or none): k-fold cross-validation needs k ≥ 2.
  if (folds !== undefined && (typeof folds !== 'number' || !Number.isInteger(folds) || folds < 2)) {
    throw new InputError(`folds: expected an integer ≥ 2 (k-fold cross-validation holds out one fold of k), got ${JSON.stringify(folds) ?? String(folds)}`);
  }
  const sweepParsed = sweepSchema.safeParse(overrides.sweep ?? experiment.sweep ?? {});
  if (!sweepParsed.success) throw new InputError(formatIssues('sweep', sweepParsed.error));
  const sweep = sweepParsed.data as SweepSpec;
  const setParams = overrides.params ?? {};
  checkKnownKeys(experiment, setParams, 'overrides');
  const baseParams = deepMerge(experiment.defaults, setParams);
  const base = experiment.schema.safeParse(baseParams);
  if (!base.success) throw new InputError(formatIssues('params', base.error));

  const grid = Object.fromEntries(Object.entries(sweep.grid ?? {}).filter(([key]) => !(key in setParams)));
  checkKnownKeys(experiment, grid, 'sweep.grid');
  sweep.list?.forEach((entry, i) => checkKnownKeys(experiment, entry, `sweep.list[${i}]`));
  const points = cartesian(grid);
  const entries = sweep.list ?? [{}];
  const rawVariants: Params[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    for (const point of points) {
      const variant = deepMerge(deepMerge(entry, point), setParams);
      const key = JSON.stringify(variant);
      if (!seen.has(key)) {
        seen.add(key);
        rawVariants.push({ ...entry, ...point });
      }
    }
  }
  const varied = [...new Set(rawVariants.flatMap((v) => Object.keys(v)))].filter((key) => !(key in setParams));
  const trials: TrialSpec[] = [];
  const width = String(Math.max(rawVariants.length - 1, 0)).length;
  rawVariants.forEach((variantValues, variant) => {
    const merged = deepMerge(deepMerge(experiment.defaults, variantValues), setParams);
    const label = varied.filter((k) => k in variantValues).map((k) => `${k}=${formatValue(variantValues[k])}`).join(', ');
    const parsed = experiment.schema.safeParse(merged);
    if (!parsed.success) throw new InputError(formatIssues(`params of variant ${variant}${label ? ` (${label})` : ''}`, parsed.error));
    for (const seed of seeds) {
      for (let fold = 0; fold < (folds ?? 1); fold++) {
        const id = `v${String(variant).padStart(width, '0')}-s${seed}${folds !== undefined ? `-f${fold}` : ''}`;
        trials.push({ id, variant, variantLabel: label, params: parsed.data as Params, seed, ...(folds !== undefined ? { fold } : {}) });
      }
    }
  });
  return { baseParams: base.data as Params, sweep, seeds, ...(folds !== undefined ? { folds } : {}), varied, trials };
}

/** zod objects that are not strict drop unknown keys silently; a misspelt `--set` key must fail instead. */
function checkKnownKeys(experiment: Experiment, values: Params, where: string): void {
  checkKeysAgainst(objectShape(experiment.schema), values, where, '');
}

function checkKeysAgainst(shape: Record<string, unknown> | undefined, values: Params, where: string, prefix: string): void {
  if (!shape) return;
  for (const [key, value] of Object.entries(values)) {
    if (!(key in shape)) {
      const scope = prefix ? ` in ${prefix.slice(0, -1)}` : '';
      throw new InputError(`${where}: unknown parameter "${prefix}${key}" (known${scope}: ${Object.keys(shape).join(', ') || 'none'})`);
    }
    if (isPlainObject(value)) checkKeysAgainst(objectShape(shape[key]), value as Params, where, `${prefix}${key}.`);
  }
}

/** The field schemas of a zod object, looking through `.default()`, `.optional()` and the like. */
function objectShape(schema: unknown): Record<string, unknown> | undefined {
  let current = schema as { shape?: unknown; unwrap?: () => unknown; _zod?: { def?: { innerType?: unknown } } } | undefined;
  for (let depth = 0; current && depth < 8; depth++) {
    if (current.shape && typeof current.shape === 'object') return current.shape as Record<string, unknown>;
    current = (current._zod?.def?.innerType ?? (typeof current.unwrap === 'function' ? current.unwrap() : undefined)) as typeof current;
  }
  return undefined;
}
