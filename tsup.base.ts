import { defineConfig, type Options } from 'tsup';

/** The build every @lab package shares (ESM + CJS + d.ts for Node 20); `extra` adds entries and options. */
export function libraryConfig(extra: Options = {}) {
  return defineConfig({
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    // tsup's d.ts build passes `baseUrl`, which TypeScript 6 reports as deprecated (TS5101).
    dts: { compilerOptions: { ignoreDeprecations: '6.0' } },
    sourcemap: true,
    clean: true,
    target: 'node20',
    ...extra,
  });
}
