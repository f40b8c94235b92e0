import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import wavefile from 'wavefile';
import { writeFileAtomic } from './atomic-write';

/** Decoded audio: one Float32Array per channel, integer PCM scaled to [-1, 1). */
export interface DecodedAudio {
  sampleRate: number;
  channels: Float32Array[];
}

export interface DecodeWavOptions {
  /**
   * Which channel to return: an index, or 'mix' for the mean of all channels.
   * Left out, every channel is returned.
   */
  channel?: number | 'mix';
  /** Name used in error messages (a path, usually). */
  name?: string;
}

/** What the RIFF header of a WAV file says, checked against the file's length. */
export interface WavInfo {
  container: 'RIFF' | 'RIFX';
  /** WAVE format code (1 PCM, 3 IEEE float; for WAVE_FORMAT_EXTENSIBLE the sub-format's code). */
  formatCode: number;
  sampleRate: number;
  numChannels: number;
  bitsPerSample: number;
  /** Bytes per frame (all channels of one sample instant). */
  blockAlign: number;
  dataOffset: number;
  dataBytes: number;
  /** Samples per channel. */
  frames: number;
}

const FORMAT_NAMES: Record<number, string> = {
  0x0001: 'PCM',
  0x0002: 'Microsoft ADPCM',
  0x0003: 'IEEE float',
  0x0006: 'A-law',
  0x0007: 'µ-law',
  0x0011: 'IMA ADPCM',
  0x0031: 'GSM 6.10',
  0x0050: 'MPEG',
  0x0055: 'MPEG layer 3',
  0xfffe: 'WAVE_FORMAT_EXTENSIBLE',
};

const SUPPORTED = 'supported: PCM integer 8/16/24/32-bit and IEEE float 32/64-bit';

function formatName(code: number): string {
  return FORMAT_NAMES[code] ?? `format code 0x${code.toString(16).padStart(4, '0')}`;
}

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  let text = '';
  for (let i = offset; i < Math.min(offset + length, bytes.length); i++) {
    const c = bytes[i];
    text += c >= 32 && c < 127 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return text;
}

/** Thrown by `parseWavHeader` when a header-only read stopped before the `fmt ` chunk. */
class IncompleteHeader extends Error {}

/**
 * Walks the RIFF chunks of a WAV file and validates what the decoder relies on.
 * `bytes` may be a prefix of the file when `fileSize` says how long the whole file is.
 * wavefile itself silently decodes a data chunk that runs past the end of the file and reports
 * codecs it cannot read only later, so this check comes first and names what is wrong.
 */
export function parseWavHeader(bytes: Uint8Array, name = 'WAV buffer', fileSize = bytes.length): WavInfo {
  return parseHeader(bytes, name, fileSize);
}

function parseHeader(bytes: Uint8Array, name: string, fileSize: number): WavInfo {
  const fail = (what: string): never => {
    throw new Error(`${name}: ${what}`);
  };
  if (fileSize === 0) fail('empty file (0 bytes)');
  const magic = ascii(bytes, 0, 4);
  if (magic === 'RF64') fail(`unsupported container RF64 (64-bit WAV); ${SUPPORTED} in RIFF/RIFX`);
  if (magic !== 'RIFF' && magic !== 'RIFX') {
    fail(`not a RIFF/WAVE file (starts with "${magic}", expected "RIFF")`);
  }
  if (bytes.length < 12) fail(`truncated header: ${bytes.length} bytes, a WAV header needs at least 44`);
  const form = ascii(bytes, 8, 4);
  if (form !== 'WAVE') fail(`not a RIFF/WAVE file (RIFF form type is "${form}", expected "WAVE")`);

  const littleEndian = magic === 'RIFF';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fmt: Omit<WavInfo, 'dataOffset' | 'dataBytes' | 'frames' | 'container'> | undefined;
  let data: { offset: number; bytes: number } | undefined;
  let offset = 12;
  while (!(fmt && data)) {
    if (offset + 8 > bytes.length) {
      if (bytes.length < fileSize && offset + 8 <= fileSize) throw new IncompleteHeader();
      if (!fmt) fail(`truncated header: the file ends at byte ${offset} before a "fmt " chunk`);
      fail(`truncated header: the file ends at byte ${offset} before a "data" chunk`);
    }
    const id = ascii(bytes, offset, 4);
    const size = view.getUint32(offset + 4, littleEndian);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16) fail(`truncated header: "fmt " chunk has ${size} bytes, expected at least 16`);
      if (body + size > bytes.length) {
        if (bytes.length < fileSize && body + size <= fileSize) throw new IncompleteHeader();
        fail(`truncated header: "fmt " chunk declares ${size} bytes but only ${bytes.length - body} remain`);
      }
      let formatCode = view.getUint16(body, littleEndian);
      if (formatCode === 0xfffe) {
        // WAVE_FORMAT_EXTENSIBLE: the real codec is the first two bytes of the sub-format GUID.
        if (size < 40) fail(`truncated header: extensible "fmt " chunk has ${size} bytes, expected 40`);
        formatCode = view.getUint16(body + 24, littleEndian);
      }
      fmt = {
        formatCode,
        numChannels: view.getUint16(body + 2, littleEndian),
        sampleRate: view.getUint32(body + 4, littleEndian),
        blockAlign: view.getUint16(body + 12, littleEndian),
        bitsPerSample: view.getUint16(body + 14, littleEndian),
      };
    } else if (id === 'data') {
      const available = fileSize - body;
      if (size > available) {
        fail(`data chunk declares ${size} bytes but only ${available} bytes follow (file truncated?)`);
      }
      data = { offset: body, bytes: size };
    }
    // Chunks are word-aligned: an odd-sized chunk is followed by one pad byte.
    offset = body + size + (size & 1);
  }

  const { formatCode, numChannels, sampleRate, blockAlign, bitsPerSample } = fmt;
  if (formatCode !== 1 && formatCode !== 3) {
    fail(`unsupported codec ${formatName(formatCode)} (format code ${formatCode}); ${SUPPORTED}`);
  }
  if (formatCode === 1 && ![8, 16, 24, 32].includes(bitsPerSample)) {
    fail(`unsupported PCM bit depth ${bitsPerSample}; ${SUPPORTED}`);
  }
  if (formatCode === 3 && bitsPerSample !== 32 && bitsPerSample !== 64) {
    fail(`unsupported IEEE float bit depth ${bitsPerSample}; ${SUPPORTED}`);
  }
  if (numChannels < 1) fail('"fmt " chunk says 0 channels');
  if (sampleRate < 1) fail('"fmt " chunk says sample rate 0');
  if (blockAlign !== (numChannels * bitsPerSample) / 8) {
    fail(
      `inconsistent "fmt " chunk: block align ${blockAlign}, expected ${numChannels} channels × ${bitsPerSample / 8} bytes`,
    );
  }
  if (data.bytes === 0) fail('zero samples (the data chunk is empty)');
  if (data.bytes % blockAlign !== 0) {
    fail(`data chunk size ${data.bytes} is not a multiple of the frame size ${blockAlign} bytes (file damaged?)`);
  }
  return {
    container: magic as WavInfo['container'],
    formatCode,
    sampleRate,
    numChannels,
    bitsPerSample,
    blockAlign,
    dataOffset: data.offset,
    dataBytes: data.bytes,
    frames: data.bytes / blockAlign,
  };
}

/**
 * Decodes a WAV file held in memory (PCM 8/16/24/32-bit integer, 32/64-bit float; RIFF or RIFX).
 * Integer PCM is scaled by 2^(bits−1) (8-bit is unsigned, offset 128) to [-1, 1); float samples
 * are passed through as stored (they may exceed ±1 if the file does). Non-finite samples throw.
 */
export function decodeWav(bytes: Uint8Array, opts: DecodeWavOptions = {}): DecodedAudio {
  const name = opts.name ?? 'WAV buffer';
  const info = parseHeader(bytes, name, bytes.length);
  const wav = new wavefile.WaveFile();
  let raw: Float64Array[];
  try {
    wav.fromBuffer(bytes);
    const samples = wav.getSamples(false, Float64Array) as unknown as Float64Array | Float64Array[];
    raw = info.numChannels === 1 ? [samples as Float64Array] : (samples as Float64Array[]);
  } catch (error) {
    throw new Error(`${name}: cannot decode: ${(error as Error).message}`);
  }
  if (raw.length !== info.numChannels || raw.some((c) => c.length !== info.frames)) {
    throw new Error(`${name}: decoder returned a different shape than the header declares`);
  }
  const isFloat = info.formatCode === 3;
  const offset = !isFloat && info.bitsPerSample === 8 ? 128 : 0;
  const scale = isFloat ? 1 : 1 / 2 ** (info.bitsPerSample - 1);
  const channels = raw.map((source, c) => {
    const out = new Float32Array(source.length);
    for (let i = 0; i < source.length; i++) {
      const value = (source[i] - offset) * scale;
      if (!Number.isFinite(value)) {
        throw new Error(`${name}: non-finite sample ${source[i]} at frame ${i} of channel ${c}`);
      }
      out[i] = value;
    }
    return out;
  });
  const audio: DecodedAudio = { sampleRate: info.sampleRate, channels };
  if (opts.channel === undefined) return audio;
  return { sampleRate: info.sampleRate, channels: [toMono(audio, opts.channel, name)] };
}

/** Reads and decodes a WAV file; errors name the path (or `opts.name`). */
export async function readWav(path: string, opts: DecodeWavOptions = {}): Promise<DecodedAudio> {
  const bytes = await readFile(path);
  return decodeWav(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
    ...opts,
    name: opts.name ?? path,
  });
}

/** One channel of `audio` (by index), or the mean of all channels ('mix', the default). */
export function toMono(audio: DecodedAudio, channel: number | 'mix' = 'mix', name = 'audio'): Float32Array {
  const { channels } = audio;
  if (channels.length === 0) throw new Error(`${name}: no channels`);
  if (channel !== 'mix') {
    if (!Number.isInteger(channel) || channel < 0 || channel >= channels.length) {
      throw new Error(`${name}: channel ${channel} does not exist (the audio has ${channels.length} channel(s))`);
    }
    return channels[channel];
  }
  if (channels.length === 1) return channels[0];
  const mono = new Float32Array(channels[0].length);
  for (const samples of channels) {
    for (let i = 0; i < mono.length; i++) mono[i] += samples[i];
  }
  for (let i = 0; i < mono.length; i++) mono[i] /= channels.length;
  return mono;
}

export type WavBitDepth = '16' | '24' | '32' | '32f';

/**
 * Encodes audio as a PCM WAV file with wavefile: integer depths scale [-1, 1] by 2^(bits−1)−1 with
 * rounding and clipping (so values at ±1 do not wrap), '32f' stores floats as they are.
 */
export function encodeWav(audio: DecodedAudio, opts: { bitDepth?: WavBitDepth } = {}): Uint8Array {
  const { bitDepth = '16' } = opts;
  const { sampleRate, channels } = audio;
  if (!['16', '24', '32', '32f'].includes(bitDepth)) throw new Error(`encodeWav: bitDepth must be 16, 24, 32 or 32f, got ${bitDepth}`);
  if (!Number.isInteger(sampleRate) || sampleRate < 1) throw new Error(`encodeWav: sampleRate must be a positive integer, got ${sampleRate}`);
  if (channels.length === 0) throw new Error('encodeWav: no channels');
  const frames = channels[0].length;
  if (frames === 0 || channels.some((c) => c.length !== frames)) {
    throw new Error(`encodeWav: channels must be non-empty and of equal length, got ${channels.map((c) => c.length).join(', ')}`);
  }
  const full = bitDepth === '32f' ? 1 : 2 ** (Number(bitDepth) - 1) - 1;
  const samples = channels.map((channel) => {
    if (bitDepth === '32f') return Float64Array.from(channel);
    const out = new Float64Array(frames);
    for (let i = 0; i < frames; i++) out[i] = Math.round(Math.max(-1, Math.min(1, channel[i])) * full);
    return out;
  });
  const wav = new wavefile.WaveFile();
  wav.fromScratch(channels.length, sampleRate, bitDepth, channels.length === 1 ? samples[0] : samples);
  return wav.toBuffer();
}

/** Writes `encodeWav(audio)` to `path` atomically (temporary file in the same folder, then rename). */
export async function writeWav(path: string, audio: DecodedAudio, opts: { bitDepth?: WavBitDepth } = {}): Promise<void> {
  await writeFileAtomic(path, encodeWav(audio, opts));
}

/**
 * Reads only the header of a WAV file (its first 4 KiB, more if the chunks before `data` run further)
 * and validates it against the file's size.
 */
export async function readWavInfo(path: string): Promise<WavInfo> {
  return readWavInfoSync(path);
}

/**
 * `readWavInfo` without the promise. Synchronous on purpose: a header read is a few microseconds of
 * system calls, and the thread-pool round trips of fs/promises made it 5–10× slower (measured).
 */
export function readWavInfoSync(path: string): WavInfo {
  const fd = openSync(path, 'r');
  try {
    const { size } = fstatSync(fd);
    const prefix = new Uint8Array(Math.min(size, 4096));
    readSync(fd, prefix, 0, prefix.length, 0);
    try {
      return parseHeader(prefix, path, size);
    } catch (error) {
      if (!(error instanceof IncompleteHeader)) throw error;
    }
    const whole = new Uint8Array(size);
    readSync(fd, whole, 0, size, 0);
    return parseHeader(whole, path, size);
  } finally {
    closeSync(fd);
  }
}
