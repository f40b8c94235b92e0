import type { EpochRecord, FitHistory } from './fit';

/**
 * Everything `fit` needs to go on after a completed epoch exactly as if it had never stopped
 * (same backend): taken with `snapshot()` in an `afterEpoch` hook, passed back as `options.resume`
 * to a `fit` on a model rebuilt with the same architecture. Plain data and Float32Arrays; store it
 * with `fitStateToBytes` (plain JSON would turn the arrays into objects and NaN into null).
 */
export interface FitResumeState {
  /** The last completed epoch (1-based); training resumes at `epoch + 1`. */
  epoch: number;
  history: Pick<FitHistory, 'epochs' | 'bestEpoch' | 'bestValue' | 'monitor' | 'optimizerSteps'>;
  /** Early-stopping bookkeeping: best value of its metric so far and epochs since it improved. */
  earlyStopping: { best: number; epochsWithoutImprovement: number };
  /** Every model variable in `model.weights` order (batch-norm moving statistics included). */
  weights: Float32Array[];
  /** The best epoch's variables, same order; only when `restoreBest` is on. */
  bestWeights?: Float32Array[];
  /** Adam's step count and moments, in the order of the trainable variables. */
  optimizer: { step: number; firstMoments: Float32Array[]; secondMoments: Float32Array[] };
}

const MAGIC = 'LABFIT01';
const HEADER_START = MAGIC.length + 4;

/** JSON has no NaN or ±Infinity (validation metrics and `bestValue` may hold them): they travel tagged. */
function encodeNumbers(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? { $number: String(value) } : value;
}

function decodeNumbers(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === '$number') return Number((value as { $number: string }).$number);
  }
  return value;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

interface Header {
  state: Omit<FitResumeState, 'weights' | 'bestWeights' | 'optimizer'> & { optimizer: { step: number } };
  /** Lengths of the arrays that follow the header, group by group. */
  lengths: { weights: number[]; bestWeights: number[] | null; firstMoments: number[]; secondMoments: number[] };
  extra: unknown;
}

/**
 * Packs a resume state, plus any JSON-serialisable `extra` data of the caller (loss state,
 * probe results …), into one byte array: `LABFIT01`, a uint32 header length, a JSON header,
 * padding to 4 bytes, then the float32 values (little-endian). Written by hand because the
 * state is a few flat float arrays and a small header: a general format would add a dependency
 * for no gain, and raw float32 keeps the numbers bit-exact.
 */
export function fitStateToBytes(state: FitResumeState, extra?: unknown): Uint8Array {
  const { weights, bestWeights, optimizer, ...rest } = state;
  const header: Header = {
    state: { ...rest, optimizer: { step: optimizer.step } },
    lengths: {
      weights: weights.map((a) => a.length),
      bestWeights: bestWeights ? bestWeights.map((a) => a.length) : null,
      firstMoments: optimizer.firstMoments.map((a) => a.length),
      secondMoments: optimizer.secondMoments.map((a) => a.length),
    },
    extra: extra ?? null,
  };
  const json = new TextEncoder().encode(JSON.stringify(header, encodeNumbers));
  const dataStart = Math.ceil((HEADER_START + json.length) / 4) * 4;
  const arrays = [...weights, ...(bestWeights ?? []), ...optimizer.firstMoments, ...optimizer.secondMoments];
  const floats = arrays.reduce((s, a) => s + a.length, 0);
  const bytes = new Uint8Array(dataStart + 4 * floats);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(MAGIC.length, json.length, true);
  bytes.set(json, HEADER_START);
  let offset = dataStart;
  for (const array of arrays) {
    if (LITTLE_ENDIAN) bytes.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), offset);
    else array.forEach((v, i) => view.setFloat32(offset + 4 * i, v, true));
    offset += array.byteLength;
  }
  return bytes;
}

/** Unpacks what `fitStateToBytes` wrote; `extra` is the caller's data (null when none was given). */
export function fitStateFromBytes(bytes: Uint8Array): { state: FitResumeState; extra: unknown } {
  const fail = (what: string): never => {
    throw new Error(`fitStateFromBytes: ${what} (expected bytes written by fitStateToBytes)`);
  };
  if (!(bytes instanceof Uint8Array) || bytes.length < HEADER_START) fail('input is too short');
  if (new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC) fail(`the first bytes are not "${MAGIC}"`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(MAGIC.length, true);
  if (HEADER_START + headerLength > bytes.length) fail('the header runs past the end');
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(HEADER_START, HEADER_START + headerLength)), decodeNumbers) as Header;
  } catch (error) {
    return fail(`the header is not JSON (${(error as Error).message})`);
  }
  let offset = Math.ceil((HEADER_START + headerLength) / 4) * 4;
  // What the header promises, so a file cut short (a truncated checkpoint) says by how much.
  const promised = [header.lengths?.weights, header.lengths?.bestWeights, header.lengths?.firstMoments, header.lengths?.secondMoments]
    .flatMap((group) => (Array.isArray(group) ? group : []))
    .reduce((sum: number, length) => sum + (Number.isInteger(length) && length > 0 ? 4 * length : 0), offset);
  const take = (lengths: number[]): Float32Array[] =>
    lengths.map((length) => {
      if (!Number.isInteger(length) || length < 0) fail('an array length in the header is not a count');
      if (offset + 4 * length > bytes.length) fail(`an array runs past the end: the bytes are cut short (${bytes.length} of the ${promised} bytes the header describes)`);
      // Copied out: the source offset need not be 4-byte aligned, and the state must not alias the input.
      const array = new Float32Array(length);
      if (LITTLE_ENDIAN) new Uint8Array(array.buffer).set(bytes.subarray(offset, offset + 4 * length));
      else for (let i = 0; i < length; i++) array[i] = view.getFloat32(offset + 4 * i, true);
      offset += 4 * length;
      return array;
    });
  const { lengths } = header;
  const weights = take(lengths.weights);
  const bestWeights = lengths.bestWeights ? take(lengths.bestWeights) : undefined;
  const firstMoments = take(lengths.firstMoments);
  const secondMoments = take(lengths.secondMoments);
  if (offset !== bytes.length) fail(`${bytes.length - offset} bytes left over after the arrays`);
  const state: FitResumeState = {
    ...header.state,
    weights,
    ...(bestWeights ? { bestWeights } : {}),
    optimizer: { step: header.state.optimizer.step, firstMoments, secondMoments },
  };
  return { state, extra: header.extra };
}

/** Deep copy of the history part (records are mutable objects owned by a FitHistory). */
export function copyEpochRecords(records: readonly EpochRecord[]): EpochRecord[] {
  return records.map((r) => ({ ...r, ...(r.validation ? { validation: { ...r.validation } } : {}) }));
}
