/**
 * Acoustics of the simulated lab: a speaker, a microphone and a flat reflector on a turntable.
 *
 * Everything is narrow-band: the source is one tone, so every propagation path is a complex gain
 * (level and phase at the tone frequency) plus a delay for the slowly varying tone envelope.
 * Amplitudes are relative to the direct sound on the speaker's axis at 1 m (= 1).
 * The formulas are written out in the example's README ("The simulator: physics and parameters").
 */
import { gaussian, type UniformRandom } from './simulator-rng';

export type Vec3 = readonly [number, number, number];

export interface Complex {
  re: number;
  im: number;
}

/** Acoustic description of one reflector material. */
export interface MaterialModel {
  /** Width of the flat face (m), horizontal, in the plane the turntable rotates. */
  widthM: number;
  /** Height of the flat face (m). */
  heightM: number;
  /**
   * Energy absorption coefficient α at anchor frequencies (interpolated linearly in log-frequency,
   * held constant outside); the pressure reflection coefficient is sqrt(1 − α).
   */
  absorption: ReadonlyArray<{ frequencyHz: number; alpha: number }>;
}

/** Where everything stands for one take (after jitter). */
export interface SetupGeometry {
  speaker: Vec3;
  /** Unit vector the speaker's driver points along. */
  speakerAxis: Vec3;
  /** Radius of the speaker's driver, modelled as a baffled circular piston (m). 0 = omnidirectional. */
  pistonRadiusM: number;
  mic: Vec3;
  /** Point on the turntable's vertical rotation axis at the height of the reflector's centre. */
  turntable: Vec3;
  /** Reflector angle (degrees): 0 = face parallel to the x axis, 90 = edge-on to the array. */
  reflectorAngleDeg: number;
  /** Offset of the reflector's centre from the rotation axis, along the face (m). */
  mountAlongM: number;
  /** Offset of the reflector's centre from the rotation axis, along the face normal (m). */
  mountNormalM: number;
  /** Height of the floor plane (z), or null for no floor reflection. */
  floorZ: number | null;
  /** Pressure reflection coefficient of the floor. */
  floorReflection: number;
  /**
   * A thin screen between speaker and microphone: extra path length δ (m) of the sound bent over
   * its edge compared with the straight line. 0 = no screen.
   */
  barrierPathDifferenceM: number;
}

export interface PropagationPath {
  name: 'direct' | 'reflector' | 'floor';
  /** Delay of the tone envelope (s). */
  delayS: number;
  /** Complex gain at the tone frequency, including the propagation phase −ωτ. */
  gain: Complex;
  /** Total path length (m) used for the delay. */
  lengthM: number;
}

const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const norm = (a: Vec3): number => Math.sqrt(dot(a, a));
const sinc = (x: number): number => (Math.abs(x) < 1e-9 ? 1 : Math.sin(x) / x);

/**
 * Bessel J1 by its integral representation J1(x) = (1/π)∫₀^π cos(τ − x sin τ) dτ.
 * The integrand is smooth and periodic, so the midpoint rule converges spectrally; 48 points give
 * ~1e-12 for the arguments used here (|x| < 20). Written by hand because no maintained JS special
 * function library is a dependency of the example, and this is the only one needed.
 */
export function besselJ1(x: number): number {
  const n = 48;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const tau = ((i + 0.5) * Math.PI) / n;
    sum += Math.cos(tau - x * Math.sin(tau));
  }
  return sum / n;
}

/**
 * Far-field pressure directivity of a baffled circular piston, 2·J1(ka·sinψ)/(ka·sinψ), for
 * ψ ≤ 90°; behind the baffle (ψ > 90°) the box shields the rear: the value at 90° tapers
 * linearly in ψ down to half of it at 180° (a closed-box speaker is ~6 dB down at the back).
 */
export function pistonDirectivity(ka: number, offAxisRad: number): number {
  const front = (psi: number): number => {
    const x = ka * Math.sin(psi);
    return Math.abs(x) < 1e-9 ? 1 : (2 * besselJ1(x)) / x;
  };
  if (offAxisRad <= Math.PI / 2) return front(offAxisRad);
  const behind = (offAxisRad - Math.PI / 2) / (Math.PI / 2); // 0 at 90°, 1 at 180°
  return front(Math.PI / 2) * (1 - 0.5 * behind);
}

/** Pressure reflection coefficient |R| = sqrt(1 − α(f)), α interpolated in log-frequency. */
export function reflectionCoefficient(material: MaterialModel, frequencyHz: number): number {
  const anchors = [...material.absorption].sort((a, b) => a.frequencyHz - b.frequencyHz);
  if (anchors.length === 0) throw new Error('material.absorption: expected at least one {frequencyHz, alpha}');
  let alpha: number;
  if (frequencyHz <= anchors[0].frequencyHz) alpha = anchors[0].alpha;
  else if (frequencyHz >= anchors[anchors.length - 1].frequencyHz) alpha = anchors[anchors.length - 1].alpha;
  else {
    let i = 0;
    while (anchors[i + 1].frequencyHz < frequencyHz) i++;
    const a = anchors[i];
    const b = anchors[i + 1];
    const w = Math.log(frequencyHz / a.frequencyHz) / Math.log(b.frequencyHz / a.frequencyHz);
    alpha = a.alpha + w * (b.alpha - a.alpha);
  }
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`material.absorption: alpha must be in [0, 1], got ${alpha}`);
  return Math.sqrt(1 - alpha);
}

function speakerGain(geometry: SetupGeometry, toward: Vec3, k: number): number {
  const d = sub(toward, geometry.speaker);
  const cosPsi = Math.max(-1, Math.min(1, dot(d, geometry.speakerAxis) / (norm(d) * norm(geometry.speakerAxis))));
  return pistonDirectivity(k * geometry.pistonRadiusM, Math.acos(cosPsi));
}

/** Centre, in-plane tangent and normal of the reflector face. */
export function reflectorFrame(geometry: SetupGeometry): { centre: Vec3; tangent: Vec3; normal: Vec3 } {
  const theta = (geometry.reflectorAngleDeg * Math.PI) / 180;
  const tangent: Vec3 = [Math.cos(theta), Math.sin(theta), 0];
  const normal: Vec3 = [-Math.sin(theta), Math.cos(theta), 0];
  const t = geometry.turntable;
  const centre: Vec3 = [
    t[0] + geometry.mountAlongM * tangent[0] + geometry.mountNormalM * normal[0],
    t[1] + geometry.mountAlongM * tangent[1] + geometry.mountNormalM * normal[1],
    t[2],
  ];
  return { centre, tangent, normal };
}

/**
 * Reflection from the finite plate by the Kirchhoff (physical-optics) integral
 *   p = (w / 4π) ∫∫ D(ψ₁)·[(jk + 1/r₁)·cos θ₁ + (jk + 1/r₂)·cos θ₂]·e^{−jk(r₁+r₂)} / (r₁·r₂) dA,
 * with w = R = √(1 − α) when speaker and microphone are on the same side of the face,
 * evaluated on facets of at most λ/4; each facet is integrated exactly for the linear part of
 * its phase (a sinc factor per side), so the sum stays accurate when the phase varies quickly.
 * An infinite plate gives back the image source R·e^{−jk(r₁+r₂)}/(r₁+r₂); a finite one gives
 * the frequency-dependent lobes (main lobe width ≈ λ/width). When the plate's plane separates
 * speaker and microphone (near edge-on), w = −1: the integral is then the field the plate blocks,
 * i.e. its edge diffraction.
 */
export function reflectorPath(
  geometry: SetupGeometry,
  material: MaterialModel,
  frequencyHz: number,
  speedOfSoundMps: number,
): PropagationPath {
  const k = (2 * Math.PI * frequencyHz) / speedOfSoundMps;
  const { centre, tangent, normal } = reflectorFrame(geometry);
  const up: Vec3 = [0, 0, 1];
  const lengthM = norm(sub(centre, geometry.speaker)) + norm(sub(centre, geometry.mic));
  const delayS = lengthM / speedOfSoundMps;
  const sideS = dot(sub(geometry.speaker, centre), normal);
  const sideM = dot(sub(geometry.mic, centre), normal);
  if (material.widthM <= 0 || material.heightM <= 0 || sideS === 0) {
    return { name: 'reflector', delayS, gain: { re: 0, im: 0 }, lengthM };
  }
  // Microphone on the lit side: the face reflects (× R). Microphone behind the face: the opaque
  // plate takes away the field that would pass through a hole of its shape (Kirchhoff shadow,
  // × −1); away from the geometric shadow only its diffraction side lobes reach the microphone.
  const weight = sideS * sideM > 0 ? reflectionCoefficient(material, frequencyHz) : -1;
  const wavelength = speedOfSoundMps / frequencyHz;
  const nw = Math.max(4, Math.ceil(material.widthM / (wavelength / 4)));
  const nh = Math.max(4, Math.ceil(material.heightM / (wavelength / 4)));
  const dw = material.widthM / nw;
  const dh = material.heightM / nh;
  let re = 0;
  let im = 0;
  for (let i = 0; i < nw; i++) {
    const u = -material.widthM / 2 + (i + 0.5) * dw;
    for (let j = 0; j < nh; j++) {
      const v = -material.heightM / 2 + (j + 0.5) * dh;
      const p: Vec3 = [
        centre[0] + u * tangent[0] + v * up[0],
        centre[1] + u * tangent[1] + v * up[1],
        centre[2] + u * tangent[2] + v * up[2],
      ];
      const d1 = sub(p, geometry.speaker);
      const d2 = sub(p, geometry.mic);
      const r1 = norm(d1);
      const r2 = norm(d2);
      const u1: Vec3 = [d1[0] / r1, d1[1] / r1, d1[2] / r1];
      const u2: Vec3 = [d2[0] / r2, d2[1] / r2, d2[2] / r2];
      const cos1 = Math.abs(dot(u1, normal));
      const cos2 = Math.abs(dot(u2, normal));
      const gradT = dot(u1, tangent) + dot(u2, tangent);
      const gradV = dot(u1, up) + dot(u2, up);
      const amp =
        (speakerGain(geometry, p, k) * dw * dh * sinc((k * gradT * dw) / 2) * sinc((k * gradV * dh) / 2)) / (r1 * r2);
      // Normal derivatives of e^{−jkr}/r bring (jk + 1/r)·cos θ for each leg.
      const factorRe = cos1 / r1 + cos2 / r2;
      const factorIm = k * (cos1 + cos2);
      const phase = -k * (r1 + r2);
      const c = amp * Math.cos(phase);
      const s = amp * Math.sin(phase);
      re += c * factorRe - s * factorIm;
      im += c * factorIm + s * factorRe;
    }
  }
  const scale = weight / (4 * Math.PI);
  return { name: 'reflector', delayS, gain: { re: re * scale, im: im * scale }, lengthM };
}

/**
 * Pressure factor of a thin screen for a path difference δ: Maekawa's insertion loss in the
 * form ΔL = 10·log10(3 + 20·N) dB with the Fresnel number N = 2δ/λ (≈ 5 dB at grazing, more at
 * high frequencies). 1 when there is no screen (δ = 0).
 */
export function barrierFactor(pathDifferenceM: number, frequencyHz: number, speedOfSoundMps: number): number {
  if (!(pathDifferenceM > 0)) return 1;
  const fresnel = (2 * pathDifferenceM * frequencyHz) / speedOfSoundMps;
  return 10 ** (-(10 * Math.log10(3 + 20 * fresnel)) / 20);
}

function pointPath(name: PropagationPath['name'], amplitude: number, lengthM: number, k: number, c: number): PropagationPath {
  const phase = -k * lengthM;
  return {
    name,
    delayS: lengthM / c,
    gain: { re: amplitude * Math.cos(phase), im: amplitude * Math.sin(phase) },
    lengthM,
  };
}

/**
 * All specular paths from the speaker to the microphone: direct (D(ψ)·B/r, B the screen's
 * factor), the reflector
 * (Kirchhoff integral) and the floor (image source below the floor plane, R_floor·D(ψ)/r').
 */
export function propagationPaths(
  geometry: SetupGeometry,
  material: MaterialModel,
  frequencyHz: number,
  speedOfSoundMps: number,
): PropagationPath[] {
  const k = (2 * Math.PI * frequencyHz) / speedOfSoundMps;
  const direct = norm(sub(geometry.mic, geometry.speaker));
  const paths: PropagationPath[] = [
    pointPath(
      'direct',
      (speakerGain(geometry, geometry.mic, k) * barrierFactor(geometry.barrierPathDifferenceM, frequencyHz, speedOfSoundMps)) /
        direct,
      direct,
      k,
      speedOfSoundMps,
    ),
    reflectorPath(geometry, material, frequencyHz, speedOfSoundMps),
  ];
  if (geometry.floorZ !== null) {
    const s = geometry.speaker;
    const m = geometry.mic;
    const image: Vec3 = [s[0], s[1], 2 * geometry.floorZ - s[2]];
    const length = norm(sub(m, image));
    // The sound leaves the speaker toward the floor point, i.e. toward the mic mirrored in the floor.
    const mirroredMic: Vec3 = [m[0], m[1], 2 * geometry.floorZ - m[2]];
    const amplitude = (geometry.floorReflection * speakerGain(geometry, mirroredMic, k)) / length;
    paths.push(pointPath('floor', amplitude, length, k, speedOfSoundMps));
  }
  return paths;
}

/** A room's late reverberation as a set of discrete echoes (times after emission, real gains). */
export interface RoomEchoes {
  timesS: Float64Array;
  gains: Float64Array;
}

/**
 * Diffuse late reverberation: `count` echoes at uniform random times in [startS, lengthS] with
 * Gaussian gains under the energy decay e^{−13.8·t/T60} (−60 dB at T60), scaled so that the
 * expected steady-state reverberant pressure |Σ gᵢ·e^{−jωtᵢ}|² equals `level`².
 */
export function drawRoomEchoes(
  rng: UniformRandom,
  options: { count: number; startS: number; lengthS: number; t60S: number; level: number },
): RoomEchoes {
  const { count, startS, lengthS, t60S, level } = options;
  const timesS = new Float64Array(count);
  const gains = new Float64Array(count);
  let energy = 0;
  for (let i = 0; i < count; i++) {
    const t = startS + rng() * (lengthS - startS);
    const g = gaussian(rng) * Math.exp((-6.9078 * t) / t60S);
    timesS[i] = t;
    gains[i] = g;
    energy += g * g;
  }
  const scale = energy > 0 ? level / Math.sqrt(energy) : 0;
  for (let i = 0; i < count; i++) gains[i] *= scale;
  return { timesS, gains };
}

/**
 * Complex-baseband impulse response of a set of echoes at the tone's angular frequency, on a
 * grid of `rateHz` (each echo split linearly between its two neighbouring grid points); scaled by
 * `weight` and added into `out`.
 */
export function accumulateBaseband(
  out: { re: Float64Array; im: Float64Array },
  echoes: RoomEchoes,
  omega: number,
  rateHz: number,
  weight: number,
): void {
  const n = out.re.length;
  for (let i = 0; i < echoes.timesS.length; i++) {
    const t = echoes.timesS[i];
    const g = echoes.gains[i] * weight;
    const pos = t * rateHz;
    const l = Math.floor(pos);
    const frac = pos - l;
    const re = g * Math.cos(-omega * t);
    const im = g * Math.sin(-omega * t);
    if (l >= 0 && l < n) {
      out.re[l] += re * (1 - frac);
      out.im[l] += im * (1 - frac);
    }
    if (l + 1 >= 0 && l + 1 < n) {
      out.re[l + 1] += re * frac;
      out.im[l + 1] += im * frac;
    }
  }
}
