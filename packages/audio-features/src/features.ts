import { checkStftOptions, stft, toDecibels, type WindowName } from './stft';

/** A 2-D feature map, row-major: `data[row * width + column]`; rows are frequency (row 0 lowest), columns time. */
export interface FeatureMap {
  data: Float32Array;
  height: number;
  width: number;
}

export type Normalization = 'standardize' | 'minmax' | 'none';

export interface FeatureOptions {
  /** STFT frame / FFT size (power of two). */
  fftSize: number;
  /** STFT hop in samples. */
  hopSize: number;
  window: WindowName;
  /** Centre the STFT frames (zero padding of fftSize/2 at both ends). */
  center: boolean;
  /** Half width of the frequency band kept around the tone (and each harmonic), in Hz. */
  bandHalfWidthHz: number;
  /** Bands stacked from low to high: 1 = the tone only, 2 = tone + 2nd harmonic, … */
  harmonics: number;
  /** Start of the time window kept, seconds from the start of the clip. */
  startSeconds: number;
  /** Length of the time window kept; shorter clips are padded with the dB floor. */
  durationSeconds: number;
  /** Output rows (frequency). */
  height: number;
  /** Output columns (time). */
  width: number;
  /** dB floor relative to the clip's loudest bin (0 dB): quieter bins are clamped to it. */
  floorDb: number;
  /** Per-example normalisation: zero mean / unit variance, [0, 1] range, or none (raw dB). */
  normalization: Normalization;
}

/**
 * Defaults for the lab's 1–2 s tone clips (500–3000 Hz tones) at 16–48 kHz:
 * - fftSize 1024 / hopSize 256: 21–64 ms frames, 16–5 ms hops; 1.25 s is ~78 frames at 16 kHz,
 *   ~234 at 48 kHz, so the time axis is resized down or kept near its size, never stretched much.
 * - ±300 Hz around the tone: the tone's main lobe (±2 bins, ≤ ±94 Hz at 48 kHz) plus room for the
 *   per-take tone jitter and the level modulation the reflection causes; 13 bins at 48 kHz, 39 at 16 kHz.
 * - the first 1.25 s: a 1 s tone with its onset, the offset and the start of the reverberation tail.
 * - 64 × 64 output, −80 dB floor below the clip's peak, per-example standardisation.
 */
export const DEFAULT_FEATURE_OPTIONS: Readonly<FeatureOptions> = Object.freeze({
  fftSize: 1024,
  hopSize: 256,
  window: 'hanning',
  center: true,
  bandHalfWidthHz: 300,
  harmonics: 1,
  startSeconds: 0,
  durationSeconds: 1.25,
  height: 64,
  width: 64,
  floorDb: -80,
  normalization: 'standardize',
});

const NORMALIZATIONS: readonly Normalization[] = ['standardize', 'minmax', 'none'];

/** Defaults merged with `opts`, every field validated (errors name the field). */
export function resolveFeatureOptions(opts: Partial<FeatureOptions> = {}): FeatureOptions {
  const options: FeatureOptions = { ...DEFAULT_FEATURE_OPTIONS, ...opts };
  const known = new Set(Object.keys(DEFAULT_FEATURE_OPTIONS));
  for (const key of Object.keys(opts)) {
    if (!known.has(key)) throw new Error(`feature options: unknown option '${key}' (known: ${[...known].join(', ')})`);
  }
  const positiveInteger = (field: keyof FeatureOptions) => {
    const value = options[field] as number;
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`feature options: ${field} must be a positive integer, got ${value}`);
    }
  };
  positiveInteger('height');
  positiveInteger('width');
  positiveInteger('harmonics');
  // STFT fields are checked (with their own messages) by the STFT itself; sampleRate 1 is a stand-in.
  checkStftOptions({ sampleRate: 1, fftSize: options.fftSize, hopSize: options.hopSize, window: options.window });
  if (!(options.bandHalfWidthHz > 0)) {
    throw new Error(`feature options: bandHalfWidthHz must be > 0, got ${options.bandHalfWidthHz}`);
  }
  if (!(options.durationSeconds > 0)) {
    throw new Error(`feature options: durationSeconds must be > 0, got ${options.durationSeconds}`);
  }
  if (!(options.startSeconds >= 0)) {
    throw new Error(`feature options: startSeconds must be >= 0, got ${options.startSeconds}`);
  }
  if (!(options.floorDb < 0) || !Number.isFinite(options.floorDb)) {
    throw new Error(`feature options: floorDb must be a negative number of dB, got ${options.floorDb}`);
  }
  if (!NORMALIZATIONS.includes(options.normalization)) {
    throw new Error(`feature options: normalization must be one of ${NORMALIZATIONS.join(', ')}, got ${options.normalization}`);
  }
  if (typeof options.center !== 'boolean') throw new Error(`feature options: center must be a boolean`);
  return options;
}

/**
 * Bilinear resize of a row-major [srcHeight, srcWidth] map with half-pixel centres, the convention
 * of `tf.image.resizeBilinear(…, alignCorners=false, halfPixelCenters=true)` and of OpenCV.
 * By hand so the pure feature path (and the cache) needs no TF.js backend.
 */
export function resizeBilinear(
  source: Float32Array,
  srcHeight: number,
  srcWidth: number,
  height: number,
  width: number,
): Float32Array {
  if (source.length !== srcHeight * srcWidth) {
    throw new Error(`resizeBilinear: source has ${source.length} values, expected ${srcHeight}×${srcWidth}`);
  }
  const out = new Float32Array(height * width);
  const axis = (size: number, srcSize: number) => {
    const lower = new Int32Array(size);
    const upper = new Int32Array(size);
    const weight = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      const position = Math.min(Math.max(((i + 0.5) * srcSize) / size - 0.5, 0), srcSize - 1);
      lower[i] = Math.floor(position);
      upper[i] = Math.min(lower[i] + 1, srcSize - 1);
      weight[i] = position - lower[i];
    }
    return { lower, upper, weight };
  };
  const rows = axis(height, srcHeight);
  const cols = axis(width, srcWidth);
  for (let y = 0; y < height; y++) {
    const top = rows.lower[y] * srcWidth;
    const bottom = rows.upper[y] * srcWidth;
    const wy = rows.weight[y];
    for (let x = 0; x < width; x++) {
      const x0 = cols.lower[x];
      const x1 = cols.upper[x];
      const wx = cols.weight[x];
      const upperRow = source[top + x0] + wx * (source[top + x1] - source[top + x0]);
      const lowerRow = source[bottom + x0] + wx * (source[bottom + x1] - source[bottom + x0]);
      out[y * width + x] = upperRow + wy * (lowerRow - upperRow);
    }
  }
  return out;
}

/** In-place per-example normalisation. A constant map becomes all zeros (standardize, minmax). */
export function normalizeInPlace(data: Float32Array, normalization: Normalization): Float32Array {
  if (normalization === 'none' || data.length === 0) return data;
  if (normalization === 'standardize') {
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum += data[i];
    const mean = sum / data.length;
    let squares = 0;
    for (let i = 0; i < data.length; i++) squares += (data[i] - mean) ** 2;
    const std = Math.sqrt(squares / data.length);
    const scale = std > 1e-6 ? 1 / std : 0;
    for (let i = 0; i < data.length; i++) data[i] = (data[i] - mean) * scale;
    return data;
  }
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    min = Math.min(min, data[i]);
    max = Math.max(max, data[i]);
  }
  const scale = max - min > 1e-6 ? 1 / (max - min) : 0;
  for (let i = 0; i < data.length; i++) data[i] = (data[i] - min) * scale;
  return data;
}

/**
 * The task's feature map of one mono clip: STFT → dB (0 dB = the clip's loudest bin, clamped at
 * `floorDb`) → the bins within ±bandHalfWidthHz of the tone (and of each harmonic, stacked low to
 * high; bins beyond Nyquist are the floor) → frames in [startSeconds, startSeconds + durationSeconds)
 * (missing frames are the floor) → bilinear resize to [height, width] → per-example normalisation.
 */
export function computeFeatures(
  signal: Float32Array,
  sampleRate: number,
  toneHz: number,
  opts: Partial<FeatureOptions> = {},
): FeatureMap {
  const options = resolveFeatureOptions(opts);
  const nyquist = sampleRate / 2;
  if (!(toneHz > 0) || !(toneHz < nyquist)) {
    throw new Error(`computeFeatures: toneHz must be between 0 and the Nyquist frequency ${nyquist} Hz, got ${toneHz}`);
  }
  const { fftSize, hopSize, floorDb } = options;
  const spec = toDecibels(stft(signal, { sampleRate, fftSize, hopSize, window: options.window, center: options.center }), {
    ref: 'max',
    floorDb,
  });
  const binHz = sampleRate / fftSize;
  const halfBins = Math.round(options.bandHalfWidthHz / binHz);
  const bandRows = 2 * halfBins + 1;
  const rows = bandRows * options.harmonics;
  const firstFrame = Math.round((options.startSeconds * sampleRate) / hopSize);
  const columns = Math.max(1, Math.round((options.durationSeconds * sampleRate) / hopSize));
  const cropped = new Float32Array(rows * columns).fill(floorDb);
  for (let h = 0; h < options.harmonics; h++) {
    const centre = Math.round(((h + 1) * toneHz) / binHz);
    for (let r = 0; r < bandRows; r++) {
      const bin = centre - halfBins + r;
      if (bin < 0 || bin >= spec.bins) continue;
      const row = (h * bandRows + r) * columns;
      for (let c = 0; c < columns; c++) {
        const frame = firstFrame + c;
        if (frame >= spec.frames) break;
        cropped[row + c] = spec.data[frame * spec.bins + bin];
      }
    }
  }
  const data = resizeBilinear(cropped, rows, columns, options.height, options.width);
  return { data: normalizeInPlace(data, options.normalization), height: options.height, width: options.width };
}
