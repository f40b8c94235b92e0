/**
 * Training on WebGPU end to end, on Mesa's lavapipe (a software Vulkan driver, so CI needs no GPU;
 * `.ci/install-vulkan.sh` installs it): a tiny ResNet's gradients on webgpu equal the cpu
 * backend's, and one of the lab's experiments runs at tiny scale with `backend: 'webgpu'`, its
 * config.json and report naming the adapter. Where Dawn cannot load or finds no adapter, the
 * tests skip and their title says why.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { readRunConfig, readTrialStatus, selectBackend } from '@lab/experiment-runner';
import { createAngleClassifier } from '@lab/ranking-models';
import { runDemo } from '../examples/angle-lab/src/demo';
import { frequencyLossExperiment } from '../examples/angle-lab/src/experiment-frequency-loss';
import { scaleOverrides } from '../examples/angle-lab/src/scales';

/** Why WebGPU cannot run here (the line selectBackend gives), or null once it runs on the fallback adapter. */
async function webGpuUnavailable(): Promise<string | null> {
  try {
    await selectBackend('webgpu', { log: () => {}, webgpu: { forceFallbackAdapter: true } });
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await tf.setBackend('cpu');
  }
}
const unavailable = await webGpuUnavailable();

/** Loss and gradients of one training-mode step of `model` on the current backend. */
function lossAndGradients(model: ReturnType<typeof createAngleClassifier>, x: tf.Tensor, labels: tf.Tensor): { loss: number; grads: Map<string, Float32Array> } {
  const out = new Map<string, Float32Array>();
  let loss = NaN;
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.forward(x, { training: true });
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    }, model.trainableVariables);
    for (const [name, grad] of Object.entries(grads)) out.set(name, grad.dataSync() as Float32Array);
    loss = value.dataSync()[0];
  });
  return { loss, grads: out };
}

describe.skipIf(unavailable != null)(`training on WebGPU (software adapter)${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const out = mkdtempSync(join(tmpdir(), 'angle-lab-webgpu-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('a tiny ResNet-18 has the same loss and gradients on webgpu as on cpu', async () => {
    await tf.setBackend('cpu');
    const model = createAngleClassifier({ depth: 18, inputShape: [16, 16, 1], widthMultiplier: 0.125, smallInputStem: true, numClasses: 3, seed: 7 });
    const x = tf.randomNormal([4, 16, 16, 1], 0, 1, 'float32', 11);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
    const cpu = lossAndGradients(model, x, labels);
    // Moving statistics are updated by the training-mode pass: reset them, so both passes start alike.
    const weightsBefore = model.model.getWeights().map((w) => w.clone());
    await selectBackend('webgpu', { log: () => {}, webgpu: { forceFallbackAdapter: true } });
    model.model.setWeights(weightsBefore);
    const before = tf.memory().numTensors;
    const gpu = lossAndGradients(model, x, labels);
    expect(tf.memory().numTensors).toBe(before);
    expect(gpu.loss).toBeCloseTo(cpu.loss, 5);
    expect([...gpu.grads.keys()]).toEqual([...cpu.grads.keys()]);
    let worst = 0;
    for (const [name, reference] of cpu.grads) {
      const got = gpu.grads.get(name)!;
      const scale = Math.max(1e-3, ...reference.map(Math.abs));
      for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(got[i] - reference[i]) / scale);
    }
    expect(worst).toBeLessThan(1e-4);
    tf.dispose([x, labels, ...weightsBefore]);
    model.model.dispose();
    await tf.setBackend('cpu');
  });

  it("runs one of the lab's experiments end to end with backend 'webgpu', recording the adapter", async () => {
    const tiny = scaleOverrides('frequency-loss', 'tiny');
    const demo = await runDemo({
      scale: 'tiny',
      out,
      workers: 0,
      backend: 'webgpu',
      progress: 'none',
      log: () => {},
      warn: () => {},
      experiments: [{ experiment: frequencyLossExperiment as never, overrides: { ...tiny, params: { ...tiny.params, epochs: 1 }, seeds: 1, sweep: { list: [{ input: '3000Hz', loss: 'ghm' }] } } }],
    });
    expect(demo.runs).toHaveLength(1);
    const [run] = demo.runs;
    expect(run.failures).toEqual([]);
    expect(run.status).toBe('completed');
    const config = readRunConfig(run.runDir);
    expect(config.backend).toMatchObject({ preference: 'webgpu', name: 'webgpu', adapter: { software: true } });
    const report = readFileSync(join(run.runDir, 'report.md'), 'utf8');
    expect(config.backend.fastTraining, "@lab/tfjs-train's WebGPU kernels installed").toBe(true);
    expect(report).toMatch(/\*\*Backend:\*\* webgpu on .+, software adapter with @lab\/tfjs-train training kernels \(asked: webgpu\)/);
    const metrics = readFileSync(join(run.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const losses = metrics.map((m) => m.train_loss).filter((v): v is number => typeof v === 'number');
    expect(losses.length).toBeGreaterThan(0);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(existsSync(join(run.runDir, 'report.html'))).toBe(true);
    // The two folds trained as fused trials (one group); on webgpu, without the fused kernels, each model on its own rows.
    expect(readTrialStatus(run.runDir, 'v0-s0-f0')?.fusedWith).toEqual(['v0-s0-f1']);
    await tf.setBackend('cpu');
  });
});
