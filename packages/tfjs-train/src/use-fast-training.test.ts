import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { relativeError } from './test-support';
import { listMissingTrainingKernels, removeFastTraining, useFastTraining } from './use-fast-training';

function convBn(x: tfl.SymbolicTensor, filters: number, kernel: number, stride: number, seed: number): tfl.SymbolicTensor {
  const y = tfl.layers
    .conv2d({ filters, kernelSize: kernel, strides: stride, padding: 'same', useBias: false, kernelInitializer: tfl.initializers.heNormal({ seed }) })
    .apply(x) as tfl.SymbolicTensor;
  return tfl.layers.batchNormalization({ epsilon: 1e-5 }).apply(y) as tfl.SymbolicTensor;
}

function block(x: tfl.SymbolicTensor, filters: number, stride: number, seed: number): tfl.SymbolicTensor {
  let y = tfl.layers.reLU().apply(convBn(x, filters, 3, stride, seed)) as tfl.SymbolicTensor;
  y = convBn(y, filters, 3, 1, seed + 1);
  const shortcut = stride !== 1 || (x.shape[3] as number) !== filters ? convBn(x, filters, 1, stride, seed + 2) : x;
  return tfl.layers.reLU().apply(tfl.layers.add().apply([y, shortcut])) as tfl.SymbolicTensor;
}

/** A tiny ResNet: stem, max-pool, two residual blocks (one strided with a 1x1 projection), a depthwise conv, GAP, fc. */
function tinyResNet(): tfl.LayersModel {
  const input = tfl.input({ shape: [16, 16, 1] });
  let x = tfl.layers.reLU().apply(convBn(input, 8, 3, 1, 1)) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(x) as tfl.SymbolicTensor;
  x = block(x, 8, 1, 10);
  x = block(x, 16, 2, 20);
  x = tfl.layers
    .depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: tfl.initializers.glorotUniform({ seed: 30 }) })
    .apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 31 }) }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

function batch(): { x: tf.Tensor; labels: tf.Tensor } {
  return tf.tidy(() => ({
    x: tf.randomNormal([2, 16, 16, 1], 0, 1, 'float32', 42),
    labels: tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3),
  }));
}

function gradients(model: tfl.LayersModel, x: tf.Tensor, labels: tf.Tensor): Float32Array[] {
  return tf.tidy(() => {
    const { grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val),
    );
    return Object.values(grads).map((g) => g.dataSync() as Float32Array);
  });
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.setBackend('wasm');
});

describe('useFastTraining', () => {
  it('makes the wasm backend train: installs the missing kernels, is idempotent and removable', async () => {
    await tf.setBackend('wasm');
    expect(listMissingTrainingKernels('wasm')).toEqual(
      expect.arrayContaining(['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']),
    );
    const stockMaxPoolGrad = tf.getKernel('MaxPoolGrad', 'wasm');
    const info = await useFastTraining('wasm', { native: 'off' });
    expect(info.kernels).toEqual([
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'DepthwiseConv2dNativeBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput',
      'MaxPoolGrad',
      'AvgPoolGrad',
      'LabTfjsTrainBatchNormGradSums',
      'LabTfjsTrainBatchNormStats',
      'LabTfjsTrainBatchNormTrainingGrad',
      'LabFusedAdam',
      'LabFusedAdamMulti',
      'Slice',
      'PadV2',
      'Identity',
    ]);
    expect(info.replacedStock).toEqual(['Conv2DBackpropInput', 'MaxPoolGrad', 'AvgPoolGrad', 'Slice', 'PadV2', 'Identity']);
    expect(info.gradients).toEqual(['FusedBatchNorm', 'Conv2D']);
    expect(info.native).toEqual({ enabled: false, reason: "options.native is 'off'" });
    expect(listMissingTrainingKernels('wasm')).not.toContain('Conv2DBackpropFilter');
    expect(await useFastTraining('wasm')).toBe(info);
    removeFastTraining('wasm');
    expect(tf.getKernel('MaxPoolGrad', 'wasm')).toBe(stockMaxPoolGrad);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    const again = await useFastTraining('wasm', { native: 'off' });
    expect(again.kernels).toEqual(info.kernels);
    removeFastTraining('wasm');
  });

  it('adds the native kernels where they build, and puts the stock forward conv back on removal', async (ctx) => {
    await tf.setBackend('wasm');
    const stockConv = tf.getKernel('Conv2D', 'wasm');
    const info = await useFastTraining('wasm', { threads: 1 });
    if (!info.native.enabled) {
      removeFastTraining('wasm');
      expect(process.env.LAB_TFJS_TRAIN_EXPECT_NATIVE, `native kernels did not build: ${info.native.reason}`).not.toBe('1');
      return ctx.skip();
    }
    expect(info.native.threads).toBe(1);
    expect(['onednn', 'openblas', 'builtin']).toContain(info.native.gemm);
    expect(info.kernels).toEqual(expect.arrayContaining(['Conv2D', 'FusedConv2D', 'FusedBatchNorm', 'Conv2DBackpropFilter', 'LabFusedAdam']));
    expect(info.replacedStock).toEqual(expect.arrayContaining(['Conv2D', 'FusedConv2D', 'FusedBatchNorm', 'MaxPoolGrad']));
    expect(tf.getKernel('Conv2D', 'wasm')).not.toBe(stockConv);
    removeFastTraining('wasm');
    expect(tf.getKernel('Conv2D', 'wasm')).toBe(stockConv);
  });

  it("native: 'require' throws with the reason when the kernels cannot be built; 'auto' falls back", async () => {
    await tf.setBackend('wasm');
    const nativeBuild = { compiler: '/nonexistent/cc', cacheDir: join(tmpdir(), `tfjs-train-no-cc-${process.pid}`) };
    await expect(useFastTraining('wasm', { native: 'require', nativeBuild })).rejects.toThrow(/native kernels unavailable: no C compiler/);
    const info = await useFastTraining('wasm', { nativeBuild });
    expect(info.native).toEqual({ enabled: false, reason: expect.stringMatching(/no C compiler/) });
    expect(info.kernels).not.toContain('Conv2D');
    removeFastTraining('wasm');
    await expect(useFastTraining('wasm', { threads: 0 })).rejects.toThrow(/options.threads must be a positive integer/);
  });

  it('rejects an unknown backend name', async () => {
    await expect(useFastTraining('webgl' as 'wasm')).rejects.toThrow(/backend must be 'wasm' or 'cpu'/);
  });

  for (const native of ['off', 'auto'] as const) {
    it(`gives a tiny ResNet on wasm the same gradients as the stock cpu backend (native ${native})`, async () => {
      await tf.setBackend('cpu');
      const model = tinyResNet();
      const { x, labels } = batch();
      const reference = gradients(model, x, labels);
      await tf.setBackend('wasm');
      removeFastTraining('wasm');
      await useFastTraining('wasm', { native, threads: 2 });
      const ours = gradients(model, x, labels);
      expect(ours.length).toBe(reference.length);
      for (let i = 0; i < ours.length; i++) expect(relativeError(ours[i], reference[i]), `variable ${i}`).toBeLessThan(1e-3);
      removeFastTraining('wasm');
      tf.dispose([x, labels]);
      model.dispose();
    });
  }

  it('trains a tiny ResNet on wasm: the loss falls and no tensor leaks', async () => {
    await tf.setBackend('wasm');
    await useFastTraining('wasm');
    const model = tinyResNet();
    const { x, labels } = batch();
    const optimizer = tf.train.adam(0.01);
    const step = () => {
      const loss = optimizer.minimize(
        () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        true,
      )!;
      const value = loss.dataSync()[0];
      loss.dispose();
      return value;
    };
    const first = step();
    const tensorsAfterFirstStep = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 15; i++) last = step();
    expect(tf.memory().numTensors).toBe(tensorsAfterFirstStep);
    expect(Number.isFinite(last)).toBe(true);
    expect(last).toBeLessThan(0.5 * first);
    optimizer.dispose();
    tf.dispose([x, labels]);
    model.dispose();
  });

  it('installs the filter-gradient kernel on cpu', async () => {
    await tf.setBackend('cpu');
    const info = await useFastTraining('cpu', { native: 'off' });
    expect(info.kernels).toEqual([
      'Conv2DBackpropFilter',
      'AvgPoolGrad',
      'LabTfjsTrainBatchNormGradSums',
      'LabTfjsTrainBatchNormStats',
      'LabTfjsTrainBatchNormTrainingGrad',
      'LabFusedAdam',
      'LabFusedAdamMulti',
    ]);
    expect(info.replacedStock).toEqual(['Conv2DBackpropFilter', 'AvgPoolGrad']);
    const g = tf.tidy(() => {
      const x = tf.randomNormal([1, 5, 5, 2], 0, 1, 'float32', 1) as tf.Tensor4D;
      const dy = tf.ones([1, 5, 5, 1]) as tf.Tensor4D;
      const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 2, 1] };
      return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs as unknown as tf.NamedAttrMap);
    }) as tf.Tensor;
    // With dy = 1 everywhere, the centre tap's gradient is the sum of x over the whole map.
    const xSum = tf.tidy(() => tf.sum(tf.randomNormal([1, 5, 5, 2], 0, 1, 'float32', 1), [0, 1, 2]).dataSync());
    const gv = g.dataSync();
    expect(gv[(1 * 3 + 1) * 2 + 0]).toBeCloseTo(xSum[0], 4);
    expect(gv[(1 * 3 + 1) * 2 + 1]).toBeCloseTo(xSum[1], 4);
    g.dispose();
    removeFastTraining('cpu');
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')).not.toBeUndefined();
  });
});
