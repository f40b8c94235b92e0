import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { createAngleClassifier } from './angle-classifier';
import { createAngleRanker } from './angle-ranker';
import { fusedKernelsForTests, relativeDiff } from './fused-kernels.test-util';
import { crossEntropyLoss, marginRankingLoss, pairScoresLoss } from './pair-losses';
import { perSampleGradients, type RowLossFn } from './per-sample-gradients';
import { PyTorchBatchNorm } from './pytorch-batch-norm';
import { allVariablesOf, asTrainable, type TrainableModel } from './trainable-model';

const { requireFused } = fusedKernelsForTests('per-sample-test');

interface Case {
  name: string;
  model: () => TrainableModel;
  data: () => { input: tf.Tensor | tf.Tensor[]; target: tf.Tensor };
  lossFn: RowLossFn;
}

const rows = 5;
const image = (seed: number) => tf.randomNormal([rows, 16, 16, 1], 0, 1, 'float32', seed);

const cases: Case[] = [
  {
    name: 'AngleRanker on pairs',
    model: () => createAngleRanker({ depth: 18, inputShape: [16, 16, 1], widthMultiplier: 0.0625, seed: 3 }),
    data: () => ({ input: [image(1), image(2)], target: tf.tensor1d([1, -1, 1, 1, -1]) }),
    lossFn: pairScoresLoss((s1, s2, y) => marginRankingLoss(s1, s2, y, 0.5)),
  },
  {
    name: 'AngleClassifier',
    model: () => createAngleClassifier({ depth: 18, inputShape: [16, 16, 1], numClasses: 3, widthMultiplier: 0.0625, seed: 4, smallInputStem: true }),
    data: () => ({ input: image(3), target: tf.tensor1d([0, 2, 1, 1, 0], 'int32') }),
    lossFn: crossEntropyLoss,
  },
];

/** conv → BN → ReLU (a fused unit) and a tanh dense head, which the batched pass does not handle. */
function tanhHeadModel(): TrainableModel {
  const input = tfl.input({ shape: [16, 16, 1] });
  const conv = tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, useBias: false, kernelInitializer: tfl.initializers.glorotNormal({ seed: 5 }) }).apply(input) as tfl.SymbolicTensor;
  const bn = new PyTorchBatchNorm({ momentum: 0.9, epsilon: 1e-5 }).apply(conv) as tfl.SymbolicTensor;
  const relu = tfl.layers.activation({ activation: 'relu' }).apply(bn) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(relu) as tfl.SymbolicTensor;
  const head = tfl.layers.dense({ units: 3, activation: 'tanh', kernelInitializer: tfl.initializers.glorotNormal({ seed: 6 }) }).apply(pooled) as tfl.SymbolicTensor;
  return asTrainable(tfl.model({ inputs: input, outputs: head }));
}

/** Moving statistics away from their initial 0 / 1, so that inference-mode batch norm matters. */
function perturbMovingStatistics(model: TrainableModel): void {
  allVariablesOf(model.model)
    .filter((v) => /moving_(mean|variance)/.test(v.name))
    .forEach((v, i) => v.assign(tf.tidy(() => (/variance/.test(v.name) ? tf.randomUniform(v.shape, 0.5, 2, 'float32', i) : tf.randomNormal(v.shape, 0, 0.3, 'float32', i)))));
}

/** The reference: one variableGrads per row on model.forward in inference mode. */
function loopReference(model: TrainableModel, input: tf.Tensor | tf.Tensor[], target: tf.Tensor, lossFn: RowLossFn): { losses: number[]; gradients: Float32Array[][] } {
  const variables = model.trainableVariables;
  const losses: number[] = [];
  const gradients: Float32Array[][] = variables.map(() => []);
  for (let p = 0; p < rows; p++) {
    tf.tidy(() => {
      const row = Array.isArray(input) ? input.map((t) => tf.slice(t, p, 1)) : tf.slice(input, p, 1);
      const { value, grads } = tf.variableGrads(() => lossFn(model.forward(row, { training: false }), tf.slice(target, p, 1)), variables);
      losses.push(value.dataSync()[0]);
      variables.forEach((v, i) => gradients[i].push(Float32Array.from(grads[v.name].dataSync())));
    });
  }
  return { losses, gradients };
}

function snapshot(model: TrainableModel): Float32Array[] {
  return allVariablesOf(model.model).map((v) => Float32Array.from(v.dataSync() as Float32Array));
}

function expectMatchesLoop(c: Case, batched: boolean): void {
  const model = c.model();
  perturbMovingStatistics(model);
  const { input, target } = c.data();
  try {
    const reference = loopReference(model, input, target, c.lossFn);
    const before = snapshot(model);
    const tensors = tf.memory().numTensors;
    const result = perSampleGradients(model, input, target, c.lossFn);
    expect(result.batched).toBe(batched);
    expect(tf.memory().numTensors - result.gradients.length, 'no leaked tensors').toBe(tensors);
    expect(relativeDiff(result.losses, reference.losses)).toBeLessThan(1e-4);
    model.trainableVariables.forEach((v, i) => {
      const g = result.gradients[i];
      expect(g.shape).toEqual([rows, ...v.shape]);
      const data = g.dataSync();
      for (let p = 0; p < rows; p++) {
        const own = data.subarray(p * v.size, (p + 1) * v.size);
        expect(relativeDiff(own, reference.gradients[i][p]), `${v.name} row ${p}`).toBeLessThan(1e-4);
      }
    });
    tf.dispose(result.gradients);
    snapshot(model).forEach((values, i) => expect(values, 'variables and moving statistics unchanged').toEqual(before[i]));
  } finally {
    tf.dispose([...(Array.isArray(input) ? input : [input]), target]);
    model.model.dispose();
  }
}

describe('perSampleGradients', () => {
  for (const c of cases) {
    it(`one grouped pass equals a loop of per-row gradients (${c.name}, wasm + fused kernels)`, async (ctx) => {
      await tf.setBackend('wasm');
      requireFused(ctx);
      expectMatchesLoop(c, true);
    });

    it(`falls back to per-row gradients without the fused kernels (${c.name}, cpu)`, async () => {
      await tf.setBackend('cpu');
      try {
        expectMatchesLoop(c, false);
      } finally {
        await tf.setBackend('wasm');
      }
    });
  }

  it('falls back to per-row gradients on a layer the batched pass does not handle (tanh dense head, wasm + fused kernels)', async (ctx) => {
    await tf.setBackend('wasm');
    requireFused(ctx);
    expectMatchesLoop({ name: 'tanh head', model: tanhHeadModel, data: () => ({ input: image(4), target: tf.tensor1d([0, 1, 2, 1, 0], 'int32') }), lossFn: crossEntropyLoss }, false);
  });

  it('rejects inputs and targets of different lengths', async () => {
    const model = cases[1].model();
    const x = tf.zeros([3, 16, 16, 1]);
    const y = tf.zeros([2], 'int32');
    expect(() => perSampleGradients(model, x, y, crossEntropyLoss)).toThrow(/first dimension/);
    tf.dispose([x, y]);
    model.model.dispose();
  });
});
