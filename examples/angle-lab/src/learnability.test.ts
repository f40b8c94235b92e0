import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeFeatures, readWav, scanDataset, toMono, type DatasetItem } from '@lab/audio-features';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SIMULATION, simulateDataset } from './simulator';

/**
 * Is the angle learnable from the default data, but not trivially? A nearest-centroid classifier
 * on the task's default features (audio-features' computeFeatures), leave-one-take-out within each
 * material: for every take number t, the centroids of the six angles come from the other eight
 * takes and the six recordings of take t are classified by the nearest centroid (Euclidean).
 */
async function nearestCentroidAccuracy(items: DatasetItem[]): Promise<{ accuracy: number; n: number }> {
  const features = await Promise.all(
    items.map(async (item) => {
      const audio = await readWav(item.path);
      return computeFeatures(toMono(audio), audio.sampleRate, item.freqHz).data;
    }),
  );
  const angles = [...new Set(items.map((i) => i.angleDeg))].sort((a, b) => a - b);
  let correct = 0;
  let n = 0;
  for (const material of new Set(items.map((i) => i.material))) {
    const inMaterial = items.map((item, index) => ({ item, index })).filter((e) => e.item.material === material);
    for (const take of new Set(inMaterial.map((e) => e.item.take))) {
      const centroids = angles.map((angle) => {
        const members = inMaterial.filter((e) => e.item.angleDeg === angle && e.item.take !== take);
        const centroid = new Float64Array(features[members[0].index].length);
        for (const { index } of members) features[index].forEach((v, j) => (centroid[j] += v / members.length));
        return centroid;
      });
      for (const { item, index } of inMaterial.filter((e) => e.item.take === take)) {
        const distances = centroids.map((c) => features[index].reduce((s, v, j) => s + (v - c[j]) ** 2, 0));
        const predicted = angles[distances.indexOf(Math.min(...distances))];
        if (predicted === item.angleDeg) correct++;
        n++;
      }
    }
  }
  return { accuracy: correct / n, n };
}

describe('the default simulated data', () => {
  let root: string;
  const accuracy: Record<number, number> = {};

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'angle-lab-learn-'));
    await simulateDataset({ root });
    for (const freqHz of DEFAULT_SIMULATION.frequenciesHz) {
      const result = await nearestCentroidAccuracy(await scanDataset(root, { freqsHz: [freqHz] }));
      expect(result.n).toBe(2 * 6 * 9);
      accuracy[freqHz] = result.accuracy;
    }
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('has the seed reports\' size: 2 materials × 3 frequencies × 6 angles × 9 takes', async () => {
    expect((await scanDataset(root)).length).toBe(324);
  });

  it('at 1000 Hz a nearest-centroid classifier is clearly above chance (1/6) and clearly below 100 %', () => {
    expect(accuracy[1000]).toBeGreaterThan(0.4);
    expect(accuracy[1000]).toBeLessThan(0.9);
  });

  it('every frequency is above chance, and 3000 Hz (most sensitive to position jitter) is the hardest', () => {
    for (const freqHz of DEFAULT_SIMULATION.frequenciesHz) expect(accuracy[freqHz], `${freqHz} Hz`).toBeGreaterThan(0.3);
    expect(accuracy[3000]).toBeLessThan(accuracy[1000]);
    expect(accuracy[3000]).toBeLessThan(accuracy[500]);
  });
});
