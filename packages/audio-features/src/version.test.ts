import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { PACKAGE_VERSION } from './version';

it('PACKAGE_VERSION (a cache key part) equals package.json version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  expect(PACKAGE_VERSION).toBe(pkg.version);
});
