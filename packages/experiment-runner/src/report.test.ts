import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fixture from '../fixtures/stats-fixture.json';
import { tiny } from '../fixtures/tiny-experiment';
import { defineExperiment } from './define-experiment';
import { renderVegaLite } from './figures';
import { markdownToHtml } from './html';
import { buildReport } from './report';
import { runExperiment } from './run-experiment';

const XSS = '<img src=x onerror=alert(1)>';

const hostile = defineExperiment({
  name: XSS,
  description: `description ${XSS}`,
  background: `background <script>alert(2)</script>`,
  hypotheses: [`hypothesis ${XSS}`],
  params: { [XSS]: 1, mode: 'a' },
  sweep: { grid: { [XSS]: [1, 2], mode: [XSS] } },
  seeds: 2,
  backend: 'none',
  method: () => `## Data\n- item with ${XSS}\n- **bold** and \`code\``,
  async trial(params, seed, ctx) {
    const value = Number(params[XSS]) + seed / 10;
    // A crash whose message lands in the report's failed-trials table.
    if (seed === 1 && params[XSS] === 2) throw new Error(`crash ${XSS}`);
    for (let epoch = 1; epoch <= 3; epoch++) ctx.log({ epoch, [`acc ${XSS}`]: value * epoch });
    ctx.figure(`fig ${seed}`, {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: XSS,
      data: { values: [{ k: XSS, v: value }] },
      mark: 'bar',
      encoding: { x: { field: 'k', type: 'nominal' }, y: { field: 'v', type: 'quantitative' } },
    });
  },
  report: () => [{ title: `custom ${XSS}`, markdown: `custom text ${XSS}`, tables: [{ columns: [XSS], rows: [[XSS]] }], placement: 'conclusions' }],
});

describe('buildReport', () => {
  it("draws its conclusions from the numbers: SciPy's p-values and \"not significant at n = 5\"", async () => {
    // fixtures/stats-fixture.json case n5_small_gain (SciPy): diff 0.022, 95 % CI −0.004919 to 0.048919,
    // ttest_rel p = 0.08581, exact Wilcoxon p = 0.1875, exact permutation p = 0.1875; the half-widths of the
    // 95 % t-intervals of the two arms are 0.03355 (fixture ciA) and 0.025748 (t.ppf(0.975, 4) * sem(b)).
    const c = fixture.cases[0];
    const arms = defineExperiment({
      name: 'arms',
      description: 'two arms with known values',
      hypotheses: [],
      params: { arm: 'b' },
      sweep: { list: [{ arm: 'b' }, { arm: 'a' }] },
      seeds: 5,
      backend: 'none',
      primaryMetric: { name: 'acc', goal: 'max' },
      async trial(params, seed, ctx) {
        ctx.log({ acc: params.arm === 'a' ? c.a[seed] : c.b[seed] });
      },
    });
    const runsDir = mkdtempSync(join(tmpdir(), 'er-conclude-'));
    const runDir = await runExperiment(arms, { runsDir, workers: 0, progress: 'none', log: () => {}, report: false });
    const md = readFileSync((await buildReport(runDir, arms)).markdownPath, 'utf8');
    const conclusions = md.slice(md.indexOf('## 6. Conclusions'));
    expect(conclusions).toContain('- Highest mean final acc: arm=a, 0.826 ± 0.0335 (95 % CI, n = 5); lowest: arm=b, 0.804 ± 0.0257 (95 % CI, n = 5).');
    expect(conclusions).toContain(
      '- arm=a − arm=b on acc = 0.022 (95 % CI −0.00492 to 0.0489); paired t-test p = 0.0858, Wilcoxon signed-rank p = 0.19 (exact), sign-flip permutation p = 0.19 (exact): not significant at n = 5 (with 5 pairs the signed-rank test cannot reach p < 0.05 at all).',
    );
    expect(md).toContain('| arm=a − arm=b | 5 | 0.022 | −0.00492 to 0.0489 | p = 0.0858 | p = 0.19 (exact) | p = 0.19 (exact) |');
    // acc is logged once per trial: a "best during training" table would repeat the final values.
    expect(md).not.toContain('Best acc during training');
  });

  it('follows the lab template with statistics, tables and rendered figures', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-report-'));
    const runDir = await runExperiment(tiny, { runsDir, workers: 0, progress: 'none', log: () => {}, report: false });
    const report = await buildReport(runDir, tiny);
    const md = readFileSync(report.markdownPath, 'utf8');
    const headings = md.split('\n').filter((l) => l.startsWith('## '));
    expect(headings).toEqual(['## 1. Metadata', '## 2. Background & motivation', '## 3. Purpose & hypotheses', '## 4. Method', '## 5. Results', '## 6. Conclusions']);
    expect(md).toContain('* **Experiment ID:** ' + runDir.split('/').pop());
    expect(md).toContain('* **Backend:** none (no TensorFlow.js)');
    expect(md).toContain('Each trial runs 5 epochs');
    expect(md).toMatch(/\| step=0\.3 \| 3 \| [\d.]+ ± [\d.]+ \|/);
    expect(md).toMatch(/step=0\.3 − step=0\.1 on score = [\d.]+ \(95 % CI [\d.]+ to [\d.]+\); paired t-test p = [\d.]+.*(significant at the 5 % level \(n = 3\)|not significant at n = 3)/);
    expect(md).toContain('### Scores by seed');
    // score is logged every epoch: its best during training is worth a table.
    expect(md).toContain('### Best score during training');
    expect(report.figureErrors).toEqual([]);
    // curve + final bars + one figure per trial
    expect(report.figures).toHaveLength(2 * (2 + 6));
    for (const file of report.figures) {
      const bytes = readFileSync(join(runDir, file));
      if (file.endsWith('.png')) expect(bytes.subarray(1, 4).toString()).toBe('PNG');
      else expect(bytes.toString('utf8', 0, 4)).toBe('<svg');
    }
    const html = readFileSync(report.htmlPath, 'utf8');
    expect(html.match(/<img class="figure"/g)).toHaveLength(8);
    expect(html).not.toMatch(/src="(?!data:)/);
  });

  it('escapes every user string in the HTML (and the Markdown)', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-xss-'));
    const runDir = await runExperiment(hostile, { runsDir, workers: 0, progress: 'none', log: () => {}, report: false });
    expect(runDir).toMatch(/_img_src_x_onerror_alert_1$/);
    const report = await buildReport(runDir, hostile);
    expect(report.figureErrors).toEqual([]);
    const html = readFileSync(report.htmlPath, 'utf8');
    expect(html).not.toContain('<img src');
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('<h3>custom &lt;img src=x onerror=alert(1)&gt;</h3>');
    expect(html).toContain('<li>item with &lt;img src=x onerror=alert(1)&gt;</li>');
    expect(html).toContain('<strong>bold</strong> and <code>code</code>');
    expect(html).toContain('<td>crash &lt;img src=x onerror=alert(1)&gt;</td>');
    // Only our own tags appear: every "<" in the body starts a tag from the report's fixed vocabulary.
    const body = html.slice(html.indexOf('<body>'));
    const tags = new Set([...body.matchAll(/<\/?([a-zA-Z0-9]+)/g)].map((m) => m[1].toLowerCase()));
    for (const tag of tags) expect(['body', 'h1', 'h2', 'h3', 'h4', 'h5', 'p', 'ul', 'ol', 'li', 'dl', 'dt', 'dd', 'table', 'caption', 'thead', 'tbody', 'tr', 'th', 'td', 'figure', 'img', 'figcaption', 'strong', 'em', 'code', 'html']).toContain(tag);
    const md = readFileSync(report.markdownPath, 'utf8');
    expect(md).not.toContain('<img');
    expect(md).not.toContain('<script');
    expect(existsSync(join(runDir, 'figures'))).toBe(true);
  });

  it('renders figures whose data files lie in the trial folder, and refuses any other file or URL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'er-figdata-'));
    mkdirSync(join(dir, 'trial'));
    writeFileSync(join(dir, 'trial', 'points.csv'), 'x,y\n1,2\n3,5\n');
    writeFileSync(join(dir, 'outside.csv'), 'x,y\n1,2\n');
    const spec = (url: string) => ({ data: { url }, mark: 'point', encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } } });
    const inside = await renderVegaLite(spec('points.csv'), { baseDir: join(dir, 'trial') });
    // Both rows of the file are drawn as points.
    expect(inside.svg.match(/aria-label="x: \d; y: \d"/g)).toEqual(['aria-label="x: 1; y: 2"', 'aria-label="x: 3; y: 5"']);
    for (const url of ['../outside.csv', `file://${join(dir, 'outside.csv')}`, 'http://example.invalid/data.csv']) {
      await expect(renderVegaLite(spec(url), { baseDir: join(dir, 'trial') })).rejects.toThrow(/figure: data could not be loaded .*only files inside/);
    }
  });

  it('renders the Markdown subset with everything escaped first', () => {
    expect(markdownToHtml('# T\n\npara **b** `c` <i>x</i>\n\n1. one\n2. two')).toBe(
      '<h1>T</h1>\n<p>para <strong>b</strong> <code>c</code> &lt;i&gt;x&lt;/i&gt;</p>\n<ol><li>one</li><li>two</li></ol>',
    );
  });
});
