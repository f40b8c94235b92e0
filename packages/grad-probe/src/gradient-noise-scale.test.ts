import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import fixture from '../fixtures/gns-logistic.json';
import { GNSTracker, gradientNoiseScale, gradientNoiseScaleTwoBatch, type GNSEstimate } from './gradient-noise-scale';
import { batchGradients, perSampleGradients } from './gradients';
import { SeededRandom } from './seeded-random';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const relClose = (actual: number, expected: number, rel: number) => {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(rel * Math.abs(expected));
};

/** Logistic regression on the fixture's data; loss = mean softplus(z) − y·z. */
function logisticModel() {
  const w = tf.variable(tf.tensor2d(fixture.w, [fixture.w.length, 1]));
  const b = tf.variable(tf.tensor1d([fixture.b]));
  const lossFn = (rows: number[]) =>
    tf.tidy(() => {
      const x = tf.tensor2d(rows.map((i) => fixture.X[i]));
      const y = tf.tensor1d(rows.map((i) => fixture.y[i]));
      const z = tf.add(tf.reshape(tf.matMul(x, w), [-1]), b);
      return tf.mean(tf.sub(tf.softplus(z), tf.mul(y, z))) as tf.Scalar;
    });
  return { w, b, lossFn, dispose: () => (w.dispose(), b.dispose()) };
}

describe('gradientNoiseScale (per-sample, unbiased)', () => {
  it('matches the float64 closed-form reference on logistic regression', () => {
    const grads = fixture.perSampleGradients.map((g) => Float32Array.from(g));
    const est = gradientNoiseScale(grads, { bootstrap: 0 });
    relClose(est.trSigma, fixture.perSample.trSigma, 1e-5);
    relClose(est.gSquared, fixture.perSample.gSquared, 1e-5);
    relClose(est.bSimple!, fixture.perSample.bSimple, 1e-5);
    expect(est).toMatchObject({ method: 'per-sample', n: 32, negativeGSquared: false, ci95: null });
  });

  it('gets the same numbers from per-sample gradients computed by TF.js, without leaking tensors', async () => {
    const model = logisticModel();
    const before = tf.memory().numTensors;
    const samples = fixture.X.map((_, i) => [i]);
    const set = await perSampleGradients([model.w, model.b], samples, model.lossFn);
    expect(tf.memory().numTensors).toBe(before);
    set.gradients.forEach((g, i) => {
      fixture.perSampleGradients[i].forEach((v, j) => expect(g[j]).toBeCloseTo(v, 5));
    });
    set.losses.forEach((l, i) => expect(l).toBeCloseTo(fixture.losses[i], 5));
    const est = gradientNoiseScale(set.gradients, { bootstrap: 200, seed: 3 });
    relClose(est.trSigma, fixture.perSample.trSigma, 1e-4);
    relClose(est.gSquared, fixture.perSample.gSquared, 1e-4);
    relClose(est.bSimple!, fixture.perSample.bSimple, 1e-4);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('returns a deterministic bootstrap interval that brackets the estimate', () => {
    const grads = fixture.perSampleGradients.map((g) => Float32Array.from(g));
    const a = gradientNoiseScale(grads, { bootstrap: 500, seed: 11 });
    const b = gradientNoiseScale(grads, { bootstrap: 500, seed: 11 });
    const c = gradientNoiseScale(grads, { bootstrap: 500, seed: 12 });
    expect(a.ci95).toEqual(b.ci95);
    expect(a.ci95).not.toEqual(c.ci95);
    const ci = a.ci95!;
    expect(ci.replicates).toBe(500);
    expect(ci.trSigma.low!).toBeLessThan(a.trSigma);
    expect(ci.trSigma.high!).toBeGreaterThan(a.trSigma);
    expect(ci.gSquared.low!).toBeLessThan(a.gSquared);
    expect(ci.gSquared.high!).toBeGreaterThan(a.gSquared);
    expect(ci.bSimple.low!).toBeLessThan(a.bSimple!);
    // Either a finite upper bound above the estimate, or unbounded (null = +∞).
    if (ci.bSimple.high !== null) expect(ci.bSimple.high).toBeGreaterThan(a.bSimple!);
    // The Gram-matrix path and the direct path agree on the point estimate.
    const direct = gradientNoiseScale(grads, { bootstrap: 0 });
    relClose(a.trSigma, direct.trSigma, 1e-12);
    relClose(a.gSquared, direct.gSquared, 1e-12);
  });

  it('reports a negative |G|² with a flag and null ratio, never NaN (worked by hand)', () => {
    // g1 = (1, 0), g2 = (−1, 0): mean ‖g‖² = 1, ḡ = 0.
    // tr(Σ) = 2/1·(1 − 0) = 2;  |G|² = (2·0 − 1)/1 = −1.
    const est = gradientNoiseScale([Float32Array.of(1, 0), Float32Array.of(-1, 0)], { bootstrap: 100 });
    expect(est.trSigma).toBeCloseTo(2, 12);
    expect(est.gSquared).toBeCloseTo(-1, 12);
    expect(est.bSimple).toBeNull();
    expect(est.negativeGSquared).toBe(true);
    const json = JSON.stringify(est);
    expect(json).not.toMatch(/NaN/);
    expect(JSON.parse(json)).toEqual(est);
  });

  it('handles all-zero gradients without NaN', () => {
    const est = gradientNoiseScale([new Float32Array(3), new Float32Array(3), new Float32Array(3)], { bootstrap: 50 });
    expect(est).toMatchObject({ trSigma: 0, gSquared: 0, bSimple: null, negativeGSquared: true });
    expect(JSON.stringify(est)).not.toMatch(/NaN/);
  });

  it('rejects bad input with a message naming the argument', () => {
    expect(() => gradientNoiseScale([Float32Array.of(1)])).toThrow(/gradientNoiseScale.*at least 2/);
    expect(() => gradientNoiseScale([Float32Array.of(1, 2), Float32Array.of(1)])).toThrow(/vector 1 has length 1, expected 2/);
    expect(() => gradientNoiseScale([Float32Array.of(1, NaN), Float32Array.of(1, 2)])).toThrow(/non-finite/);
    expect(() => gradientNoiseScale([Float32Array.of(1), Float32Array.of(2)], { bootstrap: -1 })).toThrow(/bootstrap/);
  });
});

describe('gradientNoiseScaleTwoBatch', () => {
  it('matches the float64 two-point reference', () => {
    const t = fixture.twoBatch;
    const est = gradientNoiseScaleTwoBatch(t);
    relClose(est.trSigma, t.trSigma, 1e-12);
    relClose(est.gSquared, t.gSquared, 1e-12);
    relClose(est.bSimple!, t.bSimple, 1e-12);
    expect(est).toMatchObject({ method: 'two-batch', n: 32, ci95: null, negativeGSquared: false });
  });

  it('gets the same numbers from batch gradients computed by TF.js on the same data', async () => {
    const model = logisticModel();
    const before = tf.memory().numTensors;
    const t = fixture.twoBatch;
    const smallBatches = Array.from({ length: 32 / t.smallBatchSize }, (_, k) => Array.from({ length: t.smallBatchSize }, (_, i) => k * t.smallBatchSize + i));
    const small = await batchGradients([model.w, model.b], smallBatches, model.lossFn);
    const big = await batchGradients([model.w, model.b], [Array.from({ length: 32 }, (_, i) => i)], model.lossFn);
    expect(tf.memory().numTensors).toBe(before);
    small.norms.forEach((norm, k) => relClose(norm * norm, t.smallNormsSq[k], 1e-5));
    const est = gradientNoiseScaleTwoBatch({
      smallBatchSize: t.smallBatchSize,
      bigBatchSize: t.bigBatchSize,
      smallNormsSq: small.norms.map((x) => x * x),
      bigNormSq: big.norms[0] ** 2,
    });
    relClose(est.trSigma, t.trSigma, 1e-4);
    relClose(est.gSquared, t.gSquared, 1e-4);
    relClose(est.bSimple!, t.bSimple, 1e-4);
    model.dispose();
  });

  it('with small batches of one sample reduces to the per-sample estimator', () => {
    const grads = fixture.perSampleGradients.map((g) => Float64Array.from(g));
    const perSample = gradientNoiseScale(grads, { bootstrap: 0 });
    const twoBatch = gradientNoiseScaleTwoBatch({
      smallBatchSize: 1,
      bigBatchSize: grads.length,
      smallNormsSq: grads.map((g) => g.reduce((s, v) => s + v * v, 0)),
      bigNormSq: fixture.perSample.meanGradientNormSq,
    });
    relClose(twoBatch.trSigma, perSample.trSigma, 1e-10);
    relClose(twoBatch.gSquared, perSample.gSquared, 1e-10);
  });

  it('flags a negative |G|² and rejects bad sizes', () => {
    // |G|² = (8·0.1 − 4·1)/(8 − 4) = −0.8;  tr(Σ) = (1 − 0.1)/(1/4 − 1/8) = 7.2
    const est = gradientNoiseScaleTwoBatch({ smallBatchSize: 4, bigBatchSize: 8, smallNormsSq: [1], bigNormSq: 0.1 });
    expect(est.gSquared).toBeCloseTo(-0.8, 12);
    expect(est.trSigma).toBeCloseTo(7.2, 12);
    expect(est.bSimple).toBeNull();
    expect(est.negativeGSquared).toBe(true);
    expect(() => gradientNoiseScaleTwoBatch({ smallBatchSize: 4, bigBatchSize: 4, smallNormsSq: [1], bigNormSq: 1 })).toThrow(/bigBatchSize/);
    expect(() => gradientNoiseScaleTwoBatch({ smallBatchSize: 4, bigBatchSize: 8, smallNormsSq: [], bigNormSq: 1 })).toThrow(/smallNormsSq/);
  });
});

describe('unbiasedness against known truth (Monte Carlo, independent of the formulas)', () => {
  // Per-sample gradients g = G + s ⊙ z, z ~ N(0, I): the true |G|² = ‖G‖² and tr(Σ) = Σ s².
  // Averaged over many draws, an unbiased estimator converges to these (the plug-in values
  // ‖ḡ‖² and the biased variance would miss by tr(Σ)/n and a factor (n − 1)/n, far outside the tolerance).
  const G = [0.6, -0.4, 0.3, 0.0, 0.2];
  const s = [1.0, 0.5, 0.8, 0.3, 0.6];
  const trueG2 = G.reduce((a, g) => a + g * g, 0); // 0.65
  const trueTr = s.reduce((a, v) => a + v * v, 0); // 2.34
  const draw = (rng: SeededRandom) => Float64Array.from(G, (g, j) => g + s[j] * rng.nextGaussian());
  const normSq = (v: Float64Array) => v.reduce((a, x) => a + x * x, 0);
  const mean = (vs: Float64Array[]) => Float64Array.from(vs[0], (_, j) => vs.reduce((a, v) => a + v[j], 0) / vs.length);

  /** Mean of tr(Σ) and |G|² estimates over 20 000 independent draws of `samples` per-sample gradients. */
  function expectUnbiased(samples: number, seed: number, estimator: (grads: Float64Array[]) => GNSEstimate): void {
    const rng = new SeededRandom(seed);
    const reps = 20000;
    let tr = 0;
    let g2 = 0;
    for (let r = 0; r < reps; r++) {
      const est = estimator(Array.from({ length: samples }, () => draw(rng)));
      tr += est.trSigma;
      g2 += est.gSquared;
    }
    relClose(tr / reps, trueTr, 0.05);
    relClose(g2 / reps, trueG2, 0.05);
  }

  it('per-sample estimator (n = 4)', () => {
    expectUnbiased(4, 2024, (grads) => gradientNoiseScale(grads, { bootstrap: 0 }));
  });

  it('two-batch estimator (b = 2, B = 8)', () => {
    expectUnbiased(8, 2025, (grads) =>
      gradientNoiseScaleTwoBatch({
        smallBatchSize: 2,
        bigBatchSize: 8,
        smallNormsSq: [0, 2, 4, 6].map((k) => normSq(mean(grads.slice(k, k + 2)))),
        bigNormSq: normSq(mean(grads)),
      }),
    );
  });
});

describe('GNSTracker', () => {
  it('keeps bias-corrected EMAs of numerator and denominator separately (worked by hand)', () => {
    // decay 0.5. tr: acc 0.5·2 = 1 → 1/(1−0.5) = 2; then 0.5·1 + 0.5·4 = 2.5 → 2.5/0.75 = 3.333…
    // |G|²: acc 0.5 → 1; then 0.25 + 1.5 = 1.75 → 2.333…; ratio 2.5/1.75 = 1.428571…
    const tracker = new GNSTracker({ decay: 0.5 });
    tracker.update({ trSigma: 2, gSquared: 1 }, 5).update({ trSigma: 4, gSquared: 3 }, 10);
    const s = tracker.stats();
    expect(s.updates).toBe(2);
    expect(s.trSigmaEma).toBeCloseTo(10 / 3, 12);
    expect(s.gSquaredEma).toBeCloseTo(7 / 3, 12);
    expect(s.bSimple).toBeCloseTo(2.5 / 1.75, 12);
    expect(s.last).toMatchObject({ step: 10, trSigma: 4, gSquared: 3, bSimple: 4 / 3 });

    const restored = GNSTracker.fromJSON(JSON.parse(JSON.stringify(tracker.toJSON())));
    restored.update({ trSigma: 1, gSquared: 1 }, 15);
    tracker.update({ trSigma: 1, gSquared: 1 }, 15);
    expect(restored.stats()).toEqual(tracker.stats());
    expect(restored.toJSON().history.map((h) => h.step)).toEqual([5, 10, 15]);
  });

  it('reports a non-positive EMA denominator as null, not NaN', () => {
    const tracker = new GNSTracker();
    expect(tracker.stats()).toMatchObject({ updates: 0, bSimple: null, negativeGSquared: false });
    tracker.update({ trSigma: 2, gSquared: -1 });
    expect(tracker.stats()).toMatchObject({ bSimple: null, negativeGSquared: true });
    expect(JSON.stringify(tracker.toJSON())).not.toMatch(/NaN/);
    expect(() => tracker.update({ trSigma: NaN, gSquared: 1 })).toThrow(/finite/);
    expect(() => new GNSTracker({ decay: 1 })).toThrow(/decay/);
  });
});
