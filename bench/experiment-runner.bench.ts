// Benchmarks for @lab/experiment-runner: runner overhead per trial, and the parallel speed-up of two
// worker processes on a CPU-bound trial. Run: node_modules/.bin/tsx bench/experiment-runner.bench.ts
// This module also defines the experiments: worker processes import it (the guard below keeps them
// from running the benchmark themselves).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineExperiment, runExperiment } from '@lab/experiment-runner';

/** A fixed amount of arithmetic; returns a checksum so the work cannot be optimised away. */
function busyWork(iterations: number, seed: number): number {
  let x = seed + 1;
  for (let i = 0; i < iterations; i++) x = (x * 1103515245 + 12345) % 2147483648;
  return x;
}

export const noopTrials = defineExperiment({
  name: 'bench-noop',
  description: 'trials that log one metric and do nothing else',
  hypotheses: [],
  params: { i: 0 },
  seeds: 1,
  backend: 'none',
  async trial(_params, seed, ctx) {
    ctx.log({ epoch: 1, value: seed });
  },
});

export const cpuTrials = defineExperiment({
  name: 'bench-cpu',
  description: 'CPU-bound trials',
  hypotheses: [],
  params: { iterations: 10_000_000 },
  seeds: 1,
  backend: 'none',
  async trial(params, seed, ctx) {
    ctx.log({ epoch: 1, checksum: busyWork(params.iterations, seed) });
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeRun(fn: () => Promise<string>): Promise<number> {
  const start = performance.now();
  const dir = await fn();
  const ms = performance.now() - start;
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

async function main(): Promise<void> {
  const runsDir = mkdtempSync(join(tmpdir(), 'er-bench-'));
  const file = fileURLToPath(import.meta.url);
  const quiet = { runsDir, progress: 'none' as const, report: false, log: () => {} };

  // 1. Overhead per trial: N no-op trials; the trial itself costs microseconds, so the time is the runner's.
  const n = 100;
  const seeds = Array.from({ length: n }, (_, i) => i);
  const inProcess: number[] = [];
  for (let rep = 0; rep < 3; rep++) inProcess.push(await timeRun(() => runExperiment(noopTrials, { ...quiet, workers: 0, overrides: { seeds } })));
  const nWorker = 40;
  const workerTimes: number[] = [];
  const workerSeeds = Array.from({ length: nWorker }, (_, i) => i);
  for (let rep = 0; rep < 3; rep++) workerTimes.push(await timeRun(() => runExperiment(noopTrials, { ...quiet, workers: 2, experimentFile: file, overrides: { seeds: workerSeeds } })));
  console.log(`runner overhead per trial, in process: ${(median(inProcess) / n).toFixed(2)} ms (median of 3 runs of ${n} no-op trials)`);
  console.log(`runner overhead per trial, 2 worker processes: ${(median(workerTimes) / nWorker).toFixed(2)} ms (median of 3 runs of ${nWorker} no-op trials, worker start-up included)`);

  // 2. Parallel speed-up: the same CPU-bound trials with 1 and 2 worker processes, alternated.
  const cpuSeeds = [0, 1, 2, 3, 4, 5, 6, 7];
  const direct = performance.now();
  busyWork(cpuTrials.defaults.iterations, 0);
  const oneTrialMs = performance.now() - direct;
  const one: number[] = [];
  const two: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    one.push(await timeRun(() => runExperiment(cpuTrials, { ...quiet, workers: 1, experimentFile: file, overrides: { seeds: cpuSeeds } })));
    two.push(await timeRun(() => runExperiment(cpuTrials, { ...quiet, workers: 2, experimentFile: file, overrides: { seeds: cpuSeeds } })));
  }
  console.log(`CPU-bound trial alone: ${oneTrialMs.toFixed(0)} ms; ${cpuSeeds.length} trials with 1 worker: ${median(one).toFixed(0)} ms, with 2 workers: ${median(two).toFixed(0)} ms (medians of 3, alternated)`);
  console.log(`parallel speed-up with 2 workers: ${(median(one) / median(two)).toFixed(2)}x (wall time, worker start-up included; ideal 2x on 2 idle cores)`);

  // What the machine itself allows: the same work as two bare node processes, one after the other vs side by side.
  const bare = () =>
    new Promise<void>((done, fail) => {
      const code = `let x = 1; for (let i = 0; i < ${cpuTrials.defaults.iterations * 2}; i++) x = (x * 1103515245 + 12345) % 2147483648; if (x < 0) console.log(x);`;
      spawn(process.execPath, ['-e', code], { stdio: 'ignore' }).on('exit', (c) => (c === 0 ? done() : fail(new Error(`exit ${c}`))));
    });
  const serial: number[] = [];
  const parallel: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    let t = performance.now();
    await bare();
    await bare();
    serial.push(performance.now() - t);
    t = performance.now();
    await Promise.all([bare(), bare()]);
    parallel.push(performance.now() - t);
  }
  console.log(`machine's own speed-up for 2 bare node processes: ${(median(serial) / median(parallel)).toFixed(2)}x (a shared machine shows less than 2x here too)`);
  rmSync(runsDir, { recursive: true, force: true });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
