import type { DatasetItem } from '@lab/audio-features';
import type { RunOverrides, RunPlan, TrialSpec } from '@lab/experiment-runner';
import { groupTakes, type TakeGroup } from './fusion';
import { inputName, loadItems, parseInput, splitTakes } from './lab-data';

export const SCALES = ['tiny', 'demo', 'full'] as const;
export type Scale = (typeof SCALES)[number];

/** A small ResNet for small inputs: what makes tiny and demo fast enough on two cores. */
const NARROW = { featureSize: 32, width: 0.125, smallInputStem: true };
const CLASSIFIER_SMALL = { ...NARROW, batchSize: 4, lr: 1e-3 };
const RANKER_SMALL = { ...NARROW, validationFraction: 0.25 };

/**
 * What each scale changes in each experiment (`full` is the experiments' own settings: the seed
 * reports' ResNet-18, 30 epochs, 5 seeds × 5 folds). Data parameters are added by the caller.
 */
const PRESETS: Record<Exclude<Scale, 'full'>, Record<string, RunOverrides>> = {
  tiny: {
    'frequency-loss': { params: { ...CLASSIFIER_SMALL, epochs: 2 }, seeds: 2, folds: 2 },
    'ghm-sensitivity': { params: { ...CLASSIFIER_SMALL, epochs: 2 }, seeds: 1, folds: 2, sweep: { grid: { bins: [5, 10], alpha: [0, 0.75] } } },
    'ranker-gradients': {
      params: { ...RANKER_SMALL, epochs: 2, probeEvery: 1, pairsPerEpoch: 16, probeBatches: 8, probePairs: 8, gnsBootstrap: 50 },
      seeds: 2,
      sweep: { list: [{ material: 'plastic', input: '3000Hz' }, { material: 'box', input: '3000Hz' }] },
    },
    'batch-size': {
      params: { ...RANKER_SMALL, epochs: 2, probeEvery: 2, pairsPerEpoch: 16, probeBatches: 4, probePairs: 8, gnsBootstrap: 50 },
      seeds: 2,
      sweep: { list: [{ batchSize: 4 }, { batchSize: 8 }] },
    },
    material: { params: { ...CLASSIFIER_SMALL, epochs: 2 }, seeds: 1, folds: 2 },
    fusion: { params: { ...CLASSIFIER_SMALL, epochs: 2 }, seeds: 1, folds: 2 },
  },
  demo: {
    'frequency-loss': { params: { ...CLASSIFIER_SMALL, epochs: 10 }, seeds: 2, folds: 3 },
    'ghm-sensitivity': { params: { ...CLASSIFIER_SMALL, epochs: 8 }, seeds: 1, folds: 3 },
    'ranker-gradients': { params: { ...RANKER_SMALL, epochs: 8, probeEvery: 2, pairsPerEpoch: 64, probeBatches: 12, probePairs: 24, gnsBootstrap: 200 }, seeds: 3 },
    'batch-size': { params: { ...RANKER_SMALL, epochs: 6, probeEvery: 3, pairsPerEpoch: 64, probeBatches: 8, probePairs: 24, gnsBootstrap: 200 }, seeds: 3 },
    material: { params: { ...CLASSIFIER_SMALL, epochs: 10 }, seeds: 2, folds: 3 },
    fusion: { params: { ...CLASSIFIER_SMALL, epochs: 10 }, seeds: 1, folds: 3 },
  },
};

export function isScale(value: string): value is Scale {
  return (SCALES as readonly string[]).includes(value);
}

/** The overrides of one experiment at one scale, with the data parameters merged into its params. */
export function scaleOverrides(experiment: string, scale: Scale, dataParams: Record<string, unknown> = {}): RunOverrides {
  const preset = scale === 'full' ? {} : PRESETS[scale][experiment];
  if (preset === undefined) throw new Error(`scale ${scale}: no settings for experiment "${experiment}"`);
  return { ...preset, params: { ...(preset.params ?? {}), ...dataParams } };
}

type Rule = { test: (value: number) => boolean; expected: string };
const positiveInteger: Rule = { test: (v) => Number.isInteger(v) && v >= 1, expected: 'a positive integer' };
const nonNegativeInteger: Rule = { test: (v) => Number.isInteger(v) && v >= 0, expected: 'an integer ≥ 0' };
const positive: Rule = { test: (v) => Number.isFinite(v) && v > 0, expected: 'a number > 0' };
const nonNegative: Rule = { test: (v) => Number.isFinite(v) && v >= 0, expected: 'a number ≥ 0' };
const fraction: Rule = { test: (v) => Number.isFinite(v) && v > 0 && v < 1, expected: 'a number between 0 and 1 (exclusive)' };
const momentum: Rule = { test: (v) => Number.isFinite(v) && v >= 0 && v < 1, expected: 'a number in [0, 1)' };

/**
 * What a trial parameter of the lab's experiments must be, where the experiment has it. The types are
 * checked by the experiment's schema; these are the ranges that would otherwise fail every trial
 * (`epochs=-1`, `batchSize=0`) or loop forever, once the run folder exists.
 */
const PARAM_RULES: Record<string, Rule> = {
  epochs: positiveInteger,
  batchSize: positiveInteger,
  featureSize: positiveInteger,
  bins: positiveInteger,
  alpha: momentum,
  lr: positive,
  width: positive,
  weightDecay: nonNegative,
  margin: nonNegative,
  validationFraction: fraction,
  pairsPerEpoch: positiveInteger,
  probeEvery: positiveInteger,
  probeBatches: positiveInteger,
  probePairs: positiveInteger,
  gnsBootstrap: nonNegativeInteger,
  projectionDim: nonNegativeInteger,
};

/** Problems found per variant: one line each, naming the variants only when not all of them share it. */
function perVariant(found: Map<string, string[]>, variants: number): string[] {
  return [...found].map(([problem, labels]) =>
    labels.length === variants || labels.every((l) => !l) ? problem : `${problem} (variant${labels.length === 1 ? '' : 's'} ${labels.join('; ')})`,
  );
}

/** The takes of one material at some frequencies, and their count per angle class (sorted by angle); a message when they cannot be grouped. */
function takesOf(items: readonly DatasetItem[], material: string, frequenciesHz: number[]): { groups: TakeGroup[]; perAngle: Map<number, number> } | string {
  const chosen = items.filter((item) => item.material === material && frequenciesHz.includes(item.freqHz));
  if (chosen.length === 0) return `no recordings of ${material} at ${inputName(frequenciesHz)}`;
  let groups: TakeGroup[];
  try {
    groups = groupTakes(chosen, frequenciesHz);
  } catch (error) {
    return (error as Error).message;
  }
  const counts = new Map<number, number>();
  for (const group of groups) counts.set(group.angleDeg, (counts.get(group.angleDeg) ?? 0) + 1);
  return { groups, perAngle: new Map([...counts].sort((a, b) => a[0] - b[0])) };
}

/**
 * Checks a planned run of one of the lab's experiments before anything is written: parameter ranges
 * (naming the field and the variant), and, with `items` (the recordings), the data each trial needs:
 * at least two angle classes of its material and input, with k folds at least k takes in every angle
 * class (the stratified k-fold split needs one per fold), and a split (the trial's own, seeded) that
 * leaves training, validation and, with folds, test takes — otherwise every trial would fail once the
 * run folder exists. Returns the problems, one line each; empty when the plan can run.
 */
export function checkLabPlan(experiment: string, plan: Pick<RunPlan, 'trials' | 'folds'>, items?: readonly DatasetItem[]): string[] {
  const problems: string[] = [];
  const where = `experiment ${experiment}`;
  const seenVariants = new Set<number>();
  const found = new Map<string, string[]>();
  const needs = new Map<string, { material: string; frequencies: number[]; trials: TrialSpec[] }>();
  for (const trial of plan.trials) {
    const first = !seenVariants.has(trial.variant);
    seenVariants.add(trial.variant);
    const variantProblems: string[] = [];
    for (const [field, rule] of Object.entries(PARAM_RULES)) {
      if (!(field in trial.params)) continue;
      const value = trial.params[field];
      if (typeof value !== 'number' || !rule.test(value)) variantProblems.push(`${where}: params.${field}: expected ${rule.expected}, got ${JSON.stringify(value)}`);
    }
    if ('depth' in trial.params && trial.params.depth !== 18 && trial.params.depth !== 34) {
      variantProblems.push(`${where}: params.depth: expected 18 or 34 (ResNet-18 or ResNet-34), got ${JSON.stringify(trial.params.depth)}`);
    }
    if ('loss' in trial.params && trial.params.loss !== 'ce' && trial.params.loss !== 'ghm') {
      variantProblems.push(`${where}: params.loss: expected "ce" or "ghm", got ${JSON.stringify(trial.params.loss)}`);
    }
    if (typeof trial.params.material === 'string' && typeof trial.params.input === 'string') {
      try {
        const frequencies = parseInput(trial.params.input);
        const key = `${trial.params.material}\u0000${inputName(frequencies)}`;
        if (!needs.has(key)) needs.set(key, { material: trial.params.material, frequencies, trials: [] });
        needs.get(key)!.trials.push(trial);
      } catch (error) {
        variantProblems.push(`${where}: params.${(error as Error).message}`);
      }
    }
    if (first) for (const problem of variantProblems) found.set(problem, [...(found.get(problem) ?? []), trial.variantLabel]);
  }
  problems.push(...perVariant(found, seenVariants.size));
  if (!items || problems.length) return problems;
  for (const { material, frequencies, trials } of needs.values()) {
    const takes = takesOf(items, material, frequencies);
    const what = `${material} at ${inputName(frequencies)}`;
    if (typeof takes === 'string') {
      problems.push(`${where}: data: ${takes}`);
      continue;
    }
    const { groups, perAngle } = takes;
    if (perAngle.size < 2) {
      problems.push(`${where}: data: ${what} has ${perAngle.size} angle class (${[...perAngle.keys()].map((a) => `${a}°`).join(', ')}); expected at least 2`);
      continue;
    }
    const smallest = Math.min(...perAngle.values());
    const takesText = `${[...perAngle].map(([angle, n]) => `${n} at ${angle}°`).join(', ')}`;
    if (plan.folds !== undefined && smallest < plan.folds) {
      const short = [...perAngle].filter(([, n]) => n < plan.folds!).map(([angle, n]) => `${n} take${n === 1 ? '' : 's'} at ${angle}°`);
      problems.push(
        `${where}: folds: ${plan.folds} folds need at least ${plan.folds} takes in every angle class, but ${what} has only ${short.join(', ')}; ` +
          (smallest >= 2 ? `expected folds ≤ ${smallest} (the smallest class) or more takes` : 'expected at least 2 takes per angle class (k-fold cross-validation needs k ≥ 2)'),
      );
      continue;
    }
    // The trials' own seeded splits: the first one that leaves a part empty is reported.
    for (const trial of trials) {
      const validationFraction = Number(trial.params.validationFraction ?? 0.2);
      let problem: string | undefined;
      try {
        const split = splitTakes(groups, { seed: trial.seed, ...(trial.fold !== undefined ? { fold: trial.fold } : {}), ...(plan.folds !== undefined ? { folds: plan.folds } : {}), validationFraction });
        const empty = (['train', 'validation', ...(plan.folds !== undefined ? ['test' as const] : [])] as const).filter((part) => split[part].length === 0);
        if (empty.length) {
          problem = `trial ${trial.id}'s split of ${what} (takes per angle: ${takesText}${plan.folds !== undefined ? `, ${plan.folds} folds` : ''}, validationFraction ${validationFraction}) leaves no ${empty.join(' and no ')} takes; expected more takes per angle class${plan.folds !== undefined ? ', fewer folds' : ''} or another validationFraction`;
        }
      } catch (error) {
        problem = `trial ${trial.id}'s split of ${what}: ${(error as Error).message}`;
      }
      if (problem) {
        problems.push(`${where}: data: ${problem}`);
        break;
      }
    }
  }
  return problems;
}

/**
 * `checkLabPlan` as a hook for an experiment definition (`checkPlan`, which the runner calls before creating a run folder before
 * it creates the run folder): parameter ranges first, then the recordings named by the plan's own
 * data parameters (`data` / `manifest`, default the simulated set).
 */
export function labPlanCheck(experiment: string): (plan: RunPlan) => Promise<string[]> {
  return async (plan) => {
    const problems = checkLabPlan(experiment, plan);
    if (problems.length) return problems;
    let items: DatasetItem[];
    try {
      items = await loadItems({ data: String(plan.baseParams.data ?? ''), manifest: String(plan.baseParams.manifest ?? '') });
    } catch (error) {
      return [`experiment ${experiment}: data: ${(error as Error).message}`];
    }
    return checkLabPlan(experiment, plan, items);
  };
}
