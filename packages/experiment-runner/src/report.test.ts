import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tiny } from '../fixtures/tiny-experiment';
import { defineExperiment } from './define-experiment';
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
    expect(md).toMatch(/\| step=0\.3 \| 3 \| [\d.]+ ± [\d.]+ \(95 % CI, n = 3\) \|/);
    expect(md).toMatch(/step=0\.3 − step=0\.1 on score = [\d.]+ \(95 % CI [\d.]+ to [\d.]+\); paired t-test p = [\d.]+.*(significant at the 5 % level \(n = 3\)|not significant at n = 3)/);
    expect(md).toContain('### Scores by seed');
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
    // Only our own tags appear: every "<" in the body starts a tag from the report's fixed vocabulary.
    const body = html.slice(html.indexOf('<body>'));
    const tags = new Set([...body.matchAll(/<\/?([a-zA-Z0-9]+)/g)].map((m) => m[1].toLowerCase()));
    for (const tag of tags) expect(['body', 'h1', 'h2', 'h3', 'h4', 'h5', 'p', 'ul', 'ol', 'li', 'dl', 'dt', 'dd', 'table', 'caption', 'thead', 'tbody', 'tr', 'th', 'td', 'figure', 'img', 'figcaption', 'strong', 'em', 'code', 'html']).toContain(tag);
    const md = readFileSync(report.markdownPath, 'utf8');
    expect(md).not.toContain('<img');
    expect(md).not.toContain('<script');
    expect(existsSync(join(runDir, 'figures'))).toBe(true);
  });

  it('renders the Markdown subset with everything escaped first', () => {
    expect(markdownToHtml('# T\n\npara **b** `c` <i>x</i>\n\n1. one\n2. two')).toBe(
      '<h1>T</h1>\n<p>para <strong>b</strong> <code>c</code> &lt;i&gt;x&lt;/i&gt;</p>\n<ol><li>one</li><li>two</li></ol>',
    );
  });
});
