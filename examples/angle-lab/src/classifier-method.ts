import { describeDataSource } from './lab-data';
import type { ClassifierParams } from './classifier-trial';
import { describeModel } from './model-setup';

/** The Method section of the classifier experiments, generated from the parameters. */
export function classifierMethod(params: ClassifierParams, extra: string[] = []): string {
  return [
    `**Data.** ${describeDataSource(params)}, material \`${params.material}\`, one class per angle. Each take becomes a spectrogram feature map: Meyda STFT (symmetric Hann window, 1024-point FFT, hop 256, centred), magnitude in dB relative to the clip's peak (floor −80 dB), the bins within ±300 Hz of the tone, the first 1.25 s, resized to ${params.featureSize} × ${params.featureSize} and standardised per example (@lab/audio-features, cached on disk). A fused input stacks the maps of the same take at several frequencies as channels.`,
    `**Model.** ${describeModel(params)}; one logit per angle class.`,
    `**Loss.** ${params.loss === 'ghm' ? `GHM` : 'cross-entropy'} unless the sweep varies it. Cross-entropy: softmax cross-entropy averaged over the batch. GHM (softmax form of GHM-C, @lab/ghm-loss): g = 1 − p(true class), ${params.bins} equal bins over [0, 1], EMA momentum alpha = ${params.alpha} on the bin counts (alpha 0: the batch's own counts), weight tot / (count · non-empty bins); only training steps update the EMA, never validation.`,
    `**Protocol.** The takes are split into stratified folds (seeded by the trial's seed); each fold is held out once as the test set. Of the remaining takes, ${Math.round(params.validationFraction * 100)} % per angle (at least one) form the validation set that selects the epoch: highest validation accuracy, ties broken by the lower validation cross-entropy; that epoch's weights are restored and evaluated once on the held-out fold. Trials with the same seed and fold use the same takes and the same initial weights, so variants are compared pairwise.`,
    `**Statistics.** Mean ± 95 % t-interval over seeds × folds. Paired differences by seed and fold with their 95 % CI, paired t-test and exact Wilcoxon signed-rank test; "not significant" means p ≥ 0.05 for the t-test. Folds of one seed share training data, so these intervals are somewhat optimistic (Nadeau & Bengio 2003).`,
    ...extra,
  ].join('\n\n');
}
