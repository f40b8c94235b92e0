import type { RunOverrides } from '@lab/experiment-runner';

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
