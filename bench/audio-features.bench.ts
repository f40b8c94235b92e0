// Benchmark of @lab/audio-features: STFT time for a 1 s clip, and a feature-cache hit against
// computing the features (target: a hit ≥ 20× faster). Run: node_modules/.bin/tsx bench/audio-features.bench.ts
// Timings are medians; compute and cache-hit passes alternate so machine load affects both alike.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computeFeatures,
  DEFAULT_FEATURE_OPTIONS,
  FeatureCache,
  loadFeatures,
  stft,
  writeWav,
  type DatasetItem,
} from '@lab/audio-features';

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

function time(fn: () => unknown, repeats: number): number {
  for (let i = 0; i < 3; i++) fn(); // warm-up (JIT, Meyda's window tables)
  const runs: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    fn();
    runs.push(performance.now() - start);
  }
  return median(runs);
}

function tone(sampleRate: number, seconds: number, freq: number, seed: number): Float32Array {
  const out = new Float32Array(Math.round(sampleRate * seconds));
  let state = seed;
  for (let i = 0; i < out.length; i++) {
    state = (state * 1664525 + 1013904223) >>> 0;
    out[i] = 0.5 * Math.sin((2 * Math.PI * freq * i) / sampleRate) + 0.01 * (state / 2 ** 32 - 0.5);
  }
  return out;
}

const { fftSize, hopSize } = DEFAULT_FEATURE_OPTIONS;
console.log(`# @lab/audio-features bench (node ${process.version}; medians)`);
for (const sampleRate of [16000, 48000]) {
  const clip = tone(sampleRate, 1, 1000, 1);
  const stftMs = time(() => stft(clip, { sampleRate, fftSize, hopSize }), 21);
  const featuresMs = time(() => computeFeatures(clip, sampleRate, 1000), 21);
  const frames = 1 + Math.floor(clip.length / hopSize);
  console.log(
    `stft 1 s @ ${sampleRate} Hz (fftSize ${fftSize}, hop ${hopSize}, ${frames} frames): ${stftMs.toFixed(2)} ms` +
      ` (${((1000 * stftMs) / frames).toFixed(1)} µs/frame); computeFeatures: ${featuresMs.toFixed(2)} ms`,
  );
}

const dir = await mkdtemp(join(tmpdir(), 'audio-features-bench-'));
try {
  for (const sampleRate of [48000, 16000]) {
    const items: DatasetItem[] = [];
    for (let i = 0; i < 36; i++) {
      const path = join(dir, `${sampleRate}-take${String(i).padStart(2, '0')}.wav`);
      await writeWav(path, { sampleRate, channels: [tone(sampleRate, 1.25, 1000, i + 2)] });
      items.push({ path, material: 'plastic', freqHz: 1000, angleDeg: 36 * (i % 6), take: `take${i}` });
    }
    const cache = new FeatureCache(join(dir, `cache-${sampleRate}`));
    await loadFeatures(items, { cache }); // fill the cache
    const computeRuns: number[] = [];
    const hitRuns: number[] = [];
    for (let round = 0; round < 9; round++) {
      let start = performance.now();
      await loadFeatures(items);
      computeRuns.push((performance.now() - start) / items.length);
      start = performance.now();
      await loadFeatures(items, { cache });
      hitRuns.push((performance.now() - start) / items.length);
    }
    const computeMs = median(computeRuns.slice(2));
    const hitMs = median(hitRuns.slice(2));
    // Median of per-round ratios: each round runs compute then hits back to back, so a busy spell
    // on the (shared) machine slows both sides of one ratio.
    const ratio = median(computeRuns.slice(2).map((c, i) => c / hitRuns[i + 2]));
    console.log(
      `loadFeatures, 1.25 s ${sampleRate / 1000} kHz 16-bit WAV: compute (read + decode + features) ${computeMs.toFixed(2)} ms/file,` +
        ` cache hit (header check + read + sha256 + entry) ${hitMs.toFixed(2)} ms/file: hit is ${ratio.toFixed(1)}x faster` +
        ` (median of per-round ratios; target >= 20x) ${ratio >= 20 ? 'OK' : 'BELOW TARGET'}`,
    );
    console.log(`  cache stats: ${JSON.stringify(cache.stats())}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
