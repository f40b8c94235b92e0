import { libraryConfig } from '../../tsup.base';

export default libraryConfig({
  // worker-main is the script each worker process runs; it sits beside the bundles that fork it.
  entry: { index: 'src/index.ts', cli: 'src/cli.ts', 'worker-main': 'src/worker-main.ts' },
  // import.meta.url locates worker-main.js from the CJS build too.
  shims: true,
  // dist/cli.js is the published `lab` bin; a hashbang is harmless in the other outputs.
  banner: { js: '#!/usr/bin/env node' },
  external: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-cpu', '@lab/tfjs-train', 'tsx'],
});
