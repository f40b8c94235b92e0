import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareRuns } from './compare-runs';
import { defineExperiment } from './define-experiment';
import { buildReport } from './report';
import type { MetricsLine } from './run-folder';
import { runExperiment } from './run-experiment';
import { IncompleteMetricsError } from './run-folder';
import { finalValues, summarizeRun } from './summary';

let seq = 0;
const line = (metrics: Record<string, unknown>): MetricsLine => ({ trial: 't', seq: seq++, time: '', ...metrics });

describe('finalValues', () => {
  it("takes the last epoch's row: a metric absent there is absent, not an earlier epoch's value", () => {
    const lines = [
      line({ epoch: 1, val_acc: 0.5 }),
      line({ epoch: 2, val_acc: 0.6 }),
      line({ epoch: 2, gns: 40 }), // a probe, logged on its own line at epoch 2
      line({ epoch: 3, val_acc: 0.7, gns: null }),
      line({ test_acc: 0.65 }), // after training, no epoch
    ];
    const { final, lastLogged } = finalValues(lines);
    expect(final).toEqual({ val_acc: 0.7, test_acc: 0.65 });
    expect(lastLogged).toEqual({ val_acc: { value: 0.7, epoch: 3 }, gns: { value: 40, epoch: 2 }, test_acc: { value: 0.65 } });
  });

  it('merges every line of the last epoch, lets later lines without an epoch override, and keeps trial-level metrics', () => {
    const lines = [
      line({ params: 1000 }), // logged once before training
      line({ epoch: 1, loss: 2 }),
      line({ epoch: 2, loss: 1 }),
      line({ epoch: 2, gns: 12 }),
      line({ loss: 0.9 }), // re-evaluated after restoring the best weights
    ];
    expect(finalValues(lines).final).toEqual({ params: 1000, loss: 0.9, gns: 12 });
  });

  it('uses steps when no line has an epoch, and the last values when there is neither', () => {
    expect(finalValues([line({ step: 1, loss: 3, gns: 5 }), line({ step: 2, loss: 2 })]).final).toEqual({ loss: 2 });
    expect(finalValues([line({ a: 1 }), line({ b: 2 }), line({ a: 3 })]).final).toEqual({ a: 3, b: 2 });
    expect(finalValues([])).toEqual({ final: {}, lastLogged: {} });
  });
});

describe('summary and report of a metric logged only at probe epochs', () => {
  const probed = defineExperiment({
    name: 'probed',
    description: 'gns is probed at epochs 2 and 4 of 5; test_acc is logged once after training',
    hypotheses: [],
    params: { arm: 'a' },
    sweep: { list: [{ arm: 'a' }, { arm: 'b' }] },
    seeds: 2,
    backend: 'none',
    primaryMetric: { name: 'test_acc', goal: 'max' },
    async trial(params, seed, ctx) {
      const shift = params.arm === 'b' ? 0.05 : 0;
      for (let epoch = 1; epoch <= 5; epoch++) {
        ctx.log({ epoch, val_acc: 0.5 + epoch / 20 + shift + seed / 100 });
        if (epoch % 2 === 0) ctx.log({ epoch, gns: 100 * epoch + seed });
      }
      ctx.log({ test_acc: 0.6 + shift + seed / 50 });
    },
  });

  it('keeps gns out of "final", shows it as a labelled last logged value, and prints no best table for a once-logged metric', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-final-'));
    const runDir = await runExperiment(probed, { runsDir, workers: 0, progress: 'none', log: () => {}, report: false });
    const summary = summarizeRun(runDir);
    const t = summary.trials.find((x) => x.variant === 0 && x.seed === 1)!;
    expect(t.final).toEqual({ val_acc: 0.5 + 5 / 20 + 0.01, test_acc: 0.6 + 0.02 });
    expect(t.lastLogged.gns).toEqual({ value: 401, epoch: 4 });
    expect(t.primaryLogged).toBe(1);
    expect(summary.variants[0].metrics.gns).toBeUndefined();

    const md = readFileSync((await buildReport(runDir, probed)).markdownPath, 'utf8');
    // Final table: gns is a column, shown as "–" (the last epoch, 5, did not log it).
    expect(md).toMatch(/\| variant \| n \| test_acc \| val_acc \| gns \|\n\|---\|---\|---\|---\|---\|\n\| arm=a \| 2 \| [^|]+ \| [^|]+ \| – \|/);
    expect(md).toContain('### Last logged value of metrics missing from the last epoch');
    // gns at epoch 4 for seeds 0 and 1: 400 and 401, mean 400.5 (3 digits: 401), sd 0.7071, sem 0.5,
    // t(0.975, 1) = 12.706: half-width 6.35.
    expect(md).toContain('| arm=a | 401 ± 6.35 (95 % CI, n = 2), at epoch 4 |');
    // test_acc differs by exactly 0.05 for every seed: degenerate, not "significant".
    expect(md).toContain('- arm=b − arm=a on test_acc = 0.05: all 2 paired differences are equal (d = 0.05), so their spread is zero and no test is possible');
    expect(md).not.toContain('Best test_acc during training');
    // The comparison is possible on gns's last logged values too (the metric was logged).
    expect(compareRuns([runDir], { metric: 'gns' }).rows.every((r) => r.value === undefined)).toBe(true);
  });
});

describe("primaryMetric.compare: 'none'", () => {
  it('leaves out the generic comparisons against the first variant, and only those', async () => {
    const make = (compare?: 'none') =>
      defineExperiment({
        name: `cmp-${compare ?? 'default'}`,
        description: 'two arms, comparisons on or off',
        hypotheses: [],
        params: { arm: 'a' },
        sweep: { list: [{ arm: 'a' }, { arm: 'b' }] },
        seeds: 3,
        backend: 'none',
        primaryMetric: { name: 'acc', goal: 'max', ...(compare ? { compare } : {}) },
        async trial(params, seed, ctx) {
          ctx.log({ acc: (params.arm === 'b' ? 0.1 : 0) + [0.5, 0.7, 0.6][seed] + seed * seed * 0.01 * (params.arm === 'b' ? 1 : -1) });
        },
      });
    const runsDir = mkdtempSync(join(tmpdir(), 'er-compare-'));
    const quiet = { runsDir, workers: 0, progress: 'none' as const, log: () => {}, report: false };
    const withComparisons = summarizeRun(await runExperiment(make(), quiet));
    const without = summarizeRun(await runExperiment(make('none'), quiet));
    expect(withComparisons.comparisons).toHaveLength(1);
    expect(without.comparisons).toHaveLength(0);
    expect(without.variants.map((v) => v.metrics.acc?.mean)).toEqual(withComparisons.variants.map((v) => v.metrics.acc?.mean));
  });
});

describe('a completed trial with a line missing from metrics.jsonl', () => {
  it('is refused by name (file, line, trial) rather than summarised from fewer lines, unless allowed', async () => {
    const walk = defineExperiment({
      name: 'walk',
      description: 'three epochs, two seeds',
      hypotheses: [],
      params: {},
      seeds: 2,
      backend: 'none',
      primaryMetric: { name: 'acc', goal: 'max' },
      async trial(_params, seed, ctx) {
        for (let epoch = 1; epoch <= 3; epoch++) ctx.log({ epoch, acc: seed + epoch / 10 });
      },
    });
    const runDir = await runExperiment(walk, { runsDir: mkdtempSync(join(tmpdir(), 'er-gap-')), workers: 0, progress: 'none', log: () => {}, report: false });
    const path = join(runDir, 'metrics.jsonl');
    const lines = readFileSync(path, 'utf8').split('\n');
    // Remove v0-s1's second line (seq 1): every remaining line parses, only the seq numbers show the loss.
    const removed = lines.findIndex((l) => l.startsWith('{"trial":"v0-s1","seq":1,'));
    expect(removed).toBeGreaterThan(-1);
    writeFileSync(path, lines.filter((_, i) => i !== removed).join('\n'));
    // The old summary counted 2 completed trials over the lines left, without a word.
    expect(() => summarizeRun(runDir)).toThrow(IncompleteMetricsError);
    expect(() => summarizeRun(runDir)).toThrow(`${path}:${removed + 1}: trial v0-s1: no line with seq 1: a line of this trial missing before line ${removed + 1}`);
    const allowed = summarizeRun(runDir, { allowIncomplete: true, warn: () => {} });
    expect(allowed.trials.find((t) => t.id === 'v0-s1')!.incomplete).toHaveLength(1);
    expect(allowed.trials.find((t) => t.id === 'v0-s0')!.incomplete).toBeUndefined();
    expect(allowed.metricsProblems).toEqual([{ file: path, line: removed + 1, trial: 'v0-s1', seq: 1, reason: `no line with seq 1: a line of this trial missing before line ${removed + 1}` }]);
  });
});
