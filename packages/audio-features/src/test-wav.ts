import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeWav } from './wav';

/** Test helper (not exported by the package): writes a 16-bit mono WAV of a sine. */
export async function writeToneWav(
  path: string,
  opts: { freqHz: number; sampleRate?: number; seconds?: number; amplitude?: number; phase?: number },
) {
  const { freqHz, sampleRate = 16000, seconds = 0.25, amplitude = 0.5, phase = 0 } = opts;
  const samples = new Float32Array(Math.round(sampleRate * seconds));
  for (let i = 0; i < samples.length; i++) samples[i] = amplitude * Math.sin((2 * Math.PI * freqHz * i) / sampleRate + phase);
  await mkdir(dirname(path), { recursive: true });
  await writeWav(path, { sampleRate, channels: [samples] });
}
