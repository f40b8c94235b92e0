#!/usr/bin/env node
// In the repository the CLI runs from source through tsx; the published package points `lab` at dist/cli.js.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli.ts');
