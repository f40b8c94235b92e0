import { describeDataSource } from './lab-data';
import { describeModel } from './model-setup';
import type { RankerParams } from './ranker-trial';

export function rankerMethod(params: RankerParams, extra: string[] = []): string {
  return [
    `**Data.** ${describeDataSource(params)}; spectrogram feature maps of ${params.featureSize} × ${params.featureSize} as in frequency-loss. The takes are split once per seed, stratified by angle: ${Math.round(params.validationFraction * 100)} % per angle (at least one) are held out${params.validationFraction !== 0.1 ? ' (the seed report held out 10 %; more here so that Kendall\'s τ on the held-out takes is less noisy)' : ''}.`,
    `**Model.** ResNetAudioRanker equivalent: ${describeModel(params)}; one score per take. A pair (a, b) is scored by running the model on both takes; MarginRankingLoss with margin ${params.margin}: mean(max(0, −y·(s_a − s_b) + margin)), y = +1 when a has the larger angle. Each epoch draws ${params.pairsPerEpoch} random training pairs of different angles (seeded).`,
    `**Gradient probes** after every ${params.probeEvery} epochs, on a fixed set of training pairs, with batch norm in inference mode (moving statistics), so that a one-pair "batch" is well defined and the mean of per-pair gradients equals the batch gradient: (1) the gradients of ${params.probeBatches} batches of ${params.batchSize} pairs: their cosine-similarity matrix and ${params.tsne ? 't-SNE map (druid.js, perplexity clamped below (n − 1)/3, trustworthiness reported)' : 'no t-SNE map'}; (2) the gradients of ${params.probePairs} single pairs: the gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et al. 2018; unbiased estimators from per-sample gradients, percentile bootstrap over pairs with ${params.gnsBootstrap} replicates) and the pairs whose gradients are least aligned with the rest (@lab/grad-probe). ${params.projectionDim > 0 ? `Gradients are projected to ${params.projectionDim} dimensions (seeded Johnson–Lindenstrauss) first.` : 'Gradients are used whole (no projection).'}`,
    '**The noise scale.** B_simple is dimensionless and estimates the batch size above which larger batches stop reducing the number of steps needed (the critical batch size). The seed report\'s "GNS" values of about 1e-5 do not follow this definition; its numbers cannot be compared with these.',
    `**Ranking quality.** Kendall's τ-b between the model's scores and the true angles of the held-out takes after every epoch (1 = perfect order, 0 = none), and on the training takes at the end.`,
    ...extra,
  ].join('\n\n');
}
