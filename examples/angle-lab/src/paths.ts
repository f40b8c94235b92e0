import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** examples/angle-lab */
export const EXAMPLE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The repository root (runs/ and .cache/ live there by default). */
export const REPO_ROOT = resolve(EXAMPLE_ROOT, '..', '..');
/** Where `demo` writes the simulator's default data when no --data/--manifest is given (gitignored). */
export const DEFAULT_DATA_ROOT = join(EXAMPLE_ROOT, 'data', 'simulated');
/** Feature cache shared by all runs (entries are keyed by file content and feature options). */
export const DEFAULT_CACHE_DIR = join(REPO_ROOT, '.cache', 'angle-lab-features');
export const DEFAULT_RUNS_DIR = join(REPO_ROOT, 'runs');
