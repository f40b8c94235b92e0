/**
 * The default data: a deterministic simulator of the lab's recordings.
 *
 * A speaker plays a tone, a flat reflector stands on a turntable at an angle, a microphone records
 * direct sound + reflector + floor + room reverberation + background noise, with per-take jitter.
 * Files follow the lab's layout `<root>/<material>/<freq>Hz/deg<angle>/take<NN>.wav`.
 * Physics, formulas and parameters: README.md, "The simulator: physics and parameters".
 */
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import {
  accumulateBaseband,
  drawRoomEchoes,
  propagationPaths,
  type MaterialModel,
  type PropagationPath,
  type RoomEchoes,
  type SetupGeometry,
  type Vec3,
} from './simulator-physics';
import { writeFileAtomic } from '@lab/experiment-runner';
import { deriveSeed, gaussian, mulberry32, type UniformRandom } from './simulator-rng';

// wavefile ships CommonJS for Node (its ESM entry is only for bundlers), so load it through require.
const require = createRequire(import.meta.url);
const { WaveFile } = require('wavefile') as typeof import('wavefile');

export interface SimulationPhysics {
  speedOfSoundMps: number;
  tone: {
    /** Silence recorded before the tone starts (s). */
    leadInS: number;
    /** Tone length including ramps (s). */
    lengthS: number;
    /** Raised-cosine onset and offset ramp length (s). */
    rampS: number;
    /** Output amplitude (full scale = 1) of the direct sound at 1 m on the speaker's axis. */
    amplitude: number;
    /**
     * Fixed relative error of the played frequency as recorded (playback and recording clocks
     * differ; sound cards are specified to ±20–50 ppm). The same for every take.
     */
    clockOffsetRel: number;
  };
  /** Nominal positions (m): x to the right, y from the array toward the reflector, z up. */
  setup: Omit<SetupGeometry, 'reflectorAngleDeg'>;
  room: {
    /** Reverberation time (s): the late reverberation decays by 60 dB in this time. */
    t60S: number;
    /** RMS reverberant pressure in steady state, relative to the direct sound at 1 m on axis. */
    level: number;
    /** Number of discrete echoes representing the late reverberation. */
    echoes: number;
    /** First and last echo time after emission (s). */
    startS: number;
    lengthS: number;
  };
  /** RMS of white Gaussian background noise, full scale = 1. */
  noiseRms: number;
  /** Standard deviations of the per-take jitter. */
  jitter: {
    speakerM: number;
    micM: number;
    /** Where the turntable (and so the reflector) stands, in the horizontal plane. */
    turntableM: number;
    /** How precisely the turntable is set to the nominal angle. */
    angleDeg: number;
    /** Speaker level from take to take (dB). */
    levelDb: number;
    /** Take-to-take drift of the relative tone frequency (clock drift; 1e-6 = 1 ppm). */
    frequencyRel: number;
  };
}

export interface SimulationConfig {
  seed: number;
  materials: string[];
  frequenciesHz: number[];
  anglesDeg: number[];
  takes: number;
  sampleRate: number;
  durationS: number;
  physics: SimulationPhysics;
  materialModels: Record<string, MaterialModel>;
}

/** Everything one take needs; `room` is shared by all takes of a data set (same room). */
export interface TakeParams {
  material: MaterialModel;
  frequencyHz: number;
  angleDeg: number;
  sampleRate: number;
  durationS: number;
  physics: SimulationPhysics;
  room: RoomEchoes;
}

/** Frozen all the way down, so that no caller can change the defaults for everyone else. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Rate of the complex-baseband grid on which the reverberation is convolved with the envelope. */
const BASEBAND_RATE_HZ = 1000;

export const DEFAULT_SIMULATION: Readonly<SimulationConfig> = deepFreeze<SimulationConfig>({
  seed: 20240601,
  materials: ['plastic', 'box'],
  frequenciesHz: [500, 1000, 3000],
  anglesDeg: [0, 36, 72, 108, 144, 180],
  takes: 9,
  sampleRate: 16000,
  durationS: 1.5,
  physics: {
    speedOfSoundMps: 343,
    tone: { leadInS: 0.1, lengthS: 1.0, rampS: 0.02, amplitude: 0.25, clockOffsetRel: 2e-5 },
    setup: {
      speaker: [0, 0, 0],
      speakerAxis: [0, 1, 0],
      pistonRadiusM: 0.05,
      mic: [0.5, 0, 0],
      turntable: [0.25, 0.5, 0],
      mountAlongM: 0.2,
      mountNormalM: 0.04,
      floorZ: -1.0,
      floorReflection: 0.9,
      barrierPathDifferenceM: 0.05,
    },
    room: { t60S: 0.3, level: 0.5, echoes: 1500, startS: 0.01, lengthS: 0.4 },
    noiseRms: 0.00025,
    jitter: {
      speakerM: 0.003,
      micM: 0.003,
      turntableM: 0.01,
      angleDeg: 2,
      levelDb: 0.5,
      frequencyRel: 2e-6,
    },
  },
  materialModels: {
    // A stiff plastic sheet: nearly rigid at every frequency.
    plastic: {
      widthM: 0.4,
      heightM: 0.3,
      absorption: [
        { frequencyHz: 500, alpha: 0.03 },
        { frequencyHz: 1000, alpha: 0.04 },
        { frequencyHz: 3000, alpha: 0.05 },
      ],
    },
    // The side of a cardboard box: larger, and the thin board absorbs (and lets through) more.
    box: {
      widthM: 0.5,
      heightM: 0.4,
      absorption: [
        { frequencyHz: 500, alpha: 0.25 },
        { frequencyHz: 1000, alpha: 0.35 },
        { frequencyHz: 3000, alpha: 0.5 },
      ],
    },
  },
});

const add = (a: Vec3, b: Vec3): Vec3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];

function jitterVec(rng: UniformRandom, sd: number, horizontalOnly = false): Vec3 {
  const x = gaussian(rng) * sd;
  const y = gaussian(rng) * sd;
  const z = gaussian(rng) * sd;
  return [x, y, horizontalOnly ? 0 : z];
}

/** The room of a data set: its echoes depend only on the seed. */
export function drawRoom(physics: SimulationPhysics, seed: number): RoomEchoes {
  return drawRoomEchoes(mulberry32(deriveSeed(seed, 'room')), {
    count: physics.room.echoes,
    startS: physics.room.startS,
    lengthS: physics.room.lengthS,
    t60S: physics.room.t60S,
    level: physics.room.level,
  });
}

/** Raised-cosine tone envelope: 0 before/after the tone, 1 in the middle. */
function toneEnvelope(t: number, lengthS: number, rampS: number): number {
  if (t <= 0 || t >= lengthS) return 0;
  const edge = Math.min(t, lengthS - t);
  if (edge >= rampS) return 1;
  return 0.5 - 0.5 * Math.cos((Math.PI * edge) / rampS);
}

/** The jittered geometry and tone of one take, drawn from `rng` in a fixed order. */
export interface TakeRealisation {
  geometry: SetupGeometry;
  frequencyHz: number;
  gain: number;
  phaseRad: number;
  /** Correlation between this take's reverberant field and the room's nominal one. */
  reverbCoherence: number;
  paths: PropagationPath[];
}

export function realiseTake(params: TakeParams, rng: UniformRandom): TakeRealisation {
  const { physics } = params;
  const { setup, jitter } = physics;
  const speakerShift = jitterVec(rng, jitter.speakerM);
  const micShift = jitterVec(rng, jitter.micM);
  const turntableShift = jitterVec(rng, jitter.turntableM, true);
  const geometry: SetupGeometry = {
    ...setup,
    speaker: add(setup.speaker, speakerShift),
    mic: add(setup.mic, micShift),
    turntable: add(setup.turntable, turntableShift),
    reflectorAngleDeg: params.angleDeg + gaussian(rng) * jitter.angleDeg,
  };
  const frequencyHz = params.frequencyHz * (1 + physics.tone.clockOffsetRel + gaussian(rng) * jitter.frequencyRel);
  const gain = physics.tone.amplitude * 10 ** ((gaussian(rng) * jitter.levelDb) / 20);
  const phaseRad = 2 * Math.PI * rng();
  // Diffuse-field spatial coherence between two points a distance d apart is sin(kd)/(kd);
  // both ends of the path moved, so the displacements add.
  const k = (2 * Math.PI * frequencyHz) / physics.speedOfSoundMps;
  const moved = Math.hypot(...speakerShift) + Math.hypot(...micShift);
  const reverbCoherence = moved > 0 ? Math.sin(k * moved) / (k * moved) : 1;
  const paths = propagationPaths(geometry, params.material, frequencyHz, physics.speedOfSoundMps);
  return { geometry, frequencyHz, gain, phaseRad, reverbCoherence, paths };
}

/**
 * One recording as float samples in [-1, 1] (clipped). Pure: the same params and the same
 * generator state give the same samples.
 */
export function simulateTake(params: TakeParams, rng: UniformRandom): Float32Array {
  const { physics, sampleRate, durationS } = params;
  if (!(sampleRate > 0)) throw new Error(`sampleRate: expected a positive number, got ${sampleRate}`);
  if (!(durationS > 0)) throw new Error(`durationS: expected a positive number, got ${durationS}`);
  if (params.frequencyHz * 2 >= sampleRate) {
    throw new Error(`frequencyHz: ${params.frequencyHz} Hz is not below the Nyquist frequency of ${sampleRate} Hz`);
  }
  const take = realiseTake(params, rng);
  const omega = 2 * Math.PI * take.frequencyHz;
  const { leadInS, lengthS, rampS } = physics.tone;

  // Late reverberation in complex baseband: the room's echoes mixed with a fresh realisation by
  // the coherence, convolved with the envelope on a coarse grid (the envelope is smooth).
  const rirLength = Math.ceil(physics.room.lengthS * BASEBAND_RATE_HZ) + 2;
  const rir = { re: new Float64Array(rirLength), im: new Float64Array(rirLength) };
  const coherence = take.reverbCoherence;
  accumulateBaseband(rir, params.room, omega, BASEBAND_RATE_HZ, coherence);
  if (coherence < 1) {
    const fresh = drawRoomEchoes(rng, {
      count: physics.room.echoes,
      startS: physics.room.startS,
      lengthS: physics.room.lengthS,
      t60S: physics.room.t60S,
      level: physics.room.level,
    });
    accumulateBaseband(rir, fresh, omega, BASEBAND_RATE_HZ, Math.sqrt(1 - coherence * coherence));
  }
  const gridLength = Math.ceil(durationS * BASEBAND_RATE_HZ) + 2;
  const envGrid = new Float64Array(gridLength);
  for (let m = 0; m < gridLength; m++) envGrid[m] = toneEnvelope(m / BASEBAND_RATE_HZ - leadInS, lengthS, rampS);
  const revRe = new Float64Array(gridLength);
  const revIm = new Float64Array(gridLength);
  for (let m = 0; m < gridLength; m++) {
    let re = 0;
    let im = 0;
    const lmax = Math.min(rirLength - 1, m);
    for (let l = 0; l <= lmax; l++) {
      const e = envGrid[m - l];
      if (e === 0) continue;
      re += rir.re[l] * e;
      im += rir.im[l] * e;
    }
    revRe[m] = re;
    revIm[m] = im;
  }

  const n = Math.round(durationS * sampleRate);
  const out = new Float32Array(n);
  const paths = take.paths;
  for (let i = 0; i < n; i++) {
    const t = i / sampleRate;
    let re = 0;
    let im = 0;
    for (const path of paths) {
      const e = toneEnvelope(t - leadInS - path.delayS, lengthS, rampS);
      if (e === 0) continue;
      re += path.gain.re * e;
      im += path.gain.im * e;
    }
    const pos = t * BASEBAND_RATE_HZ;
    const m = Math.floor(pos);
    const frac = pos - m;
    if (m + 1 < gridLength) {
      re += revRe[m] * (1 - frac) + revRe[m + 1] * frac;
      im += revIm[m] * (1 - frac) + revIm[m + 1] * frac;
    }
    // Re{B(t)·e^{j(ωt + φ)}}
    const phase = omega * t + take.phaseRad;
    const tone = re * Math.cos(phase) - im * Math.sin(phase);
    const sample = take.gain * tone + gaussian(rng) * physics.noiseRms;
    out[i] = Math.max(-1, Math.min(1, sample));
  }
  return out;
}

function resolveConfig(opts: Partial<SimulationConfig>): SimulationConfig {
  const config: SimulationConfig = {
    seed: opts.seed ?? DEFAULT_SIMULATION.seed,
    materials: opts.materials ?? [...DEFAULT_SIMULATION.materials],
    frequenciesHz: opts.frequenciesHz ?? [...DEFAULT_SIMULATION.frequenciesHz],
    anglesDeg: opts.anglesDeg ?? [...DEFAULT_SIMULATION.anglesDeg],
    takes: opts.takes ?? DEFAULT_SIMULATION.takes,
    sampleRate: opts.sampleRate ?? DEFAULT_SIMULATION.sampleRate,
    durationS: opts.durationS ?? DEFAULT_SIMULATION.durationS,
    physics: opts.physics ?? DEFAULT_SIMULATION.physics,
    materialModels: opts.materialModels ?? DEFAULT_SIMULATION.materialModels,
  };
  if (!Number.isInteger(config.seed)) throw new Error(`seed: expected an integer, got ${config.seed}`);
  if (!Number.isInteger(config.takes) || config.takes < 1 || config.takes > 99) {
    throw new Error(`takes: expected an integer from 1 to 99, got ${config.takes}`);
  }
  if (!Number.isInteger(config.sampleRate) || config.sampleRate < 1000) {
    throw new Error(`sampleRate: expected an integer of at least 1000 Hz, got ${config.sampleRate}`);
  }
  if (!(config.durationS > 0)) throw new Error(`durationS: expected a positive number, got ${config.durationS}`);
  for (const material of config.materials) {
    if (!config.materialModels[material]) {
      throw new Error(
        `materials: unknown material "${material}"; known: ${Object.keys(config.materialModels).join(', ')} (or pass materialModels)`,
      );
    }
    if (!/^[A-Za-z0-9_-]+$/.test(material)) throw new Error(`materials: "${material}" is not a valid folder name`);
  }
  for (const f of config.frequenciesHz) {
    if (!Number.isInteger(f) || f <= 0 || 2 * f >= config.sampleRate) {
      throw new Error(`frequenciesHz: expected integers between 1 and ${config.sampleRate / 2} Hz (Nyquist), got ${f}`);
    }
  }
  for (const a of config.anglesDeg) {
    if (!Number.isInteger(a) || a < 0 || a > 359) throw new Error(`anglesDeg: expected integers from 0 to 359, got ${a}`);
  }
  return config;
}

/** The file a take is written to, relative to the data root. */
export function takePath(material: string, frequencyHz: number, angleDeg: number, take: number): string {
  return join(
    material,
    `${frequencyHz}Hz`,
    `deg${String(angleDeg).padStart(3, '0')}`,
    `take${String(take).padStart(2, '0')}.wav`,
  );
}

/** 16-bit PCM WAV bytes of float samples in [-1, 1]. */
export function encodeWav16(samples: Float32Array, sampleRate: number): Uint8Array {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    pcm[i] = Math.round(s * 32767);
  }
  const wav = new WaveFile();
  wav.fromScratch(1, sampleRate, '16', pcm);
  return wav.toBuffer();
}

export interface SimulateDatasetOptions extends Partial<SimulationConfig> {
  /** Folder to write into; created if missing. Existing takes of the same names are replaced. */
  root: string;
}

export interface SimulateDatasetResult {
  /** Number of WAV files written. */
  files: number;
  /** Absolute path of the data root. */
  root: string;
  /** Wall-clock time the generation took (s). */
  seconds: number;
}

/**
 * Writes the simulated data set, one WAV per take, plus `simulation.json` (the resolved
 * configuration) at the root. The same options give byte-identical files; each take's randomness
 * depends only on (seed, material, frequency, angle, take), so subsets match the full set.
 */
export async function simulateDataset(opts: SimulateDatasetOptions): Promise<SimulateDatasetResult> {
  if (!opts || typeof opts.root !== 'string' || opts.root.length === 0) {
    throw new Error('simulateDataset: options.root must be a folder path');
  }
  const started = performance.now();
  const config = resolveConfig(opts);
  const root = resolve(opts.root);
  const room = drawRoom(config.physics, config.seed);
  let files = 0;
  for (const material of config.materials) {
    for (const frequencyHz of config.frequenciesHz) {
      for (const angleDeg of config.anglesDeg) {
        for (let take = 1; take <= config.takes; take++) {
          const rng = mulberry32(deriveSeed(config.seed, material, frequencyHz, angleDeg, take));
          const samples = simulateTake(
            {
              material: config.materialModels[material],
              frequencyHz,
              angleDeg,
              sampleRate: config.sampleRate,
              durationS: config.durationS,
              physics: config.physics,
              room,
            },
            rng,
          );
          // Hidden temp name + rename: a scanner never sees a half-written take. No fsync: the data regenerates.
          writeFileAtomic(join(root, takePath(material, frequencyHz, angleDeg, take)), encodeWav16(samples, config.sampleRate), { fsync: false });
          files++;
        }
      }
    }
  }
  writeFileAtomic(join(root, 'simulation.json'), `${JSON.stringify({ generator: 'angle-lab simulator', ...config }, null, 2)}\n`, { fsync: false });
  return { files, root, seconds: (performance.now() - started) / 1000 };
}
