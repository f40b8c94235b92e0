import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import {
  FeatureCache,
  loadFeatures,
} from '@lab/audio-features';
import {
  readRunConfig,
  readRunState,
  runExperiment,
  summarizeRun,
  writeFileAtomic,
  type BackendPreference,
  type Experiment,
  type ProgressMode,
} from '@lab/experiment-runner';
import { EXPERIMENTS } from './experiments';
import { headlineOf, renderIndex, type IndexEntry } from './index-page';
import { describeDataSource, featureOptionsOf, loadItems } from './lab-data';
import { DEFAULT_CACHE_DIR, DEFAULT_DATA_ROOT, DEFAULT_RUNS_DIR } from './paths';
import { scaleOverrides, type Scale } from './scales';
import { DEFAULT_SIMULATION, simulateDataset } from './simulator';

export interface DemoOptions {
  scale: Scale;
  /** Recordings in the lab's layout; default: the simulated data (generated when absent). */
  data?: string;
  /** CSV manifest of recordings (instead of `data`). */
  manifest?: string;
  /** Where the run folders and the index page go. */
  out?: string;
  workers?: number;
  backend?: BackendPreference;
  /** Names of the experiments to run (default: all). */
  only?: string[];
  cacheDir?: string;
  progress?: ProgressMode;
  log?: (message: string) => void;
}

export interface DemoResult {
  out: string;
  indexHtml: string;
  indexMarkdown: string;
  runs: { experiment: string; runDir: string; report: string }[];
  seconds: number;
}

export function selectExperiments(only: readonly string[] | undefined): Experiment[] {
  if (!only || only.length === 0) return [...EXPERIMENTS];
  const known = EXPERIMENTS.map((e) => e.name);
  const unknown = only.filter((name) => !known.includes(name));
  if (unknown.length) throw new Error(`--only: unknown experiment(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  return EXPERIMENTS.filter((e) => only.includes(e.name));
}

/** Makes sure the recordings exist: the simulated default set is generated on first use. */
export async function prepareData(options: Pick<DemoOptions, 'data' | 'manifest'>, log: (m: string) => void): Promise<void> {
  if (options.manifest) {
    if (!existsSync(options.manifest)) throw new Error(`--manifest: ${options.manifest} does not exist`);
    return;
  }
  if (options.data) {
    if (!existsSync(options.data)) throw new Error(`--data: ${options.data} does not exist`);
    return;
  }
  if (existsSync(join(DEFAULT_DATA_ROOT, 'simulation.json'))) return;
  log(`generating the simulated recordings (${DEFAULT_SIMULATION.materials.length} materials × ${DEFAULT_SIMULATION.frequenciesHz.length} frequencies × ${DEFAULT_SIMULATION.anglesDeg.length} angles × ${DEFAULT_SIMULATION.takes} takes) in ${DEFAULT_DATA_ROOT} ...`);
  const result = await simulateDataset({ root: DEFAULT_DATA_ROOT });
  log(`  ${result.files} WAV files in ${result.seconds.toFixed(1)} s`);
}

/** Runs the selected experiments at one scale, each into its own run folder, and writes the index page. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const log = options.log ?? ((m: string) => console.log(m));
  const started = Date.now();
  const out = resolve(options.out ?? DEFAULT_RUNS_DIR);
  const experiments = selectExperiments(options.only);
  await prepareData(options, log);
  const dataParams = {
    data: options.manifest ? '' : options.data ? resolve(options.data) : '',
    manifest: options.manifest ? resolve(options.manifest) : '',
    cacheDir: resolve(options.cacheDir ?? DEFAULT_CACHE_DIR),
  };

  // One pass over all recordings before the workers start: reports bad files early and fills the
  // feature cache, so parallel trials only read it.
  const featureSize = Number(scaleOverrides(experiments[0].name, options.scale).params?.featureSize ?? experiments[0].defaults.featureSize);
  const items = await loadItems(dataParams);
  const cache = new FeatureCache(dataParams.cacheDir);
  await loadFeatures(items, { cache, featureOptions: featureOptionsOf({ featureSize }) });
  log(`data: ${items.length} recordings. ${describeDataSource(dataParams)}.\nfeatures: ${featureSize}×${featureSize}, ${cache.stats().hits} from the cache, ${cache.stats().misses} computed`);

  const runs: DemoResult['runs'] = [];
  const entries: IndexEntry[] = [];
  let backendName = '';
  for (const experiment of experiments) {
    const t0 = Date.now();
    log(`\n== ${experiment.name} (${options.scale}) ==`);
    const runDir = await runExperiment(experiment, {
      runsDir: out,
      overrides: scaleOverrides(experiment.name, options.scale, dataParams),
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      backend: options.backend ?? 'auto',
      progress: options.progress ?? 'auto',
      log: (m) => log(`  ${m}`),
    });
    const seconds = (Date.now() - t0) / 1000;
    const summary = summarizeRun(runDir);
    const config = readRunConfig(runDir);
    backendName = `${config.backend.name}${config.backend.fastTraining ? ' with @lab/tfjs-train kernels' : ''}${config.backend.native ? ` (${config.backend.native})` : ''}`;
    const reportMd = join(runDir, 'report.md');
    const report = join(runDir, 'report.html');
    runs.push({ experiment: experiment.name, runDir, report });
    entries.push({
      name: experiment.name,
      description: experiment.description,
      runDir: relative(out, runDir),
      status: readRunState(runDir)?.status ?? 'unknown',
      trials: { completed: summary.counts.completed, total: summary.counts.total, failed: summary.counts.failed },
      seconds,
      ...(existsSync(reportMd) ? { headline: headlineOf(readFileSync(reportMd, 'utf8')) } : {}),
    });
    log(`  ${experiment.name}: ${summary.counts.completed}/${summary.counts.total} trials in ${seconds.toFixed(0)} s -> ${report}`);
  }

  const seconds = (Date.now() - started) / 1000;
  const index = renderIndex(entries, {
    title: `angle-lab demo (${options.scale} scale)`,
    scale: options.scale,
    data: describeDataSource(dataParams).replace(/`/g, ''),
    backend: backendName,
    createdAt: new Date(started).toISOString(),
    totalSeconds: seconds,
  });
  const indexHtml = join(out, 'index.html');
  const indexMarkdown = join(out, 'index.md');
  writeFileAtomic(indexMarkdown, index.markdown);
  writeFileAtomic(indexHtml, index.html);
  return { out, indexHtml, indexMarkdown, runs, seconds };
}
