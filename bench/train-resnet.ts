// ResNet-18 (torchvision layout) built with tfjs-layers for the training benchmarks.
// Built here rather than imported because the models package is developed in parallel.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

function convBn(x: tfl.SymbolicTensor, filters: number, kernel: number, stride: number, seed: number): tfl.SymbolicTensor {
  const conv = tfl.layers.conv2d({
    filters,
    kernelSize: kernel,
    strides: stride,
    padding: 'same',
    useBias: false,
    kernelInitializer: tfl.initializers.heNormal({ seed }),
  });
  return tfl.layers.batchNormalization({ epsilon: 1e-5, momentum: 0.9 }).apply(conv.apply(x)) as tfl.SymbolicTensor;
}

function basicBlock(x: tfl.SymbolicTensor, filters: number, stride: number, seed: number): tfl.SymbolicTensor {
  let y = convBn(x, filters, 3, stride, seed);
  y = tfl.layers.reLU().apply(y) as tfl.SymbolicTensor;
  y = convBn(y, filters, 3, 1, seed + 1);
  const inChannels = x.shape[x.shape.length - 1] as number;
  const shortcut = stride !== 1 || inChannels !== filters ? convBn(x, filters, 1, stride, seed + 2) : x;
  const sum = tfl.layers.add().apply([y, shortcut]) as tfl.SymbolicTensor;
  return tfl.layers.reLU().apply(sum) as tfl.SymbolicTensor;
}

/** ResNet-18: 7x7/2 stem, 3x3/2 max-pool, BasicBlocks [2, 2, 2, 2], BN, global average pool, fc. */
export function buildResNet18(inputShape: [number, number, number], classes: number, width = 1, seed = 1): tfl.LayersModel {
  const c = (n: number) => Math.max(1, Math.round(n * width));
  const input = tfl.input({ shape: inputShape });
  let x = convBn(input, c(64), 7, 2, seed);
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(x) as tfl.SymbolicTensor;
  let s = seed + 10;
  for (const [stage, filters] of [64, 128, 256, 512].entries()) {
    for (let block = 0; block < 2; block++) {
      x = basicBlock(x, c(filters), stage > 0 && block === 0 ? 2 : 1, (s += 3));
    }
  }
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: classes, kernelInitializer: tfl.initializers.glorotUniform({ seed: s + 1 }) }).apply(
    x,
  ) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

export interface TrainStepper {
  forward(): void;
  step(): number;
  dispose(): void;
}

/** Adam + softmax cross-entropy on a fixed random batch, BN in training mode. */
export function makeStepper(model: tfl.LayersModel, batch: number[], classes: number, seed = 3): TrainStepper {
  const x = tf.randomNormal(batch, 0, 1, 'float32', seed);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: batch[0] }, (_, i) => i % classes), 'int32'), classes);
  const optimizer = tf.train.adam(1e-3);
  return {
    forward() {
      tf.tidy(() => {
        const y = model.apply(x, { training: true }) as tf.Tensor;
        y.dataSync();
      });
    },
    step() {
      const loss = optimizer.minimize(
        () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        true,
      ) as tf.Scalar;
      const value = loss.dataSync()[0];
      loss.dispose();
      return value;
    },
    dispose() {
      tf.dispose([x, labels]);
      optimizer.dispose();
    },
  };
}
