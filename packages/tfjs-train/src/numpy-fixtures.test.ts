import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { relativeError } from './test-support';
import { useFastTraining } from './use-fast-training';

// Reference values from fixtures/make_conv_grads.py (plain NumPy loops, independent of TF.js).
interface ConvFixture {
  xShape: number[];
  filterShape: number[];
  strides: number[];
  dilations: number[];
  pad: 'same' | 'valid' | number[][];
  x: number[];
  w: number[];
  dy: number[];
  dyShape: number[];
  y: number[];
  dW: number[];
  dx: number[];
}
interface PoolFixture {
  xShape: number[];
  filterSize: number;
  strides: number;
  pad: 'same' | 'valid';
  x: number[];
  dy: number[];
  dyShape: number[];
  dx: number[];
}
const fixtures = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../fixtures/conv_grads.json'), 'utf8'),
) as { conv: ConvFixture[]; maxPool: PoolFixture[] };

function run(kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>): Float32Array {
  return tf.tidy(() => (tf.engine().runKernel(kernel, inputs as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor).dataSync() as Float32Array);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.setBackend('wasm');
});

describe('against NumPy reference gradients', () => {
  it.each(['wasm', 'cpu'] as const)('conv filter and input gradients on %s (strides, dilations, SAME/VALID/explicit, 1x1, 7x7 stem)', async (backendName) => {
    await tf.setBackend(backendName);
    await useFastTraining(backendName);
    for (const f of fixtures.conv) {
      const x = tf.tensor(f.x, f.xShape);
      const w = tf.tensor(f.w, f.filterShape);
      const dy = tf.tensor(f.dy, f.dyShape);
      const common = { strides: f.strides, pad: f.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
      const label = `${backendName} x=${f.xShape} w=${f.filterShape} s=${f.strides} d=${f.dilations} pad=${JSON.stringify(f.pad)}`;
      // The fixture's forward pass agrees with the backend's Conv2D (same padding convention).
      expect(relativeError(run('Conv2D', { x, filter: w }, { ...common, dilations: f.dilations }), f.y), label).toBeLessThan(1e-5);
      const dW = run('Conv2DBackpropFilter', { x, dy }, { ...common, dilations: f.dilations, filterShape: f.filterShape });
      expect(relativeError(dW, f.dW), `dW ${label}`).toBeLessThan(1e-5);
      // The cpu backend's stock Conv2DBackpropInput ignores dilations; ours is installed on wasm only.
      if (backendName === 'wasm' || f.dilations.every((d) => d === 1)) {
        const dx = run('Conv2DBackpropInput', { dy, filter: w }, { ...common, dilations: f.dilations, inputShape: f.xShape });
        expect(relativeError(dx, f.dx), `dx ${label}`).toBeLessThan(1e-5);
      }
      tf.dispose([x, w, dy]);
    }
  });

  it('max-pool gradients on wasm, including all-negative windows with SAME padding', async () => {
    await tf.setBackend('wasm');
    await useFastTraining('wasm');
    for (const f of fixtures.maxPool) {
      const input = tf.tensor(f.x, f.xShape);
      const dy = tf.tensor(f.dy, f.dyShape);
      const dx = run('MaxPoolGrad', { dy, input, output: dy }, { filterSize: f.filterSize, strides: f.strides, pad: f.pad, dimRoundingMode: undefined });
      expect(relativeError(dx, f.dx), JSON.stringify({ shape: f.xShape, pad: f.pad })).toBeLessThan(1e-6);
      tf.dispose([input, dy]);
    }
  });
});
