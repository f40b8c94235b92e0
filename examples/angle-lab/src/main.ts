#!/usr/bin/env node
import { cac } from 'cac';
import { BACKEND_PREFERENCES, type BackendPreference } from '@lab/experiment-runner';
import { runDemo } from './demo';
import { EXPERIMENTS } from './experiments';
import { isScale, SCALES } from './scales';

const cli = cac('angle-lab');

cli
  .command('demo', 'Run the lab\'s experiments end to end and write reports plus an index page')
  .option('--scale <scale>', `${SCALES.join(' | ')}: tiny for tests, demo (default) for a ≤ 10-minute look, full for the seed reports' settings`, { default: 'demo' })
  .option('--data <dir>', 'Recordings in the layout <material>/<freq>Hz/deg<angle>/*.wav (default: the simulated data, generated when absent)')
  .option('--manifest <csv>', 'CSV of recordings: path,material,freq_hz,angle_deg (instead of --data)')
  .option('--out <dir>', 'Where the run folders and index.html go (default: <repo>/runs)')
  .option('--workers <n>', 'Parallel trial processes (default: one per core; 0 = in this process)')
  .option('--backend <name>', `TF.js backend: ${BACKEND_PREFERENCES.join(' | ')}`, { default: 'auto' })
  .option('--only <names>', `Comma-separated experiments: ${EXPERIMENTS.map((e) => e.name).join(', ')}`)
  .action(async (options: { scale: string; data?: string; manifest?: string; out?: string; workers?: string | number; backend: string; only?: string }) => {
    if (!isScale(options.scale)) throw new Error(`--scale: expected one of ${SCALES.join(', ')}, got ${JSON.stringify(options.scale)}`);
    if (!(BACKEND_PREFERENCES as readonly string[]).includes(options.backend)) {
      throw new Error(`--backend: expected one of ${BACKEND_PREFERENCES.join(', ')}, got ${JSON.stringify(options.backend)}`);
    }
    if (options.data && options.manifest) throw new Error('--data and --manifest: give one of them, not both');
    let workers: number | undefined;
    if (options.workers !== undefined) {
      workers = Number(options.workers);
      if (!Number.isInteger(workers) || workers < 0) throw new Error(`--workers: expected a non-negative integer, got ${JSON.stringify(options.workers)}`);
    }
    const result = await runDemo({
      scale: options.scale,
      ...(options.data ? { data: String(options.data) } : {}),
      ...(options.manifest ? { manifest: String(options.manifest) } : {}),
      ...(options.out ? { out: String(options.out) } : {}),
      ...(workers !== undefined ? { workers } : {}),
      backend: options.backend as BackendPreference,
      ...(options.only ? { only: String(options.only).split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    });
    console.log(`\nDone in ${(result.seconds / 60).toFixed(1)} min. Reports:`);
    for (const run of result.runs) console.log(`  ${run.experiment.padEnd(18)} ${run.report}`);
    console.log(`Index: ${result.indexHtml}\n       ${result.indexMarkdown}`);
  });

cli.help();

try {
  const parsed = cli.parse(process.argv, { run: false });
  if (parsed.options.help || parsed.options.version) {
    // cac has printed the help already.
  } else if (!cli.matchedCommand) {
    cli.outputHelp();
    process.exitCode = process.argv.length > 2 ? 1 : 0;
  } else {
    await cli.runMatchedCommand();
  }
} catch (error) {
  console.error(`angle-lab: ${(error as Error).message}`);
  process.exitCode = 1;
}
