import * as tf from '@tensorflow/tfjs-core';
import type { TrialContext } from '@lab/experiment-runner';
import {
  anomalousSamples,
  cosineSimilarityMatrix,
  gradientNoiseScale,
  gradientSetFromVectors,
  GNSTracker,
  RandomProjection,
  tsneEmbedding,
  type AnomalousSample,
  type GNSTrackerJSON,
} from '@lab/grad-probe';
import {
  allPairsInBatch,
  disposeBatch,
  fit,
  kendallTau,
  marginRankingLoss,
  pairData,
  pairScoresLoss,
  pairwiseAngleAccuracy,
  perSampleGradients,
  randomPairs,
  type AnglePair,
  type TrainingData,
} from '@lab/ranking-models';
import { angleLabel } from './report-kit';
import { featureTensor, inputName, loadTakes, parseInput, splitTakes, takeFeatures, type DataParams } from './lab-data';
import { buildRanker, ensureTrainingKernels, fuseKey, trialBytes, type ModelParams } from './model-setup';
import { EpochCheckpoints, fusedStepper, loadEpochCheckpoint, matrixToJson, optional, stopIfAborted } from './trial-helpers';

/** Parameters of the ranker experiments (ranker-gradients, batch-size). */
export type RankerParams = DataParams &
  ModelParams & {
  material: string;
  input: string;
  /** MarginRankingLoss margin (the lab trains with 10). */
  margin: number;
  /** Random training pairs drawn (afresh) for every epoch. */
  pairsPerEpoch: number;
  /** Fraction of the takes held out to measure Kendall's tau (the seed report: 10 %). */
  validationFraction: number;
  /** Gradient probes run after every `probeEvery` epochs (the seed report: 5, 10, …, 30). */
  probeEvery: number;
  /** Batches of training pairs whose gradients are compared (t-SNE, cosine heat map). */
  probeBatches: number;
  /** Training pairs whose individual gradients give the noise scale and the anomalous pairs. */
  probePairs: number;
  /** Random projection of gradients to this many dimensions before analysis; 0 keeps them whole. */
  projectionDim: number;
  /** Bootstrap replicates of the noise scale's 95 % interval. */
  gnsBootstrap: number;
  /** t-SNE maps of the batch gradients at each probe. */
  tsne: boolean;
  };

export interface GradientProbe {
  epoch: number;
  gns: { bSimple: number | null; low: number | null; high: number | null; trSigma: number; gSquared: number };
  meanPairGradientNorm: number;
  /** Mean off-diagonal cosine between batch gradients. */
  meanBatchCosine: number;
  batchCosine: number[][];
  batchLabels: string[];
  tsne?: { points: [number, number][]; trustworthiness: number; perplexityUsed: number; warnings: string[] };
  /** Why the t-SNE map of this probe is missing, when it failed. */
  tsneError?: string;
  anomalies: AnomalousSample[];
}

export interface RankerProbes {
  material: string;
  input: string;
  dimension: number;
  projected: number | null;
  probes: GradientProbe[];
  gnsTracker: GNSTrackerJSON;
  angles: number[];
  valLabels: number[];
  valScores: number[];
  pairwise: (number | null)[][];
  backend: string;
  trainingKernels: string[];
}

function meanOffDiagonal(matrix: number[][]): number {
  let sum = 0;
  let count = 0;
  matrix.forEach((row, i) => row.forEach((v, j) => {
    if (i !== j) {
      sum += v;
      count++;
    }
  }));
  return count ? sum / count : NaN;
}

/** What a ranker trial checkpoints besides fit's state, after every epoch: the probes so far. */
interface RankerCheckpoint {
  probes: GradientProbe[];
  gnsTracker: GNSTrackerJSON;
  dimension: number;
}

const round = (x: number, digits = 4) => Number(x.toFixed(digits));

/** Probe pairs per batched per-sample gradient pass (rounded down to whole batches): bounds the memory of the per-pair weight copies. */
const PROBE_CHUNK = 64;

/**
 * Per-pair gradients [P, ...variable] → each pair's gradient flattened in the variables' order
 * (the layout of grad-probe's segments) for the first `pairs` rows, and the mean over each run of
 * `batchSize` rows of the first `batchRows` rows: a batch's loss is the mean over its pairs, so its
 * gradient is the mean of theirs.
 */
async function flattenRows(gradients: tf.Tensor[], pairs: number, batchRows: number, batchSize: number): Promise<{ pairs: Float32Array[]; batchMeans: Float32Array[] }> {
  const rows = gradients[0].shape[0];
  const { flat, means } = tf.tidy(() => {
    const matrix = tf.concat(gradients.map((g) => tf.reshape(g, [rows, -1])), 1);
    const perBatch = batchRows > 0 ? tf.mean(tf.reshape(tf.slice(matrix, 0, batchRows), [batchRows / batchSize, batchSize, -1]), 1) : undefined;
    return { flat: pairs > 0 ? tf.slice(matrix, 0, pairs) : undefined, means: perBatch };
  });
  const views = async (t: tf.Tensor | undefined) => {
    if (t == null) return [];
    const [n, d] = t.shape;
    const data = (await t.data()) as Float32Array;
    t.dispose();
    return Array.from({ length: n }, (_, i) => data.subarray(i * d, (i + 1) * d));
  };
  return { pairs: await views(flat), batchMeans: await views(means) };
}

/** Ranker trials of equal network, input shape and batch size train fused (see the runner's `--fuse`). */
export const RANKER_FUSE = {
  key: (params: RankerParams) => fuseKey('ranker', params),
  bytesPerTrial: (params: RankerParams) => trialBytes('ranker', params),
};

/**
 * Trains the angle ranker on random pairs of training takes with MarginRankingLoss and probes its
 * gradients every `probeEvery` epochs: batch-gradient cosines and t-SNE, the gradient noise scale
 * from per-pair gradients, and the pairs whose gradients stand out. Logs per epoch train_loss,
 * val_loss, val_pair_acc, val_tau; per probe gns (+ interval), mean_batch_cosine; finally train_tau.
 */
export async function rankerTrial(params: RankerParams, seed: number, ctx: TrialContext): Promise<void> {
  const kernels = await ensureTrainingKernels();
  const frequencies = parseInput(params.input);
  const data = await loadTakes(params, params.material, frequencies);
  const features = await takeFeatures(params, data.groups);
  const split = splitTakes(data.groups, { seed, validationFraction: params.validationFraction });
  const size = params.featureSize;
  const channels = frequencies.length;
  const trainAngles = split.train.map((i) => data.labels[i]);
  const valAngles = split.validation.map((i) => data.labels[i]);
  const clipName = (index: number) => `${angleLabel(data.groups[index].angleDeg)}/${data.groups[index].take}`;
  const xTrain = featureTensor(features, split.train, size, channels);
  const xVal = featureTensor(features, split.validation, size, channels);
  // An interrupted attempt left a checkpoint: resume after its epoch with its weights, optimiser,
  // history and the probes it had run.
  const resumed = loadEpochCheckpoint<RankerCheckpoint>(ctx);
  const model = buildRanker(params, seed, [size, size, channels]);
  const lossFn = pairScoresLoss((s1, s2, y) => marginRankingLoss(s1, s2, y, params.margin));

  let epochPairs: AnglePair[] = randomPairs(trainAngles, params.pairsPerEpoch, seed * 1000 + 1);
  const train: TrainingData = { size: params.pairsPerEpoch, batch: (indices) => pairData(xTrain, epochPairs).batch(indices) };
  const valPairs = allPairsInBatch(valAngles);
  const validation = pairData(xVal, valPairs);
  const probeCount = Math.max(params.probePairs, params.probeBatches * params.batchSize);
  const probePairs = randomPairs(trainAngles, probeCount, seed * 1000 + 999);
  const probeData = pairData(xTrain, probePairs);
  const projection = params.projectionDim > 0 ? new RandomProjection({ k: params.projectionDim, seed }) : undefined;
  const tracker = resumed ? GNSTracker.fromJSON(resumed.trial.gnsTracker) : new GNSTracker();
  const probes: GradientProbe[] = resumed ? resumed.trial.probes : [];
  let dimension = resumed?.trial.dimension ?? 0;

  const scoresOf = (x: tf.Tensor) => tf.tidy(() => Array.from(model.predict(x).dataSync()));
  // Inference-mode batch norm: a pair "batch" of one would otherwise be normalised by itself, and the
  // mean of per-pair gradients then equals the batch gradient, as the noise-scale estimators assume.
  // So every probe gradient comes from per-pair gradients of one batched pass per chunk of pairs: a
  // batch's loss is the mean over its pairs, its gradient the mean of theirs.
  const probeGradients = async (batchCount: number) => {
    const batchPairs = batchCount * params.batchSize;
    const pairCount = Math.max(params.probePairs, batchPairs);
    const chunk = Math.max(1, Math.floor(PROBE_CHUNK / params.batchSize)) * params.batchSize;
    const out = { pairVectors: [] as Float32Array[], pairLosses: [] as number[], batchMeans: [] as Float32Array[], batchLosses: [] as number[] };
    for (let start = 0; start < pairCount; start += chunk) {
      const rows = Math.min(chunk, pairCount - start);
      const batch = probeData.batch(Array.from({ length: rows }, (_, i) => start + i));
      let result: ReturnType<typeof perSampleGradients>;
      try {
        result = perSampleGradients(model, batch.input, batch.target, lossFn);
      } finally {
        disposeBatch(batch);
      }
      // The chunk starts on a batch boundary, so its batch rows are whole batches.
      const pairs = Math.max(0, Math.min(rows, params.probePairs - start));
      const batchRows = Math.max(0, Math.min(rows, batchPairs - start));
      const flat = await flattenRows(result.gradients, pairs, batchRows, params.batchSize).finally(() => tf.dispose(result.gradients));
      out.pairVectors.push(...flat.pairs);
      out.pairLosses.push(...Array.from(result.losses.subarray(0, pairs)));
      out.batchMeans.push(...flat.batchMeans);
      for (let b = 0; b < batchRows; b += params.batchSize) {
        out.batchLosses.push(result.losses.subarray(b, b + params.batchSize).reduce((s, l) => s + l, 0) / params.batchSize);
      }
    }
    return out;
  };

  const probe = async (epoch: number) => {
    const variables = model.trainableVariables;
    const options = projection ? { project: projection } : {};
    const batches = Array.from({ length: params.probeBatches }, (_, b) => Array.from({ length: params.batchSize }, (_, i) => b * params.batchSize + i));
    const gradients = await probeGradients(batches.length);
    const batchSet = gradientSetFromVectors('batch', variables, gradients.batchMeans, gradients.batchLosses, options);
    const pairSet = gradientSetFromVectors('sample', variables, gradients.pairVectors, gradients.pairLosses, options);
    dimension = pairSet.dimension;
    const estimate = gradientNoiseScale(pairSet.gradients, { bootstrap: params.gnsBootstrap, seed: seed + epoch });
    tracker.update(estimate, epoch);
    const cosine = cosineSimilarityMatrix(batchSet.gradients);
    const batchLabels = batches.map((indices) => {
      const gap = indices.reduce((s, i) => s + Math.abs(trainAngles[probePairs[i].a] - trainAngles[probePairs[i].b]), 0) / indices.length;
      return `gap ${gap <= 1.5 ? '≤ 1.5' : gap <= 2.5 ? '1.5–2.5' : '> 2.5'}`;
    });
    let tsne: GradientProbe['tsne'];
    let tsneError: string | undefined;
    if (params.tsne) {
      // A map that cannot be drawn is reported, not allowed to end the training trial.
      try {
        const map = tsneEmbedding(batchSet.gradients, { seed: seed + epoch, iterations: 500 });
        tsne = { points: map.points.map(([x, y]) => [round(x), round(y)]), trustworthiness: map.trustworthiness, perplexityUsed: map.perplexityUsed, warnings: map.warnings };
      } catch (error) {
        tsneError = (error as Error).message;
      }
    }
    const ids = Array.from({ length: params.probePairs }, (_, i) => `${clipName(split.train[probePairs[i].a])} vs ${clipName(split.train[probePairs[i].b])}`);
    const anomalies = anomalousSamples(pairSet.gradients, ids, { top: 5 });
    const meanNorm = pairSet.norms.reduce((s, n) => s + n, 0) / pairSet.norms.length;
    const entry: GradientProbe = {
      epoch,
      gns: { bSimple: estimate.bSimple, low: estimate.ci95?.bSimple.low ?? null, high: estimate.ci95?.bSimple.high ?? null, trSigma: estimate.trSigma, gSquared: estimate.gSquared },
      meanPairGradientNorm: meanNorm,
      meanBatchCosine: meanOffDiagonal(cosine.matrix),
      batchCosine: cosine.matrix.map((row) => row.map((v) => round(v, 3))),
      batchLabels,
      ...(tsne ? { tsne } : {}),
      ...(tsneError ? { tsneError } : {}),
      anomalies,
    };
    probes.push(entry);
    ctx.log({
      epoch,
      gns: estimate.bSimple,
      gns_low: entry.gns.low,
      gns_high: entry.gns.high,
      tr_sigma: estimate.trSigma,
      g_squared: estimate.gSquared,
      mean_batch_cosine: entry.meanBatchCosine,
    });
  };

  const checkpoints = new EpochCheckpoints(ctx);
  try {
    await fit(model, {
      train,
      validation,
      lossFn,
      optimizer: { lr: params.lr, weightDecay: params.weightDecay },
      batchSize: params.batchSize,
      epochs: params.epochs,
      seed,
      ...(resumed ? { resume: resumed.fit } : {}),
      ...optional('stepper', fusedStepper(ctx, model, lossFn)),
      validationMetrics: (output, target) => {
        const scores = output.arraySync() as number[][];
        const y = Array.from(target.dataSync());
        const correct = scores.reduce((s, [a, b], i) => s + ((a - b) * y[i] > 0 ? 1 : a === b ? 0.5 : 0), 0);
        return { pairAccuracy: correct / Math.max(scores.length, 1) };
      },
      hooks: {
        beforeEpoch: ({ epoch }) => {
          if (epoch > 1) epochPairs = randomPairs(trainAngles, params.pairsPerEpoch, seed * 1000 + epoch);
        },
        afterEpoch: async ({ epoch, record, snapshot }) => {
          ctx.log({
            epoch,
            train_loss: record.trainLoss,
            val_loss: record.validation!.loss,
            val_pair_acc: record.validation!.pairAccuracy,
            val_tau: kendallTau(scoresOf(xVal), valAngles),
          });
          if (epoch % params.probeEvery === 0) await probe(epoch);
          checkpoints.afterEpoch(() => {
            const trial: RankerCheckpoint = { probes, gnsTracker: tracker.toJSON(), dimension };
            return { fit: snapshot(), trial };
          });
          ctx.progress(epoch, params.epochs);
          stopIfAborted(ctx, epoch);
        },
      },
    });
    const valScores = scoresOf(xVal);
    const pairwise = pairwiseAngleAccuracy({ scores: valScores, labels: valAngles }, data.angles.length);
    const result: RankerProbes = {
      material: params.material,
      input: inputName(frequencies),
      dimension,
      projected: projection ? projection.k : null,
      probes,
      gnsTracker: tracker.toJSON(),
      angles: data.angles,
      valLabels: valAngles,
      valScores,
      pairwise: matrixToJson(pairwise.accuracy),
      backend: kernels.backend,
      trainingKernels: kernels.kernels,
    };
    ctx.artifact('probes.json', result);
    ctx.log({ train_tau: kendallTau(scoresOf(xTrain), trainAngles) });
  } finally {
    model.dispose();
    tf.dispose([xTrain, xVal]);
  }
}
