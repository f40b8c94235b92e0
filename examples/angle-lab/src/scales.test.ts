import { describe, expect, it } from 'vitest';
import { planRun } from '@lab/experiment-runner';
import { EXPERIMENTS } from './experiments';
import { scaleOverrides, SCALES } from './scales';

describe('scales', () => {
  it('give every experiment valid settings at every scale', () => {
    for (const experiment of EXPERIMENTS) {
      for (const scale of SCALES) {
        const plan = planRun(experiment, scaleOverrides(experiment.name, scale, { data: '/d', cacheDir: '/c' }));
        expect(plan.trials.length, `${experiment.name} ${scale}`).toBeGreaterThan(0);
        expect(plan.baseParams.data).toBe('/d');
      }
    }
  });

  it('full is the seed reports\' settings: ResNet-18 at full width, 30 epochs, 5 seeds × 5 folds', () => {
    const plan = planRun(EXPERIMENTS.find((e) => e.name === 'frequency-loss')!, scaleOverrides('frequency-loss', 'full'));
    expect(plan.baseParams).toMatchObject({ depth: 18, width: 1, epochs: 30, featureSize: 64 });
    expect(plan.seeds).toHaveLength(5);
    expect(plan.folds).toBe(5);
    expect(plan.trials).toHaveLength(3 * 2 * 5 * 5);
    const ranker = planRun(EXPERIMENTS.find((e) => e.name === 'ranker-gradients')!, scaleOverrides('ranker-gradients', 'full'));
    expect(ranker.baseParams).toMatchObject({ batchSize: 4, lr: 1e-3, weightDecay: 1e-5, margin: 10, epochs: 30, probeEvery: 5 });
  });

  it('tiny keeps the test small and demo keeps every experiment\'s full grid where it matters', () => {
    const count = (scale: (typeof SCALES)[number]) =>
      EXPERIMENTS.reduce((n, e) => n + planRun(e, scaleOverrides(e.name, scale)).trials.length, 0);
    expect(count('tiny')).toBeLessThanOrEqual(60);
    const ghm = planRun(EXPERIMENTS.find((e) => e.name === 'ghm-sensitivity')!, scaleOverrides('ghm-sensitivity', 'demo'));
    expect(new Set(ghm.trials.map((t) => t.variant)).size).toBe(16);
  });

  it('names an unknown experiment', () => {
    expect(() => scaleOverrides('nope', 'demo')).toThrow(/no settings for experiment "nope"/);
  });
});
