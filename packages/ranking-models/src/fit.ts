import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients; importing tfjs-layers registers all of them.
import '@tensorflow/tfjs-layers';
import type * as tfl from '@tensorflow/tfjs-layers';
import { AdamOptimizer, type AdamOptions } from './adam-optimizer';
import { copyEpochRecords, type FitResumeState } from './fit-resume';
import { BatchNormalizationLayerClass } from './pytorch-batch-norm';
import { deriveSeed, shuffledIndices } from './seeded-random';
import { disposeBatch, type Batch, type TrainingData } from './training-data';
import { allVariablesOf, type ModelInput, type TrainableModel } from './trainable-model';

/** Why a loss is being computed; see `LossContext`. */
export type LossPhase = 'train' | 'validation' | 'probe';

/**
 * Passed by `fit`, `evaluate` and `lossOn` as the third argument of every loss call, so a stateful
 * loss (e.g. GHM's gradient-density EMA) can move its state on optimiser steps only.
 */
export interface LossContext {
  /**
   * True only when the loss feeds an optimiser step (`phase: 'train'`); false for validation,
   * `evaluate` and gradient probes (`lossOn`), whatever batch-norm mode those run in.
   */
  training: boolean;
  phase: LossPhase;
}

/**
 * Any loss: model output and batch target in, mean loss over the batch out (CE, focal, GHM, pair
 * losses …). The context tells training steps from validation and probes; a loss without state
 * can ignore it (two-argument functions are accepted as they are).
 */
export type LossFn = (output: tf.Tensor, target: tf.Tensor, context: LossContext) => tf.Scalar;

export const TRAIN_STEP: LossContext = Object.freeze({ training: true, phase: 'train' });
const VALIDATION: LossContext = Object.freeze({ training: false, phase: 'validation' });
const PROBE: LossContext = Object.freeze({ training: false, phase: 'probe' });

/** Metrics computed once per evaluation from all outputs and targets (concatenated along axis 0). */
export type MetricsFn = (output: tf.Tensor, target: tf.Tensor) => Record<string, number>;

export interface MonitorOptions {
  /** Name of a validation metric ('loss' or a key returned by `validationMetrics`). Default 'loss'. */
  metric?: string;
  /** Default: 'min' when the name contains "loss", otherwise 'max'. */
  mode?: 'min' | 'max';
}

export interface EpochContext {
  /** 1-based epoch number (the lab's reports count epochs from 1). */
  epoch: number;
  model: TrainableModel;
  optimizer: AdamOptimizer;
  /** Ends training after the current epoch (after `afterEpoch` hooks have run). */
  requestStop(): void;
}

export interface EpochEndContext extends EpochContext {
  record: EpochRecord;
  /**
   * The state after this epoch (weights, optimiser moments, history, best weights), as plain data:
   * pass it as `options.resume` to continue from here. Reads every variable back from the
   * backend, so take it only when a checkpoint is wanted.
   */
  snapshot(): FitResumeState;
}

export interface BatchContext extends EpochContext {
  /** 0-based index of the batch within the epoch. */
  batchIndex: number;
  batchesPerEpoch: number;
  /** Dataset indices of the items in this batch. */
  indices: number[];
  input: ModelInput;
  target: tf.Tensor;
  /** The trainable variables, in the order `gradients` and the optimiser use. */
  variables: tf.Variable[];
  /**
   * The loss of this model on any input/target with the current weights, for gradient probes
   * (e.g. `tf.variableGrads(() => ctx.lossOn(x, y), ctx.variables)`). `options.training` is the
   * batch-norm mode: training mode by default (batch statistics, as in the step) but batch-norm
   * moving statistics are left untouched. The loss always gets `{ training: false, phase: 'probe' }`,
   * so a stateful loss is not moved by probes either.
   */
  lossOn(input: ModelInput, target: tf.Tensor, options?: { training?: boolean }): tf.Scalar;
}

export interface BatchEndContext extends BatchContext {
  /** Mean loss of the batch before the update. */
  loss: number;
  /** The gradients of this step (before weight decay), aligned with `variables`; disposed after the hook returns. */
  gradients: tf.Tensor[];
}

type MaybePromise<T> = T | Promise<T>;

export interface FitHooks {
  beforeEpoch?: (ctx: EpochContext) => MaybePromise<void>;
  afterEpoch?: (ctx: EpochEndContext) => MaybePromise<void>;
  beforeBatch?: (ctx: BatchContext) => MaybePromise<void>;
  afterBatch?: (ctx: BatchEndContext) => MaybePromise<void>;
}

export interface FitOptions {
  train: TrainingData;
  validation?: TrainingData;
  /** Loss of the training steps; also of validation and probes unless `validationLossFn` is given (see `LossContext`). */
  lossFn: LossFn;
  /** Loss for validation (the `loss` validation metric) instead of `lossFn`. Called with `{ training: false, phase: 'validation' }`. */
  validationLossFn?: LossFn;
  /** Options for a new Adam (disposed at the end), or an existing one to continue with (kept). */
  optimizer: AdamOptions | AdamOptimizer;
  batchSize: number;
  epochs: number;
  /** Seeds the per-epoch shuffles. Default 0. */
  seed?: number;
  /** Shuffle the training items each epoch. Default true. */
  shuffle?: boolean;
  /** Drop a last batch smaller than batchSize (PyTorch DataLoader drop_last). Default false. */
  dropLast?: boolean;
  /** Extra validation metrics, computed from all validation outputs each epoch. */
  validationMetrics?: MetricsFn;
  /**
   * Metric choosing the best epoch. Default: validation loss (train loss without validation).
   * Ties (equal values, common for accuracy on small validation sets) go to the epoch with the
   * lower validation loss, then to the earlier epoch.
   */
  monitor?: MonitorOptions;
  /** Stop after `patience` epochs without improvement of the metric (default: the monitored one). */
  earlyStopping?: { patience: number } & MonitorOptions;
  /** Put back the weights (batch-norm statistics included) of the best epoch at the end. Default false. */
  restoreBest?: boolean;
  hooks?: FitHooks;
  /**
   * Continue a training that stopped after `resume.epoch` (a `snapshot()` from an `afterEpoch`
   * hook): the model's variables, the optimiser, the history and the best-epoch and
   * early-stopping bookkeeping are set from it and training goes on at epoch `resume.epoch + 1`.
   * With the same options, seed and backend the result equals an uninterrupted `fit`: the
   * per-epoch shuffles depend on (seed, epoch) only.
   */
  resume?: FitResumeState;
  /**
   * Computes the training steps instead of fit's own `tf.variableGrads` (same loss, same
   * gradients): a `FusedTrainingGroup` member's stepper, which computes the steps of several
   * trials' fits as one computation. fit calls `leave()` when it ends, however it ends.
   */
  stepper?: TrainingStepper;
}

/** A training step's results: the batch's mean loss, and gradients aligned with the model's trainable variables. */
export interface TrainingStepResult {
  value: tf.Scalar;
  gradients: tf.Tensor[];
}

/** Computes fit's training steps for one model (see `FitOptions.stepper`). */
export interface TrainingStepper {
  /** The loss (`{ training: true, phase: 'train' }`) of the model on the batch, and its gradients; batch norm in training mode. */
  step(input: ModelInput, target: tf.Tensor): Promise<TrainingStepResult>;
  /** No more steps come from this model. Idempotent. */
  leave(): void;
}

/** fit's own training step: the loss of one batch and its gradients by tfjs autodiff. */
export function trainingStep(model: TrainableModel, lossFn: LossFn, input: ModelInput, target: tf.Tensor): TrainingStepResult {
  const variables = model.trainableVariables;
  let value: tf.Scalar;
  let grads: tf.NamedTensorMap;
  try {
    ({ value, grads } = tf.variableGrads(() => lossFn(model.forward(input, { training: true }), target, TRAIN_STEP), variables));
  } catch (error) {
    throw explainGradientError(error);
  }
  // A variable the loss does not reach gets a zero gradient (PyTorch would skip it).
  return { value, gradients: variables.map((v) => grads[v.name] ?? tf.zerosLike(v)) };
}

export interface EpochRecord {
  epoch: number;
  /** Mean of the per-batch training losses, weighted by batch size (training mode). */
  trainLoss: number;
  /** Validation loss (inference mode) and `validationMetrics`. */
  validation?: Record<string, number>;
  seconds: number;
}

export interface FitHistory {
  epochs: EpochRecord[];
  /**
   * Epoch (1-based) with the best monitored value, and that value. Among epochs with equal values
   * the one with the lowest validation loss wins, then the earliest.
   */
  bestEpoch: number;
  bestValue: number;
  monitor: { metric: string; mode: 'min' | 'max'; on: 'validation' | 'train' };
  stoppedEarly: boolean;
  restoredBest: boolean;
  optimizerSteps: number;
}

function resolveMonitor(options: MonitorOptions | undefined, hasValidation: boolean): FitHistory['monitor'] {
  const metric = options?.metric ?? 'loss';
  const mode = options?.mode ?? (metric.toLowerCase().includes('loss') ? 'min' : 'max');
  if (!hasValidation && metric !== 'loss') {
    throw new Error(`fit: monitoring '${metric}' needs options.validation (without it only the train 'loss' can be monitored)`);
  }
  return { metric, mode, on: hasValidation ? 'validation' : 'train' };
}

function monitoredValue(record: EpochRecord, monitor: FitHistory['monitor']): number {
  if (monitor.on === 'train') return record.trainLoss;
  const value = record.validation?.[monitor.metric];
  if (value === undefined) {
    throw new Error(`fit: monitored metric '${monitor.metric}' is not among the validation metrics (${Object.keys(record.validation ?? {}).join(', ')})`);
  }
  return value;
}

function improves(value: number, best: number, mode: 'min' | 'max'): boolean {
  if (Number.isNaN(value)) return false;
  if (Number.isNaN(best)) return true;
  return mode === 'min' ? value < best : value > best;
}

/**
 * Whether `record` beats the best epoch so far. A tie on the monitored value (e.g. the same
 * accuracy, frequent on small validation sets) goes to the lower validation loss; if that ties
 * too, or there is no validation, the earlier epoch stays.
 */
function beatsBest(record: EpochRecord, value: number, best: EpochRecord | undefined, bestValue: number, monitor: FitHistory['monitor']): boolean {
  if (best === undefined) return true;
  if (improves(value, bestValue, monitor.mode)) return true;
  if (value !== bestValue) return false;
  const loss = record.validation?.loss;
  const bestLoss = best.validation?.loss;
  if (loss === undefined || bestLoss === undefined) return false;
  return improves(loss, bestLoss, 'min');
}

/**
 * Batch-norm layers of a model, those of nested models (a backbone used as a layer) included.
 * PyTorchBatchNorm extends tfjs-layers' BatchNormalization, so both kinds are found.
 */
function batchNormLayers(model: { layers: tfl.layers.Layer[] }): tfl.layers.Layer[] {
  return model.layers.flatMap((layer) => {
    if (layer instanceof BatchNormalizationLayerClass) return [layer];
    const nested = (layer as unknown as { layers?: tfl.layers.Layer[] }).layers;
    return Array.isArray(nested) ? batchNormLayers({ layers: nested }) : [];
  });
}

/**
 * Runs `f` with every batch-norm layer's momentum set to 1, so a training-mode forward pass
 * (batch statistics) leaves the moving statistics unchanged: tfjs-layers updates them as
 * `moving − (moving − batch)·(1 − momentum)`. Used by probes that must not disturb the model.
 */
export function withFrozenBatchNormStatistics<T>(model: tfl.LayersModel, f: () => T): T {
  const layers = batchNormLayers(model) as unknown as { momentum: number }[];
  const saved = layers.map((l) => l.momentum);
  layers.forEach((l) => (l.momentum = 1));
  try {
    return f();
  } finally {
    layers.forEach((l, i) => (l.momentum = saved[i]));
  }
}

export function explainGradientError(error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  if (message.includes('gradient function not found')) {
    return new Error(
      `fit: ${message}. tfjs-core alone registers no gradients; '@tensorflow/tfjs-layers' (imported by this ` +
        `package) or '@tensorflow/tfjs' register them: check that only one copy of tfjs-core is installed.`,
    );
  }
  return error instanceof Error ? error : new Error(message);
}

function batchesOf(order: number[], batchSize: number, dropLast: boolean): number[][] {
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const batch = order.slice(start, start + batchSize);
    if (dropLast && batch.length < batchSize) break;
    batches.push(batch);
  }
  return batches;
}

/**
 * Rows per forward pass of `evaluate`: consecutive mini-batches go through the model together
 * (inference mode computes each row on its own, so the outputs are the same), while the loss is
 * still taken per mini-batch, as a stateful loss such as GHM needs. At the lab's batch size of 4,
 * one forward pass per mini-batch had made validation a seventh of a ranker trial.
 */
const EVALUATION_ROWS = 64;

/**
 * Evaluates a model in inference mode over a dataset: mean loss (over mini-batches of
 * `batchSize`, weighted by their size) and, if given, `metrics` over all outputs. Leaves no
 * tensors behind.
 */
export async function evaluate(
  model: TrainableModel,
  data: TrainingData,
  options: { lossFn: LossFn; batchSize: number; metrics?: MetricsFn },
): Promise<Record<string, number>> {
  // The loss gets { training: false, phase: 'validation' }: evaluating must not move a stateful loss.
  if (data.size === 0) throw new Error('evaluate: data is empty');
  const outputs: tf.Tensor[] = [];
  const targets: tf.Tensor[] = [];
  let lossSum = 0;
  const miniBatches = batchesOf(Array.from({ length: data.size }, (_, i) => i), options.batchSize, false);
  const perPass = Math.max(1, Math.floor(EVALUATION_ROWS / options.batchSize));
  try {
    for (let first = 0; first < miniBatches.length; first += perPass) {
      const pass = miniBatches.slice(first, first + perPass);
      const batch = data.batch(pass.flat());
      const output = tf.tidy(() => model.forward(batch.input, { training: false }));
      lossSum += await miniBatchLosses(output, batch.target, pass, options.lossFn);
      if (options.metrics) {
        outputs.push(output);
        targets.push(batch.target);
        tf.dispose(batch.input);
      } else {
        output.dispose();
        disposeBatch(batch);
      }
    }
    const result: Record<string, number> = { loss: lossSum / data.size };
    if (options.metrics) {
      const allOutputs = tf.concat(outputs, 0);
      const allTargets = tf.concat(targets, 0);
      try {
        // tidy: tensors a metrics function creates and forgets are freed too.
        const metrics = options.metrics;
        Object.assign(result, tf.tidy(() => metrics(allOutputs, allTargets) as unknown as tf.TensorContainer) as unknown as Record<string, number>);
      } finally {
        tf.dispose([allOutputs, allTargets]);
      }
    }
    return result;
  } finally {
    tf.dispose([...outputs, ...targets]);
  }
}

/** Sum over the mini-batches of one forward pass (rows in order) of loss × rows. */
async function miniBatchLosses(output: tf.Tensor, target: tf.Tensor, miniBatches: number[][], lossFn: LossFn): Promise<number> {
  let sum = 0;
  let offset = 0;
  const whole = miniBatches.length === 1;
  for (const rows of miniBatches) {
    const loss = tf.tidy(() => lossFn(whole ? output : tf.slice(output, offset, rows.length), whole ? target : tf.slice(target, offset, rows.length), VALIDATION));
    sum += (await loss.data())[0] * rows.length;
    loss.dispose();
    offset += rows.length;
  }
  return sum;
}

/**
 * Trains a classifier, a ranker (on pair data) or any `TrainableModel` with any loss, Adam
 * (L2 or AdamW weight decay), seeded shuffling, hooks, per-epoch validation, best-epoch
 * selection, early stopping and restoring the best weights. Batch norm runs in training mode
 * during the steps (moving statistics updated) and in inference mode for validation.
 */
export async function fit(model: TrainableModel, options: FitOptions): Promise<FitHistory> {
  const { train, validation, lossFn, batchSize, epochs } = options;
  const validationLossFn = options.validationLossFn ?? lossFn;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`fit: options.batchSize must be a positive integer, got ${String(batchSize)}`);
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`fit: options.epochs must be a positive integer, got ${String(epochs)}`);
  if (train.size === 0) throw new Error('fit: options.train is empty');
  if (validation && validation.size === 0) throw new Error('fit: options.validation is empty');
  const monitor = resolveMonitor(options.monitor, validation !== undefined);
  const stopMonitor = options.earlyStopping
    ? resolveMonitor({ metric: options.earlyStopping.metric ?? monitor.metric, mode: options.earlyStopping.mode ?? (options.earlyStopping.metric ? undefined : monitor.mode) }, validation !== undefined)
    : undefined;
  if (options.earlyStopping && !(Number.isInteger(options.earlyStopping.patience) && options.earlyStopping.patience >= 1)) {
    throw new Error(`fit: options.earlyStopping.patience must be a positive integer, got ${String(options.earlyStopping.patience)}`);
  }

  const variables = model.trainableVariables;
  const ownsOptimizer = !(options.optimizer instanceof AdamOptimizer);
  const optimizer = options.optimizer instanceof AdamOptimizer ? options.optimizer : new AdamOptimizer(variables, options.optimizer);
  if (optimizer.variables.length !== variables.length || optimizer.variables.some((v, i) => v !== variables[i])) {
    throw new Error('fit: options.optimizer was created for other variables than this model\'s trainable variables');
  }
  const seed = options.seed ?? 0;
  const hooks = options.hooks ?? {};
  const history: FitHistory = {
    epochs: [],
    bestEpoch: 0,
    bestValue: NaN,
    monitor,
    stoppedEarly: false,
    restoredBest: false,
    optimizerSteps: 0,
  };
  let bestWeights: tf.Tensor[] | undefined;
  let bestRecord: EpochRecord | undefined;
  let stopBest = NaN;
  let epochsWithoutImprovement = 0;
  let stopRequested = false;
  let firstEpoch = 1;
  const snapshot = (epoch: number): FitResumeState => ({
    epoch,
    history: {
      epochs: copyEpochRecords(history.epochs),
      bestEpoch: history.bestEpoch,
      bestValue: history.bestValue,
      monitor: { ...history.monitor },
      optimizerSteps: history.optimizerSteps,
    },
    earlyStopping: { best: stopBest, epochsWithoutImprovement },
    weights: readValues(allVariablesOf(model.model)),
    ...(options.restoreBest && bestWeights ? { bestWeights: readValues(bestWeights) } : {}),
    optimizer: readOptimizer(optimizer),
  });

  const lossOn = (input: ModelInput, target: tf.Tensor, opts: { training?: boolean } = {}): tf.Scalar =>
    withFrozenBatchNormStatistics(model.model, () => tf.tidy(() => lossFn(model.forward(input, { training: opts.training ?? true }), target, PROBE)));

  try {
    if (options.resume) {
      const restored = restoreFitState(model, optimizer, options.resume, { epochs, monitor, restoreBest: options.restoreBest ?? false });
      Object.assign(history, restored.history);
      bestRecord = history.epochs.find((r) => r.epoch === history.bestEpoch);
      bestWeights = restored.bestWeights;
      stopBest = options.resume.earlyStopping.best;
      epochsWithoutImprovement = options.resume.earlyStopping.epochsWithoutImprovement;
      firstEpoch = options.resume.epoch + 1;
      // A snapshot of the epoch at which early stopping ended the first run resumes to that same end.
      if (stopMonitor && epochsWithoutImprovement >= options.earlyStopping!.patience) {
        history.stoppedEarly = true;
        firstEpoch = epochs + 1;
      }
    }
    for (let epoch = firstEpoch; epoch <= epochs; epoch++) {
      const started = performance.now();
      const base: EpochContext = { epoch, model, optimizer, requestStop: () => (stopRequested = true) };
      await hooks.beforeEpoch?.(base);
      const order = options.shuffle === false ? Array.from({ length: train.size }, (_, i) => i) : shuffledIndices(train.size, deriveSeed(seed, epoch));
      const batches = batchesOf(order, batchSize, options.dropLast ?? false);
      let lossSum = 0;
      let seen = 0;
      for (let batchIndex = 0; batchIndex < batches.length; batchIndex++) {
        const indices = batches[batchIndex];
        const batch: Batch = train.batch(indices);
        try {
          const ctx: BatchContext = { ...base, batchIndex, batchesPerEpoch: batches.length, indices, input: batch.input, target: batch.target, variables, lossOn };
          await hooks.beforeBatch?.(ctx);
          const { value, gradients } = options.stepper
            ? await options.stepper.step(batch.input, batch.target)
            : trainingStep(model, lossFn, batch.input, batch.target);
          try {
            const loss = (await value.data())[0];
            if (!Number.isFinite(loss)) throw new Error(`fit: loss is ${loss} at epoch ${epoch}, batch ${batchIndex}`);
            optimizer.applyGradients(gradients);
            history.optimizerSteps++;
            lossSum += loss * indices.length;
            seen += indices.length;
            await hooks.afterBatch?.({ ...ctx, loss, gradients });
          } finally {
            tf.dispose([value, ...gradients]);
          }
        } finally {
          disposeBatch(batch);
        }
      }
      const record: EpochRecord = { epoch, trainLoss: lossSum / seen, seconds: 0 };
      if (validation) {
        record.validation = await evaluate(model, validation, { lossFn: validationLossFn, batchSize, metrics: options.validationMetrics });
      }
      record.seconds = (performance.now() - started) / 1000;
      history.epochs.push(record);

      const value = monitoredValue(record, monitor);
      if (beatsBest(record, value, bestRecord, history.bestValue, monitor)) {
        bestRecord = record;
        history.bestEpoch = epoch;
        history.bestValue = value;
        if (options.restoreBest) {
          tf.dispose(bestWeights ?? []);
          bestWeights = allVariablesOf(model.model).map((v) => v.clone());
        }
      }
      if (stopMonitor) {
        const stopValue = monitoredValue(record, stopMonitor);
        if (epoch === 1 || improves(stopValue, stopBest, stopMonitor.mode)) {
          stopBest = stopValue;
          epochsWithoutImprovement = 0;
        } else {
          epochsWithoutImprovement++;
        }
      }
      await hooks.afterEpoch?.({ ...base, record, snapshot: () => snapshot(epoch) });
      if (stopMonitor && epochsWithoutImprovement >= options.earlyStopping!.patience) {
        history.stoppedEarly = true;
        break;
      }
      if (stopRequested) break;
    }
    if (options.restoreBest && bestWeights) {
      const targets = allVariablesOf(model.model);
      targets.forEach((v, i) => v.assign(bestWeights![i]));
      history.restoredBest = true;
    }
    return history;
  } finally {
    options.stepper?.leave();
    tf.dispose(bestWeights ?? []);
    if (ownsOptimizer) optimizer.dispose();
  }
}

function readValues(tensors: readonly tf.Tensor[]): Float32Array[] {
  return tensors.map((t) => {
    if (t.dtype !== 'float32') throw new Error(`fit snapshot: variable ${(t as tf.Variable).name ?? ''} has dtype ${t.dtype}; only float32 variables can be saved`);
    return Float32Array.from(t.dataSync() as Float32Array);
  });
}

function readOptimizer(optimizer: AdamOptimizer): FitResumeState['optimizer'] {
  const state = optimizer.getState();
  try {
    return { step: state.step, firstMoments: readValues(state.firstMoments), secondMoments: readValues(state.secondMoments) };
  } finally {
    tf.dispose([...state.firstMoments, ...state.secondMoments]);
  }
}

function checkArrays(arrays: readonly Float32Array[] | undefined, variables: readonly tf.Variable[], field: string): Float32Array[] {
  if (!Array.isArray(arrays) || arrays.length !== variables.length) {
    throw new Error(`fit: options.resume.${field} must hold ${variables.length} Float32Arrays (one per variable), got ${Array.isArray(arrays) ? arrays.length : typeof arrays}`);
  }
  arrays.forEach((a, i) => {
    if (!(a instanceof Float32Array) || a.length !== variables[i].size) {
      throw new Error(`fit: options.resume.${field}[${i}] must be a Float32Array of ${variables[i].size} values (variable ${variables[i].name}, shape ${JSON.stringify(variables[i].shape)})`);
    }
  });
  return arrays as Float32Array[];
}

/** Checks a resume state against this model and these options, then loads weights and optimiser. */
function restoreFitState(
  model: TrainableModel,
  optimizer: AdamOptimizer,
  resume: FitResumeState,
  expected: { epochs: number; monitor: FitHistory['monitor']; restoreBest: boolean },
): { history: Pick<FitHistory, 'epochs' | 'bestEpoch' | 'bestValue' | 'optimizerSteps'>; bestWeights?: tf.Tensor[] } {
  if (!Number.isInteger(resume.epoch) || resume.epoch < 1 || resume.epoch > expected.epochs) {
    throw new Error(`fit: options.resume.epoch must be an integer in 1..${expected.epochs} (options.epochs), got ${String(resume.epoch)}`);
  }
  const records = resume.history?.epochs;
  if (!Array.isArray(records) || records.length !== resume.epoch || records.some((r, i) => r.epoch !== i + 1)) {
    throw new Error(`fit: options.resume.history.epochs must hold the records of epochs 1..${resume.epoch}`);
  }
  const { monitor } = resume.history;
  if (monitor.metric !== expected.monitor.metric || monitor.mode !== expected.monitor.mode || monitor.on !== expected.monitor.on) {
    throw new Error(`fit: options.resume was taken monitoring ${JSON.stringify(monitor)}, these options monitor ${JSON.stringify(expected.monitor)}`);
  }
  const all = allVariablesOf(model.model);
  const weights = checkArrays(resume.weights, all, 'weights');
  const first = checkArrays(resume.optimizer?.firstMoments, optimizer.variables, 'optimizer.firstMoments');
  const second = checkArrays(resume.optimizer?.secondMoments, optimizer.variables, 'optimizer.secondMoments');
  const hasBest = resume.history.bestEpoch >= 1;
  if (expected.restoreBest && hasBest && resume.bestWeights === undefined) {
    throw new Error('fit: options.restoreBest is on but options.resume has no bestWeights (was the snapshot taken without restoreBest?)');
  }
  const best = expected.restoreBest && hasBest ? checkArrays(resume.bestWeights, all, 'bestWeights') : undefined;
  all.forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(weights[i], v.shape, 'float32'))));
  const toTensors = (arrays: Float32Array[]) => arrays.map((a, i) => tf.tensor(a, optimizer.variables[i].shape, 'float32'));
  const firstMoments = toTensors(first);
  const secondMoments = toTensors(second);
  try {
    optimizer.setState({ step: resume.optimizer.step, firstMoments, secondMoments });
  } finally {
    tf.dispose([...firstMoments, ...secondMoments]);
  }
  return {
    history: {
      epochs: copyEpochRecords(records),
      bestEpoch: resume.history.bestEpoch,
      bestValue: resume.history.bestValue,
      optimizerSteps: resume.history.optimizerSteps,
    },
    ...(best ? { bestWeights: best.map((a, i) => tf.tensor(a, all[i].shape, 'float32')) } : {}),
  };
}
