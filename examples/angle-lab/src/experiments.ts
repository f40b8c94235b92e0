import type { Experiment } from '@lab/experiment-runner';
import { batchSizeExperiment } from './experiment-batch-size';
import { frequencyLossExperiment } from './experiment-frequency-loss';
import { fusionExperiment } from './experiment-fusion';
import { ghmSensitivityExperiment } from './experiment-ghm-sensitivity';
import { materialExperiment } from './experiment-material';
import { rankerGradientsExperiment } from './experiment-ranker-gradients';

/** Every experiment of the demo, in the order it runs them. */
export const EXPERIMENTS: readonly Experiment[] = [
  frequencyLossExperiment,
  ghmSensitivityExperiment,
  rankerGradientsExperiment,
  batchSizeExperiment,
  materialExperiment,
  fusionExperiment,
] as unknown as readonly Experiment[];
