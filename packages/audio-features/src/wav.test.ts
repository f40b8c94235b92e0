import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wavefile from 'wavefile';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeWav, encodeWav, parseWavHeader, readWav, readWavInfo, toMono, writeWav } from './wav';

/** A WAV file written by wavefile (an independent encoder). */
function encode(channels: number, rate: number, bitDepth: string, samples: number[] | number[][], container?: string) {
  const wav = new wavefile.WaveFile();
  wav.fromScratch(channels, rate, bitDepth, samples, container ? { container } : undefined);
  return wav.toBuffer();
}

/**
 * A hand-made RIFF file: 'RIFF' size 'WAVE', a fmt chunk of `fmtSize` bytes, then a data chunk
 * that declares `declaredDataBytes` but holds `dataBytes`.
 */
function handMade(opts: {
  formatCode?: number;
  channels?: number;
  rate?: number;
  bits?: number;
  fmtSize?: number;
  dataBytes?: number;
  declaredDataBytes?: number;
  extensibleSubformat?: number;
  /** The data chunk's bytes (default: 0, 1, 2, … of length dataBytes). */
  data?: Uint8Array;
}): Uint8Array {
  const { formatCode = 1, channels = 1, rate = 8000, bits = 16 } = opts;
  const dataBytes = opts.data?.length ?? opts.dataBytes ?? 8;
  const fmtSize = opts.fmtSize ?? (opts.extensibleSubformat !== undefined ? 40 : 16);
  const declared = opts.declaredDataBytes ?? dataBytes;
  const bytes = new Uint8Array(12 + 8 + fmtSize + 8 + dataBytes);
  const view = new DataView(bytes.buffer);
  const text = (offset: number, s: string) => [...s].forEach((c, i) => (bytes[offset + i] = c.charCodeAt(0)));
  text(0, 'RIFF');
  view.setUint32(4, bytes.length - 8, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, fmtSize, true);
  if (fmtSize >= 16) {
    view.setUint16(20, opts.extensibleSubformat !== undefined ? 0xfffe : formatCode, true);
    view.setUint16(22, channels, true);
    view.setUint32(24, rate, true);
    view.setUint32(28, (rate * channels * bits) / 8, true);
    view.setUint16(32, (channels * bits) / 8, true);
    view.setUint16(34, bits, true);
  }
  if (opts.extensibleSubformat !== undefined) {
    view.setUint16(36, 22, true);
    view.setUint16(44, opts.extensibleSubformat, true);
  }
  const data = 20 + fmtSize;
  text(data, 'data');
  view.setUint32(data + 4, declared, true);
  for (let i = 0; i < dataBytes; i++) bytes[data + 8 + i] = opts.data ? opts.data[i] : i;
  return bytes;
}

describe('decodeWav', () => {
  it('decodes 16-bit PCM to [-1, 1) (full scale is 2^15)', () => {
    const audio = decodeWav(encode(1, 16000, '16', [0, 16384, -32768, 32767]));
    expect(audio.sampleRate).toBe(16000);
    expect(audio.channels).toHaveLength(1);
    expect(Array.from(audio.channels[0])).toEqual([0, 0.5, -1, 32767 / 32768]);
  });

  it('decodes unsigned 8-bit, 24-bit and 32-bit integer PCM', () => {
    expect(Array.from(decodeWav(encode(1, 8000, '8', [128, 0, 192, 255])).channels[0])).toEqual([
      0,
      -1,
      0.5,
      127 / 128,
    ]);
    expect(Array.from(decodeWav(encode(1, 8000, '24', [-8388608, 4194304])).channels[0])).toEqual([-1, 0.5]);
    expect(Array.from(decodeWav(encode(1, 8000, '32', [-2147483648, 1073741824])).channels[0])).toEqual([-1, 0.5]);
  });

  it('decodes 32- and 64-bit float PCM as stored', () => {
    expect(Array.from(decodeWav(encode(1, 44100, '32f', [0.25, -0.75])).channels[0])).toEqual([0.25, -0.75]);
    const f64 = decodeWav(encode(1, 48000, '64', [0.1, -1]));
    expect(f64.sampleRate).toBe(48000);
    expect(f64.channels[0][0]).toBeCloseTo(0.1, 7);
    expect(f64.channels[0][1]).toBe(-1);
  });

  it('decodes big-endian RIFX files', () => {
    expect(Array.from(decodeWav(encode(1, 8000, '16', [16384, -16384], 'RIFX')).channels[0])).toEqual([0.5, -0.5]);
  });

  it('returns every channel, one channel, or the mix-down', () => {
    const bytes = encode(2, 8000, '16', [
      [16384, 0, -32768],
      [0, 16384, 0],
    ]);
    const all = decodeWav(bytes);
    expect(all.channels.map((c) => Array.from(c))).toEqual([
      [0.5, 0, -1],
      [0, 0.5, 0],
    ]);
    expect(Array.from(decodeWav(bytes, { channel: 1 }).channels[0])).toEqual([0, 0.5, 0]);
    expect(Array.from(decodeWav(bytes, { channel: 'mix' }).channels[0])).toEqual([0.25, 0.25, -0.5]);
    expect(Array.from(toMono(all))).toEqual([0.25, 0.25, -0.5]);
    expect(toMono(all, 0)).toBe(all.channels[0]);
    expect(() => decodeWav(bytes, { channel: 2, name: 'two.wav' })).toThrow(/two\.wav: channel 2 does not exist.*2 channel/);
  });

  it('reads 3-channel 24-bit files', () => {
    const bytes = encode(3, 8000, '24', [[4194304], [0], [-8388608]]);
    expect(decodeWav(bytes).channels.map((c) => c[0])).toEqual([0.5, 0, -1]);
  });

  it('reads WAVE_FORMAT_EXTENSIBLE files through their sub-format', () => {
    const bytes = handMade({ extensibleSubformat: 1, dataBytes: 4 });
    expect(new DataView(bytes.buffer).getUint16(20, true)).toBe(0xfffe);
    expect(Array.from(decodeWav(bytes).channels[0])).toEqual([256 / 32768, 770 / 32768]);
  });

  it('decodes a view at an odd byte offset of a larger buffer', () => {
    const bytes = encode(1, 8000, '16', [16384, -8192]);
    const larger = new Uint8Array(bytes.length + 10);
    larger.set(bytes, 3);
    expect(Array.from(decodeWav(larger.subarray(3, 3 + bytes.length)).channels[0])).toEqual([0.5, -0.25]);
  });

  it('decodes hand-made sample bytes at every depth (values worked by hand, no encoder involved)', () => {
    const decode = (formatCode: number, bits: number, data: number[]) =>
      Array.from(decodeWav(handMade({ formatCode, bits, data: Uint8Array.from(data) })).channels[0]);
    // 8-bit is unsigned with 128 as zero: 0x00 → −1, 0x80 → 0, 0xc0 → 0.5, 0xff → 127/128
    expect(decode(1, 8, [0x00, 0x80, 0xc0, 0xff])).toEqual([-1, 0, 0.5, 127 / 128]);
    // 24-bit little-endian two's complement: 00 00 c0 = −0x400000 = −2^22 → −0.5; ff ff 7f = 2^23 − 1
    expect(decode(1, 24, [0x00, 0x00, 0xc0, 0xff, 0xff, 0x7f])).toEqual([-0.5, (2 ** 23 - 1) / 2 ** 23]);
    // 32-bit: 00 00 00 80 = −2^31 → −1; 00 00 00 20 = 2^29 → 0.25
    expect(decode(1, 32, [0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x20])).toEqual([-1, 0.25]);
    // IEEE float32 0x3e800000 = 0.25 and 0xbf400000 = −0.75, little-endian
    expect(decode(3, 32, [0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x40, 0xbf])).toEqual([0.25, -0.75]);
    // IEEE float64 0x3fe0000000000000 = 0.5
    expect(decode(3, 64, [0, 0, 0, 0, 0, 0, 0xe0, 0x3f])).toEqual([0.5]);
  });

  it('accepts a hand-made minimal file', () => {
    const audio = decodeWav(handMade({ dataBytes: 4 }));
    // bytes 00 01 02 03 little-endian: 0x0100 = 256, 0x0302 = 770
    expect(Array.from(audio.channels[0])).toEqual([256 / 32768, 770 / 32768]);
  });

  describe('bad files get an error naming the file and what is wrong', () => {
    const name = 'lab/take07.wav';
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['empty', new Uint8Array(0), /empty file/],
      ['not RIFF', new TextEncoder().encode('ID3\u0003 this is an mp3, honest'), /not a RIFF\/WAVE file \(starts with "ID3/],
      ['RIFF but not WAVE', new TextEncoder().encode('RIFF\u0004\u0000\u0000\u0000AVI LIST'), /not a RIFF\/WAVE.*"AVI "/],
      ['header cut inside RIFF', new TextEncoder().encode('RIFF\u0000\u0000'), /truncated header/],
      ['header cut inside fmt', handMade({}).slice(0, 30), /truncated header: "fmt " chunk declares 16 bytes but only 10 remain/],
      ['header cut before data', handMade({}).slice(0, 36), /truncated header.*before a "data" chunk/],
      ['fmt chunk too short', handMade({ fmtSize: 12 }), /truncated header: "fmt " chunk has 12 bytes/],
      ['data longer than file', handMade({ dataBytes: 8, declaredDataBytes: 4000 }), /data chunk declares 4000 bytes but only 8 bytes follow/],
      ['zero samples', handMade({ dataBytes: 0 }), /zero samples/],
      ['partial frame', handMade({ channels: 2, dataBytes: 6 }), /not a multiple of the frame size 4/],
      ['µ-law', handMade({ formatCode: 7, bits: 8 }), /unsupported codec µ-law \(format code 7\)/],
      ['A-law', handMade({ formatCode: 6, bits: 8 }), /unsupported codec A-law/],
      ['IMA ADPCM', handMade({ formatCode: 0x11, bits: 4, dataBytes: 8 }), /unsupported codec IMA ADPCM/],
      ['MS ADPCM', handMade({ formatCode: 2, bits: 4 }), /unsupported codec Microsoft ADPCM/],
      ['MP3 in extensible', handMade({ extensibleSubformat: 0x55 }), /unsupported codec MPEG layer 3/],
      ['12-bit PCM', handMade({ bits: 12 }), /unsupported PCM bit depth 12/],
      ['16-bit float', handMade({ formatCode: 3, bits: 16 }), /unsupported IEEE float bit depth 16/],
      ['0 channels', handMade({ channels: 0 }), /0 channels/],
    ];
    it.each(cases)('%s', (_label, bytes, message) => {
      expect(() => decodeWav(bytes, { name })).toThrow(message);
      expect(() => decodeWav(bytes, { name })).toThrow(/^lab\/take07\.wav: /);
    });

    it('a real µ-law file written by wavefile is refused too', () => {
      const wav = new wavefile.WaveFile();
      wav.fromScratch(1, 8000, '16', [0, 1000, -1000, 0]);
      wav.toMuLaw();
      expect(() => decodeWav(wav.toBuffer(), { name })).toThrow(/unsupported codec µ-law/);
    });

    it('non-finite float samples', () => {
      expect(() => decodeWav(encode(1, 8000, '32f', [0, Number.NaN]), { name })).toThrow(/non-finite sample NaN at frame 1/);
    });
  });

  it('skips unknown chunks and the pad byte after odd-sized chunks', () => {
    const base = handMade({ dataBytes: 4 });
    const junk = new Uint8Array([...new TextEncoder().encode('JUNK'), 3, 0, 0, 0, 9, 9, 9, 0]);
    const bytes = new Uint8Array(base.length + junk.length);
    bytes.set(base.subarray(0, 12));
    bytes.set(junk, 12);
    bytes.set(base.subarray(12), 12 + junk.length);
    expect(parseWavHeader(bytes).frames).toBe(2);
    expect(decodeWav(bytes).channels[0]).toHaveLength(2);
  });
});

describe('readWav / readWavInfo', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audio-features-wav-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file and names the path in errors', async () => {
    const good = join(dir, 'good.wav');
    await writeFile(good, encode(2, 22050, '16', [new Array(100).fill(8192), new Array(100).fill(-8192)]));
    const audio = await readWav(good, { channel: 0 });
    expect(audio.sampleRate).toBe(22050);
    expect(audio.channels[0][99]).toBe(0.25);
    const info = await readWavInfo(good);
    expect(info).toMatchObject({ sampleRate: 22050, numChannels: 2, bitsPerSample: 16, frames: 100, formatCode: 1 });

    const bad = join(dir, 'cut.wav');
    const bytes = encode(1, 8000, '16', new Array(50).fill(0));
    await writeFile(bad, bytes.slice(0, bytes.length - 20));
    await expect(readWav(bad)).rejects.toThrow(`${bad}: data chunk declares 100 bytes but only 80 bytes follow`);
    await expect(readWavInfo(bad)).rejects.toThrow(`${bad}: data chunk declares 100 bytes`);
  });

  it('readWavInfo reads on past its 4 KiB prefix when the fmt chunk lies further', async () => {
    const base = handMade({ dataBytes: 4 });
    const junkSize = 70000;
    const bytes = new Uint8Array(base.length + 8 + junkSize);
    bytes.set(base.subarray(0, 12));
    bytes.set(new TextEncoder().encode('JUNK'), 12);
    new DataView(bytes.buffer).setUint32(16, junkSize, true);
    bytes.set(base.subarray(12), 20 + junkSize);
    const path = join(dir, 'junk-first.wav');
    await writeFile(path, bytes);
    expect((await readWavInfo(path)).frames).toBe(2);
  });
});

describe('encodeWav / writeWav', () => {
  const stereo = { sampleRate: 22050, channels: [Float32Array.from([0, 0.5, -1, 1, 1.5]), Float32Array.from([-0.25, 0, 0, 0, -2])] };

  it('round-trips through decodeWav at every bit depth, clipping integers to ±1', () => {
    for (const [bitDepth, tolerance] of [['16', 2 ** -15], ['24', 2 ** -23], ['32', 2 ** -31], ['32f', 0]] as const) {
      const decoded = decodeWav(encodeWav(stereo, { bitDepth }));
      expect(decoded.sampleRate).toBe(22050);
      expect(parseWavHeader(encodeWav(stereo, { bitDepth })).bitsPerSample).toBe(bitDepth === '32f' ? 32 : Number(bitDepth));
      decoded.channels.forEach((channel, c) =>
        channel.forEach((value, i) => {
          const expected = bitDepth === '32f' ? stereo.channels[c][i] : Math.max(-1, Math.min(1, stereo.channels[c][i]));
          expect(Math.abs(value - expected)).toBeLessThanOrEqual(tolerance * 1.01);
        }),
      );
    }
  });

  it('writes atomically and rejects bad input', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'audio-features-write-'));
    try {
      await writeWav(join(dir, 'out.wav'), stereo);
      expect((await readWav(join(dir, 'out.wav'))).channels).toHaveLength(2);
      // overwriting replaces the file whole and leaves no temporary file behind
      await writeWav(join(dir, 'out.wav'), { sampleRate: 8000, channels: [Float32Array.from([0.5])] });
      expect((await readWav(join(dir, 'out.wav'))).sampleRate).toBe(8000);
      expect(await readdir(dir)).toEqual(['out.wav']);
      // a failed rename (the target is a folder) removes the temporary file and keeps the error
      await mkdir(join(dir, 'taken.wav'));
      await expect(writeWav(join(dir, 'taken.wav'), stereo)).rejects.toThrow();
      expect((await readdir(dir)).sort()).toEqual(['out.wav', 'taken.wav']);
      expect(() => encodeWav({ sampleRate: 8000, channels: [new Float32Array(2), new Float32Array(3)] })).toThrow(/equal length/);
      expect(() => encodeWav({ sampleRate: 8000.5, channels: [new Float32Array(2)] })).toThrow(/sampleRate must be a positive integer/);
      expect(() => encodeWav(stereo, { bitDepth: '8' as '16' })).toThrow(/bitDepth must be/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
