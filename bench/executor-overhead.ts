// Benchmark of the scale-out executors against the local one: overhead per trial (trials that do
// nothing, one worker each) and 3-worker scaling (3 `lab worker` processes on loopback Redis against
// 3 local worker processes, trials that sleep). Prints ratios. Starts and stops its own redis-server.
// Run: pnpm bench:executors
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BullMQExecutor, loadExperiment, runExperiment, type Executor } from '@lab/experiment-runner';
import { startRedis } from '../packages/experiment-runner/src/scale-out-test-servers';

const runner = resolve('packages/experiment-runner');
const root = mkdtempSync(join(tmpdir(), 'lab-bench-executors-'));
writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
const fixture = join(root, 'bench.ts');
writeFileSync(
  fixture,
  `import { defineExperiment } from ${JSON.stringify(join(runner, 'src', 'define-experiment.ts'))};
export default defineExperiment({
  name: 'bench', description: 'executor overhead', hypotheses: [], backend: 'none', seeds: 12,
  params: { ms: 0 },
  async trial(p, seed, ctx) { await new Promise((r) => setTimeout(r, p.ms)); ctx.log({ epoch: 0, seed }); },
});
`,
);
const children: ChildProcess[] = [];
const redis = await startRedis(join(root, 'redis'));
if (!redis.ok) {
  console.log(`executor benchmark skipped: ${redis.reason}`);
  process.exit(0);
}
const experiment = await loadExperiment(fixture, 'bench');
let queues = 0;

async function workers(n: number, queueName: string): Promise<ChildProcess[]> {
  const started = Array.from({ length: n }, () => {
    const child = spawn(process.execPath, [join(runner, 'bin', 'lab.mjs'), 'worker', '--queue', redis.ok ? redis.value.url : '', '--queue-name', queueName, '--root', root], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    return child;
  });
  await Promise.all(started.map((c) => new Promise<void>((r) => c.stdout!.on('data', (d: Buffer) => /waiting for trials/.test(d.toString()) && r()))));
  return started;
}

/** Wall time of one run of 12 trials, in ms. */
async function timeRun(kind: 'local' | 'bullmq', n: number, ms: number): Promise<number> {
  let executor: Executor | undefined;
  let started: ChildProcess[] = [];
  if (kind === 'bullmq' && redis.ok) {
    const queueName = `bench-${++queues}`;
    started = await workers(n, queueName);
    executor = new BullMQExecutor({ queueUrl: redis.value.url, queueName, experiment, projectRoot: root });
  }
  const t0 = performance.now();
  await runExperiment(experiment, { runsDir: join(root, 'runs'), workers: n, ...(executor ? { executor } : {}), experimentFile: fixture, overrides: { params: { ms } }, progress: 'none', report: false, log: () => {} });
  const elapsed = performance.now() - t0;
  for (const child of started) child.kill('SIGTERM');
  return elapsed;
}

try {
  const trials = 12;
  const localOne = await timeRun('local', 1, 0);
  const queueOne = await timeRun('bullmq', 1, 0);
  console.log(`overhead per trial (12 empty trials, 1 worker): local ${(localOne / trials).toFixed(1)} ms, bullmq ${(queueOne / trials).toFixed(1)} ms, ratio bullmq/local ${(queueOne / localOne).toFixed(2)}×`);
  const sleepMs = 400;
  const local3 = await timeRun('local', 3, sleepMs);
  const queue1 = await timeRun('bullmq', 1, sleepMs);
  const queue3 = await timeRun('bullmq', 3, sleepMs);
  console.log(`3-worker scaling (12 trials of ${sleepMs} ms): bullmq 1 worker ${queue1.toFixed(0)} ms, 3 workers ${queue3.toFixed(0)} ms, speed-up ${(queue1 / queue3).toFixed(2)}× (ideal 3×); local 3 workers ${local3.toFixed(0)} ms, ratio bullmq/local at 3 workers ${(queue3 / local3).toFixed(2)}×`);
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await redis.stop();
  rmSync(root, { recursive: true, force: true });
}
