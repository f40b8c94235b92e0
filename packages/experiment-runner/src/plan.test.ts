import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineExperiment } from './define-experiment';
import { loadConfigFile, mergeOverrides, parseSetArgs, planRun } from './plan';

const noop = async () => {};

const base = defineExperiment({
  name: 'plan',
  description: 'planning',
  hypotheses: [],
  params: { lr: 0.001, loss: 'ce', bins: 10, model: { depth: 18 } },
  sweep: { grid: { loss: ['ce', 'ghm'], bins: [5, 10] } },
  seeds: 2,
  trial: noop,
});

describe('planRun', () => {
  it('crosses grid axes with seeds and gives stable ids', () => {
    const plan = planRun(base);
    expect(plan.trials).toHaveLength(2 * 2 * 2);
    expect(plan.trials.map((t) => t.id)).toEqual(['v0-s0', 'v0-s1', 'v1-s0', 'v1-s1', 'v2-s0', 'v2-s1', 'v3-s0', 'v3-s1']);
    expect(plan.trials[2].params).toEqual({ lr: 0.001, loss: 'ce', bins: 10, model: { depth: 18 } });
    expect(plan.trials[2].variantLabel).toBe('loss=ce, bins=10');
    expect(plan.varied).toEqual(['loss', 'bins']);
  });

  it('crosses list entries with the grid, and folds', () => {
    const plan = planRun(base, { sweep: { grid: { bins: [5, 10] }, list: [{ loss: 'ce' }, { loss: 'ghm', lr: 0.01 }] }, seeds: [7], folds: 3 });
    expect(plan.trials).toHaveLength(2 * 2 * 3);
    expect(plan.trials[0]).toMatchObject({ id: 'v0-s7-f0', seed: 7, fold: 0 });
    expect(plan.trials.find((t) => t.variant === 3)!.params).toMatchObject({ loss: 'ghm', lr: 0.01, bins: 10 });
  });

  it('lets --set override defaults and collapse a swept axis', () => {
    const plan = planRun(base, parseSetArgs(['lr=5e-4', 'loss=ghm', 'model.depth=34', 'seeds=3']));
    expect(plan.trials).toHaveLength(2 * 3);
    expect(plan.trials.every((t) => t.params.loss === 'ghm' && t.params.lr === 0.0005 && (t.params.model as { depth: number }).depth === 34)).toBe(true);
    expect(plan.varied).toEqual(['bins']);
  });

  it('refuses folds below 2 before anything runs: one fold holds out everything or nothing', () => {
    for (const folds of [1, 0, -3, 2.5]) expect(() => planRun(base, { folds }), String(folds)).toThrow(`folds: expected an integer ≥ 2 (k-fold cross-validation holds out one fold of k), got ${folds}`);
    expect(() => planRun(base, parseSetArgs(['folds=abc']))).toThrow(/folds: expected an integer ≥ 2 .*, got "abc"/);
    expect(planRun(base, { folds: 2 }).trials).toHaveLength(2 * 2 * 2 * 2);
  });

  it('names the field in validation errors', () => {
    expect(() => planRun(base, parseSetArgs(['lr=fast']))).toThrow(/params: lr: .*expected number, received string/);
    expect(() => planRun(base, parseSetArgs(['lrr=1']))).toThrow(/lrr/);
    expect(() => planRun(base, { sweep: { grid: { bins: [5, 'many'] } } })).toThrow(/variant 1 \(bins=many\).*bins: .*expected number/);
    expect(() => planRun(base, parseSetArgs(['model.width=3']))).toThrow(/unknown parameter "model\.width" \(known in model: depth\)/);
    expect(() => planRun(base, parseSetArgs(['seeds=0']))).toThrow(/seeds/);
  });

  it('accepts a zod schema with defaults', () => {
    const exp = defineExperiment({
      name: 'zod',
      description: '',
      hypotheses: [],
      params: z.object({ lr: z.number().positive().default(0.1), loss: z.enum(['ce', 'ghm']).default('ce') }),
      seeds: [1],
      trial: noop,
    });
    expect(exp.defaults).toEqual({ lr: 0.1, loss: 'ce' });
    expect(() => planRun(exp, parseSetArgs(['loss=focal']))).toThrow(/loss/);
    expect(() => planRun(exp, parseSetArgs(['momentum=0.9']))).toThrow(/unknown parameter "momentum"/);
    expect(() => planRun(exp, parseSetArgs(['lr=-1']))).toThrow(/lr: .*>0/);
  });

  it('rejects a misspelt nested key that a non-strict zod object would silently drop', () => {
    const exp = defineExperiment({
      name: 'nested',
      description: '',
      hypotheses: [],
      params: z.object({ model: z.object({ depth: z.number().default(18) }).default({ depth: 18 }) }),
      seeds: 1,
      trial: noop,
    });
    expect(planRun(exp, parseSetArgs(['model.depth=34'])).trials[0].params).toEqual({ model: { depth: 34 } });
    expect(() => planRun(exp, parseSetArgs(['model.detph=34']))).toThrow('overrides: unknown parameter "model.detph" (known in model: depth)');
  });
});

describe('defineExperiment', () => {
  it('rejects malformed definitions with the field named', () => {
    expect(() => defineExperiment({ name: '', description: '', hypotheses: [], params: {}, seeds: 1, trial: noop })).toThrow(/name/);
    expect(() => defineExperiment({ name: 'x', description: '', hypotheses: [], params: {}, seeds: [1, 1], trial: noop })).toThrow(/seeds must not repeat/);
    expect(() => defineExperiment({ name: 'x', description: '', hypotheses: [], params: {}, seeds: 1, folds: 0, trial: noop })).toThrow(/folds/);
  });

  it('records the module it was defined in, except a test file (workers could not import it)', async () => {
    const { tiny } = await import('../fixtures/tiny-experiment');
    expect(tiny.file).toMatch(/fixtures\/tiny-experiment\.ts$/);
    expect(base.file).toBeUndefined();
  });
});

describe('overrides from files and --set', () => {
  it('says a config file that is a folder or missing is not the YAML or JSON file expected, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'er-plan-dir-'));
    expect(() => loadConfigFile(dir)).toThrow(`config file ${dir}: is a folder; expected a YAML or JSON file of { params, sweep, seeds, folds }`);
    expect(() => loadConfigFile(join(dir, 'nope.yaml'))).toThrow(/nope\.yaml: cannot read \(ENOENT.*\); expected a YAML or JSON file/);
  });

  it('parses YAML values and dotted keys', () => {
    expect(parseSetArgs(['a=1', 'b=true', 'c=[1, 2]', 'd=ghm', 'e.f=0.5', 'g='])).toEqual({ params: { a: 1, b: true, c: [1, 2], d: 'ghm', e: { f: 0.5 }, g: '' } });
    expect(() => parseSetArgs(['novalue'])).toThrow(/key=value/);
  });

  it('loads YAML config files and names the bad field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'er-plan-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'params:\n  lr: 0.01\nseeds: [3, 4]\nsweep:\n  grid:\n    bins: [20]\n');
    const merged = mergeOverrides(loadConfigFile(good), parseSetArgs(['lr=0.02']));
    const plan = planRun(base, merged);
    expect(plan.trials.map((t) => [t.params.lr, t.params.bins, t.seed])).toEqual([
      [0.02, 20, 3],
      [0.02, 20, 4],
    ]);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'seeds: many\n');
    expect(() => loadConfigFile(bad)).toThrow(/bad\.yaml: seeds: /);
    const unknown = join(dir, 'unknown.json');
    writeFileSync(unknown, '{"parms": {}}');
    expect(() => loadConfigFile(unknown)).toThrow(/unknown\.json.*parms/);
  });
});
