// Per-kernel GPU time of a ResNet-18 training step on the webgpu backend (exploratory profiling, not
// part of bench:train). Kernel times come from tf.profile, which on webgpu ends the compute pass after
// every program and reads its timestamp queries: a sync point per kernel, so the step is slower here
// than in a run. On a software adapter (Mesa lavapipe) the shaders run on the CPU: relative costs are
// only indicative of a GPU's.
//
//   node_modules/.bin/tsx bench/webgpu-profile.ts [width=0.25] [size=32] [batch=4] [steps=2] [stock|lab|both=both]
//
// 'lab' registers @lab/tfjs-train's webgpu kernels (useWebGpuTraining); 'both' profiles stock, then lab
// and then times Conv2DBackpropFilter alone on the model's shapes. Env: ROUNDS (alternating rounds,
// default 2), REPS (per-shape repetitions, default 3), PROFILE=0 (wall-clock step times only).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '@lab/experiment-runner';
import { createAngleClassifier } from '@lab/ranking-models';
import { removeWebGpuTraining, useWebGpuTraining } from '@lab/tfjs-train';

const width = Number(process.argv[2] ?? 0.25);
const size = Number(process.argv[3] ?? 32);
const batch = Number(process.argv[4] ?? 4);
const steps = Number(process.argv[5] ?? 2);
const which = process.argv[6] ?? 'both';

const chosen = await selectBackend('webgpu', { log: () => {}, webgpu: { forceFallbackAdapter: false } });
const adapter = chosen.adapter!;
console.log(`webgpu on ${adapter.vendor} ${adapter.architecture} (${adapter.description || adapter.device})${adapter.software ? ', software adapter: CPU figures, not GPU figures' : ''}`);
console.log(`ResNet-18 width ${width}, input ${size}x${size}x1, batch ${batch}, ${steps} profiled steps (+1 warm-up)`);

const model = createAngleClassifier({ depth: 18, inputShape: [size, size, 1], widthMultiplier: width, numClasses: 6, seed: 1 });
const x = tf.randomNormal([batch, size, size, 1], 0, 1, 'float32', 3);
const labels = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 6), 'int32'), 6);
const optimizer = tf.train.adam(1e-3);

function step(): tf.Scalar {
  return optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, model.forward(x, { training: true })) as tf.Scalar, true, model.trainableVariables)!;
}

async function timedSteps(n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const loss = step();
    await loss.data();
    loss.dispose();
  }
  return (performance.now() - t0) / n;
}

type Table = Map<string, { ms: number; n: number }>;

/** GPU time per kernel over `steps` steps (timestamp queries through tf.profile). */
async function kernelTable(): Promise<Table> {
  const totals: Table = new Map();
  for (let s = 0; s < steps; s++) {
    const info = await tf.profile(async () => {
      const loss = step();
      await loss.data();
      loss.dispose();
    });
    for (const k of info.kernels) {
      const e = totals.get(k.name) ?? { ms: 0, n: 0 };
      e.ms += Number(k.kernelTimeMs);
      e.n++;
      totals.set(k.name, e);
    }
  }
  return totals;
}

function printTable(label: string, wallMs: number, totals: Table): void {
  const rows = [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const sum = rows.reduce((acc, [, v]) => acc + v.ms / steps, 0);
  console.log(`\n[${label}] step ${wallMs.toFixed(0)} ms wall (best of the rounds, no per-kernel sync); GPU kernel time ${sum.toFixed(0)} ms per step`);
  console.log(`${'kernel'.padEnd(28)} ${'ms/step'.padStart(9)} ${'share'.padStart(6)} ${'calls'.padStart(6)}`);
  for (const [name, v] of rows.slice(0, 12)) {
    console.log(`${name.padEnd(28)} ${(v.ms / steps).toFixed(1).padStart(9)} ${((100 * v.ms) / steps / sum).toFixed(1).padStart(5)}% ${String(v.n / steps).padStart(6)}`);
  }
}

/** The Conv2DBackpropFilter calls of one step: input shapes and attributes. */
async function recordBackpropFilterCalls(): Promise<Array<{ x: number[]; dy: number[]; attrs: tf.NamedAttrMap }>> {
  const stock = tf.getKernel('Conv2DBackpropFilter', 'webgpu')!;
  const calls: Array<{ x: number[]; dy: number[]; attrs: tf.NamedAttrMap }> = [];
  tf.unregisterKernel('Conv2DBackpropFilter', 'webgpu');
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => {
      const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      calls.push({ x: x.shape, dy: dy.shape, attrs: { ...args.attrs } });
      return stock.kernelFunc(args);
    },
  });
  const loss = step();
  await loss.data();
  loss.dispose();
  tf.unregisterKernel('Conv2DBackpropFilter', 'webgpu');
  tf.registerKernel(stock);
  return calls;
}

/** Median GPU time (ms) of one Conv2DBackpropFilter call with the kernel registered now. */
async function timeBackpropFilter(call: { x: number[]; dy: number[]; attrs: tf.NamedAttrMap }, reps: number): Promise<number> {
  const xt = tf.randomNormal(call.x);
  const dyt = tf.randomNormal(call.dy);
  const run = () => tf.engine().runKernel('Conv2DBackpropFilter', { x: xt, dy: dyt }, call.attrs) as tf.Tensor;
  const warm = run();
  await warm.data();
  warm.dispose();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    let out: tf.Tensor | undefined;
    const t = await tf.time(() => {
      out = run();
    });
    await out!.data();
    out!.dispose();
    times.push(t.kernelMs as number);
  }
  tf.dispose([xt, dyt]);
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

// 1. Whole step, stock vs lab, alternating rounds (the machine is shared: take the best round).
const rounds = Number(process.env.ROUNDS ?? 2);
const best = { stock: Infinity, lab: Infinity };
const tables: Record<string, Table> = {};
for (let r = 0; r < rounds; r++) {
  for (const mode of which === 'both' ? (['stock', 'lab'] as const) : ([which] as Array<'stock' | 'lab'>)) {
    if (mode === 'lab') useWebGpuTraining();
    await timedSteps(1); // warm-up: compiles the pipelines
    best[mode] = Math.min(best[mode], await timedSteps(steps));
    if (r === rounds - 1 && process.env.PROFILE !== '0') tables[mode] = await kernelTable();
    else if (r === rounds - 1) console.log(`[${mode}] step ${best[mode].toFixed(0)} ms wall (best of ${rounds} rounds of ${steps} steps)`);
    if (mode === 'lab') removeWebGpuTraining();
  }
}
if (tables.stock) printTable('stock tfjs-backend-webgpu kernels', best.stock, tables.stock);
if (tables.lab) printTable('with useWebGpuTraining() from @lab/tfjs-train', best.lab, tables.lab);

// 2. Conv2DBackpropFilter alone on this model's shapes, stock vs lab.
if (which === 'both' && process.env.PROFILE !== '0') {
  const calls = await recordBackpropFilterCalls();
  const unique = new Map(calls.map((c) => [`${c.x}|${c.dy}|${JSON.stringify(c.attrs)}`, { ...c, count: 0 }]));
  for (const c of calls) unique.get(`${c.x}|${c.dy}|${JSON.stringify(c.attrs)}`)!.count++;
  const reps = Number(process.env.REPS ?? 3);
  console.log(`\nConv2DBackpropFilter per shape (median GPU ms of ${reps})`);
  console.log(`${'x'.padEnd(18)} ${'filter'.padEnd(14)} ${'stride'.padStart(6)} ${'calls'.padStart(5)} ${'stock'.padStart(9)} ${'lab'.padStart(9)} ${'speed-up'.padStart(8)}`);
  let totalStock = 0;
  let totalLab = 0;
  for (const c of unique.values()) {
    const stockMs = await timeBackpropFilter(c, reps);
    useWebGpuTraining();
    const labMs = await timeBackpropFilter(c, reps);
    removeWebGpuTraining();
    totalStock += stockMs * c.count;
    totalLab += labMs * c.count;
    const f = c.attrs.filterShape as number[];
    const strides = c.attrs.strides as number[] | number;
    console.log(`${c.x.join('x').padEnd(18)} ${f.join('x').padEnd(14)} ${String(Array.isArray(strides) ? strides[0] : strides).padStart(6)} ${String(c.count).padStart(5)} ${stockMs.toFixed(2).padStart(9)} ${labMs.toFixed(2).padStart(9)} ${(stockMs / labMs).toFixed(1).padStart(7)}x`);
  }
  console.log(`${'all calls of one step'.padEnd(46)} ${totalStock.toFixed(1).padStart(9)} ${totalLab.toFixed(1).padStart(9)} ${(totalStock / totalLab).toFixed(1).padStart(7)}x`);
}
