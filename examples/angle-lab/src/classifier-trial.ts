import * as tf from '@tensorflow/tfjs-core';
import type { TrialContext } from '@lab/experiment-runner';
import type { GHMSoftmaxJSON } from '@lab/ghm-loss';
import { GHMStatsRecorder, type GHMStatsRecorderJSON } from '@lab/grad-probe';
import { accuracy, confusionMatrix, fit, pairwiseAngleAccuracy, tensorData } from '@lab/ranking-models';
import { featureTensor, inputName, loadTakes, parseInput, splitTakes, takeFeatures, type DataParams } from './lab-data';
import { buildClassifier, classificationLoss, ensureTrainingKernels, fuseKey, trialBytes, type ModelParams } from './model-setup';
import {
  argMaxRows,
  EpochCheckpoints,
  fusedStepper,
  loadEpochCheckpoint,
  optional,
  matrixToJson,
  runFolds,
  stopIfAborted,
} from './trial-helpers';

/** Parameters of every angle-classifier experiment (frequency-loss, ghm-sensitivity, material, fusion). */
export type ClassifierParams = DataParams &
  ModelParams & {
  material: string;
  /** "1000Hz", or several frequencies of the same take as channels: "500Hz+1000Hz+3000Hz". */
  input: string;
  loss: string;
  /** GHM: number of bins over g = 1 − p_target. */
  bins: number;
  /** GHM: EMA momentum of the bin counts (the lab's "alpha"). */
  alpha: number;
  /** Fraction of the training takes held out to select the epoch. */
  validationFraction: number;
  };

/** What a classifier trial saves as `evaluation.json`: the held-out fold at the selected epoch. */
export interface ClassifierEvaluation {
  angles: number[];
  input: string;
  material: string;
  split: { train: number; validation: number; test: number };
  bestEpoch: number;
  labels: number[];
  predicted: number[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  /** Pairwise angle accuracy (null on the diagonal). */
  pairwise: (number | null)[][];
  pairwiseCount: number[][];
  backend: string;
  trainingKernels: string[];
  /** GHM bin statistics at the end of every epoch (GHM trials only). */
  ghm?: GHMStatsRecorderJSON;
}

/** What a classifier trial checkpoints besides fit's state, after every epoch. */
interface ClassifierCheckpoint {
  ghm: GHMSoftmaxJSON | null;
  ghmRecorder: GHMStatsRecorderJSON;
}

/** Classifier trials of equal network, input shape and batch size train fused (see the runner's `--fuse`). */
export const CLASSIFIER_FUSE = {
  key: (params: ClassifierParams) => fuseKey('classifier', params),
  bytesPerTrial: (params: ClassifierParams) => trialBytes('classifier', params),
};

/** Tie-break of the epoch selection: among epochs of equal validation accuracy, lower cross-entropy wins. */
const TIE_BREAK = 1e-3;

function crossEntropyOf(logits: tf.Tensor, labels: tf.Tensor): number {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, logits.shape[1] as number);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))).dataSync()[0];
  });
}

/**
 * Trains an angle classifier on the training takes, selects the epoch on the validation takes
 * (restoring its weights) and reports that model on the held-out fold. Logs one line per epoch
 * (train_loss, val_loss, val_acc) and a final line (test_acc, best_epoch, best_val_acc, test_n).
 */
export async function classifierTrial(params: ClassifierParams, seed: number, ctx: TrialContext): Promise<void> {
  const kernels = await ensureTrainingKernels();
  const frequencies = parseInput(params.input);
  const data = await loadTakes(params, params.material, frequencies);
  const features = await takeFeatures(params, data.groups);
  const folds = runFolds(ctx);
  const split = splitTakes(data.groups, { seed, fold: ctx.fold, folds, validationFraction: params.validationFraction });
  if (split.test.length === 0) throw new Error('classifier trials need folds ≥ 2 (the held-out fold is the test set)');
  const size = params.featureSize;
  const channels = frequencies.length;
  const labelsOf = (indices: number[]) => indices.map((i) => data.labels[i]);
  const tensors = {
    xTrain: featureTensor(features, split.train, size, channels),
    yTrain: tf.tensor1d(labelsOf(split.train), 'int32'),
    xVal: featureTensor(features, split.validation, size, channels),
    yVal: tf.tensor1d(labelsOf(split.validation), 'int32'),
    xTest: featureTensor(features, split.test, size, channels),
  };
  // An interrupted attempt left a checkpoint: resume after its epoch with its weights, optimiser,
  // history, GHM state and recorded GHM statistics.
  const resumed = loadEpochCheckpoint<ClassifierCheckpoint>(ctx);
  const restore = resumed?.trial.ghm ?? undefined;
  const loss = classificationLoss(params.loss, { bins: params.bins, alpha: params.alpha, ...(restore ? { restore } : {}) });
  const recorder = resumed ? GHMStatsRecorder.fromJSON(resumed.trial.ghmRecorder) : new GHMStatsRecorder();
  const model = buildClassifier(params, seed, [size, size, channels], data.angles.length);
  const checkpoints = new EpochCheckpoints(ctx);
  try {
    const history = await fit(model, {
      train: tensorData(tensors.xTrain, tensors.yTrain),
      validation: tensorData(tensors.xVal, tensors.yVal),
      lossFn: loss.lossFn,
      optimizer: { lr: params.lr, weightDecay: params.weightDecay },
      batchSize: params.batchSize,
      epochs: params.epochs,
      seed,
      validationMetrics: (output, target) => {
        const predicted = argMaxRows(output.arraySync() as number[][]);
        const acc = accuracy(predicted, Array.from(target.dataSync()));
        const ce = crossEntropyOf(output, target);
        return { accuracy: acc, ce, selection: acc - TIE_BREAK * Math.min(ce, 100) };
      },
      monitor: { metric: 'selection', mode: 'max' },
      restoreBest: true,
      ...optional('stepper', fusedStepper(ctx, model, loss.lossFn)),
      ...(resumed ? { resume: resumed.fit } : {}),
      hooks: {
        afterEpoch: ({ epoch, record, snapshot }) => {
          ctx.log({ epoch, train_loss: record.trainLoss, val_loss: record.validation!.ce, val_acc: record.validation!.accuracy });
          if (loss.ghm) recorder.record(epoch, loss.ghm.stats());
          checkpoints.afterEpoch(() => {
            const trial: ClassifierCheckpoint = { ghm: loss.ghm ? loss.ghm.toJSON() : null, ghmRecorder: recorder.toJSON() };
            return { fit: snapshot(), trial };
          });
          ctx.progress(epoch, params.epochs, `val_acc ${record.validation!.accuracy.toFixed(3)}`);
          stopIfAborted(ctx, epoch);
        },
      },
    });
    const probabilities = tf.tidy(() => model.predictProbabilities(tensors.xTest).arraySync());
    const labels = labelsOf(split.test);
    const predicted = argMaxRows(probabilities);
    const pairwise = pairwiseAngleAccuracy({ probabilities, labels }, data.angles.length);
    const bestVal = history.epochs[history.bestEpoch - 1].validation!.accuracy;
    const evaluation: ClassifierEvaluation = {
      angles: data.angles,
      input: inputName(frequencies),
      material: params.material,
      split: { train: split.train.length, validation: split.validation.length, test: split.test.length },
      bestEpoch: history.bestEpoch,
      labels,
      predicted,
      confusion: confusionMatrix(labels, predicted, data.angles.length),
      pairwise: matrixToJson(pairwise.accuracy),
      pairwiseCount: pairwise.count,
      backend: kernels.backend,
      trainingKernels: kernels.kernels,
      ...(loss.ghm ? { ghm: recorder.toJSON() } : {}),
    };
    ctx.artifact('evaluation.json', evaluation);
    ctx.log({ test_acc: accuracy(predicted, labels), best_epoch: history.bestEpoch, best_val_acc: bestVal, test_n: labels.length });
  } finally {
    model.dispose();
    loss.dispose();
    tf.dispose(Object.values(tensors));
  }
}
