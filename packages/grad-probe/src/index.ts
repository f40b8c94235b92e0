export { batchGradients, gradientSetFromVectors, perSampleGradients, layerGradientNorms } from './gradients';
export type { GradientOptions, GradientSegment, GradientSet, LayerGradientNorms, VariableInput } from './gradients';
export { RandomProjection } from './random-projection';
export type { ProjectionDistribution, RandomProjectionJSON, RandomProjectionOptions } from './random-projection';
export { gradientNoiseScale, gradientNoiseScaleTwoBatch, GNSTracker } from './gradient-noise-scale';
export type {
  GNSBootstrap,
  GNSEstimate,
  GNSHistoryEntry,
  GNSInterval,
  GNSTrackerJSON,
  GNSTrackerStats,
  GradientNoiseScaleOptions,
  TwoBatchInput,
} from './gradient-noise-scale';
export { gradientSNR } from './gradient-snr';
export type { GradientSNR, GradientSNRSegment } from './gradient-snr';
export { normHistogram } from './norm-histogram';
export type { NormHistogram } from './norm-histogram';
export { cosineSimilarityMatrix } from './cosine-similarity';
export type { CosineSimilarityResult } from './cosine-similarity';
export { tsneEmbedding } from './tsne-embedding';
export type { TsneEmbedding, TsneOptions } from './tsne-embedding';
export { trustworthiness } from './trustworthiness';
export { anomalousSamples } from './anomalous-samples';
export type { AnomalousSample } from './anomalous-samples';
export { GHMStatsRecorder } from './ghm-stats-recorder';
export type { GHMBinRow, GHMStatsLike, GHMStatsRecord, GHMStatsRecorderJSON } from './ghm-stats-recorder';
export { VEGA_LITE_SCHEMA, cosineHeatmapSpec, ghmBinsSpec, gnsVsEpochSpec, normHistogramSpec, tsneScatterSpec } from './vega-specs';
export type { GNSPoint, TsneScatterGroup, VegaLiteSpec } from './vega-specs';
export type { VectorLike } from './vector-math';
