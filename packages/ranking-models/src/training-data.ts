import * as tf from '@tensorflow/tfjs-core';
import type { AnglePair } from './pair-samplers';
import type { ModelInput } from './trainable-model';

/** One batch: the model input and the target handed to the loss function. */
export interface Batch {
  input: ModelInput;
  target: tf.Tensor;
}

/**
 * A dataset `fit` can draw batches from: `size` items addressed by index. `batch` returns new
 * tensors that the caller disposes; the dataset keeps ownership of its own tensors.
 */
export interface TrainingData {
  readonly size: number;
  batch(indices: number[]): Batch;
}

/** Rows of `inputs` [N, ...] with targets `targets` [N, ...] (e.g. class labels for the classifier). */
export function tensorData(inputs: tf.Tensor, targets: tf.Tensor): TrainingData {
  if (inputs.shape[0] !== targets.shape[0]) {
    throw new Error(`tensorData: inputs and targets must have the same first dimension, got ${inputs.shape[0]} and ${targets.shape[0]}`);
  }
  return {
    size: inputs.shape[0],
    batch(indices) {
      return tf.tidy(() => {
        const at = tf.tensor1d(indices, 'int32');
        return { input: tf.gather(inputs, at), target: tf.gather(targets, at) };
      });
    },
  };
}

/**
 * Pairs of clips for the ranker: input [clips[a], clips[b]], target y (float32, ±1) per pair,
 * as `AngleRanker.forward` and `pairScoresLoss` expect.
 */
export function pairData(clips: tf.Tensor, pairs: readonly AnglePair[]): TrainingData {
  pairs.forEach((p, i) => {
    for (const k of [p.a, p.b]) {
      if (!Number.isInteger(k) || k < 0 || k >= clips.shape[0]) {
        throw new Error(`pairData: pairs[${i}] refers to clip ${String(k)}, outside [0, ${clips.shape[0]})`);
      }
    }
    if (p.y !== 1 && p.y !== -1) throw new Error(`pairData: pairs[${i}].y must be 1 or −1, got ${String(p.y)}`);
  });
  return {
    size: pairs.length,
    batch(indices) {
      return tf.tidy(() => {
        const chosen = indices.map((i) => pairs[i]);
        const a = tf.gather(clips, tf.tensor1d(chosen.map((p) => p.a), 'int32'));
        const b = tf.gather(clips, tf.tensor1d(chosen.map((p) => p.b), 'int32'));
        return { input: [a, b], target: tf.tensor1d(chosen.map((p) => p.y), 'float32') };
      });
    },
  };
}

export function disposeBatch(batch: Batch): void {
  tf.dispose(Array.isArray(batch.input) ? [...batch.input, batch.target] : [batch.input, batch.target]);
}
