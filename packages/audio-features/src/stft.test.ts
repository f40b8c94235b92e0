import { readFileSync } from 'node:fs';
import Meyda from 'meyda';
import { describe, expect, it } from 'vitest';
import { frameCount, stft, toDecibels, toPower, type WindowName } from './stft';

interface Fixture {
  sampleRate: number;
  fftSize: number;
  hopSize: number;
  signal: number[];
  cases: Array<{ window: WindowName; center: boolean; frames: number; bins: number; magnitude: number[] }>;
}
// Written by fixtures/make_stft_fixture.py (numpy.fft.rfft of the same windowed frames).
const fixture: Fixture = JSON.parse(readFileSync(new URL('../fixtures/stft_fixture.json', import.meta.url), 'utf8'));

function sine(freq: number, rate: number, length: number, amplitude = 1): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

describe('stft', () => {
  const signal = Float32Array.from(fixture.signal);
  const worstRelativeError = (data: Float32Array, reference: number[]) => {
    const peak = Math.max(...reference);
    let worst = 0;
    for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(data[i] - reference[i]));
    return worst / peak;
  };
  const run = (window: WindowName, center: boolean) =>
    stft(signal, { sampleRate: fixture.sampleRate, fftSize: fixture.fftSize, hopSize: fixture.hopSize, window, center });

  it.each(fixture.cases.map((c) => [`${c.window} center=${c.center}`, c] as const))(
    'matches numpy.fft.rfft magnitudes: %s',
    (_label, reference) => {
      const spec = run(reference.window, reference.center);
      expect(spec.frames).toBe(reference.frames);
      expect(spec.bins).toBe(reference.bins);
      expect(spec.data.length).toBe(reference.magnitude.length);
      // float32 windows and output: ~3e-6 of the peak measured
      expect(worstRelativeError(spec.data, reference.magnitude)).toBeLessThan(1e-5);
    },
  );

  it('the comparison can fail: a neighbouring window or framing misses the reference', () => {
    const hamming = fixture.cases.find((c) => c.window === 'hamming')!;
    expect(worstRelativeError(run('hanning', true).data, hamming.magnitude)).toBeGreaterThan(1e-2);
    const uncentred = fixture.cases.find((c) => c.window === 'hanning' && !c.center)!;
    expect(worstRelativeError(run('hanning', true).data, uncentred.magnitude)).toBeGreaterThan(1e-2);
  });

  it('puts a sine at its bin, with bin frequencies and centred frame times', () => {
    // 1000 Hz at 16 kHz with N = 512: bin spacing 31.25 Hz, so the tone sits exactly on bin 32.
    const spec = stft(sine(1000, 16000, 16000), { sampleRate: 16000, fftSize: 512, hopSize: 128 });
    expect(spec.bins).toBe(256);
    expect(spec.frames).toBe(1 + Math.floor(16000 / 128));
    expect(spec.binHz[32]).toBe(1000);
    expect(spec.binHz[255]).toBe(7968.75);
    expect(spec.frameTimes[0]).toBe(0);
    expect(spec.frameTimes[10]).toBeCloseTo((10 * 128) / 16000, 7);
    const t = 60;
    const row = spec.data.subarray(t * spec.bins, (t + 1) * spec.bins);
    expect(row.indexOf(Math.max(...row))).toBe(32);
    // A unit sine under a Hann window peaks at sum(w)/2 = (N-1)/4.
    expect(row[32]).toBeCloseTo(511 / 4, 1);
  });

  it('without centring, frames start at t·hop and their times are frame centres', () => {
    const spec = stft(sine(1000, 16000, 1000), { sampleRate: 16000, fftSize: 256, hopSize: 100, center: false });
    expect(spec.frames).toBe(1 + Math.floor((1000 - 256) / 100));
    expect(spec.frameTimes[0]).toBeCloseTo(128 / 16000, 7);
    expect(frameCount(255, 256, 100, false)).toBe(0);
    expect(() => stft(new Float32Array(255), { sampleRate: 16000, fftSize: 256, hopSize: 100, center: false })).toThrow(
      /255 samples is too short/,
    );
  });

  it('resets the Meyda singleton on every call', () => {
    const x = sine(1000, 16000, 4096);
    const first = stft(x, { sampleRate: 16000, fftSize: 1024, hopSize: 512 });
    Meyda.bufferSize = 64;
    (Meyda as { windowingFunction: string }).windowingFunction = 'rect';
    stft(x, { sampleRate: 8000, fftSize: 256, hopSize: 64, window: 'blackman' });
    const again = stft(x, { sampleRate: 16000, fftSize: 1024, hopSize: 512 });
    expect(Array.from(again.data)).toEqual(Array.from(first.data));
  });

  it('rejects bad options with the field name', () => {
    const x = new Float32Array(4096);
    expect(() => stft(x, { sampleRate: 16000, fftSize: 1000, hopSize: 256 })).toThrow(
      'stft: fftSize must be a power of two (e.g. 512, 1024, 2048), got 1000',
    );
    expect(() => stft(x, { sampleRate: 16000, fftSize: 1024, hopSize: 0 })).toThrow(/hopSize must be a positive integer/);
    expect(() => stft(x, { sampleRate: 0, fftSize: 1024, hopSize: 256 })).toThrow(/sampleRate must be a positive/);
    expect(() => stft(x, { sampleRate: 16000, fftSize: 1024, hopSize: 256, window: 'kaiser' as WindowName })).toThrow(
      /window must be one of hanning, hamming, blackman, sine, rect/,
    );
    const bad = new Float32Array(2048);
    bad[7] = Number.NaN;
    expect(() => stft(bad, { sampleRate: 16000, fftSize: 1024, hopSize: 256 })).toThrow(/non-finite value NaN at sample 7/);
  });
});

describe('power and decibel views', () => {
  const spec = stft(sine(1000, 16000, 2048, 0.5), { sampleRate: 16000, fftSize: 512, hopSize: 256 });

  it('toPower squares magnitudes and refuses to square twice', () => {
    const power = toPower(spec);
    expect(power.scale).toBe('power');
    expect(power.data[600]).toBeCloseTo(spec.data[600] ** 2, 2);
    expect(() => toPower(power)).toThrow(/expected a magnitude spectrogram/);
  });

  it('toDecibels: 20·log10(mag/ref), floor, ref max; power gives the same dB', () => {
    const db = toDecibels(spec);
    const i = 4 * spec.bins + 32;
    expect(db.data[i]).toBeCloseTo(20 * Math.log10(spec.data[i]), 4);
    const relative = toDecibels(spec, { ref: 'max', floorDb: -60 });
    expect(Math.max(...relative.data)).toBeCloseTo(0, 5);
    expect(Math.min(...relative.data)).toBe(-60);
    const fromPower = toDecibels(toPower(spec), { ref: 'max', floorDb: -60 });
    expect(fromPower.data[i]).toBeCloseTo(relative.data[i], 3);
    expect(() => toDecibels(db)).toThrow(/already in dB/);
    expect(() => toDecibels(spec, { ref: -1 })).toThrow(/ref must be a positive number or 'max'/);
  });

  it('silence in dB is the floor, never -Infinity or NaN', () => {
    const silent = stft(new Float32Array(1024), { sampleRate: 8000, fftSize: 256, hopSize: 128 });
    expect(new Set(toDecibels(silent, { ref: 'max', floorDb: -80 }).data)).toEqual(new Set([-80]));
    expect(new Set(toDecibels(silent).data)).toEqual(new Set([-120]));
  });
});
