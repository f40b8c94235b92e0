import Meyda from 'meyda';

/**
 * Analysis windows, exactly as Meyda 5.6 builds them (N = fftSize, n = 0..N−1):
 * - hanning: 0.5 − 0.5·cos(2πn/(N−1)), symmetric (numpy.hanning / scipy `hann(N, sym=True)`)
 * - hamming: 0.54 − 0.46·cos(2πn/N), periodic (scipy `hamming(N, sym=False)`)
 * - blackman: 0.42 − 0.5·cos(2πn/(N−1)) + 0.08·cos(4πn/(N−1)), symmetric
 * - sine: sin(πn/(N−1)), symmetric
 * - rect: all ones
 */
export type WindowName = 'hanning' | 'hamming' | 'blackman' | 'sine' | 'rect';
export const WINDOW_NAMES: readonly WindowName[] = ['hanning', 'hamming', 'blackman', 'sine', 'rect'];

export interface StftOptions {
  sampleRate: number;
  /** Frame length and FFT size; a power of two (Meyda's FFT requires it). */
  fftSize: number;
  /** Samples between frame starts. */
  hopSize: number;
  /** Default 'hanning'. */
  window?: WindowName;
  /**
   * Default true: pad fftSize/2 zeros at both ends so that frame t is centred on sample t·hopSize
   * (librosa's `center=True` with `pad_mode='constant'`).
   */
  center?: boolean;
}

export type SpectrogramScale = 'magnitude' | 'power' | 'db';

/**
 * A spectrogram, frames × bins, row-major (`data[t * bins + k]`).
 * Meyda returns fftSize/2 bins (0 … Nyquist exclusive): bin k is at k·sampleRate/fftSize Hz.
 * Magnitudes are those of the unnormalised FFT of the windowed frame (numpy.fft.rfft's).
 */
export interface Spectrogram {
  frames: number;
  bins: number;
  data: Float32Array;
  binHz: Float32Array;
  /** Time of each frame's centre, in seconds from the first sample. */
  frameTimes: Float32Array;
  sampleRate: number;
  fftSize: number;
  hopSize: number;
  window: WindowName;
  center: boolean;
  scale: SpectrogramScale;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 2 && (n & (n - 1)) === 0;
}

/** Throws a field-naming error unless the STFT options are usable; returns them with defaults. */
export function checkStftOptions(opts: StftOptions): Required<StftOptions> {
  const { sampleRate, fftSize, hopSize, window = 'hanning', center = true } = opts;
  if (!(sampleRate > 0) || !Number.isFinite(sampleRate)) {
    throw new Error(`stft: sampleRate must be a positive number of Hz, got ${sampleRate}`);
  }
  if (!isPowerOfTwo(fftSize)) {
    throw new Error(`stft: fftSize must be a power of two (e.g. 512, 1024, 2048), got ${fftSize}`);
  }
  if (!Number.isInteger(hopSize) || hopSize < 1) {
    throw new Error(`stft: hopSize must be a positive integer number of samples, got ${hopSize}`);
  }
  if (!WINDOW_NAMES.includes(window)) {
    throw new Error(`stft: window must be one of ${WINDOW_NAMES.join(', ')}, got ${String(window)}`);
  }
  return { sampleRate, fftSize, hopSize, window, center };
}

/** Number of frames `stft` makes from `length` samples (0 when the signal is too short). */
export function frameCount(length: number, fftSize: number, hopSize: number, center = true): number {
  if (center) return length > 0 ? 1 + Math.floor(length / hopSize) : 0;
  return length >= fftSize ? 1 + Math.floor((length - fftSize) / hopSize) : 0;
}

/**
 * Magnitude short-time Fourier transform, one `Meyda.extract('amplitudeSpectrum')` per frame.
 * Framing, hop and centre padding are ours; Meyda applies the window and the FFT.
 */
export function stft(signal: Float32Array, opts: StftOptions): Spectrogram {
  const { sampleRate, fftSize, hopSize, window, center } = checkStftOptions(opts);
  const frames = frameCount(signal.length, fftSize, hopSize, center);
  if (frames === 0) {
    throw new Error(
      `stft: signal of ${signal.length} samples is too short for one frame (fftSize ${fftSize}, center ${center})`,
    );
  }
  for (let i = 0; i < signal.length; i++) {
    if (!Number.isFinite(signal[i])) throw new Error(`stft: signal has a non-finite value ${signal[i]} at sample ${i}`);
  }
  const bins = fftSize / 2;
  const data = new Float32Array(frames * bins);
  const frame = new Float32Array(fftSize);
  const offset = center ? fftSize / 2 : 0;
  // Meyda is a module-level singleton whose fields other callers may have changed: set them all.
  Meyda.bufferSize = fftSize;
  Meyda.sampleRate = sampleRate;
  (Meyda as { windowingFunction: string }).windowingFunction = window;
  for (let t = 0; t < frames; t++) {
    const start = t * hopSize - offset;
    if (start >= 0 && start + fftSize <= signal.length) {
      frame.set(signal.subarray(start, start + fftSize));
    } else {
      frame.fill(0);
      const from = Math.max(0, start);
      const to = Math.min(signal.length, start + fftSize);
      if (to > from) frame.set(signal.subarray(from, to), from - start);
    }
    const spectrum = Meyda.extract('amplitudeSpectrum', frame) as unknown as Float32Array;
    data.set(spectrum, t * bins);
  }
  const binHz = new Float32Array(bins);
  for (let k = 0; k < bins; k++) binHz[k] = (k * sampleRate) / fftSize;
  const frameTimes = new Float32Array(frames);
  for (let t = 0; t < frames; t++) frameTimes[t] = (t * hopSize - offset + fftSize / 2) / sampleRate;
  return { frames, bins, data, binHz, frameTimes, sampleRate, fftSize, hopSize, window, center, scale: 'magnitude' };
}

/** Squared magnitudes. */
export function toPower(spec: Spectrogram): Spectrogram {
  if (spec.scale !== 'magnitude') throw new Error(`toPower: expected a magnitude spectrogram, got scale '${spec.scale}'`);
  const data = new Float32Array(spec.data.length);
  for (let i = 0; i < data.length; i++) data[i] = spec.data[i] * spec.data[i];
  return { ...spec, data, scale: 'power' };
}

export interface DecibelOptions {
  /** Reference magnitude for 0 dB: a number (default 1) or 'max' (the largest magnitude). */
  ref?: number | 'max';
  /** Values below this many dB are clamped to it (default −120). */
  floorDb?: number;
}

/**
 * 20·log10(magnitude / ref) (10·log10 for a power spectrogram with ref squared), clamped below at
 * `floorDb`. A silent input with ref 'max' gives `floorDb` everywhere.
 */
export function toDecibels(spec: Spectrogram, opts: DecibelOptions = {}): Spectrogram {
  const { ref = 1, floorDb = -120 } = opts;
  if (spec.scale === 'db') throw new Error('toDecibels: the spectrogram is already in dB');
  if (!Number.isFinite(floorDb)) throw new Error(`toDecibels: floorDb must be a finite number, got ${floorDb}`);
  const isPower = spec.scale === 'power';
  let refMagnitude: number;
  if (ref === 'max') {
    let max = 0;
    for (let i = 0; i < spec.data.length; i++) max = Math.max(max, spec.data[i]);
    refMagnitude = isPower ? Math.sqrt(max) : max;
  } else if (ref > 0 && Number.isFinite(ref)) {
    refMagnitude = ref;
  } else {
    throw new Error(`toDecibels: ref must be a positive number or 'max', got ${ref}`);
  }
  const data = new Float32Array(spec.data.length);
  if (refMagnitude === 0) return { ...spec, data: data.fill(floorDb), scale: 'db' };
  const factor = isPower ? 10 : 20;
  const refLog = Math.log10(isPower ? refMagnitude * refMagnitude : refMagnitude);
  for (let i = 0; i < data.length; i++) {
    const value = spec.data[i];
    data[i] = value > 0 ? Math.max(floorDb, factor * (Math.log10(value) - refLog)) : floorDb;
  }
  return { ...spec, data, scale: 'db' };
}
