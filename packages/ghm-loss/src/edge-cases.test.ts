import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { beforeAll, describe, expect, it } from 'vitest';
import { GHMC, GHMR, GHMSoftmax, binEdges, focalLoss, sigmoidBinaryCrossEntropy, softmaxCrossEntropy } from './index';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function seededLogits(n: number, c: number, seed: number): tf.Tensor2D {
  return tf.randomNormal([n, c], 0, 2, 'float32', seed) as tf.Tensor2D;
}

function gradOf(f: (x: tf.Tensor) => tf.Scalar, x: tf.Tensor): { loss: number; grad: Float32Array } {
  return tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad(f)(x);
    return { loss: value.dataSync()[0], grad: grad.dataSync() as Float32Array };
  });
}

describe('empty and fully masked batches', () => {
  it('GHMSoftmax: all weights zero gives loss 0 and a zero gradient, and leaves the EMA alone', () => {
    const ghm = new GHMSoftmax();
    const logits = seededLogits(8, 6, 1);
    const labels = tf.tensor1d([0, 1, 2, 3, 4, 5, 0, 1], 'int32');
    ghm.loss(logits, labels).dispose();
    const before = ghm.stats().accumulator;
    const zeros = tf.zeros([8]) as tf.Tensor1D;
    const got = gradOf((x) => ghm.loss(x as tf.Tensor2D, labels, zeros), logits);
    expect(got.loss).toBe(0);
    expect(Array.from(got.grad).every((g) => g === 0)).toBe(true);
    const s = ghm.stats();
    expect(s.accumulator).toEqual(before);
    expect(s.counts.every((c) => c === 0)).toBe(true);
    expect(s.nonEmptyBins).toBe(0);
    expect(s.total).toBe(1);
    tf.dispose([logits, labels, zeros]);
    ghm.dispose();
  });

  it('every loss: an empty batch gives 0 (not NaN) and an empty zero gradient', () => {
    const empty2d = tf.zeros([0, 6]) as tf.Tensor2D;
    const noLabels = tf.tensor1d([], 'int32');
    const cases: Array<[string, (x: tf.Tensor) => tf.Scalar]> = [
      ['GHMSoftmax', (x) => new GHMSoftmax().loss(x as tf.Tensor2D, noLabels)],
      ['GHMC', (x) => new GHMC({ momentum: 0.5 }).loss(x, tf.zeros([0, 6]))],
      ['GHMR', (x) => new GHMR({ momentum: 0.5 }).loss(x, tf.zeros([0, 6]))],
      ['softmaxCrossEntropy', (x) => softmaxCrossEntropy(x as tf.Tensor2D, noLabels, { labelSmoothing: 0.1 })],
      ['focalLoss', (x) => focalLoss(x as tf.Tensor2D, noLabels)],
      ['sigmoidBinaryCrossEntropy', (x) => sigmoidBinaryCrossEntropy(x, tf.zeros([0, 6]))],
    ];
    for (const [name, f] of cases) {
      const got = gradOf(f, empty2d);
      expect(got.loss, name).toBe(0);
      expect(got.grad.length, name).toBe(0);
    }
    tf.dispose([empty2d, noLabels]);
  });

  it('GHMC and GHMR: all-zero weights give 0 and zero gradients even for extreme inputs', () => {
    const x = tf.tensor2d([[80, -80], [0, 1e4]]);
    const t = tf.tensor2d([[0, 1], [1, 0]]);
    const w = tf.zeros([2, 2]);
    for (const f of [(z: tf.Tensor) => new GHMC().loss(z, t, w), (z: tf.Tensor) => new GHMR().loss(z, t, w)]) {
      const got = gradOf(f, x);
      expect(got.loss).toBe(0);
      expect(Array.from(got.grad)).toEqual([0, 0, 0, 0]);
    }
    tf.dispose([x, t, w]);
  });
});

describe('bin edges in float32', () => {
  it('edges are float32(i / bins) with the last raised by 1e-6 (GHM-R: 1e3)', () => {
    expect(Array.from(binEdges(4, 1 + 1e-6))).toEqual([0, 0.25, 0.5, 0.75, Math.fround(1 + 1e-6)]);
    expect(new GHMSoftmax().stats().edges[3]).toBe(Math.fround(0.3));
    expect(new GHMR().stats().edges[10]).toBe(1000);
  });

  it('g exactly on an edge falls in the upper bin; g = 1 falls in the last bin', () => {
    // sigmoid(0) is exactly 0.5 in float32, so soft targets put g exactly where we want it.
    const ghm = new GHMC({ bins: 4 });
    const t = tf.tensor1d([0.5, 0.25, 0.75, 0, 1, 1]);
    const x = tf.tensor1d([0, 0, 0, 0, 0, -200]); // sigmoid(-200) underflows to 0: g = 1
    ghm.loss(x, t).dispose();
    // g = 0, 0.25, 0.25, 0.5, 0.5, 1 → bins 0, 1, 1, 2, 2, 3
    expect(ghm.stats().counts).toEqual([1, 2, 2, 1]);
    tf.dispose([t, x]);
  });

  it('with bins = 10, g = float32(0.3) is in bin 3 and the float32 just below it in bin 2', () => {
    const ghm = new GHMC({ bins: 10 });
    const onEdge = 0.5 - Math.fround(0.3); // exactly representable, so 0.5 − t is exactly float32(0.3)
    const below = onEdge + 2 ** -25; // 0.5 − t is then the float32 just below float32(0.3)
    expect(Math.fround(onEdge)).toBe(onEdge);
    const t = tf.tensor1d([onEdge, below]);
    const x = tf.zeros([2]);
    ghm.loss(x, t).dispose();
    const counts = ghm.stats().counts;
    expect(counts[3]).toBe(1);
    expect(counts[2]).toBe(1);
    tf.dispose([t, x]);
  });
});

describe('state', () => {
  it('momentum 0 uses only this batch; momentum > 0 remembers earlier batches', () => {
    const labels = tf.tensor1d([0, 1, 2, 3, 4, 5, 0, 1, 2, 3], 'int32');
    const a = seededLogits(10, 6, 3);
    const b = seededLogits(10, 6, 4);
    const fresh0 = new GHMSoftmax({ momentum: 0 });
    const seq0 = new GHMSoftmax({ momentum: 0 });
    seq0.loss(a, labels).dispose();
    const l0 = seq0.loss(b, labels).dataSync()[0];
    expect(l0).toBeCloseTo(fresh0.loss(b, labels).dataSync()[0], 6);
    expect(seq0.stats().accumulator.every((v) => v === 0)).toBe(true);

    const freshM = new GHMSoftmax({ momentum: 0.75 });
    const seqM = new GHMSoftmax({ momentum: 0.75 });
    seqM.loss(a, labels).dispose();
    const lM = seqM.loss(b, labels).dataSync()[0];
    expect(Math.abs(lM - freshM.loss(b, labels).dataSync()[0])).toBeGreaterThan(1e-4);
    tf.dispose([labels, a, b]);
    for (const g of [fresh0, seq0, freshM, seqM]) g.dispose();
  });

  it('with one bin and momentum 0 GHMSoftmax equals softmax cross-entropy', () => {
    tf.tidy(() => {
      const logits = seededLogits(12, 6, 5);
      const labels = tf.tensor1d([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5], 'int32');
      const ghm = new GHMSoftmax({ bins: 1, momentum: 0 });
      const a = gradOf((x) => ghm.loss(x as tf.Tensor2D, labels), logits);
      const b = gradOf((x) => softmaxCrossEntropy(x as tf.Tensor2D, labels), logits);
      expect(a.loss).toBeCloseTo(b.loss, 5);
      Array.from(a.grad).forEach((g, i) => expect(g).toBeCloseTo(b.grad[i], 6));
      ghm.dispose();
    });
  });

  it('reset() between folds makes the loss behave like a new instance', () => {
    const labels = tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32');
    const fold1 = seededLogits(6, 6, 6);
    const fold2 = seededLogits(6, 6, 7);
    const reused = new GHMSoftmax();
    reused.loss(fold1, labels).dispose();
    reused.loss(fold1, labels).dispose();
    reused.reset();
    expect(reused.stats().calls).toBe(0);
    expect(reused.stats().accumulator.every((v) => v === 0)).toBe(true);
    const fresh = new GHMSoftmax();
    expect(reused.loss(fold2, labels).dataSync()[0]).toBe(fresh.loss(fold2, labels).dataSync()[0]);
    expect(reused.stats()).toEqual(fresh.stats());
    tf.dispose([labels, fold1, fold2]);
    reused.dispose();
    fresh.dispose();
  });

  it('updateState: false computes the loss from the current EMA without changing it', () => {
    const labels = tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32');
    const x = seededLogits(6, 6, 8);
    const ghm = new GHMSoftmax();
    ghm.loss(x, labels).dispose();
    const before = ghm.stats();
    ghm.loss(seededLogits(6, 6, 9), labels, undefined, { updateState: false }).dispose();
    expect(ghm.stats()).toEqual(before);
    tf.dispose([labels, x]);
    ghm.dispose();
  });

  it('stats() is plain JSON; toJSON()/fromJSON() carries the EMA to a resumed run', () => {
    const labels = tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32');
    const a = seededLogits(6, 6, 10);
    const b = seededLogits(6, 6, 11);
    const ghm = new GHMSoftmax({ bins: 8, momentum: 0.9, lossWeight: 0.5 });
    ghm.loss(a, labels).dispose();
    const stats = ghm.stats();
    expect(JSON.parse(JSON.stringify(stats))).toEqual(stats);
    expect(stats.meanWeightPerBin).toEqual(stats.binWeights.map((w, i) => (stats.counts[i] > 0 ? w : 0)));
    const restored = GHMSoftmax.fromJSON(JSON.parse(JSON.stringify(ghm)));
    expect(restored.stats().accumulator).toEqual(stats.accumulator);
    expect(restored.loss(b, labels).dataSync()[0]).toBe(ghm.loss(b, labels).dataSync()[0]);
    expect(restored.stats().calls).toBe(2);
    // The running per-bin totals come along too, so a resumed run's meanWeightPerBin is the uninterrupted one's.
    expect(restored.stats().cumulativeCounts).toEqual(ghm.stats().cumulativeCounts);
    expect(restored.stats().meanWeightPerBin).toEqual(ghm.stats().meanWeightPerBin);
    expect(() => GHMSoftmax.fromJSON({ ...ghm.toJSON(), state: { accumulator: [1], calls: 0 } })).toThrow(/state.accumulator/);
    const badTotals = { ...ghm.toJSON().state, cumulativeCounts: [1, 2] };
    expect(() => GHMSoftmax.fromJSON({ ...ghm.toJSON(), state: badTotals })).toThrow(/state.cumulativeCounts/);
    tf.dispose([labels, a, b]);
    ghm.dispose();
    restored.dispose();
  });

  it('meanWeightPerBin averages the weights given over all calls since reset', () => {
    const ghm = new GHMC({ bins: 2 });
    // σ(0) = 0.5, so g = |0.5 − t|.
    // call 1: g = 0.25, 0.5, 0.5 → counts [1, 2], tot 3, n 2, weights 3/1/2 = 1.5, 3/2/2 = 0.75
    ghm.loss(tf.zeros([3]), tf.tensor1d([0.25, 1, 1])).dispose();
    // call 2: g = 0.25 → counts [1, 0], tot 1, n 1, weight 1/1/1 = 1
    ghm.loss(tf.zeros([1]), tf.tensor1d([0.75])).dispose();
    const s = ghm.stats();
    expect(s.cumulativeCounts).toEqual([2, 2]);
    expect(s.meanWeightPerBin[0]).toBeCloseTo((1.5 + 1) / 2, 6);
    expect(s.meanWeightPerBin[1]).toBeCloseTo(0.75, 6);
    ghm.dispose();
  });
});

describe('worked by hand', () => {
  it('GHMC with lossWeight 2: loss and gradient', () => {
    // logits 0, targets [0.25, 1, 1]: g = 0.25, 0.5, 0.5 (bins 2) → weights 1.5, 0.75, 0.75, tot 3.
    // BCE at a logit of 0 is ln 2 for any target, so loss = 2 · (1.5 + 0.75 + 0.75) · ln 2 / 3 = 2 ln 2;
    // ∂/∂x = 2 · w/3 · (σ(0) − t) = 2 · [0.5 · 0.25, 0.25 · (−0.5), 0.25 · (−0.5)] = [0.25, −0.25, −0.25].
    const ghm = new GHMC({ bins: 2, lossWeight: 2 });
    tf.tidy(() => {
      const got = gradOf((x) => ghm.loss(x, tf.tensor1d([0.25, 1, 1])), tf.zeros([3]));
      expect(got.loss).toBeCloseTo(2 * Math.LN2, 6);
      expect(Array.from(got.grad)).toEqual([0.25, -0.25, -0.25]);
    });
    expect(ghm.stats().binWeights).toEqual([1.5, 0.75]);
    ghm.dispose();
  });

  it('GHMR: weights 2 and 0 give tot = Σ weights and mask the zero', () => {
    // d = [0, 0.5, 3] with weights [2, 2, 0], μ = 0.02: g = 0, ≈0.9992, (masked). bins 2: counts [1, 1],
    // tot = max(2 + 2 + 0, 1) = 4, n 2 → weight 4/1/2 = 2 each. ASL1(0) = 0, ASL1(0.5) = sqrt(0.25 + 0.0004) − 0.02,
    // so loss = 2 · (sqrt(0.2504) − 0.02) / 4.
    const ghm = new GHMR({ bins: 2 });
    tf.tidy(() => {
      const loss = ghm.loss(tf.tensor1d([0, 0.5, 3]), tf.zeros([3]), tf.tensor1d([2, 2, 0])).dataSync()[0];
      expect(loss).toBeCloseTo((2 * (Math.sqrt(0.2504) - 0.02)) / 4, 6);
    });
    const s = ghm.stats();
    expect(s.total).toBe(4);
    expect(s.counts).toEqual([1, 1]);
    expect(s.binWeights).toEqual([2, 2]);
    ghm.dispose();
  });
});

describe('exact gradients at awkward points', () => {
  it('sigmoid BCE at a logit of exactly 0 has gradient σ(0) − t (worked by hand: ±0.5 / 2 elements)', () => {
    tf.tidy(() => {
      const got = gradOf((x) => sigmoidBinaryCrossEntropy(x, tf.tensor1d([0, 1])), tf.zeros([2]));
      expect(Array.from(got.grad)).toEqual([0.25, -0.25]);
      expect(got.loss).toBeCloseTo(Math.LN2, 6);
    });
  });

  it('GHMC and GHMR round-trip through toJSON/fromJSON and reject a foreign type', () => {
    const c = new GHMC({ momentum: 0.5, bins: 4 });
    const r = new GHMR({ momentum: 0.5, mu: 0.05 });
    tf.tidy(() => {
      c.loss(tf.tensor1d([0.3, -2, 4]), tf.tensor1d([1, 0, 1]));
      r.loss(tf.tensor1d([0.3, -2, 4]), tf.tensor1d([0.2, -2.5, 4]));
    });
    const c2 = GHMC.fromJSON(JSON.parse(JSON.stringify(c)));
    const r2 = GHMR.fromJSON(JSON.parse(JSON.stringify(r)));
    expect(c2.stats().accumulator).toEqual(c.stats().accumulator);
    expect(r2.toJSON()).toEqual(r.toJSON());
    expect(() => GHMC.fromJSON(r.toJSON() as never)).toThrow(/type/);
    for (const l of [c, r, c2, r2]) l.dispose();
  });
});

describe('input checks', () => {
  it('bad options and shapes throw errors that name the field', () => {
    expect(() => new GHMSoftmax({ bins: 0 })).toThrow(/bins/);
    expect(() => new GHMSoftmax({ momentum: 1 })).toThrow(/momentum/);
    expect(() => new GHMR({ mu: 0 })).toThrow(/mu/);
    tf.tidy(() => {
      const ghm = new GHMSoftmax();
      expect(() => ghm.loss(tf.zeros([4]) as unknown as tf.Tensor2D, tf.tensor1d([0, 1, 2, 3], 'int32'))).toThrow(/logits/);
      expect(() => ghm.loss(tf.zeros([4, 3]) as tf.Tensor2D, tf.tensor1d([0, 1], 'int32'))).toThrow(/labels/);
      expect(() => ghm.loss(tf.zeros([4, 3]) as tf.Tensor2D, tf.tensor1d([0, 1, 2, 0], 'int32'), tf.ones([3]) as tf.Tensor1D)).toThrow(/weights/);
      expect(() => new GHMC().loss(tf.zeros([4, 3]), tf.zeros([4, 2]))).toThrow(/targets/);
      expect(() => new GHMC().loss(tf.zeros([4, 3]), tf.tensor1d([0, 1, 2], 'int32'))).toThrow(/GHMC.loss: "targets" must hold 4 class ids/);
      expect(() => new GHMC().asLayersLoss({ from: 'scores' as 'probs' })).toThrow(/GHMC.asLayersLoss: option "from"/);
      expect(() => GHMR.fromJSON({ type: 'GHMC' } as never)).toThrow('GHMR.fromJSON: field "type" must be "GHMR"');
      expect(() => focalLoss(tf.zeros([2, 3]) as tf.Tensor2D, tf.tensor1d([0, 1], 'int32'), { alpha: [1, 2] })).toThrow(/alpha/);
      expect(() => ghm.asLayersLoss({ from: 'scores' as 'probs' })).toThrow(/from/);
    });
  });
});

describe('tensor leaks', () => {
  it('repeated loss + gradient calls keep tf.memory() flat; dispose() frees the state', () => {
    const labels = tf.tensor1d([0, 1, 2, 3, 4, 5, 0, 1], 'int32');
    const x = tf.variable(seededLogits(8, 6, 12)) as tf.Variable<tf.Rank.R2>;
    const pred = tf.variable(tf.randomNormal([8, 4], 0, 1, 'float32', 13));
    const target = tf.zeros([8, 4]);
    const binary = tf.cast(tf.greater(tf.randomUniform([8, 6], 0, 1, 'float32', 14), 0.5), 'float32');
    const start = tf.memory().numTensors;
    const soft = new GHMSoftmax();
    const ghmc = new GHMC({ momentum: 0.75 });
    const ghmr = new GHMR({ momentum: 0.75 });
    const losses = [soft, ghmc, ghmr];
    const step = () => {
      const { value, grads } = tf.variableGrads(() => soft.loss(x, labels), [x]);
      tf.dispose([value, grads[x.name]]);
      tf.tidy(() => {
        ghmc.loss(x, binary);
        tf.variableGrads(() => ghmr.loss(pred, target), [pred]);
        softmaxCrossEntropy(x, labels, { labelSmoothing: 0.1 });
        focalLoss(x, labels);
      });
      for (const l of losses) l.stats();
    };
    step();
    const afterFirst = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    expect(tf.memory().numTensors).toBe(afterFirst);
    // The only tensors kept between calls are the state variables (6 per loss).
    expect(afterFirst - start).toBe(18);
    for (const l of losses) l.dispose();
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([labels, x, pred, target, binary]);
  });
});
