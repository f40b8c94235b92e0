import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchGradients, gradientSetFromVectors, layerGradientNorms, perSampleGradients } from './gradients';
import { RandomProjection } from './random-projection';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

interface Batch {
  x: number[][];
  y: number[];
}

/** 2-layer MLP 3 → 4 → 1 with tanh, squared error; weights from a fixed seed. */
function mlp() {
  const w1 = tf.variable(tf.randomNormal([3, 4], 0, 0.5, 'float32', 1));
  const b1 = tf.variable(tf.randomNormal([4], 0, 0.1, 'float32', 2));
  const w2 = tf.variable(tf.randomNormal([4, 1], 0, 0.5, 'float32', 3));
  const lossFn = ({ x, y }: Batch) =>
    tf.tidy(() => {
      const h = tf.tanh(tf.add(tf.matMul(tf.tensor2d(x), w1), b1));
      const out = tf.reshape(tf.matMul(h, w2), [-1]);
      return tf.mean(tf.square(tf.sub(out, tf.tensor1d(y)))) as tf.Scalar;
    });
  return { variables: { w1, b1, w2 }, lossFn, dispose: () => [w1, b1, w2].forEach((v) => v.dispose()) };
}

const rows = (n: number, seed: number) => {
  let s = seed;
  const next = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  return Array.from({ length: n }, () => ({ x: [next(), next(), next()], y: next() }));
};
const batchOf = (items: { x: number[]; y: number }[]): Batch => ({ x: items.map((i) => i.x), y: items.map((i) => i.y) });

describe('batchGradients', () => {
  it('returns one flattened gradient per batch with norms and losses, leaves weights and tensors untouched', async () => {
    const model = mlp();
    const data = rows(12, 7);
    const batches = [0, 4, 8].map((s) => batchOf(data.slice(s, s + 4)));
    const weightsBefore = Object.values(model.variables).map((v) => Array.from(v.dataSync()));
    const tensorsBefore = tf.memory().numTensors;

    const set = await batchGradients(model.variables, batches, model.lossFn);

    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(Object.values(model.variables).map((v) => Array.from(v.dataSync()))).toEqual(weightsBefore);
    expect(set.kind).toBe('batch');
    expect(set.segments).toEqual([
      { name: 'w1', shape: [3, 4], size: 12, offset: 0 },
      { name: 'b1', shape: [4], size: 4, offset: 12 },
      { name: 'w2', shape: [4, 1], size: 4, offset: 16 },
    ]);
    expect(set.dimension).toBe(20);
    expect(set.gradients).toHaveLength(3);
    expect(set.projection).toBeNull();

    // Reference: tf.grads on the same loss, batch 1, variable w2 (offset 16).
    const [gw2] = tf.grads((w: tf.Tensor) => {
      const { x, y } = batches[1];
      const h = tf.tanh(tf.add(tf.matMul(tf.tensor2d(x), model.variables.w1), model.variables.b1));
      return tf.mean(tf.square(tf.sub(tf.reshape(tf.matMul(h, w), [-1]), tf.tensor1d(y))));
    })([model.variables.w2]);
    Array.from(gw2.dataSync()).forEach((v, j) => expect(set.gradients[1][16 + j]).toBeCloseTo(v, 6));
    gw2.dispose();

    set.gradients.forEach((g, i) => {
      const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
      expect(set.norms[i]).toBeCloseTo(norm, 6);
      const layerSq = set.layerNorms[i].reduce((s, v) => s + v * v, 0);
      expect(Math.sqrt(layerSq)).toBeCloseTo(norm, 6);
      const loss = model.lossFn(batches[i]);
      expect(set.losses[i]).toBeCloseTo(loss.dataSync()[0], 6);
      loss.dispose();
    });

    const again = await batchGradients(model.variables, batches, model.lossFn);
    expect(again.gradients).toEqual(set.gradients);
    model.dispose();
  });

  it('selects variables with variableFilter, names list input by variable.name, and zero-fills unreached variables', async () => {
    const model = mlp();
    const unused = tf.variable(tf.ones([2]), true, 'grad_probe_unused');
    const frozen = tf.variable(tf.ones([2]), false, 'grad_probe_frozen');
    const batches = [batchOf(rows(4, 3))];
    const filtered = await batchGradients(model.variables, batches, model.lossFn, { variableFilter: (name) => name.startsWith('w') });
    expect(filtered.segments.map((s) => s.name)).toEqual(['w1', 'w2']);
    expect(filtered.dimension).toBe(16);

    const list = await batchGradients([model.variables.w2, unused, frozen], batches, model.lossFn);
    expect(list.segments.map((s) => s.name)).toEqual([model.variables.w2.name, 'grad_probe_unused']);
    expect(Array.from(list.gradients[0].slice(4))).toEqual([0, 0]);
    expect(list.layerNorms[0][1]).toBe(0);
    [unused, frozen].forEach((v) => v.dispose());
    model.dispose();
  });

  it('projects each gradient when asked, keeping the full-vector norms', async () => {
    const model = mlp();
    const batches = [0, 4].map((s) => batchOf(rows(8, 5).slice(s, s + 4)));
    const full = await batchGradients(model.variables, batches, model.lossFn);
    const projection = new RandomProjection({ k: 8, seed: 4 });
    const projected = await batchGradients(model.variables, batches, model.lossFn, { project: projection });
    expect(projected.projection).toEqual(projection.toJSON());
    expect(projected.gradients.map((g) => g.length)).toEqual([8, 8]);
    expect(projected.norms).toEqual(full.norms);
    projected.gradients.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(projection.project(full.gradients[i]))));
    model.dispose();
  });

  it('rejects bad input with messages that name the argument', async () => {
    const model = mlp();
    await expect(batchGradients(model.variables, [], model.lossFn)).rejects.toThrow(/non-empty array of batches/);
    await expect(batchGradients({ a: 3 as unknown as tf.Variable }, [batchOf(rows(2, 1))], model.lossFn)).rejects.toThrow(/variables\["a"\] is not a tf.Variable/);
    await expect(batchGradients(model.variables, [batchOf(rows(2, 1))], model.lossFn, { variableFilter: () => false })).rejects.toThrow(/no trainable variable/);
    const before = tf.memory().numTensors;
    await expect(
      batchGradients(model.variables, [batchOf(rows(2, 1))], () => tf.tidy(() => tf.mul(model.variables.w1, 2) as unknown as tf.Scalar)),
    ).rejects.toThrow(/lossFn failed on batch 0.*scalar/);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('perSampleGradients', () => {
  it('averages to the batch gradient of the mean loss (2-layer MLP)', async () => {
    const model = mlp();
    const data = rows(6, 11);
    const perSample = await perSampleGradients(model.variables, data, (s) => model.lossFn(batchOf([s])));
    const batch = await batchGradients(model.variables, [batchOf(data)], model.lossFn);
    expect(perSample.kind).toBe('sample');
    expect(perSample.gradients).toHaveLength(6);
    for (let j = 0; j < batch.dimension; j++) {
      const mean = perSample.gradients.reduce((s, g) => s + g[j], 0) / 6;
      expect(mean).toBeCloseTo(batch.gradients[0][j], 6);
    }
    model.dispose();
  });

  it('with batch norm: inference mode makes per-sample well defined; training mode on one sample kills the gradient', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [3], units: 4, kernelInitializer: tfl.initializers.glorotNormal({ seed: 1 }) }),
        tfl.layers.batchNormalization({ movingMeanInitializer: 'zeros', movingVarianceInitializer: 'ones' }),
        tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotNormal({ seed: 2 }) }),
      ],
    });
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const data = rows(5, 13);
    const loss = (training: boolean) => (b: Batch) =>
      tf.tidy(() => {
        const out = tf.reshape(model.apply(tf.tensor2d(b.x), { training }) as tf.Tensor, [-1]);
        return tf.mean(tf.square(tf.sub(out, tf.tensor1d(b.y)))) as tf.Scalar;
      });
    const before = tf.memory().numTensors;

    const inference = await perSampleGradients(variables, data, (s) => loss(false)(batchOf([s])));
    const batchInference = await batchGradients(variables, [batchOf(data)], loss(false));
    for (let j = 0; j < batchInference.dimension; j++) {
      const mean = inference.gradients.reduce((s, g) => s + g[j], 0) / data.length;
      expect(mean).toBeCloseTo(batchInference.gradients[0][j], 6);
    }
    const firstKernel = inference.segments[0];
    expect(inference.layerNorms.every((row) => row[0] > 0)).toBe(true);

    // A training-mode "batch" of one sample normalises the sample by itself: x − mean(x) = 0,
    // so nothing before the batch-norm layer receives any gradient.
    const training = await perSampleGradients(variables, data, (s) => loss(true)(batchOf([s])));
    training.gradients.forEach((g) => {
      for (let j = firstKernel.offset; j < firstKernel.offset + firstKernel.size; j++) expect(g[j]).toBe(0);
    });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('works on a tiny conv net built with tfjs-layers', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.glorotNormal({ seed: 3 }) }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotNormal({ seed: 4 }) }),
      ],
    });
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const samples = [0, 1, 2].map((i) => ({ x: tf.randomNormal([1, 6, 6, 1], 0, 1, 'float32', 10 + i), label: i }));
    const before = tf.memory().numTensors;
    const set = await perSampleGradients(variables, samples, ({ x, label }) =>
      tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot([label], 3), model.apply(x, { training: false }) as tf.Tensor) as tf.Scalar),
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(set.dimension).toBe(2 * 9 + 2 + 32 * 3 + 3);
    expect(set.gradients.every((g) => g.length === set.dimension && g.every(Number.isFinite))).toBe(true);
    const layers = layerGradientNorms(set);
    expect(layers.map((l) => l.size)).toEqual([18, 2, 96, 3]);
    layers.forEach((l, s) => {
      expect(l.norms).toEqual(set.layerNorms.map((row) => row[s]));
      expect(l.rmsPerParameter).toBeCloseTo(l.meanNorm / Math.sqrt(l.size), 12);
    });
    samples.forEach((s) => s.x.dispose());
    model.dispose();
  });
});

describe('gradientSetFromVectors', () => {
  it("reproduces perSampleGradients' set from the same vectors and losses (plain and projected)", async () => {
    const model = mlp();
    const data = rows(5, 13);
    for (const options of [{}, { project: new RandomProjection({ k: 8, seed: 2 }) }]) {
      const full = await perSampleGradients(model.variables, data, (s) => model.lossFn(batchOf([s])));
      const reference = await perSampleGradients(model.variables, data, (s) => model.lossFn(batchOf([s])), options);
      const tensorsBefore = tf.memory().numTensors;
      const set = gradientSetFromVectors('sample', model.variables, full.gradients, full.losses, options);
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      expect(set).toEqual(reference);
    }
    model.dispose();
  });

  it('honours variableFilter (vectors laid out over the selected variables) and checks its inputs', async () => {
    const model = mlp();
    const data = rows(3, 17);
    const variableFilter = (name: string) => name !== 'b1';
    const reference = await perSampleGradients(model.variables, data, (s) => model.lossFn(batchOf([s])), { variableFilter });
    const set = gradientSetFromVectors('sample', model.variables, reference.gradients, reference.losses, { variableFilter });
    expect(set.segments.map((s) => s.name)).toEqual(['w1', 'w2']);
    expect(set).toEqual(reference);
    expect(() => gradientSetFromVectors('batch', model.variables, [new Float32Array(3)], [0])).toThrow(/dimension 20/);
    expect(() => gradientSetFromVectors('batch', model.variables, [new Float32Array(20)], [])).toThrow(/one loss per vector/);
    expect(() => gradientSetFromVectors('batch', model.variables, [], [])).toThrow(/non-empty/);
    model.dispose();
  });
});
