// Pack smoke test: run where only the packed @lab/experiment-runner, its dependencies and
// @tensorflow/tfjs are installed. Defines a tiny experiment (this module is also what the worker
// processes import), runs it with 2 workers, builds the report and checks the run folder.
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { buildReport, defineExperiment, meanCI95, runExperiment } from '@lab/experiment-runner';

export const smoke = defineExperiment({
  name: 'pack-smoke',
  description: 'Fit y = 2x + 1 by gradient descent at two learning rates',
  hypotheses: ['The larger learning rate reaches a lower loss within 30 steps'],
  params: { lr: 0.05, steps: 30 },
  sweep: { grid: { lr: [0.02, 0.1] } },
  seeds: 2,
  backend: 'none',
  primaryMetric: { name: 'loss', goal: 'min' },
  async trial(params, seed, ctx) {
    await tf.setBackend('cpu');
    const xs = tf.tensor1d([0, 1, 2, 3, 4]);
    const ys = tf.tensor1d([1, 3, 5, 7, 9]);
    const w = tf.variable(tf.scalar(seed * 0.1));
    const b = tf.variable(tf.scalar(0));
    const optimizer = tf.train.sgd(params.lr);
    for (let step = 1; step <= params.steps; step++) {
      const loss = optimizer.minimize(() => tf.losses.meanSquaredError(ys, tf.add(tf.mul(xs, w), b)), true);
      const value = (await loss.data())[0];
      loss.dispose();
      if (step % 10 === 0) ctx.log({ epoch: step, loss: value });
    }
    ctx.artifact('weights.json', { w: w.dataSync()[0], b: b.dataSync()[0] });
    tf.dispose([xs, ys, w, b]);
    optimizer.dispose();
  },
});

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runsDir = mkdtempSync(join(tmpdir(), 'lab-pack-smoke-'));
  const runDir = await runExperiment(smoke, { runsDir, workers: 2, progress: 'none', log: () => {} });
  const report = await buildReport(runDir, smoke);
  for (const file of ['config.json', 'metrics.jsonl', 'summary.json', 'report.md', 'report.html']) {
    if (!existsSync(join(runDir, file))) throw new Error(`pack-smoke: ${file} missing in ${runDir}`);
  }
  const figures = readdirSync(join(runDir, 'figures'));
  if (!figures.some((f) => f.endsWith('.svg')) || !figures.some((f) => f.endsWith('.png'))) throw new Error(`pack-smoke: figures missing (${figures.join(', ')})`);
  if (report.figureErrors.length) throw new Error(`pack-smoke: figures failed: ${JSON.stringify(report.figureErrors)}`);
  const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
  if (summary.counts.completed !== 4) throw new Error(`pack-smoke: expected 4 completed trials, got ${JSON.stringify(summary.counts)}`);
  const [slow, fast] = summary.variants.map((v) => v.metrics.loss.mean);
  if (!(fast < slow)) throw new Error(`pack-smoke: lr 0.1 should beat lr 0.02 (${fast} vs ${slow})`);
  const ci = meanCI95(summary.trials.filter((t) => t.variant === 1).map((t) => t.final.loss));
  const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
  console.log(`pack-smoke ok: ${summary.counts.completed} trials in ${config.executor.workers} ${config.executor.kind} workers, final loss ${fast.toPrecision(3)} (n = ${ci.n}) < ${slow.toPrecision(3)}, ${figures.length} figure files`);
}
