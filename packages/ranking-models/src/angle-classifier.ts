import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { applyModel } from './fused-forward';
import { buildResNetGraph, linearHead, modelSizes, type ResNetOptions } from './resnet';
import { trainableVariablesOf, type ModelInput, type TrainableModel } from './trainable-model';

export interface AngleClassifierOptions extends ResNetOptions {
  /** Number of angle classes (6 in the lab's data: deg000 … deg180). */
  numClasses: number;
}

/** ResNet backbone + linear head giving one logit per angle class (softmax applied by the loss). */
export class AngleClassifier implements TrainableModel {
  constructor(
    /** input [B, H, W, C] → logits [B, numClasses] */
    readonly model: tfl.LayersModel,
  ) {
    const out = model.outputs[0].shape;
    if (model.inputs.length !== 1 || out.length !== 2 || out[1] == null) {
      throw new Error(`AngleClassifier: model must map one input to [B, numClasses], got output shape ${JSON.stringify(out)}`);
    }
  }

  get numClasses(): number {
    return this.model.outputs[0].shape[1] as number;
  }

  get trainableVariables(): tf.Variable[] {
    return trainableVariablesOf(this.model);
  }

  forward(input: ModelInput, { training }: { training: boolean }): tf.Tensor {
    return applyModel(this.model, this.inputParts(input)[0], training);
  }

  /** The one input tensor (for fused trials; see TrainableModel). */
  inputParts(input: ModelInput): tf.Tensor[] {
    if (Array.isArray(input)) throw new Error('AngleClassifier.forward: expected one input tensor, got a list');
    return [input];
  }

  /** The logits of the one part. */
  outputFrom(parts: tf.Tensor[]): tf.Tensor {
    return parts[0];
  }

  /** Logits [B, numClasses] in inference mode (batch norm uses moving statistics). */
  predict(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => this.forward(x, { training: false }) as tf.Tensor2D);
  }

  /** Class probabilities [B, numClasses] (softmax of the logits), inference mode. */
  predictProbabilities(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => tf.softmax(this.predict(x)) as tf.Tensor2D);
  }

  /** Most probable class per sample, inference mode. */
  async predictClasses(x: tf.Tensor): Promise<number[]> {
    const classes = tf.tidy(() => tf.argMax(this.predict(x), 1));
    const values = Array.from(await classes.data());
    classes.dispose();
    return values;
  }

  /** Sizes for logs and run records. */
  stats(): { inputShape: number[]; numClasses: number; trainableParameters: number; nonTrainableParameters: number } {
    const { inputShape, trainableParameters, nonTrainableParameters } = modelSizes(this.model);
    return { inputShape, numClasses: this.numClasses, trainableParameters, nonTrainableParameters };
  }

  dispose(): void {
    this.model.dispose();
  }
}

export function createAngleClassifier(options: AngleClassifierOptions): AngleClassifier {
  if (!Number.isInteger(options.numClasses) || options.numClasses < 2) {
    throw new Error(`createAngleClassifier: options.numClasses must be an integer ≥ 2, got ${String(options.numClasses)}`);
  }
  const { input, features, featureSize, seeds } = buildResNetGraph(options);
  const logits = linearHead(features, featureSize, options.numClasses, 'fc', seeds);
  return new AngleClassifier(tfl.model({ inputs: input, outputs: logits, name: `angle_classifier_resnet${options.depth}` }));
}
