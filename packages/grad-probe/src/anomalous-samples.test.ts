import { describe, expect, it } from 'vitest';
import { anomalousSamples } from './anomalous-samples';
import { SeededRandom } from './seeded-random';

describe('anomalousSamples', () => {
  it('puts a sample whose gradient opposes the rest, and is large, on top', () => {
    const rng = new SeededRandom(4);
    const d = 50;
    const signal = Float32Array.from({ length: d }, () => rng.nextGaussian());
    const grads = Array.from({ length: 20 }, () => Float32Array.from(signal, (s) => s + 0.5 * rng.nextGaussian()));
    // Sample 13 is "mislabelled": its gradient points the other way and is three times larger.
    grads[13] = Float32Array.from(grads[13], (x) => -3 * x);
    const ids = grads.map((_, i) => `rec_${i}.wav`);
    const top = anomalousSamples(grads, ids, { top: 3 });
    expect(top).toHaveLength(3);
    expect(top[0]).toMatchObject({ id: 'rec_13.wav', index: 13 });
    expect(top[0].cosineToRest).toBeLessThan(-0.8);
    expect(top[0].normZScore).toBeGreaterThan(3);
    expect(top[0].score).toBeCloseTo(top[0].cosineZScore + top[0].normZScore, 12);
    expect(top[1].score).toBeLessThanOrEqual(top[0].score);
    expect(top[1].cosineToRest).toBeGreaterThan(0.5);
  });

  it('computes the leave-one-out cosine exactly (worked by hand)', () => {
    // g = (1,0), (1,0), (0,1): for sample 2 the rest is (2,0): cosine 0; for sample 0 the rest is
    // (1,1): cosine 1/√2.
    const top = anomalousSamples([Float32Array.of(1, 0), Float32Array.of(1, 0), Float32Array.of(0, 1)], ['a', 'b', 'c'], { top: 3 });
    const byId = Object.fromEntries(top.map((t) => [t.id, t]));
    expect(byId.c.cosineToRest).toBeCloseTo(0, 12);
    expect(byId.a.cosineToRest).toBeCloseTo(Math.SQRT1_2, 12);
    expect(top[0].id).toBe('c');
    // All norms equal: norm z-scores are 0, not NaN.
    expect(top.every((t) => t.normZScore === 0)).toBe(true);
  });

  it('rejects ids that do not match the gradients', () => {
    const g = [Float32Array.of(1), Float32Array.of(2), Float32Array.of(3)];
    expect(() => anomalousSamples(g, ['a'])).toThrow(/one id per gradient \(3\), got 1/);
    expect(() => anomalousSamples(g, ['a', 'b', 'c'], { top: 0 })).toThrow(/top/);
  });
});
