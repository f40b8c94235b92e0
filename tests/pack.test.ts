// Every publishable package, packed as npm would publish it, must install into an empty project with only
// its declared dependencies plus @tensorflow/tfjs, and run its smoke script there.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = resolve(__dirname, '..');
const PNPM = ['-y', 'pnpm@10.34.8'];

// Extra packages a user of that package installs beside it (optional peers the smoke script uses).
const packages: Record<string, string[]> = {
  'audio-features': [],
  'ghm-loss': [],
  'ranking-models': [],
  'grad-probe': [],
  'tfjs-train': ['@tensorflow/tfjs-backend-wasm@4.22.0'],
  'experiment-runner': [],
};

function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${e.stdout ?? ''}\n${e.stderr ?? e.message}`);
  }
}

describe('npm pack: each package installs and runs in an empty project', () => {
  for (const [name, extras] of Object.entries(packages)) {
    it(`@lab/${name}`, () => {
      const pkgDir = join(repo, 'packages', name);
      const work = mkdtempSync(join(tmpdir(), `pack-${name}-`));
      try {
        run('npx', [...PNPM, 'build'], pkgDir);
        run('npx', [...PNPM, 'pack', '--pack-destination', work], pkgDir);
        const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
        expect(tarball, 'pnpm pack wrote no tarball').toBeTruthy();
        const app = join(work, 'app');
        run('mkdir', ['-p', app], work);
        writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-smoke-app', private: true, type: 'module' }));
        run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(work, tarball!), '@tensorflow/tfjs@4.22.0', ...extras], app);
        copyFileSync(join(pkgDir, 'smoke', 'pack-smoke.mjs'), join(app, 'pack-smoke.mjs'));
        const out = run('node', ['pack-smoke.mjs'], app);
        expect(out).toMatch(/pack-smoke ok/);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }, 300_000);
  }
});
