import { describe, expect, it } from 'vitest';
import { duration, headlineOf, renderIndex, type IndexEntry } from './index-page';

const entries: IndexEntry[] = [
  {
    name: 'frequency-loss',
    description: 'Accuracy per <frequency> & loss',
    runDir: '20260101_000000_frequency-loss',
    status: 'completed',
    trials: { completed: 24, total: 24, failed: 0 },
    seconds: 75,
    headline: 'Most accurate frequency: 1000Hz | pooled 0.8',
  },
  { name: 'fusion', description: 'Fusion', runDir: 'sub dir/run', status: 'failed', trials: { completed: 6, total: 8, failed: 2 }, seconds: 9.6 },
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
  });

  it('escapes HTML and table separators', () => {
    expect(html).toContain('Accuracy per &lt;frequency&gt; &amp; loss');
    expect(html).not.toContain('<frequency>');
    expect(markdown).toContain('1000Hz \\| pooled 0.8');
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
