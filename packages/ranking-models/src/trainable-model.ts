import type * as tf from '@tensorflow/tfjs-core';
import { applyModel } from './fused-forward';
import type * as tfl from '@tensorflow/tfjs-layers';

/** Model input: one batch tensor, or a list of them (e.g. the two clips of a pair batch). */
export type ModelInput = tf.Tensor | tf.Tensor[];

/**
 * What `fit` needs from a model: its layers model, its trainable variables and a forward pass
 * that can run batch norm in training mode (batch statistics, moving averages updated) or in
 * inference mode (moving statistics).
 */
export interface TrainableModel {
  readonly model: tfl.LayersModel;
  readonly trainableVariables: tf.Variable[];
  forward(input: ModelInput, options: { training: boolean }): tf.Tensor;
  /**
   * Optional, for fused trials: `forward` written as `outputFrom(inputParts(input).map(x =>
   * applyModel(model, x, training)), input)`, so that several models' parts can go through one
   * grouped computation (`applyModelGroup`) and each model's output be assembled from its rows.
   */
  inputParts?(input: ModelInput): tf.Tensor[];
  outputFrom?(parts: tf.Tensor[], input: ModelInput): tf.Tensor;
}

/** The tf.Variables behind a layers model's trainable weights. */
export function trainableVariablesOf(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** The tf.Variables behind every weight, trainable or not (batch-norm moving statistics too). */
export function allVariablesOf(model: tfl.LayersModel): tf.Variable[] {
  return model.weights.map((w) => w.read() as tf.Variable);
}

/** Wraps a plain single-input layers model (e.g. a bare `buildResNet` backbone) for `fit`. */
export function asTrainable(model: tfl.LayersModel): TrainableModel & Required<Pick<TrainableModel, 'inputParts' | 'outputFrom'>> {
  return {
    model,
    get trainableVariables() {
      return trainableVariablesOf(model);
    },
    forward(input, { training }) {
      return applyModel(model, this.inputParts(input)[0], training);
    },
    inputParts(input) {
      if (Array.isArray(input)) throw new Error('asTrainable: this model takes one input tensor, got a list');
      return [input];
    },
    outputFrom(parts) {
      return parts[0];
    },
  };
}
