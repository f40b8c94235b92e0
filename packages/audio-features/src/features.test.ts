import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { computeFeatures, DEFAULT_FEATURE_OPTIONS, normalizeInPlace, resizeBilinear } from './features';
import { featureMapToTensor, stackFeatureMaps } from './tensors';

/** A tone burst: `toneSeconds` of sine at `freq` (plus optional 2nd harmonic), then silence. */
function toneClip(freq: number, rate: number, seconds: number, toneSeconds = seconds, second = 0): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  const toneSamples = Math.round(rate * toneSeconds);
  for (let i = 0; i < toneSamples; i++) {
    const t = i / rate;
    out[i] = 0.5 * Math.sin(2 * Math.PI * freq * t) + second * Math.sin(2 * Math.PI * 2 * freq * t);
  }
  return out;
}

const mean = (values: ArrayLike<number>) => Array.from(values).reduce((a, b) => a + b, 0) / values.length;
const row = (data: Float32Array, width: number, r: number) => data.subarray(r * width, (r + 1) * width);
const column = (data: Float32Array, height: number, width: number, c: number) =>
  Float32Array.from({ length: height }, (_, r) => data[r * width + c]);

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('resizeBilinear', () => {
  it('matches values worked by hand (2x2 -> 4x4, half-pixel centres)', () => {
    // Source [[0, 4], [8, 12]]. Output pixel i maps to (i + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25,
    // clamped to 0, 0.25, 0.75, 1; along a row 0, 1, 3, 4 and down a column 0, 2, 6, 8.
    const out = resizeBilinear(Float32Array.from([0, 4, 8, 12]), 2, 2, 4, 4);
    expect(Array.from(out)).toEqual([0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12]);
  });

  it('agrees with tf.image.resizeBilinear(halfPixelCenters) when shrinking and growing', () => {
    const source = Float32Array.from({ length: 7 * 13 }, (_, i) => Math.sin(i * 0.7) * 10 + i * 0.1);
    for (const [h, w] of [
      [4, 5],
      [16, 31],
      [7, 13],
    ]) {
      const ours = resizeBilinear(source, 7, 13, h, w);
      const theirs = tf.tidy(() =>
        tf.image.resizeBilinear(tf.tensor3d(source, [7, 13, 1]), [h, w], false, true).dataSync(),
      );
      for (let i = 0; i < ours.length; i++) expect(ours[i]).toBeCloseTo(theirs[i], 4);
    }
  });
});

describe('computeFeatures', () => {
  it('documents defaults sized for 1–2 s tone clips', () => {
    expect(DEFAULT_FEATURE_OPTIONS).toMatchObject({ height: 64, width: 64, fftSize: 1024, hopSize: 256 });
    expect(Object.isFrozen(DEFAULT_FEATURE_OPTIONS)).toBe(true);
  });

  it('centres the band on the tone and normalises each example', () => {
    const map = computeFeatures(toneClip(1000, 16000, 1.25), 16000, 1000);
    expect(map.height).toBe(64);
    expect(map.width).toBe(64);
    expect(map.data.length).toBe(64 * 64);
    expect(mean(map.data)).toBeCloseTo(0, 4);
    expect(Math.sqrt(mean(map.data.map((v) => v * v)))).toBeCloseTo(1, 3);
    // The middle rows (the tone's bin) are the loudest in a mid-clip column, the edges the quietest.
    const mid = column(map.data, 64, 64, 32);
    const peakRow = mid.indexOf(Math.max(...mid));
    expect(Math.abs(peakRow - 31.5)).toBeLessThanOrEqual(1.5);
    expect(mid[peakRow] - mid[0]).toBeGreaterThan(2);
  });

  it('a band crop follows the tone argument: the wrong tone sees only the floor', () => {
    const clip = toneClip(1000, 16000, 1.25);
    const right = computeFeatures(clip, 16000, 1000, { normalization: 'none' });
    const wrong = computeFeatures(clip, 16000, 3000, { normalization: 'none' });
    // the clip's peak (0 dB) is in the band; resizing 39 rows to 64 blends it with its −6 dB neighbours
    expect(Math.max(...right.data)).toBeGreaterThan(-3);
    expect(Math.max(...wrong.data)).toBeLessThan(-50); // only the clicks of the abrupt start and end
  });

  it('pads missing time with the floor: a 0.5 s clip leaves the last columns flat', () => {
    const map = computeFeatures(toneClip(500, 16000, 0.5), 16000, 500, { normalization: 'none', floorDb: -70 });
    const lastColumn = column(map.data, 64, 64, 63);
    expect(new Set(lastColumn)).toEqual(new Set([-70]));
    expect(Math.max(...column(map.data, 64, 64, 10))).toBeGreaterThan(-3);
  });

  it('crops time: startSeconds skips the tone burst at the start', () => {
    const clip = toneClip(1000, 16000, 2, 0.5);
    const fromStart = computeFeatures(clip, 16000, 1000, { normalization: 'none', durationSeconds: 0.5 });
    const later = computeFeatures(clip, 16000, 1000, { normalization: 'none', startSeconds: 1, durationSeconds: 0.5 });
    expect(mean(row(fromStart.data, 64, 32))).toBeGreaterThan(-10);
    expect(Math.max(...later.data)).toBe(-80);
  });

  it('stacks harmonic bands low to high', () => {
    const withSecond = computeFeatures(toneClip(1000, 16000, 1.25, 1.25, 0.5), 16000, 1000, { harmonics: 2, normalization: 'none' });
    const without = computeFeatures(toneClip(1000, 16000, 1.25), 16000, 1000, { harmonics: 2, normalization: 'none' });
    const upperCentre = mean(row(withSecond.data, 64, 48));
    expect(upperCentre).toBeGreaterThan(-10);
    expect(mean(row(without.data, 64, 48))).toBeLessThan(-60);
    // The lower band is the fundamental in both.
    expect(mean(row(without.data, 64, 16))).toBeGreaterThan(-10);
  });

  it('maps bands in Hz: 16 kHz / N=512 and 32 kHz / N=1024 (same bin width and frame length) agree', () => {
    const a = computeFeatures(toneClip(1000, 16000, 1.25, 1), 16000, 1000, { fftSize: 512, hopSize: 128 });
    const b = computeFeatures(toneClip(1000, 32000, 1.25, 1), 32000, 1000, { fftSize: 1024, hopSize: 256 });
    let dot = 0;
    for (let i = 0; i < a.data.length; i++) dot += a.data[i] * b.data[i];
    expect(dot / a.data.length).toBeGreaterThan(0.95); // correlation of two standardised maps
    // while the 48 kHz clip with the same fftSize sees a tone three times narrower in rows
    const c = computeFeatures(toneClip(1000, 48000, 1.25, 1), 48000, 1000, { fftSize: 512, hopSize: 128 });
    let dotC = 0;
    for (let i = 0; i < a.data.length; i++) dotC += a.data[i] * c.data[i];
    expect(dotC / a.data.length).toBeLessThan(0.9);
  });

  it('rejects bad options and tones naming the field', () => {
    const clip = toneClip(1000, 16000, 0.2);
    expect(() => computeFeatures(clip, 16000, 9000)).toThrow(/toneHz must be between 0 and the Nyquist frequency 8000 Hz/);
    expect(() => computeFeatures(clip, 16000, 1000, { height: 0 })).toThrow(/height must be a positive integer/);
    expect(() => computeFeatures(clip, 16000, 1000, { fftSize: 1000 })).toThrow(/fftSize must be a power of two/);
    expect(() => computeFeatures(clip, 16000, 1000, { normalization: 'l2' as 'none' })).toThrow(/normalization must be one of/);
    expect(() => computeFeatures(clip, 16000, 1000, { hieght: 3 } as never)).toThrow(/unknown option 'hieght'/);
  });

  it('normalizeInPlace: minmax to [0, 1], constant maps to zeros', () => {
    expect(Array.from(normalizeInPlace(Float32Array.from([2, 4, 6]), 'minmax'))).toEqual([0, 0.5, 1]);
    expect(Array.from(normalizeInPlace(Float32Array.from([3, 3]), 'standardize'))).toEqual([0, 0]);
  });
});

describe('tensors', () => {
  it('featureMapToTensor and stackFeatureMaps give [H, W, 1] and [N, H, W, 1] without leaks', () => {
    const before = tf.memory().numTensors;
    const a = { data: Float32Array.from([1, 2, 3, 4, 5, 6]), height: 2, width: 3 };
    const b = { data: Float32Array.from([7, 8, 9, 10, 11, 12]), height: 2, width: 3 };
    const single = featureMapToTensor(a);
    expect(single.shape).toEqual([2, 3, 1]);
    expect(Array.from(single.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    const batch = stackFeatureMaps([a, b]);
    expect(batch.shape).toEqual([2, 2, 3, 1]);
    expect(Array.from(batch.dataSync()).slice(6)).toEqual([7, 8, 9, 10, 11, 12]);
    single.dispose();
    batch.dispose();
    expect(() => stackFeatureMaps([a, { data: new Float32Array(4), height: 2, width: 2 }])).toThrow(/map 1 is 2×2, map 0 is 2×3/);
    expect(() => stackFeatureMaps([])).toThrow(/no feature maps/);
    expect(() => featureMapToTensor({ data: new Float32Array(5), height: 2, width: 3 })).toThrow(/5 values, expected 2×3/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
