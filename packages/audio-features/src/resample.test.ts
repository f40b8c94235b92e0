import { describe, expect, it } from 'vitest';
import { resample } from './resample';

function sine(freq: number, rate: number, seconds: number, amplitude = 0.5): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

/** Amplitude of the component at `freq` (a single DFT bin over the middle of the signal). */
function amplitudeAt(signal: Float32Array, rate: number, freq: number): number {
  const start = Math.floor(signal.length / 4);
  const end = Math.floor((3 * signal.length) / 4);
  let re = 0;
  let im = 0;
  for (let i = start; i < end; i++) {
    re += signal[i] * Math.cos((2 * Math.PI * freq * i) / rate);
    im += signal[i] * Math.sin((2 * Math.PI * freq * i) / rate);
  }
  return (2 * Math.hypot(re, im)) / (end - start);
}

/** Frequency from the interval between the first and last rising zero crossing (interpolated). */
function zeroCrossingFrequency(signal: Float32Array, rate: number): number {
  const crossings: number[] = [];
  for (let i = 100; i < signal.length - 100; i++) {
    if (signal[i - 1] < 0 && signal[i] >= 0) crossings.push(i - 1 + -signal[i - 1] / (signal[i] - signal[i - 1]));
  }
  return ((crossings.length - 1) * rate) / (crossings[crossings.length - 1] - crossings[0]);
}

function rms(signal: Float32Array): number {
  let sum = 0;
  for (let i = 200; i < signal.length - 200; i++) sum += signal[i] ** 2;
  return Math.sqrt(sum / (signal.length - 400));
}

describe('resample', () => {
  it('keeps a sine at its frequency and level when downsampling 48 kHz -> 16 kHz', () => {
    const out = resample(sine(1000, 48000, 0.25), 48000, 16000);
    expect(out.length).toBe(4000);
    expect(zeroCrossingFrequency(out, 16000)).toBeCloseTo(1000, 2);
    expect(amplitudeAt(out, 16000, 1000)).toBeCloseTo(0.5, 2);
  });

  it('keeps a sine when upsampling 16 kHz -> 44.1 kHz', () => {
    const out = resample(sine(3000, 16000, 0.25), 16000, 44100);
    expect(out.length).toBe(11025);
    expect(zeroCrossingFrequency(out, 44100)).toBeCloseTo(3000, 2);
    expect(amplitudeAt(out, 44100, 3000)).toBeCloseTo(0.5, 2);
  });

  it('attenuates a tone above the new Nyquist instead of aliasing it', () => {
    // 11 kHz sampled at 16 kHz would fold to 5 kHz; a naive decimator keeps it at full level.
    const input = sine(11000, 48000, 0.25);
    const naive = input.filter((_, i) => i % 3 === 0);
    expect(amplitudeAt(naive, 16000, 5000)).toBeGreaterThan(0.45);
    const out = resample(input, 48000, 16000);
    expect(amplitudeAt(out, 16000, 5000)).toBeLessThan(0.5e-4); // < -80 dB
    expect(rms(out)).toBeLessThan(0.35e-4);
    // just above the new Nyquist (8.5 kHz would fold to 7.5 kHz) still loses more than 80 dB
    expect(rms(resample(sine(8500, 48000, 0.25), 48000, 16000))).toBeLessThan(0.35e-4);
    // while 7 kHz (0.875 x the new Nyquist) passes at full level
    expect(amplitudeAt(resample(sine(7000, 48000, 0.25), 48000, 16000), 16000, 7000)).toBeCloseTo(0.5, 3);
  });

  it('returns a copy for equal rates and rejects bad rates', () => {
    const input = sine(440, 8000, 0.01);
    const out = resample(input, 8000, 8000);
    expect(out).not.toBe(input);
    expect(Array.from(out)).toEqual(Array.from(input));
    expect(() => resample(input, 8000, 0)).toThrow(/toRate must be a positive integer/);
    expect(() => resample(input, 44100.5, 8000)).toThrow(/fromRate must be a positive integer/);
  });
});
