export { AdamOptimizer } from './adam-optimizer';
export type { AdamOptions, AdamState } from './adam-optimizer';
export { AngleClassifier, createAngleClassifier } from './angle-classifier';
export type { AngleClassifierOptions } from './angle-classifier';
export { AngleRanker, createAngleRanker } from './angle-ranker';
export type { AngleRankerOptions } from './angle-ranker';
export { evaluate, fit, trainingStep, withFrozenBatchNormStatistics } from './fit';
export { FusedTrainingGroup } from './fused-training-group';
export type { FusedTrainingGroupStats } from './fused-training-group';
export { applyModelGroup } from './group-forward';
export type {
  BatchContext,
  BatchEndContext,
  EpochContext,
  EpochEndContext,
  EpochRecord,
  FitHistory,
  FitHooks,
  FitOptions,
  LossContext,
  LossFn,
  LossPhase,
  MetricsFn,
  TrainingStepper,
  TrainingStepResult,
  MonitorOptions,
} from './fit';
export { fitStateFromBytes, fitStateToBytes } from './fit-resume';
export { applyModel, fusedUnitCount, hasFusedConvBatchNorm } from './fused-forward';
export { perSampleGradients } from './per-sample-gradients';
export type { PerSampleGradientsResult, RowLossFn } from './per-sample-gradients';
export type { FitResumeState } from './fit-resume';
export {
  accuracy,
  averageRanks,
  confusionMatrix,
  kendallTau,
  pairwiseAngleAccuracy,
  perClassRecall,
  spearmanRho,
} from './metrics';
export type { PairwiseAngleAccuracy, PairwiseAngleInput } from './metrics';
export { fileSystemHandler, loadModel, loadOptimizerState, restoreOptimizer, saveModel } from './model-io';
export type { SavableModel } from './model-io';
export { PyTorchBatchNorm } from './pytorch-batch-norm';
export { crossEntropyLoss, logisticPairLoss, marginRankingLoss, pairScoresLoss } from './pair-losses';
export { adjacentAnglePairs, allPairsInBatch, randomPairs } from './pair-samplers';
export type { AnglePair } from './pair-samplers';
export { buildResNet, countParameters, countTrainableParameters, PYTORCH_BATCH_NORM, resNetWidths } from './resnet';
export type { ResNetDepth, ResNetOptions } from './resnet';
export { disposeBatch, pairData, tensorData } from './training-data';
export type { Batch, TrainingData } from './training-data';
export { allVariablesOf, asTrainable, trainableVariablesOf } from './trainable-model';
export type { ModelInput, TrainableModel } from './trainable-model';
