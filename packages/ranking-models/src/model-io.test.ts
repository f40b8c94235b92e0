import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradients
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamOptimizer } from './adam-optimizer';
import { AngleClassifier, createAngleClassifier } from './angle-classifier';
import { fileSystemHandler, loadModel, loadOptimizerState, restoreOptimizer, saveModel } from './model-io';
import { crossEntropyLoss } from './pair-losses';
import { PyTorchBatchNorm } from './pytorch-batch-norm';

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'ranking-models-io-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const options = { depth: 18 as const, inputShape: [8, 8, 1] as [number, number, number], widthMultiplier: 0.0625, smallInputStem: true, numClasses: 3 };

/** Temporary or replaced folders that saveModel left next to its checkpoints. */
const temporaryFolders = async () => (await readdir(root)).filter((n) => n.includes('.tmp-') || n.includes('.old-'));
const weightsOf = (model: tfl.LayersModel) => model.getWeights().map((w) => Array.from(w.dataSync()));

function step(model: AngleClassifier, optimizer: AdamOptimizer, x: tf.Tensor, y: tf.Tensor): void {
  const { value, grads } = tf.variableGrads(() => crossEntropyLoss(model.forward(x, { training: true }), y), model.trainableVariables);
  optimizer.applyGradients(model.trainableVariables.map((v) => grads[v.name]));
  tf.dispose([value, grads]);
}

describe('saveModel / loadModel', () => {
  it('round-trips a trained classifier (moving statistics included) with identical predictions and optimiser state', async () => {
    const x = tf.randomNormal([6, 8, 8, 1], 0, 1, 'float32', 11);
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    const original = createAngleClassifier({ ...options, seed: 5 });
    const optimizer = new AdamOptimizer(original.trainableVariables, { lr: 1e-2, weightDecay: 1e-4, decoupled: true });
    step(original, optimizer, x, y); // moves weights and batch-norm statistics away from their initial values
    const dir = join(root, 'checkpoints', 'epoch-001');
    await saveModel(original, dir, { optimizerState: optimizer });
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'optimizer.bin', 'optimizer.json', 'weights.bin']);
    // No temporary folder is left next to the checkpoint.
    expect(await readdir(join(root, 'checkpoints'))).toEqual(['epoch-001']);

    const loaded = new AngleClassifier(await loadModel(dir));
    expect(loaded.model.getLayer('layer1.0.bn1')).toBeInstanceOf(PyTorchBatchNorm);
    const p1 = original.predict(x);
    const p2 = loaded.predict(x);
    expect(Array.from(p2.dataSync())).toEqual(Array.from(p1.dataSync()));

    // Continuing training from the saved optimiser gives exactly the same next step.
    const restored = (await restoreOptimizer(dir, loaded.trainableVariables))!;
    expect(restored.step).toBe(1);
    expect(restored.options).toEqual(optimizer.options);
    step(original, optimizer, x, y);
    step(loaded, restored, x, y);
    const q1 = original.predict(x);
    const q2 = loaded.predict(x);
    expect(Array.from(q2.dataSync())).toEqual(Array.from(q1.dataSync()));
    tf.dispose([x, y, p1, p2, q1, q2]);
    optimizer.dispose();
    restored.dispose();
    original.dispose();
    loaded.dispose();
  });

  it('replaces an existing folder atomically and saves without optimiser state', async () => {
    const dir = join(root, 'replace');
    const a = createAngleClassifier({ ...options, seed: 1 });
    const b = createAngleClassifier({ ...options, seed: 2 });
    const optimizer = new AdamOptimizer(a.trainableVariables, { lr: 1 });
    await saveModel(a, dir, { optimizerState: optimizer });
    optimizer.dispose();
    await saveModel(b.model, dir);
    expect(await readdir(root)).toContain('replace');
    expect(await temporaryFolders()).toEqual([]);
    expect(await loadOptimizerState(dir)).toBeNull();
    const loaded = await loadModel(dir);
    expect(weightsOf(loaded)).toEqual(weightsOf(b.model));
    a.dispose();
    b.dispose();
    loaded.dispose();
  });

  it('a save that fails part-way leaves the existing checkpoint intact and no temporary files', async () => {
    const dir = join(root, 'failing');
    const good = createAngleClassifier({ ...options, seed: 3 });
    const other = createAngleClassifier({ ...options, seed: 4 });
    await saveModel(good, dir);
    // The new model's files are fully written to the temporary folder, then the save fails.
    const failing = {
      model: {
        save: async (handler: tf.io.IOHandler) => {
          await other.model.save(handler);
          throw new Error('simulated disk failure');
        },
      } as unknown as typeof other.model,
    };
    await expect(saveModel(failing, dir)).rejects.toThrow(/simulated disk failure/);
    expect(await temporaryFolders()).toEqual([]);
    const loaded = await loadModel(dir);
    expect(weightsOf(loaded)).toEqual(weightsOf(good.model));
    good.dispose();
    other.dispose();
    loaded.dispose();
  });

  it('fileSystemHandler used directly round-trips and leaves only model.json and weights.bin', async () => {
    const dir = join(root, 'handler');
    const m = createAngleClassifier({ ...options, seed: 6 });
    await m.model.save(fileSystemHandler(dir));
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']);
    const loaded = await loadModel(dir);
    expect(weightsOf(loaded)).toEqual(weightsOf(m.model));
    m.dispose();
    loaded.dispose();
  });

  it('reports a missing folder with its path', async () => {
    await expect(loadModel(join(root, 'nope'))).rejects.toThrow(/nope.*model\.json|model\.json/);
  });
});
