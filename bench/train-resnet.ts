// The lab's ResNet-18 classifier (torchvision layout, from @lab/ranking-models) and a train-step
// helper shared by the training benchmarks.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { AdamOptimizer, applyModel, createAngleClassifier } from '@lab/ranking-models';

export function buildResNet18(inputShape: [number, number, number], classes: number, width = 1, seed = 1, smallInputStem = false): tfl.LayersModel {
  return createAngleClassifier({ depth: 18, inputShape, numClasses: classes, widthMultiplier: width, seed, smallInputStem }).model;
}

export interface TrainStepper {
  forward(): void;
  step(): number;
  dispose(): void;
}

/**
 * Adam + softmax cross-entropy on a fixed random batch, BN in training mode: the step the lab's
 * fit() runs (the classifier's forward, fused conv + batch-norm ops where registered; tf.variableGrads + the lab's PyTorch-rule AdamOptimizer, which uses the fused Adam
 * kernel where @lab/tfjs-train registered one), and the step train_step_torch.py times.
 */
export function makeStepper(model: tfl.LayersModel, batch: number[], classes: number, seed = 3): TrainStepper {
  const x = tf.randomNormal(batch, 0, 1, 'float32', seed);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: batch[0] }, (_, i) => i % classes), 'int32'), classes);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = new AdamOptimizer(variables, { lr: 1e-3 });
  return {
    forward() {
      tf.tidy(() => {
        const y = applyModel(model, x, true);
        y.dataSync();
      });
    },
    step() {
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(labels, applyModel(model, x, true)) as tf.Scalar,
        variables,
      );
      optimizer.applyGradients(variables.map((v) => grads[v.name]));
      tf.dispose(grads);
      const loss = value.dataSync()[0];
      value.dispose();
      return loss;
    },
    dispose() {
      tf.dispose([x, labels]);
      optimizer.dispose();
    },
  };
}
