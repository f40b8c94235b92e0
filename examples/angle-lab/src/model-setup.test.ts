import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { classificationLoss } from './model-setup';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('classificationLoss', () => {
  it('moves GHM gradient-density state on training steps only, never on validation or probes', () => {
    const loss = classificationLoss('ghm', { bins: 10, alpha: 0.75 });
    const logits = tf.tensor2d([[2, 0, 0], [0, 1, 0], [0, 0, -1], [1, 1, 1]]);
    const labels = tf.tensor1d([0, 1, 2, 0], 'int32');
    try {
      tf.dispose(loss.lossFn(logits, labels, { training: false, phase: 'validation' }));
      tf.dispose(loss.lossFn(logits, labels, { training: false, phase: 'probe' }));
      expect(loss.ghm!.stats().calls).toBe(0);
      expect(loss.ghm!.stats().accumulator.every((a) => a === 0)).toBe(true);
      tf.dispose(loss.lossFn(logits, labels, { training: true, phase: 'train' }));
      expect(loss.ghm!.stats().calls).toBe(1);
      // EMA from 0 with momentum 0.75: the accumulator holds 0.25 × this batch's counts, 4 samples in all.
      expect(loss.ghm!.stats().accumulator.reduce((a, b) => a + b, 0)).toBeCloseTo(0.25 * 4, 6);
    } finally {
      tf.dispose([logits, labels]);
      loss.dispose();
    }
  });

  it('rejects an unknown loss name, naming the field', () => {
    expect(() => classificationLoss('focal', { bins: 10, alpha: 0.75 })).toThrow(/params\.loss/);
  });
});
