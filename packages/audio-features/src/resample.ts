/**
 * Band-limited resampling with a Kaiser-windowed sinc kernel (J. O. Smith's bandlimited
 * interpolation, the scheme resampy uses).
 *
 * Written by hand on purpose: the maintained resampler at hand (wavefile's `toSampleRate`) maps
 * output sample j to input position j·(n−1)/n_out, a time-scale error of 1/n (a 1 kHz tone in a
 * 0.25 s clip comes out at ~999.7 Hz), and can only be reached by wrapping the signal in a WAV file.
 */

/** Zero crossings of the sinc on each side of the kernel centre. */
const ZERO_CROSSINGS = 64;
/** Kaiser β: side lobes near −86 dB. */
const KAISER_BETA = 8.6;
/**
 * Cut-off as a fraction of the lower Nyquist frequency. With 64 zero crossings and β = 8.6 the
 * transition band is ~4.3 % of the lower Nyquist wide, so at 0.95 the stop band starts below it:
 * nothing above the new Nyquist folds back at more than about −80 dB.
 */
const ROLLOFF = 0.95;
/** Kernel table points per zero crossing (linear interpolation between them). */
const TABLE_PRECISION = 512;

/** Modified Bessel function of the first kind, order 0 (power series). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const half = x / 2;
  for (let k = 1; k < 50; k++) {
    term *= (half / k) ** 2;
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

let kernelTable: Float64Array | undefined;

/** Windowed sinc sampled on [0, ZERO_CROSSINGS] (units: zero crossings), one extra point at the end. */
function kernel(): Float64Array {
  if (kernelTable) return kernelTable;
  const size = ZERO_CROSSINGS * TABLE_PRECISION + 2;
  const table = new Float64Array(size);
  const norm = besselI0(KAISER_BETA);
  for (let i = 0; i < size; i++) {
    const x = i / TABLE_PRECISION;
    const r = Math.min(1, x / ZERO_CROSSINGS);
    const window = besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / norm;
    table[i] = (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x)) * window;
  }
  kernelTable = table;
  return table;
}

/**
 * Resamples a mono signal from `fromRate` to `toRate` (positive integers, Hz). Output length is
 * round(n · toRate / fromRate); samples outside the signal count as zeros. The low-pass cut-off is
 * 0.95 × the lower of the two Nyquist frequencies: flat (< 0.01 dB) to 0.9× it, and tones above the
 * new Nyquist are attenuated by more than 80 dB instead of aliasing. 15–50 ms per second of 48 kHz
 * audio (measured on a 2-core machine, idle to shared).
 */
export function resample(signal: Float32Array, fromRate: number, toRate: number): Float32Array {
  for (const [field, rate] of [
    ['fromRate', fromRate],
    ['toRate', toRate],
  ] as const) {
    if (!Number.isInteger(rate) || rate < 1) {
      throw new Error(`resample: ${field} must be a positive integer sample rate in Hz, got ${rate}`);
    }
  }
  if (fromRate === toRate || signal.length === 0) return Float32Array.from(signal);
  const table = kernel();
  const n = signal.length;
  const out = new Float32Array(Math.round((n * toRate) / fromRate));
  // Cut-off in cycles per input sample relative to the input Nyquist; the kernel stretches by 1/fc.
  const fc = ROLLOFF * Math.min(1, toRate / fromRate);
  const halfWidth = ZERO_CROSSINGS / fc; // in input samples
  for (let j = 0; j < out.length; j++) {
    const t = (j * fromRate) / toRate; // exact input position of output sample j
    const first = Math.max(0, Math.ceil(t - halfWidth));
    const last = Math.min(n - 1, Math.floor(t + halfWidth));
    let acc = 0;
    for (let i = first; i <= last; i++) {
      const position = Math.abs(t - i) * fc * TABLE_PRECISION;
      const index = Math.floor(position);
      const frac = position - index;
      acc += signal[i] * (table[index] + frac * (table[index + 1] - table[index]));
    }
    out[j] = acc * fc;
  }
  return out;
}
