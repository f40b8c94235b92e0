#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cac } from 'cac';
import { abortOnSignals, BACKEND_PREFERENCES, EXIT, glueNegativeOptionValues, InputError, parseFuse, type BackendPreference } from '@lab/experiment-runner';
import { runDemo, selectExperiments } from './demo';
import { EXPERIMENTS } from './experiments';
import { isScale, SCALES } from './scales';

interface DemoCliOptions {
  scale: string;
  data?: string;
  manifest?: string;
  out?: string;
  workers?: string | number;
  backend: string;
  only?: string;
  fuse?: string | number;
}

function parseWorkers(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 0) throw new InputError(`--workers: expected a non-negative integer (0 runs trials in this process), got ${String(value)}`);
  return n;
}

/** A path option must be a path: `--out` with nothing after it gives `true`, a number gives a number. */
function pathOption(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean' || String(value).trim() === '') throw new InputError(`--${name}: expected a path after --${name}`);
  return String(value);
}

/** Runs the CLI with `argv` (as process.argv); resolves to the exit code (see `--help`). */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const cli = cac('angle-lab');
  let result: Promise<number> | undefined;

  cli
    .command('demo', "Run the lab's experiments end to end and write reports plus an index page")
    .option('--scale <scale>', `${SCALES.join(' | ')}: tiny for tests, demo (default) for a ≤ 10-minute look, full for the seed reports' settings`, { default: 'demo' })
    .option('--data <dir>', 'Recordings in the layout <material>/<freq>Hz/deg<angle>/*.wav (default: the simulated data, generated when absent)')
    .option('--manifest <csv>', 'CSV of recordings: path,material,freq_hz,angle_deg (instead of --data)')
    .option('--out <dir>', 'Where the run folders and index.html go (default: <repo>/runs)')
    .option('--workers <n>', 'Parallel trial processes (default: one per core; 0 = in this process)')
    .option('--backend <name>', `TF.js backend: ${BACKEND_PREFERENCES.join(' | ')}`, { default: 'auto' })
    .option('--only <names>', `Comma-separated experiments: ${EXPERIMENTS.map((e) => e.name).join(', ')}`)
    .option('--fuse <mode>', 'Fused trials: auto (default: trials of one network train as one computation) | off | K (at most K together)')
    .example('  $ pnpm demo --scale tiny --out /tmp/runs --only frequency-loss,fusion')
    .action((options: DemoCliOptions) => {
      result = (async () => {
        // Every option is checked before any work; runDemo then checks paths, parameters and the data.
        const scale = String(options.scale);
        if (!isScale(scale)) throw new InputError(`--scale: expected one of ${SCALES.join(', ')}, got ${JSON.stringify(options.scale)}`);
        const backend = String(options.backend);
        if (!(BACKEND_PREFERENCES as readonly string[]).includes(backend)) throw new InputError(`--backend: expected one of ${BACKEND_PREFERENCES.join(', ')}, got ${JSON.stringify(options.backend)}`);
        const workers = parseWorkers(options.workers);
        const fuse = options.fuse === undefined ? undefined : parseFuse(String(options.fuse));
        const data = pathOption('data', options.data);
        const manifest = pathOption('manifest', options.manifest);
        const out = pathOption('out', options.out);
        const only = options.only === undefined ? undefined : String(options.only).split(',').map((s) => s.trim()).filter(Boolean);
        selectExperiments(only);

        let current: { experiment: string; runDir: string } | undefined;
        const signals = abortOnSignals(
          (sig) =>
            `\n[angle-lab] ${sig}: stopping${current ? ` ${current.experiment} (run folder ${current.runDir})` : ''}; finished trials are kept and the index is written. Press Ctrl-C again to quit at once.\n`,
        );
        try {
          const demo = await runDemo({
            scale,
            ...(data !== undefined ? { data } : {}),
            ...(manifest !== undefined ? { manifest } : {}),
            ...(out !== undefined ? { out } : {}),
            ...(workers !== undefined ? { workers } : {}),
            ...(fuse !== undefined ? { fuse } : {}),
            backend: backend as BackendPreference,
            ...(only ? { only } : {}),
            signal: signals.signal,
            onRunDir: (experiment, runDir) => (current = { experiment, runDir }),
          });
          const seconds = `${(demo.seconds / 60).toFixed(1)} min`;
          if (demo.interrupted) {
            const { experiment, runDir, notStarted } = demo.interrupted;
            const lines = [`\nInterrupted after ${seconds}.`];
            if (experiment && runDir) lines.push(`  ${experiment} was stopped; its finished trials are kept in ${runDir}`, `  Resume it with:  pnpm lab resume ${runDir}`);
            if (notStarted.length) {
              lines.push(`  Not started: ${notStarted.join(', ')}. Run them with:  pnpm demo --scale ${scale} --only ${notStarted.join(',')} --out ${demo.out}`);
            }
            console.error(lines.join('\n'));
          } else {
            console.log(`\nDone in ${seconds}.`);
          }
          if (demo.runs.length) console.log('Reports:');
          for (const run of demo.runs) console.log(`  ${run.experiment.padEnd(18)} ${run.status.padEnd(11)} ${run.status === 'interrupted' ? run.runDir : run.report}`);
          console.log(`Index of every run in ${demo.out}: ${demo.indexHtml}\n       ${demo.indexMarkdown}`);
          const failed = demo.runs.filter((r) => r.failures.length);
          if (failed.length) console.error(`\nangle-lab: trials failed in ${failed.map((r) => r.experiment).join(', ')}:\n${failed.flatMap((r) => r.failures.map((f) => `  ${r.experiment}: ${f}`)).join('\n')}`);
          return demo.exitCode;
        } finally {
          signals.dispose();
        }
      })();
    });

  cli.help((sections) => {
    sections.push({
      title: 'Exit codes',
      body: [
        '  0   every trial of every experiment completed',
        '  1   some trials failed (their reasons are printed), or an unexpected error',
        '  2   bad usage: an invalid option, path, parameter, or data too small for the folds (nothing was run)',
        '  3   a run did not finish: resume it with `pnpm lab resume <run folder>`',
        '  130 interrupted by Ctrl-C (SIGINT) or SIGTERM: resume with `pnpm lab resume <run folder>`',
      ].join('\n'),
    });
  });

  try {
    cli.parse(glueNegativeOptionValues(argv), { run: false });
    if (cli.options.help || cli.options.version) return EXIT.ok;
    if (!cli.matchedCommand) {
      if (cli.args.length) throw new InputError(`unknown command: ${cli.args[0]} (see angle-lab --help)`);
      cli.outputHelp();
      return EXIT.usage;
    }
    await cli.runMatchedCommand();
    return result ? await result : EXIT.ok;
  } catch (error) {
    console.error(`angle-lab: ${(error as Error).message}`);
    // InputError: our own checks; CACError: cac's (unknown option, missing value).
    return error instanceof InputError || (error as Error).name === 'CACError' ? EXIT.usage : EXIT.trialsFailed;
  }
}

const invokedDirectly = (() => {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(resolve(entry)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  process.exitCode = await main();
}
