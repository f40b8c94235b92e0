import { existsSync } from 'node:fs';
import { cac } from 'cac';
import { writeFileAtomic } from './atomic-write';
import { BACKEND_PREFERENCES, type BackendPreference } from './backend';
import { compareRuns, formatRunComparison } from './compare-runs';
import { exportCsv } from './export-csv';
import { abortOnSignals, EXIT, exitCodeFor, formatTrialFailures } from './exit-codes';
import {
  checkFileOption,
  checkFolderOption,
  checkWritableFileOption,
  checkWritableFolderOption,
  describeFileError,
  glueNegativeOptionValues,
  InputError,
} from './input-error';
import { loadExperiment } from './load-experiment';
import { parseSetArgs } from './plan';
import type { ProgressMode } from './progress';
import { buildReport } from './report';
import { formatRunListing, listRuns } from './run-folder';
import { ownVersion, resumeRun, runExperiment } from './run-experiment';
import { parseFuse } from './trial-group';
import { addSlurmTaskCommand, addWorkerCommand, executorForResume, executorFromOptions, parseExecutorKind, withExecutorOptions } from './scale-out-cli';

/** Exit codes: documented in `lab --help` and in each command's help. */
export { EXIT };

const INCOMPLETE = "or a completed trial's metrics are incomplete (see --allow-incomplete)";
const ALLOW_INCOMPLETE = 'Report trials whose metrics lines are damaged, missing or repeated, flagged, instead of refusing';

const runExitCodes = (usage: string) => `0 all trials completed · 1 some trials failed · 2 ${usage} · 3 run incomplete (resume it) · 130 interrupted`;

/** What each command does, and what its exit codes mean, for `lab <command> --help`. */
const COMMAND_HELP: Record<string, { about: string; exitCodes: string }> = {
  run: {
    about:
      'Runs every trial of an experiment (sweep variants × seeds × folds) in parallel worker processes, into a new\n' +
      '  folder runs/<YYYYMMDD_HHMMSS>_<name>/ (config.json, metrics.jsonl, trials/, summary.json, report.md, report.html,\n' +
      '  figures/). <experiment-file> is a .js, .mjs or .ts module exporting the result of defineExperiment.',
    exitCodes: runExitCodes('bad usage, invalid parameters or config, or the backend asked for is unavailable'),
  },
  resume: {
    about:
      'Finishes a run that was interrupted (Ctrl-C, kill -9, a crash) or had failed trials: completed trials are kept;\n' +
      '  the others restart from their last checkpoint, the metrics they logged after it removed first, so nothing is\n' +
      '  lost or duplicated.',
    exitCodes: runExitCodes('bad usage, not a run folder, a run in use, or its experiment module cannot be loaded'),
  },
  report: {
    about:
      "(Re)builds report.md, a self-contained report.html and figures/*.svg + *.png of a run. The experiment module\n" +
      "  recorded in config.json supplies its method text and report sections when it can still be imported.",
    exitCodes: `0 report written · 1 some figures could not be rendered (said in the report) · 2 bad usage, not a run folder ${INCOMPLETE}`,
  },
  compare: {
    about:
      "Compares runs on one metric: each variant's final value per run (mean ± 95 % CI, n), and for a variant found in\n" +
      '  the first run and a later one, the later − first difference paired by seed and fold (CI, paired t-test, Wilcoxon).',
    exitCodes: `0 compared · 2 bad usage, not a run folder, no such metric ${INCOMPLETE}`,
  },
  ls: {
    about:
      'Lists the run folders under --runs-dir, newest first: status, trials completed and failed, backend. A run whose\n' +
      '  driving process died is shown as interrupted; a run with a file that cannot be read (config.json, run.json, a\n' +
      "  trial's status.json) is listed as unreadable, with the file and the reason, never left out.",
    exitCodes: '0 listed · 2 bad usage',
  },
  export: {
    about:
      'Writes all metrics of all trials as one CSV: a row per logged line with trial, variant, seed, fold, the swept\n' +
      '  parameters, seq, time, epoch and every metric (empty where a line lacks it).',
    exitCodes: `0 exported · 2 bad usage, not a run folder ${INCOMPLETE}`,
  },
};

function asArray(value: unknown): string[] {
  if (value === undefined || value === null || value === false) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

function parseWorkers(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 0) throw new InputError(`--workers: expected a non-negative integer, got ${String(value)}`);
  return n;
}

function parseBackend(value: unknown): BackendPreference | 'none' | undefined {
  if (value === undefined) return undefined;
  const name = String(value);
  if (![...BACKEND_PREFERENCES, 'none'].includes(name)) throw new InputError(`--backend: expected one of ${[...BACKEND_PREFERENCES, 'none'].join(', ')}, got ${name}`);
  return name as BackendPreference | 'none';
}

function parseProgress(value: unknown): ProgressMode {
  const mode = value === undefined ? 'auto' : String(value);
  if (!['auto', 'tty', 'plain', 'none'].includes(mode)) throw new InputError(`--progress: expected auto, tty, plain or none, got ${mode}`);
  return mode as ProgressMode;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const cli = cac('lab');
  let result: Promise<number> | undefined;
  /** The folder or file the command writes, named in file-system errors that carry no path (ENOSPC on a write). */
  let writing: string | undefined;

  withExecutorOptions(cli
    .command('run <experiment-file>', 'Run an experiment (all its sweep variants × seeds × folds) into a new run folder'))
    .option('--set <key=value>', 'Override a parameter (repeatable; dotted keys for nested params; seeds=3, folds=5 also work)', { type: [String] })
    .option('--config <file>', 'YAML or JSON file of { params, sweep, seeds, folds }')
    .option('--experiment <name>', 'Which experiment, when the file exports several')
    .option('--workers <n>', 'Parallel worker processes (default: number of CPU cores; 0 = run in this process)')
    .option('--backend <name>', `TensorFlow.js backend: ${[...BACKEND_PREFERENCES, 'none'].join(' | ')} (default: the experiment's, else auto; auto takes wasm only where it can train, i.e. with @lab/tfjs-train installed)`)
    .option('--fail-fast', 'Stop at the first failed trial')
    .option('--fuse <mode>', 'Fused trials, for experiments that declare them: auto | off | K (at most K trials train as one computation; default auto)')
    .option('--runs-dir <dir>', 'Folder of run folders', { default: 'runs' })
    .option('--name <name>', 'Run folder suffix (default: the experiment name)')
    .option('--progress <mode>', 'auto | tty | plain | none', { default: 'auto' })
    .option('--no-report', 'Do not build the report at the end')
    .example('  $ lab run experiments/ghm.ts --set lr=0.0005 --set seeds=5 --workers 2')
    .example('  $ lab run experiments/ghm.ts --config sweeps/bins.yaml --set model.depth=34 --backend wasm')
    .action((file: string, options: Record<string, unknown>) => {
      result = (async () => {
        // Every option is checked before any work: the experiment module is not even imported.
        const overrides = parseSetArgs(asArray(options.set));
        const workers = parseWorkers(options.workers);
        const backend = parseBackend(options.backend);
        const progress = parseProgress(options.progress);
        const fuse = options.fuse === undefined ? undefined : parseFuse(String(options.fuse));
        checkFileOption('run', file, 'an experiment module (.js, .mjs or .ts) exporting defineExperiment(...)');
        if (options.config !== undefined) checkFileOption('--config', String(options.config), 'a YAML or JSON file of { params, sweep, seeds, folds }');
        const runsDir = String(options.runsDir);
        checkWritableFolderOption('--runs-dir', runsDir, 'a folder for the run folders');
        parseExecutorKind(options.executor);
        const experiment = await loadExperiment(file, options.experiment === undefined ? undefined : String(options.experiment));
        // bullmq or slurm; undefined: the local executors, as --workers says.
        const executor = executorFromOptions(options, experiment, (m) => process.stderr.write(`lab: ${m}\n`));
        writing = runsDir;
        const signals = abortOnSignals();
        try {
          const runDir = await runExperiment(experiment, {
            ...(executor ? { executor } : {}),
            runsDir,
            overrides,
            ...(options.config ? { configFile: String(options.config) } : {}),
            ...(workers !== undefined ? { workers } : {}),
            ...(backend ? { backend } : {}),
            ...(fuse !== undefined ? { fuse } : {}),
            failFast: Boolean(options.failFast),
            ...(options.name ? { name: String(options.name) } : {}),
            experimentFile: experiment.file!,
            progress,
            report: options.report !== false,
            signal: signals.signal,
            onRunDir: (dir) => {
              writing = dir;
              process.stdout.write(`run folder: ${dir}\n`);
            },
          });
          for (const line of formatTrialFailures(runDir)) process.stderr.write(`lab: ${line}\n`);
          process.stdout.write(`done: ${runDir}${options.report !== false ? ` (report: ${runDir}/report.html)` : ''}\n`);
          return exitCodeFor(runDir, signals.signal.aborted);
        } finally {
          signals.dispose();
        }
      })();
    });

  withExecutorOptions(cli
    .command('resume <run-dir>', 'Finish an interrupted run: completed trials are kept, interrupted ones restart from their last checkpoint'))
    .option('--workers <n>', 'Parallel worker processes (default: as in the original run)')
    .option('--fuse <mode>', 'Fused trials: auto | off | K (default: as in the original run)')
    .option('--fail-fast', 'Stop at the first failed trial')
    .option('--progress <mode>', 'auto | tty | plain | none', { default: 'auto' })
    .option('--no-report', 'Do not build the report at the end')
    .example('  $ lab resume runs/20250408_173532_ghm --workers 4')
    .action((runDir: string, options: Record<string, unknown>) => {
      result = (async () => {
        const workers = parseWorkers(options.workers);
        const progress = parseProgress(options.progress);
        const fuse = options.fuse === undefined ? undefined : parseFuse(String(options.fuse));
        checkFolderOption('resume', runDir, 'a run folder (runs/<YYYYMMDD_HHMMSS>_<name>)');
        // A queue or cluster run goes on there (config.json executor.settings), unless --executor says otherwise.
        const executor = await executorForResume(runDir, options, (m) => process.stderr.write(`lab: ${m}\n`));
        writing = runDir;
        const signals = abortOnSignals();
        try {
          await resumeRun(runDir, undefined, {
            ...(executor ? { executor } : {}),
            ...(workers !== undefined ? { workers } : {}),
            ...(fuse !== undefined ? { fuse } : {}),
            ...(options.failFast ? { failFast: true } : {}),
            progress,
            report: options.report !== false,
            signal: signals.signal,
          });
          for (const line of formatTrialFailures(runDir)) process.stderr.write(`lab: ${line}\n`);
          process.stdout.write(`done: ${runDir}\n`);
          return exitCodeFor(runDir, signals.signal.aborted);
        } finally {
          signals.dispose();
        }
      })();
    });

  cli
    .command('report <run-dir>', 'Build report.md, report.html and figures/ for a run')
    .option('--allow-incomplete', ALLOW_INCOMPLETE)
    .example('  $ lab report runs/20250408_173532_ghm')
    .action((runDir: string, options: Record<string, unknown>) => {
      result = (async () => {
        checkFolderOption('report', runDir, 'a run folder (runs/<YYYYMMDD_HHMMSS>_<name>)');
        writing = runDir;
        const report = await buildReport(runDir, undefined, { allowIncomplete: Boolean(options.allowIncomplete) });
        process.stdout.write(`${report.markdownPath}\n${report.htmlPath}\n`);
        for (const e of report.figureErrors) process.stderr.write(`figure ${e.name} not rendered: ${e.error}\n`);
        return report.figureErrors.length ? EXIT.trialsFailed : EXIT.ok;
      })();
    });

  cli
    .command('compare <run-dir> [...more]', 'Compare runs on a metric (final values, mean ± 95 % CI, paired tests)')
    .option('--metric <name>', "Metric to compare (default: the first run's primary metric)")
    .option('--json', 'Print JSON instead of text')
    .option('--allow-incomplete', ALLOW_INCOMPLETE)
    .example('  $ lab compare runs/20250408_173532_ghm runs/20250409_090000_ghm --metric val_acc')
    .action((first: string, more: string[], options: Record<string, unknown>) => {
      result = (async () => {
        const comparison = compareRuns([first, ...more], {
          ...(options.metric ? { metric: String(options.metric) } : {}),
          allowIncomplete: Boolean(options.allowIncomplete),
        });
        process.stdout.write(`${options.json ? JSON.stringify(comparison, null, 2) : formatRunComparison(comparison)}\n`);
        return EXIT.ok;
      })();
    });

  cli
    .command('ls', 'List runs, newest first (a run that cannot be read is listed as unreadable, with the reason)')
    .option('--runs-dir <dir>', 'Folder of run folders', { default: 'runs' })
    .option('--json', 'Print JSON')
    .action((options: Record<string, unknown>) => {
      result = (async () => {
        const runsDir = String(options.runsDir);
        if (existsSync(runsDir)) checkFolderOption('--runs-dir', runsDir, 'a folder of run folders');
        const runs = listRuns(runsDir);
        if (options.json) process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
        else if (runs.length === 0) process.stdout.write(`no runs in ${String(options.runsDir)}\n`);
        else for (const r of runs) process.stdout.write(`${formatRunListing(r)}\n`);
        return EXIT.ok;
      })();
    });

  cli
    .command('export <run-dir>', 'Export all metrics of all trials')
    .option('--csv', 'As one CSV (the only format for now)')
    .option('--out <file>', 'Write to a file instead of stdout')
    .option('--allow-incomplete', ALLOW_INCOMPLETE)
    .example('  $ lab export runs/20250408_173532_ghm --csv --out metrics.csv')
    .action((runDir: string, options: Record<string, unknown>) => {
      result = (async () => {
        if (!options.csv) throw new InputError('export: say which format (--csv)');
        if (options.out !== undefined) checkWritableFileOption('--out', String(options.out), 'a file to write the CSV to');
        const csv = exportCsv(runDir, { allowIncomplete: Boolean(options.allowIncomplete) });
        if (options.out !== undefined) {
          writing = String(options.out);
          writeFileAtomic(String(options.out), csv);
        } else process.stdout.write(csv);
        return EXIT.ok;
      })();
    });

  addWorkerCommand(cli, (running) => (result = running));
  addSlurmTaskCommand(cli, (running) => (result = running));

  cli.version(ownVersion());
  cli.help((sections) => {
    const command = cli.matchedCommand?.name;
    const help = command ? COMMAND_HELP[command] : undefined;
    // cac shows negated flags as "(default: true)", which reads as if --no-report were on by default.
    for (const section of sections) section.body = section.body.replace(/(--no-report .*?) \(default: true\)/, '$1');
    if (help) sections.splice(2, 0, { body: `  ${help.about}` });
    sections.push({
      title: 'Exit codes',
      body: help
        ? `  ${help.exitCodes}`
        : [
            '  0   success',
            '  1   some trials failed (run, resume), a figure could not be rendered (report), or an unexpected error',
            '  2   bad usage, invalid parameters or config file, not a run folder, a run in use by another process, or a',
            "      completed trial's metrics are incomplete (report, compare, export; see --allow-incomplete)",
            '  3   run incomplete: finish it with `lab resume` (run, resume)',
            '  130 interrupted by SIGINT/SIGTERM; the run stays resumable (run, resume)',
          ].join('\n'),
    });
  });

  try {
    cli.parse(glueNegativeOptionValues(argv), { run: false });
    if (cli.options.help || cli.options.version) return EXIT.ok;
    if (!cli.matchedCommand) {
      if (cli.args.length) throw new InputError(`unknown command: ${cli.args[0]} (see lab --help)`);
      cli.outputHelp();
      return EXIT.usage;
    }
    await cli.runMatchedCommand();
    return result ? await result : EXIT.ok;
  } catch (error) {
    process.stderr.write(`lab: ${writing && !(error instanceof InputError) ? describeFileError(error, writing) : (error as Error).message}\n`);
    // InputError: our own validation; CACError: cac's (unknown option, missing argument).
    const usage = error instanceof InputError || (error as Error).name === 'CACError';
    return usage ? EXIT.usage : EXIT.trialsFailed;
  }
}

const invokedDirectly = (() => {
  const entry = process.argv[1] ?? '';
  return /(^|[/\\])(cli\.(ts|js|cjs|mjs)|lab(\.mjs)?)$/.test(entry);
})();

if (invokedDirectly) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      process.stderr.write(`lab: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
