import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { tiny } from '../fixtures/tiny-experiment';
import { buildReport } from './report';
import { runExperiment } from './run-experiment';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(__dirname, '../../../test-artifacts');

beforeAll(() => {
  if (existsSync(CHROMIUM)) return;
  // Debian's chromium, installed once per machine under the shared apt lock.
  execSync('flock /tmp/angle-lab-apt.lock apt-get update', { stdio: 'inherit' });
  execSync('flock /tmp/angle-lab-apt.lock apt-get install -y -o DPkg::Lock::Timeout=600 chromium', { stdio: 'inherit' });
}, 600_000);

describe('report.html in headless Chromium', () => {
  it('renders every figure with no console errors', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-browser-'));
    const runDir = await runExperiment(tiny, { runsDir, workers: 0, overrides: { seeds: 2 }, progress: 'none', log: () => {}, report: false });
    const report = await buildReport(runDir, tiny);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const problems: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
      page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
      await page.goto(pathToFileURL(report.htmlPath).href, { waitUntil: 'load' });
      const figures = await page.$$eval('img.figure', (images) =>
        images.map((img) => {
          // Runs in the page; typed structurally because this package's tsconfig has no DOM lib.
          const image = img as unknown as { dataset: { file?: string }; complete: boolean; naturalWidth: number; naturalHeight: number };
          return { file: image.dataset.file, complete: image.complete, width: image.naturalWidth, height: image.naturalHeight };
        }),
      );
      expect(figures.length).toBe(report.figures.length / 2);
      for (const figure of figures) {
        expect(figure.complete, figure.file).toBe(true);
        expect(figure.width, figure.file).toBeGreaterThan(50);
        expect(figure.height, figure.file).toBeGreaterThan(50);
      }
      expect(await page.$$eval('h2', (hs) => hs.map((h) => h.textContent))).toEqual([
        '1. Metadata',
        '2. Background & motivation',
        '3. Purpose & hypotheses',
        '4. Method',
        '5. Results',
        '6. Conclusions',
      ]);
      mkdirSync(ARTIFACTS, { recursive: true });
      const shot = join(ARTIFACTS, 'experiment-runner-report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(10_000);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
