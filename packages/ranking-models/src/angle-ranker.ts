import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { applyModel } from './fused-forward';
import { buildResNetGraph, linearHead, modelSizes, type ResNetOptions } from './resnet';
import { trainableVariablesOf, type ModelInput, type TrainableModel } from './trainable-model';

export type AngleRankerOptions = ResNetOptions;

/**
 * ResNet backbone + linear head giving one score per clip (the lab's ResNetAudioRanker).
 * A pair is scored by running the same model on both clips; each clip batch goes through the
 * network separately, as `s1 = model(x1); s2 = model(x2)` does in PyTorch, so batch-norm batch
 * statistics are computed per side and the moving statistics are updated twice per step.
 */
export class AngleRanker implements TrainableModel {
  constructor(
    /** input [B, H, W, C] → score [B, 1] */
    readonly model: tfl.LayersModel,
  ) {
    const out = model.outputs[0].shape;
    if (model.inputs.length !== 1 || out.length !== 2 || out[1] !== 1) {
      throw new Error(`AngleRanker: model must map one input to [B, 1], got output shape ${JSON.stringify(out)}`);
    }
  }

  get trainableVariables(): tf.Variable[] {
    return trainableVariablesOf(this.model);
  }

  /** One tensor → scores [B]; a pair [xa, xb] → scores [B, 2] (column 0 for xa, column 1 for xb). */
  forward(input: ModelInput, { training }: { training: boolean }): tf.Tensor {
    return tf.tidy(() => this.outputFrom(this.inputParts(input).map((x) => applyModel(this.model, x, training)), input));
  }

  /** The clip batch, or the two sides of a pair batch, each scored on its own (for fused trials; see TrainableModel). */
  inputParts(input: ModelInput): tf.Tensor[] {
    if (!Array.isArray(input)) return [input];
    if (input.length !== 2) throw new Error(`AngleRanker.forward: a pair input needs 2 tensors, got ${input.length}`);
    return input;
  }

  /** Scores [B] of a clip batch; [B, 2] of a pair batch (column 0 for xa, column 1 for xb). */
  outputFrom(parts: tf.Tensor[], input: ModelInput): tf.Tensor {
    return Array.isArray(input) ? tf.concat(parts, 1) : tf.reshape(parts[0], [-1]);
  }

  /** Scores [B] in inference mode. */
  predict(x: tf.Tensor): tf.Tensor1D {
    return this.forward(x, { training: false }) as tf.Tensor1D;
  }

  /** Pair scores [B, 2] in inference mode. */
  scorePairs(xa: tf.Tensor, xb: tf.Tensor): tf.Tensor2D {
    return this.forward([xa, xb], { training: false }) as tf.Tensor2D;
  }

  /** Sizes for logs and run records. */
  stats(): { inputShape: number[]; trainableParameters: number; nonTrainableParameters: number } {
    return modelSizes(this.model);
  }

  dispose(): void {
    this.model.dispose();
  }
}

export function createAngleRanker(options: AngleRankerOptions): AngleRanker {
  const { input, features, featureSize, seeds } = buildResNetGraph(options);
  const score = linearHead(features, featureSize, 1, 'fc', seeds);
  return new AngleRanker(tfl.model({ inputs: input, outputs: score, name: `angle_ranker_resnet${options.depth}` }));
}
