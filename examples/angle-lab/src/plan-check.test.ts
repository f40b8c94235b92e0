/**
 * `lab run <experiment file> --set epochs=-1` fails up front: every lab experiment has a `checkPlan`
 * (labPlanCheck), which the runner calls once the plan is built and before the run folder exists.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError, runExperiment } from '@lab/experiment-runner';
import { describe, expect, it } from 'vitest';
import { EXPERIMENTS } from './experiments';
import { scaleOverrides } from './scales';

const repo = resolve(import.meta.dirname, '../../..');
const lab = join(repo, 'packages', 'experiment-runner', 'bin', 'lab.mjs');
const quiet = { workers: 0, progress: 'none' as const, report: false, log: () => {} };

describe("the lab's experiments check their plan before the run folder exists", () => {
  it('runExperiment refuses epochs=-1 with an InputError naming the field, for every experiment, and creates no run folder', async () => {
    const runsDir = join(mkdtempSync(join(tmpdir(), 'angle-lab-plan-check-')), 'runs');
    for (const experiment of EXPERIMENTS) {
      expect(experiment.checkPlan, experiment.name).toBeTypeOf('function');
      const overrides = scaleOverrides(experiment.name, 'tiny');
      const run = runExperiment(experiment, { runsDir, overrides: { ...overrides, params: { ...overrides.params, epochs: -1 } }, ...quiet });
      await expect(run, experiment.name).rejects.toThrow(InputError);
      await expect(run, experiment.name).rejects.toThrow(`experiment ${experiment.name}: params.epochs: expected a positive integer, got -1`);
    }
    expect(existsSync(runsDir)).toBe(false);
  });

  it('`lab run <experiment file> --set epochs=-1` exits 2 naming epochs, before any run folder exists', () => {
    const runsDir = join(mkdtempSync(join(tmpdir(), 'angle-lab-plan-check-cli-')), 'runs');
    const file = join(repo, 'examples', 'angle-lab', 'src', 'experiment-material.ts');
    const r = spawnSync(process.execPath, [lab, 'run', file, '--set', 'epochs=-1', '--runs-dir', runsDir, '--progress', 'none'], {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', LAB_TFJS_TRAIN_NATIVE: 'off' },
      timeout: 60_000,
    });
    expect(r.stderr).toBe('lab: experiment material: params.epochs: expected a positive integer, got -1\n');
    expect(r.status).toBe(2);
    expect(existsSync(runsDir)).toBe(false);
  });
});
