import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineExperiment, runExperiment } from '@lab/experiment-runner';
import { describe, expect, it } from 'vitest';
import { duration, headlineOf, readIndexEntries, renderIndex, type IndexEntry } from './index-page';

const entries: IndexEntry[] = [
  {
    id: '20260101_000000_frequency-loss',
    name: 'frequency-loss',
    description: 'Accuracy per <frequency> & loss',
    runDir: '20260101_000000_frequency-loss',
    status: 'completed',
    trials: { completed: 24, total: 24, failed: 0 },
    seconds: 75,
    backend: 'wasm',
    headline: 'Most accurate frequency: 1000Hz | pooled 0.8',
  },
  { id: 'run', name: 'fusion', description: 'Fusion', runDir: 'sub dir/run', status: 'failed', trials: { completed: 6, total: 8, failed: 2 }, seconds: 9.6 },
];
const meta = { title: 'angle-lab demo', scale: 'tiny', data: 'simulated', backend: 'wasm', createdAt: '2026-01-01T00:00:00Z', totalSeconds: 119.6 };

describe('renderIndex', () => {
  const { markdown, html } = renderIndex(entries, meta);

  it('links every report in Markdown and HTML, relative to the index', () => {
    expect(markdown).toContain('[HTML](20260101_000000_frequency-loss/report.html)');
    expect(markdown).toContain('[Markdown](20260101_000000_frequency-loss/report.md)');
    expect(html).toContain('href="20260101_000000_frequency-loss/report.html"');
    expect(html).toContain('href="sub%20dir/run/report.html"');
  });

  it('shows trials, failures and wall times', () => {
    expect(markdown).toContain('| 24/24 | 1 min 15 s |');
    expect(markdown).toContain('6/8 (2 failed)');
    expect(markdown).toContain('Total wall time: 2 min 00 s');
    expect(markdown).toMatch(/\| fusion \|[^\n]*\| failed \|/);
  });

  it('escapes HTML and table separators', () => {
    expect(html).toContain('Accuracy per &lt;frequency&gt; &amp; loss');
    expect(html).not.toContain('<frequency>');
    expect(markdown).toContain('1000Hz \\| pooled 0.8');
  });

  it('escapes user strings in the Markdown too (data path, run folder names, reasons), as report.md does', () => {
    const hostile: IndexEntry = {
      id: 'x<img src=a onerror=alert(1)>',
      name: 'evil|name',
      description: '<script>alert(1)</script>',
      runDir: 'a (1)/b',
      status: 'unreadable',
      trials: { completed: 0, total: 0, failed: 0 },
      problem: 'config.json: not valid JSON <b>\nsecond line',
    };
    const { problem: _problem, ...rest } = hostile;
    const readable: IndexEntry = { ...rest, id: 'ok', status: 'completed', trials: { completed: 1, total: 1, failed: 0 } };
    const page = renderIndex([hostile, readable], { ...meta, data: 'The recordings under /data/<script>x</script>|pipe\nnext' });
    expect(page.markdown).not.toMatch(/<(script|img|b)\b/);
    expect(page.markdown).toContain('/data/&lt;script>x&lt;/script>\\|pipe next');
    expect(page.markdown).toContain('| x&lt;img src=a onerror=alert(1)> | evil\\|name |');
    expect(page.markdown).toContain('unreadable: config.json: not valid JSON &lt;b> second line');
    // An unreadable run has no report link; a readable one's link survives parentheses in the folder name.
    expect(page.markdown).toContain('[HTML](a%20%281%29/b/report.html)');
    expect(page.html).not.toMatch(/<(script|img|b)\b/);
    expect(page.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });
});

describe('readIndexEntries', () => {
  const quick = defineExperiment({
    name: 'quick',
    description: 'A <quick> one',
    hypotheses: [],
    params: { fail: false },
    seeds: 1,
    backend: 'none',
    async trial(params, _seed, ctx) {
      if (params.fail) throw new Error('no luck');
      ctx.log({ epoch: 1, score: 1 });
    },
  });

  it('lists every run folder in the output folder, and an unreadable one with the reason', async () => {
    const out = mkdtempSync(join(tmpdir(), 'angle-lab-index-'));
    const opts = { runsDir: out, workers: 0, progress: 'none' as const, report: false, log: () => {} };
    const first = await runExperiment(quick, { ...opts, name: 'first' });
    const second = await runExperiment(quick, { ...opts, name: 'second', overrides: { params: { fail: true } } });
    mkdirSync(join(out, '20260101_000000_broken'));
    writeFileSync(join(out, '20260101_000000_broken', 'config.json'), '{ not json');
    mkdirSync(join(out, 'not-a-run'));
    writeFileSync(join(out, 'index.md'), '# old index');

    const listed = readIndexEntries(out);
    expect(listed.map((e) => e.id)).toEqual(['20260101_000000_broken', first.split(/[\\/]/).pop(), second.split(/[\\/]/).pop()]);
    expect(listed[0]).toMatchObject({ status: 'unreadable', name: '' });
    expect(listed[0].problem).toMatch(/config\.json is not valid JSON/);
    expect(listed[1]).toMatchObject({ name: 'quick', description: 'A <quick> one', status: 'completed', trials: { completed: 1, total: 1, failed: 0 }, backend: 'none' });
    expect(listed[1].seconds).toBeGreaterThanOrEqual(0);
    expect(listed[2]).toMatchObject({ status: 'failed', trials: { completed: 0, total: 1, failed: 1 } });

    const { markdown } = renderIndex(listed, { ...meta, current: [listed[2].id] });
    expect(markdown).toContain('Runs in this folder: 3 (1 from this demo, marked *)');
    expect(markdown).toMatch(/\| 20260101_000000_broken \| – \| – \| unreadable: .*config\.json is not valid JSON/);
    expect(markdown).toContain(`| ${listed[2].id} * | quick |`);
    expect(markdown).toContain('- **quick**: A &lt;quick> one');
  });
});

describe('duration', () => {
  it('never prints 60 seconds', () => {
    expect(duration(119.6)).toBe('2 min 00 s');
    expect(duration(59.6)).toBe('1 min 00 s');
    expect(duration(9.4)).toBe('9 s');
  });
});

describe('headlineOf', () => {
  it('takes the first bullet of the report\'s "What the numbers say" section', () => {
    const report = '## 6. Conclusions\n\n- generic\n\n### What the numbers say\n\n- GHM &lt; CE at 1000Hz.\n- second\n';
    expect(headlineOf(report)).toBe('GHM < CE at 1000Hz.');
    expect(headlineOf('# nothing')).toBeUndefined();
  });
});
