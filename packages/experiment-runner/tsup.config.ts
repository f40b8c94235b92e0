import { defineConfig } from 'tsup';

export default defineConfig({
  // worker-main is the script each worker process runs; it sits beside the bundles that fork it.
  entry: { index: 'src/index.ts', cli: 'src/cli.ts', 'worker-main': 'src/worker-main.ts' },
  format: ['esm', 'cjs'],
  // tsup's d.ts step sets baseUrl, which TypeScript 6 deprecates.
  dts: { compilerOptions: { ignoreDeprecations: '6.0' } },
  sourcemap: true,
  clean: true,
  target: 'node20',
  // import.meta.url locates worker-main.js from the CJS build too.
  shims: true,
  // dist/cli.js is the published `lab` bin; a hashbang is harmless in the other outputs.
  banner: { js: '#!/usr/bin/env node' },
  external: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-cpu', '@lab/tfjs-train', 'tsx'],
});
