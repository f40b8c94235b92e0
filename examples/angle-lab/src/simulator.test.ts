import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_SIMULATION,
  drawRoom,
  simulateDataset,
  simulateTake,
  takePath,
  type SimulationPhysics,
  type TakeParams,
} from './simulator';
import { besselJ1, reflectorPath, type SetupGeometry } from './simulator-physics';
import { deriveSeed, mulberry32 } from './simulator-rng';

const require = createRequire(import.meta.url);
const { WaveFile } = require('wavefile') as typeof import('wavefile');

const temps: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'angle-lab-sim-'));
  temps.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

const physics = DEFAULT_SIMULATION.physics;
const room = drawRoom(physics, DEFAULT_SIMULATION.seed);

function takeParams(frequencyHz: number, angleDeg: number, over: Partial<TakeParams> = {}): TakeParams {
  return {
    material: DEFAULT_SIMULATION.materialModels.plastic,
    frequencyHz,
    angleDeg,
    sampleRate: 16000,
    durationS: 1.5,
    physics,
    room,
    ...over,
  };
}

/** |DFT| of a Hann-windowed segment at one frequency (a single-bin DFT, evaluated directly). */
function toneMagnitude(x: Float32Array, sampleRate: number, frequencyHz: number): number {
  let re = 0;
  let im = 0;
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1));
    const phase = (2 * Math.PI * frequencyHz * i) / sampleRate;
    re += x[i] * w * Math.cos(phase);
    im -= x[i] * w * Math.sin(phase);
  }
  return Math.hypot(re, im);
}

function steadyLevelDb(x: Float32Array, sampleRate: number): number {
  // 0.3–0.9 s lies inside the tone (0.1–1.1 s) after every path and the reverberation built up.
  const a = Math.round(0.3 * sampleRate);
  const b = Math.round(0.9 * sampleRate);
  let sum = 0;
  for (let i = a; i < b; i++) sum += x[i] * x[i];
  return 10 * Math.log10(sum / (b - a));
}

describe('simulateDataset', () => {
  const subset = { materials: ['plastic', 'box'], frequenciesHz: [1000], anglesDeg: [0, 72], takes: 2 };

  it('writes the lab layout as 16-bit mono WAV files, atomically', async () => {
    const root = await tempDir();
    const result = await simulateDataset({ root, ...subset });
    expect(result.files).toBe(8);
    expect(result.root).toBe(root);
    expect(result.seconds).toBeGreaterThan(0);
    const files = await listFiles(root);
    expect(files).toEqual(
      [
        'box/1000Hz/deg000/take01.wav',
        'box/1000Hz/deg000/take02.wav',
        'box/1000Hz/deg072/take01.wav',
        'box/1000Hz/deg072/take02.wav',
        'plastic/1000Hz/deg000/take01.wav',
        'plastic/1000Hz/deg000/take02.wav',
        'plastic/1000Hz/deg072/take01.wav',
        'plastic/1000Hz/deg072/take02.wav',
        'simulation.json',
      ].sort(),
    );
    const wav = new WaveFile(await readFile(join(root, 'plastic/1000Hz/deg072/take02.wav')));
    const fmt = wav.fmt as { numChannels: number; sampleRate: number; bitsPerSample: number; audioFormat: number };
    expect(fmt).toMatchObject({ numChannels: 1, sampleRate: 16000, bitsPerSample: 16, audioFormat: 1 });
    const samples = wav.getSamples(false, Int16Array) as unknown as Int16Array;
    expect(samples.length).toBe(24000);
    expect(Math.max(...samples.map(Math.abs))).toBeGreaterThan(1000);
    const manifest = JSON.parse(await readFile(join(root, 'simulation.json'), 'utf8'));
    expect(manifest).toMatchObject({ seed: DEFAULT_SIMULATION.seed, takes: 2, sampleRate: 16000 });
  });

  it('gives byte-identical files for the same seed, different ones for another seed, and subsets that match', async () => {
    const [a, b, c, d] = await Promise.all([tempDir(), tempDir(), tempDir(), tempDir()]);
    await simulateDataset({ root: a, ...subset });
    await simulateDataset({ root: b, ...subset });
    await simulateDataset({ root: c, ...subset, seed: 7 });
    await simulateDataset({ root: d, materials: ['box'], frequenciesHz: [1000], anglesDeg: [72], takes: 1 });
    for (const file of (await listFiles(a)).filter((f) => f.endsWith('.wav'))) {
      const bytesA = await readFile(join(a, file));
      expect(Buffer.compare(bytesA, await readFile(join(b, file))), file).toBe(0);
      expect(Buffer.compare(bytesA, await readFile(join(c, file))), file).not.toBe(0);
    }
    const one = takePath('box', 1000, 72, 1);
    expect(Buffer.compare(await readFile(join(a, one)), await readFile(join(d, one)))).toBe(0);
  });

  it('rejects bad options with errors that name the field', async () => {
    const root = await tempDir();
    await expect(simulateDataset({ root, materials: ['glass'] })).rejects.toThrow(/materials: unknown material "glass"/);
    await expect(simulateDataset({ root, frequenciesHz: [9000] })).rejects.toThrow(/frequenciesHz/);
    await expect(simulateDataset({ root, anglesDeg: [12.5] })).rejects.toThrow(/anglesDeg/);
    await expect(simulateDataset({ root, takes: 0 })).rejects.toThrow(/takes/);
    expect(await listFiles(root)).toEqual([]);
  });
});

describe('simulateTake', () => {
  it('is a pure function of its parameters and generator seed', () => {
    const x = simulateTake(takeParams(1000, 36), mulberry32(deriveSeed(1, 'a')));
    const y = simulateTake(takeParams(1000, 36), mulberry32(deriveSeed(1, 'a')));
    const z = simulateTake(takeParams(1000, 36), mulberry32(deriveSeed(1, 'b')));
    expect(Buffer.compare(Buffer.from(x.buffer), Buffer.from(y.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(x.buffer), Buffer.from(z.buffer))).not.toBe(0);
  });

  it.each([500, 1000, 3000])('puts the %i Hz tone in the spectrum, far above everything else', (frequencyHz) => {
    const x = simulateTake(takeParams(frequencyHz, 0), mulberry32(3));
    const steady = x.subarray(Math.round(0.3 * 16000), Math.round(1.0 * 16000));
    // The take's frequency is jittered by ~0.2 %: find the peak within ±1 %.
    let peak = 0;
    let peakHz = 0;
    for (let f = frequencyHz * 0.99; f <= frequencyHz * 1.01; f += 0.5) {
      const m = toneMagnitude(steady, 16000, f);
      if (m > peak) [peak, peakHz] = [m, f];
    }
    expect(Math.abs(peakHz / frequencyHz - 1)).toBeLessThan(0.008);
    for (const other of [0.5, 0.8, 1.25, 2, 2.5].map((r) => r * frequencyHz)) {
      expect(20 * Math.log10(peak / toneMagnitude(steady, 16000, other)), `${other} Hz`).toBeGreaterThan(30);
    }
    // Before the tone starts only the background noise is there.
    const silence = x.subarray(0, Math.round(0.09 * 16000));
    const rms = Math.sqrt(silence.reduce((s, v) => s + v * v, 0) / silence.length);
    expect(rms / physics.noiseRms).toBeGreaterThan(0.9);
    expect(rms / physics.noiseRms).toBeLessThan(1.1);
  });

  describe('direct path against geometry worked by hand', () => {
    // Only the direct sound: no reflector face, no floor, no reverberation, no noise, no jitter.
    const quiet: SimulationPhysics = {
      ...physics,
      tone: { ...physics.tone, amplitude: 0.1, clockOffsetRel: 0 },
      setup: { ...physics.setup, speaker: [0, 0, 0], speakerAxis: [0, 1, 0], floorZ: null, barrierPathDifferenceM: 0 },
      room: { ...physics.room, level: 0 },
      noiseRms: 0,
      jitter: { speakerM: 0, micM: 0, turntableM: 0, angleDeg: 0, levelDb: 0, frequencyRel: 0 },
    };
    const noFace = { widthM: 0, heightM: 0, absorption: [{ frequencyHz: 1000, alpha: 0 }] };
    /** Peak amplitude of the steady tone: RMS·√2 over 0.3–0.9 s (600 whole periods of 1 kHz). */
    const steadyAmplitude = (x: Float32Array) => Math.sqrt(2 * 10 ** (steadyLevelDb(x, 16000) / 10));

    it('on axis at 0.686 m: 2.000 ms delay (32 samples at 16 kHz) and amplitude 0.1/0.686', () => {
      const p: SimulationPhysics = { ...quiet, setup: { ...quiet.setup, mic: [0, 0.686, 0] } };
      const x = simulateTake(takeParams(1000, 0, { physics: p, material: noFace, room: drawRoom(p, 1) }), mulberry32(1));
      // The tone starts at the 0.1 s lead-in = sample 1600; it reaches the mic 0.686/343 s later.
      expect(x.subarray(0, 1632).every((v) => v === 0)).toBe(true);
      expect(Math.abs(x[1632])).toBeLessThan(1e-6);
      expect(x.subarray(1633, 1640).some((v) => v !== 0)).toBe(true);
      expect(steadyAmplitude(x)).toBeCloseTo(0.1 / 0.686, 4); // 0.145773
      // …and it stops 1 s later: sample 1632 + 16000.
      expect(x.subarray(17633, 17700).every((v) => v === 0)).toBe(true);
      expect(x.subarray(17600, 17630).some((v) => v !== 0)).toBe(true);
    });

    it('at 90° off the speaker axis the piston directivity 2·J1(ka)/ka applies', () => {
      // k = 2π·1000/343 = 18.3183 /m, a = 0.05 m → ka = 0.91592.
      // J1(x) = x/2 − x³/16 + x⁵/384 − x⁷/18432 + … = 0.457958 − 0.048024 + 0.001679 − 0.000029
      //       = 0.411584 → 2·J1(ka)/ka = 0.89873 → amplitude 0.1 · 0.89873 / 0.686 = 0.131010.
      expect(besselJ1(0.91592)).toBeCloseTo(0.411584, 5);
      const p: SimulationPhysics = { ...quiet, setup: { ...quiet.setup, mic: [0.686, 0, 0], pistonRadiusM: 0.05 } };
      const x = simulateTake(takeParams(1000, 0, { physics: p, material: noFace, room: drawRoom(p, 1) }), mulberry32(1));
      expect(steadyAmplitude(x)).toBeCloseTo(0.13101, 4);
    });
  });

  it('a large plate reflects like the image source R/(r1 + r2), with the image-source phase', () => {
    // Speaker (0,0,0), mic (0.5,0,0), plate centre (0.25,1,0) facing them: the image path is
    // 2·√(0.25² + 1²) = 2.06155 m; α = 0.19 → R = 0.9 → |p| = 0.9 / 2.06155 = 0.43656.
    const geometry: SetupGeometry = {
      speaker: [0, 0, 0],
      speakerAxis: [0, 1, 0],
      pistonRadiusM: 0,
      mic: [0.5, 0, 0],
      turntable: [0.25, 1, 0],
      reflectorAngleDeg: 0,
      mountAlongM: 0,
      mountNormalM: 0,
      floorZ: null,
      floorReflection: 0,
      barrierPathDifferenceM: 0,
    };
    const plate = { widthM: 8, heightM: 8, absorption: [{ frequencyHz: 1000, alpha: 0.19 }] };
    const path = reflectorPath(geometry, plate, 3000, 343);
    const k = (2 * Math.PI * 3000) / 343;
    expect(path.lengthM).toBeCloseTo(2.06155, 5);
    expect(Math.hypot(path.gain.re, path.gain.im) / 0.43656).toBeCloseTo(1, 1);
    expect(Math.abs(Math.hypot(path.gain.re, path.gain.im) / 0.43656 - 1)).toBeLessThan(0.02);
    const phaseError = Math.atan2(path.gain.im, path.gain.re) + k * 2.06155;
    expect(Math.abs(Math.atan2(Math.sin(phaseError), Math.cos(phaseError)))).toBeLessThan(0.05);
    // A 0.4 m × 0.3 m plate turned by 45° sends its specular reflection away from the microphone:
    // only a side lobe (kW/2·(sin β₁ + sin β₂) ≈ 15 rad → |sinc| < 0.07) reaches it.
    const small = { ...plate, widthM: 0.4, heightM: 0.3 };
    const facing = reflectorPath(geometry, small, 3000, 343);
    const turned = reflectorPath({ ...geometry, reflectorAngleDeg: 45 }, small, 3000, 343);
    expect(Math.hypot(turned.gain.re, turned.gain.im)).toBeLessThan(0.15 * Math.hypot(facing.gain.re, facing.gain.im));
  });

  it('high frequencies are more sensitive to the position jitter than low ones', () => {
    // Spread across takes (SD of the steady level in dB), averaged over the six angles.
    const spread = (frequencyHz: number, p: SimulationPhysics): number => {
      let total = 0;
      for (const angleDeg of DEFAULT_SIMULATION.anglesDeg) {
        const levels = Array.from({ length: 10 }, (_, take) =>
          steadyLevelDb(
            simulateTake(takeParams(frequencyHz, angleDeg, { physics: p }), mulberry32(deriveSeed('jitter', angleDeg, take))),
            16000,
          ),
        );
        const mean = levels.reduce((s, v) => s + v, 0) / levels.length;
        total += Math.sqrt(levels.reduce((s, v) => s + (v - mean) ** 2, 0) / (levels.length - 1));
      }
      return total / DEFAULT_SIMULATION.anglesDeg.length;
    };
    // Positions only (no level, frequency or angle jitter), then the defaults.
    const positionsOnly: SimulationPhysics = {
      ...physics,
      jitter: { ...physics.jitter, levelDb: 0, frequencyRel: 0, angleDeg: 0 },
    };
    const low = spread(500, positionsOnly);
    const high = spread(3000, positionsOnly);
    expect(high).toBeGreaterThan(4 * low);
    expect(spread(3000, physics)).toBeGreaterThan(1.5 * spread(500, physics));
  });
});
