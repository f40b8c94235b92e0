export {
  useFastTraining,
  removeFastTraining,
  fastTrainingKernelConfigs,
  listMissingTrainingKernels,
  TRAINING_KERNEL_NAMES,
} from './use-fast-training';
export type { FastTrainingBackend, FastTrainingInfo, FastTrainingOptions, NativeTrainingInfo } from './use-fast-training';
export {
  conv2DBackpropFilterConfig,
  conv2dBackpropFilterNHWC,
  chooseBackpropFilterStrategy,
  MAX_PATCH_ELEMENTS,
  makeConv2DBackpropFilterKernel,
} from './conv-backprop-filter';
export type { BackpropFilterStrategy } from './conv-backprop-filter';
export { conv2DBackpropInputConfig, conv2dBackpropInputNHWC, makeConv2DBackpropInputKernel } from './conv-backprop-input';
export type { BackpropInputPath } from './conv-backprop-input';
export {
  depthwiseConv2dNativeBackpropFilterConfig,
  depthwiseConv2dNativeBackpropInputConfig,
} from './depthwise-grad';
export { maxPoolGradConfig } from './max-pool-grad';
export { avgPoolGradConfig } from './avg-pool-grad';
export { conv2dDilatedGradConfig } from './conv2d-dilated-grad';
export { fusedBatchNormGradConfig, batchNormGradSumsConfig, BATCH_NORM_GRAD_SUMS } from './batch-norm-grad';
export {
  BATCH_NORM_STATS,
  BATCH_NORM_TRAINING_GRAD,
  batchNormStats,
  batchNormTrainingGrad,
  batchNormStatsConfig,
  batchNormTrainingGradConfig,
} from './batch-norm-training';
export { CONV_BATCH_NORM, CONV_BATCH_NORM_GRAD, convBatchNormConfigs } from './conv-batch-norm';
export { FUSED_ADAM, FUSED_ADAM_MULTI, fusedAdamConfig, fusedAdamMultiConfig, adamUpdateInto } from './fused-adam';
export { sharedIdentityConfig } from './shared-identity';
export type { FusedAdamAttrs, AdamUpdateFn } from './fused-adam';
export { loadNativeKernels, vectorTargetFlags } from './native-addon';
export type {
  NativeKernels,
  NativeGemm,
  NativeBuildOptions,
  NativeLoadResult,
  NativeInfo,
  NativeTile,
  NativeVectorTarget,
} from './native-addon';
export { nativeConvKernelConfigs, nativeGeometry } from './native-conv';
export { convGeometry } from './conv-geometry';
export type { ConvGeometry } from './conv-geometry';
export {
  useWebGpuTraining,
  removeWebGpuTraining,
  webgpuConv2DBackpropFilterConfig,
  webgpuConv2dBackpropFilterNHWC,
  planWebGpuBackpropFilter,
} from './webgpu-conv-backprop-filter';
export type { WebGpuTrainingInfo, WebGpuBackpropFilterPlan } from './webgpu-conv-backprop-filter';
