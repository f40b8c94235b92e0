import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DatasetItem } from '@lab/audio-features';
import { planRun } from '@lab/experiment-runner';
import { EXPERIMENTS } from './experiments';
import { checkLabPlan, labPlanCheck, scaleOverrides, SCALES } from './scales';
import { simulateDataset } from './simulator';

const experiment = (name: string) => EXPERIMENTS.find((e) => e.name === name)!;

/** Recordings as the scanner lists them (no files needed): `takes` per angle, per material and frequency. */
function items(takes: number | ((angle: number) => number), materials = ['plastic', 'box'], frequencies = [500, 1000, 3000], angles = [0, 90, 180]): DatasetItem[] {
  return materials.flatMap((material) =>
    frequencies.flatMap((freqHz) =>
      angles.flatMap((angleDeg) =>
        Array.from({ length: typeof takes === 'number' ? takes : takes(angleDeg) }, (_, t) => ({
          path: `/d/${material}/${freqHz}Hz/deg${angleDeg}/take${t}.wav`,
          material,
          freqHz,
          angleDeg,
          take: `take${t}`,
        })),
      ),
    ),
  );
}

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

describe('checkLabPlan', () => {
  const tiny = (name: string, extra: Record<string, unknown> = {}) => planRun(experiment(name), { ...scaleOverrides(name, 'tiny'), ...extra });

  it('accepts every experiment at every scale on the default data set size', () => {
    for (const e of EXPERIMENTS) for (const scale of SCALES) expect(checkLabPlan(e.name, planRun(e, scaleOverrides(e.name, scale)), items(9)), `${e.name} ${scale}`).toEqual([]);
  });

  it('names the field of an invalid parameter (epochs=-1, batchSize=0), once per variant', () => {
    const overrides = scaleOverrides('material', 'tiny');
    const plan = planRun(experiment('material'), { ...overrides, params: { ...overrides.params, epochs: -1, batchSize: 0 } });
    expect(checkLabPlan('material', plan)).toEqual([
      'experiment material: params.epochs: expected a positive integer, got -1',
      'experiment material: params.batchSize: expected a positive integer, got 0',
    ]);
    // A value from the sweep names the variants it breaks.
    const swept = planRun(experiment('batch-size'), { ...scaleOverrides('batch-size', 'tiny'), sweep: { list: [{ batchSize: 0 }, { batchSize: 4 }, { batchSize: -2 }] } });
    expect(checkLabPlan('batch-size', swept)).toEqual([
      'experiment batch-size: params.batchSize: expected a positive integer, got 0 (variant batchSize=0)',
      'experiment batch-size: params.batchSize: expected a positive integer, got -2 (variant batchSize=-2)',
    ]);
    const ranker = planRun(experiment('ranker-gradients'), { ...scaleOverrides('ranker-gradients', 'tiny'), params: { validationFraction: 1, input: '1000' } });
    const problems = checkLabPlan('ranker-gradients', ranker);
    expect(problems).toContain('experiment ranker-gradients: params.validationFraction: expected a number between 0 and 1 (exclusive), got 1');
    expect(problems.some((p) => /params\.input "1000": expected frequencies like "1000Hz"/.test(p))).toBe(true);
  });

  it('refuses more folds than the smallest angle class has takes, naming folds, the class and the largest usable k', () => {
    const data = items((angle) => (angle === 90 ? 2 : 5));
    expect(checkLabPlan('material', tiny('material'), data)).toEqual([]);
    const three = tiny('material', { folds: 3 });
    expect(checkLabPlan('material', three, data)).toEqual([
      'experiment material: folds: 3 folds need at least 3 takes in every angle class, but plastic at 1000Hz has only 2 takes at 90°; expected folds ≤ 2 (the smallest class) or more takes',
      'experiment material: folds: 3 folds need at least 3 takes in every angle class, but box at 1000Hz has only 2 takes at 90°; expected folds ≤ 2 (the smallest class) or more takes',
    ]);
    // A 1-take class cannot be cross-validated at all.
    expect(checkLabPlan('material', tiny('material'), items((angle) => (angle === 0 ? 1 : 4)))[0]).toMatch(/plastic at 1000Hz has only 1 take at 0°; expected at least 2 takes per angle class/);
  });

  it("runs the trials' own splits: a split with no validation takes is refused before any trial runs", () => {
    expect(checkLabPlan('material', tiny('material'), items(2))[0]).toMatch(
      /^experiment material: data: trial v0-s0-f0's split of plastic at 1000Hz \(takes per angle: 2 at 0°, 2 at 90°, 2 at 180°, 2 folds, validationFraction 0\.1\) leaves no validation takes/,
    );
  });

  it('names missing recordings and a single angle class', () => {
    expect(checkLabPlan('material', tiny('material'), items(4, ['plastic']))).toEqual(['experiment material: data: no recordings of box at 1000Hz']);
    expect(checkLabPlan('ranker-gradients', tiny('ranker-gradients'), items(4, ['plastic', 'box'], [3000], [36]))[0]).toBe(
      'experiment ranker-gradients: data: plastic at 3000Hz has 1 angle class (36°); expected at least 2',
    );
  });
});

describe('labPlanCheck', () => {
  it('checks a plan against the recordings its params name (for a runner hook before the run folder exists)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'angle-lab-plan-check-'));
    await simulateDataset({ root, materials: ['plastic', 'box'], frequenciesHz: [1000], anglesDeg: [0, 90], takes: 1 });
    const plan = planRun(experiment('material'), scaleOverrides('material', 'tiny', { data: root }));
    expect((await labPlanCheck('material')(plan))[0]).toMatch(/^experiment material: folds: 2 folds need at least 2 takes in every angle class, but plastic at 1000Hz has only 1 take at 0°/);
    const missing = planRun(experiment('material'), scaleOverrides('material', 'tiny', { data: join(root, 'nope') }));
    expect((await labPlanCheck('material')(missing))[0]).toMatch(/^experiment material: data: /);
    const bad = planRun(experiment('material'), { ...scaleOverrides('material', 'tiny', { data: root }), params: { data: root, epochs: 0 } });
    expect(await labPlanCheck('material')(bad)).toEqual(['experiment material: params.epochs: expected a positive integer, got 0']);
  });
});
