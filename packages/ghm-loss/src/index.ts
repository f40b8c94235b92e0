export { GHMSoftmax } from './ghm-softmax';
export type { GHMSoftmaxOptions, GHMSoftmaxJSON } from './ghm-softmax';
export type { GHMLossCallOptions, LayersLossOptions } from './ghm-base';
export { GHMC } from './ghm-c';
export type { GHMCOptions, GHMCJSON } from './ghm-c';
export { GHMR } from './ghm-r';
export type { GHMROptions, GHMRJSON } from './ghm-r';
export { binEdges } from './gradient-density';
export type { GHMStats, GHMStateJSON } from './gradient-density';
export { softmaxCrossEntropy, sigmoidBinaryCrossEntropy, focalLoss, sigmoidFocalLoss } from './baselines';
export type {
  SoftmaxCrossEntropyOptions,
  SigmoidBinaryCrossEntropyOptions,
  FocalLossOptions,
  SigmoidFocalLossOptions,
} from './baselines';
