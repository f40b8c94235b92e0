/**
 * The main job end to end: `demo --scale tiny` into a temporary folder, then every report file and
 * figure must exist and the numbers in the reports' tables must be the ones recomputed here from
 * each run's metrics.jsonl.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The root package does not depend on the workspace packages, so the runner's statistics are imported from its source.
import { describeMeanCI, formatMeanCI, formatNumber, meanCI95, pairedComparison } from '@lab/experiment-runner';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '..');
const EXPERIMENTS = ['frequency-loss', 'ghm-sensitivity', 'ranker-gradients', 'batch-size', 'material', 'fusion'];

interface MetricsLine {
  trial: string;
  seq: number;
  [key: string]: unknown;
}
interface TrialSpec {
  id: string;
  params: Record<string, unknown>;
  seed: number;
  fold?: number;
}

/** The Markdown table that follows `### title` (cells unescaped). */
function tableAfter(markdown: string, title: string): { columns: string[]; rows: string[][] } {
  const start = markdown.indexOf(`### ${title}\n`);
  if (start < 0) throw new Error(`no section "${title}"`);
  const lines = markdown.slice(start).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const block: string[] = [];
  for (let i = first; i < lines.length && lines[i].startsWith('|'); i++) block.push(lines[i]);
  const cells = (line: string) =>
    line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replace(/\\\|/g, '|'));
  return { columns: cells(block[0]), rows: block.slice(2).map(cells) };
}

/** Final value of each numeric metric per trial: the last line that logged it. */
function finals(lines: MetricsLine[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const line of [...lines].sort((a, b) => (a.trial === b.trial ? a.seq - b.seq : a.trial < b.trial ? -1 : 1))) {
    const record = out.get(line.trial) ?? {};
    for (const [key, value] of Object.entries(line)) if (typeof value === 'number' && Number.isFinite(value) && !['seq', 'epoch'].includes(key)) record[key] = value;
    out.set(line.trial, record);
  }
  return out;
}

describe('pnpm demo --scale tiny', () => {
  let out: string;
  const runs = new Map<string, string>();
  let stdout = '';

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'angle-lab-demo-'));
    const result = await run(join(repo, 'node_modules', '.bin', 'tsx'), ['examples/angle-lab/src/main.ts', 'demo', '--scale', 'tiny', '--out', out, '--workers', '2'], {
      cwd: repo,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 540_000,
    });
    stdout = result.stdout;
    for (const entry of readdirSync(out)) {
      const match = /^\d{8}_\d{6}_(.+?)(_\d+)?$/.exec(entry);
      if (match && statSync(join(out, entry)).isDirectory()) runs.set(match[1], join(out, entry));
    }
  }, 560_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  const metricsOf = (name: string) =>
    readFileSync(join(runs.get(name)!, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as MetricsLine);
  const trialsOf = (name: string) => (JSON.parse(readFileSync(join(runs.get(name)!, 'config.json'), 'utf8')) as { trials: TrialSpec[] }).trials;
  const reportOf = (name: string) => readFileSync(join(runs.get(name)!, 'report.md'), 'utf8');
  /** describeMeanCI of `metric` over the trials whose params match. */
  const expectedCI = (name: string, metric: string, match: (p: Record<string, unknown>) => boolean) => {
    const f = finals(metricsOf(name));
    const done = completed(name);
    const values = trialsOf(name)
      .filter((t) => done.has(t.id) && match(t.params))
      .map((t) => f.get(t.id)?.[metric])
      .filter((v): v is number => v !== undefined);
    return describeMeanCI(meanCI95(values));
  };

  /** Trials of a run that completed (only they enter the reports' statistics). */
  const completed = (name: string) => new Set(readdirSync(join(runs.get(name)!, 'trials')).filter((id) => JSON.parse(readFileSync(join(runs.get(name)!, 'trials', id, 'status.json'), 'utf8')).status === 'completed'));

  it('runs every experiment, prints where the reports are and writes an index linking them', () => {
    expect([...runs.keys()].sort()).toEqual([...EXPERIMENTS].sort());
    const indexMd = readFileSync(join(out, 'index.md'), 'utf8');
    const indexHtml = readFileSync(join(out, 'index.html'), 'utf8');
    for (const [name, dir] of runs) {
      const rel = dir.slice(out.length + 1);
      expect(indexMd).toContain(`(${rel}/report.html)`);
      expect(indexHtml).toContain(`href="${rel}/report.html"`);
      expect(stdout).toContain(join(dir, 'report.html'));
      expect(indexMd).toMatch(new RegExp(`\\| ${name} \\|[^\\n]*\\| completed \\|`));
    }
    expect(stdout).toContain(join(out, 'index.html'));
  });

  it('writes every report file, and every figure a report refers to, with no failed section or figure', () => {
    for (const [name, dir] of runs) {
      for (const file of ['config.json', 'metrics.jsonl', 'summary.json', 'report.md', 'report.html']) {
        expect(existsSync(join(dir, file)), `${name}/${file}`).toBe(true);
      }
      const md = reportOf(name);
      const html = readFileSync(join(dir, 'report.html'), 'utf8');
      for (const heading of ['## 1. Metadata', '## 2. Background & motivation', '## 3. Purpose & hypotheses', '## 4. Method', '## 5. Results', '## 6. Conclusions', '### What the numbers say']) {
        expect(md, `${name}: ${heading}`).toContain(heading);
      }
      expect(md).not.toMatch(/could not be rendered|report sections failed|method description failed/);
      const figures = [...md.matchAll(/\(\[SVG\]\((figures\/[^)]+\.svg)\)\)/g)].map((m) => m[1]);
      expect(figures.length, name).toBeGreaterThanOrEqual(2);
      for (const svg of figures) {
        for (const file of [svg, svg.replace(/\.svg$/, '.png')]) {
          expect(existsSync(join(dir, file)), `${name}/${file}`).toBe(true);
          expect(statSync(join(dir, file)).size, `${name}/${file}`).toBeGreaterThan(500);
        }
        expect(html).toContain(`data-file="${svg}"`);
      }
    }
  });

  it('has the figures each experiment promises', () => {
    const has = (name: string, stems: string[]) => {
      const md = reportOf(name);
      for (const stem of stems) expect(md, `${name}: ${stem}`).toContain(`figures/${stem}.svg`);
    };
    has('frequency-loss', ['accuracy_by_frequency_and_loss', 'validation_curves', 'confusion_matrices', 'pairwise_angle_accuracy', 'ghm_bins_500Hz', 'ghm_bins_1000Hz', 'ghm_bins_3000Hz']);
    has('ghm-sensitivity', ['ghm_grid_heatmap']);
    has('ranker-gradients', ['gns_vs_epoch', 'gns_bootstrap_main', 'tsne_batch_gradients', 'cosine_batch_gradients']);
    has('batch-size', ['gns_vs_epoch_by_batch_size']);
    has('material', ['confusion_by_material']);
    has('fusion', ['confusion_fusion', 'pairwise_fusion']);
  });

  it("frequency-loss: the accuracy table and the GHM − CE differences are metrics.jsonl's numbers", () => {
    const md = reportOf('frequency-loss');
    const table = tableAfter(md, 'Held-out accuracy per frequency and loss');
    expect(table.rows).toHaveLength(6);
    for (const row of table.rows) {
      const [input, loss] = row[0].split(' / ');
      const match = (p: Record<string, unknown>) => p.input === input && p.loss === loss.toLowerCase();
      expect(row[2], row[0]).toBe(expectedCI('frequency-loss', 'test_acc', match));
      const f = finals(metricsOf('frequency-loss'));
      const epochs = trialsOf('frequency-loss').filter((t) => match(t.params)).map((t) => f.get(t.id)!.best_epoch);
      expect(row[3]).toBe(formatNumber(epochs.reduce((s, e) => s + e, 0) / epochs.length));
    }
    const diffs = tableAfter(md, 'GHM − CE per frequency (paired by seed and fold)');
    expect(diffs.rows).toHaveLength(3);
    const f = finals(metricsOf('frequency-loss'));
    const trials = trialsOf('frequency-loss');
    for (const row of diffs.rows) {
      const input = /GHM at (\S+) −/.exec(row[0])![1];
      const a: number[] = [];
      const b: number[] = [];
      for (const t of trials.filter((x) => x.params.input === input && x.params.loss === 'ghm')) {
        const ce = trials.find((x) => x.params.input === input && x.params.loss === 'ce' && x.seed === t.seed && x.fold === t.fold)!;
        a.push(f.get(t.id)!.test_acc);
        b.push(f.get(ce.id)!.test_acc);
      }
      const c = pairedComparison(a, b);
      expect(Number(row[1])).toBe(c.n);
      expect(row[4]).toBe(formatNumber(c.diff));
    }
  });

  it("every report's runner table of final metrics matches metrics.jsonl for the primary metric", () => {
    const primary: Record<string, string> = {
      'frequency-loss': 'test_acc',
      'ghm-sensitivity': 'test_acc',
      'ranker-gradients': 'val_tau',
      'batch-size': 'val_tau',
      material: 'test_acc',
      fusion: 'test_acc',
    };
    for (const name of EXPERIMENTS) {
      const table = tableAfter(reportOf(name), 'Final metrics per variant');
      const column = table.columns.indexOf(primary[name]);
      expect(column, name).toBeGreaterThan(0);
      const f = finals(metricsOf(name));
      const config = JSON.parse(readFileSync(join(runs.get(name)!, 'config.json'), 'utf8')) as { trials: (TrialSpec & { variantLabel: string })[] };
      for (const row of table.rows) {
        const done = completed(name);
        const values = config.trials.filter((t) => done.has(t.id) && t.variantLabel === row[0]).map((t) => f.get(t.id)![primary[name]]);
        expect(row[column], `${name} ${row[0]}`).toBe(formatMeanCI(meanCI95(values)));
      }
    }
  });

  it('ranker-gradients, ghm-sensitivity, material and fusion tables are the numbers of their metrics', () => {
    const ranking = tableAfter(reportOf('ranker-gradients'), 'Ranking quality');
    for (const row of ranking.rows) {
      const [material, input] = row[0].split(' ');
      expect(row[2]).toBe(expectedCI('ranker-gradients', 'val_tau', (p) => p.material === material && p.input === input));
      expect(row[3]).toBe(expectedCI('ranker-gradients', 'train_tau', (p) => p.material === material && p.input === input));
    }
    const grid = tableAfter(reportOf('ghm-sensitivity'), 'Held-out accuracy over the GHM grid');
    expect(grid.rows).toHaveLength(4);
    for (const row of grid.rows) {
      const [, bins, alpha] = /bins (\S+), alpha (\S+)/.exec(row[0])!;
      expect(row[2]).toBe(expectedCI('ghm-sensitivity', 'test_acc', (p) => p.bins === Number(bins) && p.alpha === Number(alpha)));
    }
    const material = tableAfter(reportOf('material'), 'Held-out accuracy per material');
    for (const row of material.rows) expect(row[2]).toBe(expectedCI('material', 'test_acc', (p) => p.material === row[0].split(' ')[0]));
    const fusion = tableAfter(reportOf('fusion'), 'Fusion against single frequencies');
    for (const row of fusion.rows) expect(row[2]).toBe(expectedCI('fusion', 'test_acc', (p) => p.input === row[0].replace(/^fused /, '')));
  });

  it('describes GHM correctly and says when a difference is not significant', () => {
    const md = reportOf('frequency-loss');
    expect(md).toContain('down-weights regions of high gradient density');
    expect(md).toMatch(/not significant|significant/);
    const diffs = tableAfter(md, 'GHM − CE per frequency (paired by seed and fold)');
    for (const row of diffs.rows) {
      if (row[8] === 'no') expect(md).toContain(`${row[0].split(' − ')[0]} − ${row[0].split(' − ')[1]} on test_acc`);
    }
  });
});
