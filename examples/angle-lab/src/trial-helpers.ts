import { dirname } from 'node:path';
import { readRunConfig, type TrialContext } from '@lab/experiment-runner';

/**
 * Number of cross-validation folds of the run this trial belongs to. The trial context carries the
 * fold index but not the fold count, so it is read from the run's config.json
 * (`<run>/trials/<id>` is the trial folder).
 */
export function runFolds(ctx: Pick<TrialContext, 'trialDir' | 'fold'>): number | undefined {
  if (ctx.fold === undefined) return undefined;
  return readRunConfig(dirname(dirname(ctx.trialDir))).folds;
}

/** Matrices may hold NaN (no comparison possible); JSON has no NaN, so they are stored as null. */
export function matrixToJson(matrix: readonly (readonly number[])[]): (number | null)[][] {
  return matrix.map((row) => row.map((v) => (Number.isFinite(v) ? v : null)));
}

export function argMaxRows(rows: readonly (readonly number[])[]): number[] {
  return rows.map((row) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0));
}
