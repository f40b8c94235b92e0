import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isExperiment, type Experiment } from './define-experiment';
import { InputError } from './input-error';

const modules = new Map<string, Promise<Record<string, unknown>>>();

/**
 * Imports a module by path. A TypeScript file under plain Node (the published CLI) fails with
 * ERR_UNKNOWN_FILE_EXTENSION: then tsx, when installed, is registered and the import retried.
 */
async function importModule(path: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    if (!/\.[cm]?tsx?$/.test(path) || (error as NodeJS.ErrnoException).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw error;
    const tsxApi = 'tsx/esm/api';
    let api: { register(): unknown };
    try {
      api = (await import(/* @vite-ignore */ tsxApi)) as { register(): unknown };
    } catch {
      throw new InputError(`experiment file ${path} is TypeScript: install tsx (npm install -D tsx) or use a .js/.mjs file`);
    }
    api.register();
    // A query string gives a fresh module record: the failed attempt stays cached under the bare URL.
    return (await import(`${url}?tsx`)) as Record<string, unknown>;
  }
}

/** Every experiment a module exports (default or named). */
export async function loadExperiments(file: string): Promise<Experiment[]> {
  const path = resolve(file);
  if (!existsSync(path)) throw new InputError(`experiment file ${file} not found`);
  if (!modules.has(path)) modules.set(path, importModule(path));
  const mod = await modules.get(path)!;
  const found = [...new Set(Object.values(mod).filter(isExperiment))];
  if (found.length === 0) throw new InputError(`experiment file ${file} exports no experiment (export the result of defineExperiment)`);
  // The worker processes import this same file, so the runner must know where it came from.
  return found.map((experiment) => (experiment.file === path ? experiment : Object.freeze({ ...experiment, file: path })));
}

/** The experiment named `name` in a module, or its only experiment when `name` is omitted. */
export async function loadExperiment(file: string, name?: string): Promise<Experiment> {
  const found = await loadExperiments(file);
  const match = name === undefined ? (found.length === 1 ? found[0] : undefined) : found.find((e) => e.name === name);
  if (!match) {
    const names = found.map((e) => JSON.stringify(e.name)).join(', ');
    throw new InputError(
      name === undefined
        ? `experiment file ${file} exports several experiments (${names}): name one`
        : `experiment file ${file} exports no experiment named ${JSON.stringify(name)} (found: ${names})`,
    );
  }
  return match;
}
