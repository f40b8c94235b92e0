import { defineConfig } from 'vitest/config';

// Every package is tested from source (package.json `exports` point at src/ inside the repo;
// `publishConfig` swaps in dist/ when packed), so `pnpm test` needs no build.
const project = (name: string, root: string, testTimeout = 60_000) => ({
  extends: true as const,
  test: { name, root, testTimeout, hookTimeout: testTimeout },
});

export default defineConfig({
  test: {
    environment: 'node',
    pool: 'forks',
    // The JSON report lets .ci/run print one `N passed, N failed` line.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-artifacts/vitest-results.json' },
    projects: [
      project('audio-features', 'packages/audio-features'),
      project('ghm-loss', 'packages/ghm-loss'),
      project('ranking-models', 'packages/ranking-models', 180_000),
      project('grad-probe', 'packages/grad-probe', 120_000),
      project('experiment-runner', 'packages/experiment-runner', 180_000),
      project('tfjs-train', 'packages/tfjs-train', 180_000),
      project('angle-lab', 'examples/angle-lab', 300_000),
      project('e2e', 'tests', 600_000),
    ],
  },
});
