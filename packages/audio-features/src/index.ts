export { decodeWav, encodeWav, parseWavHeader, readWav, readWavInfo, toMono, writeWav } from './wav';
export type { DecodedAudio, DecodeWavOptions, WavBitDepth, WavInfo } from './wav';
export { resample } from './resample';
export { checkStftOptions, frameCount, stft, toDecibels, toPower, WINDOW_NAMES } from './stft';
export type { DecibelOptions, Spectrogram, SpectrogramScale, StftOptions, WindowName } from './stft';
export {
  computeFeatures,
  DEFAULT_FEATURE_OPTIONS,
  normalizeInPlace,
  resizeBilinear,
  resolveFeatureOptions,
} from './features';
export type { FeatureMap, FeatureOptions, Normalization } from './features';
export { featureMapToTensor, stackFeatureMaps } from './tensors';
export {
  ANGLE_RANGE_DEG,
  checkClassCounts,
  checkSampleRates,
  classCounts,
  compareFingerprints,
  compareItems,
  datasetFingerprint,
  describeFingerprintChange,
  isPlausibleAngle,
  parseDecimal,
  readManifest,
  scanDataset,
} from './dataset';
export type {
  DatasetFilter,
  DatasetFingerprint,
  DatasetFingerprintChange,
  DatasetFingerprintEntry,
  DatasetItem,
} from './dataset';
export {
  assertValidDataset,
  DEFAULT_MIN_FRAMES,
  DEFAULT_SILENCE_DB,
  formatDatasetProblems,
  validateDataset,
  validateManifest,
  wavPeak,
} from './dataset-validation';
export type {
  DatasetProblem,
  DatasetProblemKind,
  DatasetValidation,
  DatasetValidationOptions,
} from './dataset-validation';
export { mulberry32, seededShuffle, stratifiedKFold, stratifiedSplit } from './split';
export type { ClassOf, Fold, KFoldOptions, Split, SplitOptions } from './split';
export { FeatureCache, stableStringify } from './feature-cache';
export type { FeatureCacheOptions, FeatureCacheStats, FeatureSource } from './feature-cache';
export { loadFeatures } from './load-features';
export type { LoadFeaturesOptions } from './load-features';
export { PACKAGE_VERSION } from './version';
