// Investigation: data-parallel training of ONE ResNet-18 trial across two worker threads on the
// wasm backend (each thread: its own wasm instance + @lab/tfjs-train kernels, half the batch;
// gradients averaged through a SharedArrayBuffer; each thread applies the same Adam update, so
// the replicas stay identical). Compared with one thread training the whole batch, alternately.
//   tsx bench/train-data-parallel.ts [--width 1] [--steps 4] [--rounds 2]
// BN statistics are per replica (half batch), as in PyTorch DDP without SyncBatchNorm.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const tsxApi = import.meta.resolve('tsx/esm/api');

interface Job {
  rank: number;
  world: number;
  width: number;
  batch: number;
  steps: number;
  shared: SharedArrayBuffer | null;
  sync: SharedArrayBuffer | null;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function workerMain(job: Job): Promise<void> {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-wasm');
  const { useFastTraining } = await import('../packages/tfjs-train/src/index');
  const { buildResNet18 } = await import('./train-resnet');
  await tf.setBackend('wasm');
  await useFastTraining('wasm');
  const model = buildResNet18([128, 128, 1], 6, job.width);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: import('@tensorflow/tfjs-core').Variable }).val);
  const sizes = vars.map((v) => v.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  const fullBatch = job.batch * job.world;
  // Every replica draws the same full batch and trains on its slice of it.
  const all = tf.randomNormal([fullBatch, 128, 128, 1], 0, 1, 'float32', 3);
  const x = tf.slice(all, [job.rank * job.batch, 0, 0, 0], [job.batch, 128, 128, 1]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: job.batch }, (_, i) => (job.rank * job.batch + i) % 6), 'int32'), 6);
  all.dispose();
  const optimizer = tf.train.adam(1e-3);
  const grads = job.shared ? new Float32Array(job.shared, 0, job.world * total) : null; // [world][total]
  const avg = job.shared ? new Float32Array(job.shared, job.world * total * 4, total) : null;
  const counter = job.sync ? new Int32Array(job.sync) : null;
  let generation = 0;
  const barrier = () => {
    if (counter == null) return;
    generation++;
    if (Atomics.add(counter, 0, 1) + 1 === job.world * generation) Atomics.notify(counter, 0);
    else while (Atomics.load(counter, 0) < job.world * generation) Atomics.wait(counter, 0, Atomics.load(counter, 0), 1000);
  };
  const times: number[] = [];
  const commTimes: number[] = [];
  const gradTimes: number[] = [];
  for (let s = 0; s < job.steps + 1; s++) {
    const t0 = performance.now();
    const { value, grads: g } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as import('@tensorflow/tfjs-core').Tensor) as import('@tensorflow/tfjs-core').Scalar,
      vars,
    );
    value.dispose();
    let apply: Record<string, import('@tensorflow/tfjs-core').Tensor> = g;
    const c0 = performance.now();
    if (grads != null && avg != null) {
      // Reduce-scatter by hand: publish my gradients, each replica averages its slice of the
      // parameter vector into the shared result, then everyone reads the whole result.
      const backend = tf.backend() as unknown as { typedArrayFromHeap(t: unknown): Float32Array };
      let off = job.rank * total;
      for (const v of vars) {
        grads.set(backend.typedArrayFromHeap(g[v.name]), off);
        off += v.size;
      }
      tf.dispose(Object.values(g));
      barrier();
      const lo = Math.floor((total * job.rank) / job.world);
      const hi = Math.floor((total * (job.rank + 1)) / job.world);
      const scale = 1 / job.world;
      for (let i = lo; i < hi; i++) {
        let acc = 0;
        for (let r = 0; r < job.world; r++) acc += grads[r * total + i];
        avg[i] = acc * scale;
      }
      barrier();
      apply = {};
      let o = 0;
      for (const v of vars) {
        apply[v.name] = tf.tensor(avg.subarray(o, o + v.size), v.shape);
        o += v.size;
      }
      barrier(); // nobody overwrites the exchange buffers before everyone has read them
    }
    const c1 = performance.now();
    optimizer.applyGradients(apply as unknown as Parameters<typeof optimizer.applyGradients>[0]);
    tf.dispose(Object.values(apply));
    if (s > 0) {
      times.push(performance.now() - t0);
      commTimes.push(c1 - c0);
      gradTimes.push(c0 - t0);
    }
  }
  const checksum = tf.tidy(() => vars.reduce((acc, v) => acc + tf.sum(tf.abs(v)).dataSync()[0], 0));
  parentPort!.postMessage({ rank: job.rank, times, commTimes, gradTimes, checksum, params: total });
}

function run(world: number, width: number, steps: number, totalBatch: number): Promise<Array<{ times: number[]; commTimes: number[]; gradTimes: number[]; checksum: number; params: number }>> {
  const paramsGuess = Math.ceil(11.3e6 * width * width) + 1_000_000;
  const shared = world > 1 ? new SharedArrayBuffer((world + 1) * paramsGuess * 4) : null;
  const sync = world > 1 ? new SharedArrayBuffer(4) : null;
  return Promise.all(
    Array.from({ length: world }, (_, rank) => {
      const job: Job = { rank, world, width, batch: totalBatch / world, steps, shared, sync };
      // Worker threads do not inherit tsx's loader: register it, then load this file.
      const bootstrap = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
      const w = new Worker(bootstrap, { eval: true, workerData: job });
      return new Promise<{ times: number[]; commTimes: number[]; gradTimes: number[]; checksum: number; params: number }>((resolve, reject) => {
        w.once('message', (m) => {
          resolve(m);
          void w.terminate();
        });
        w.once('error', reject);
      });
    }),
  );
}

if (isMainThread) {
  const { values } = parseArgs({ options: { width: { type: 'string', default: '1' }, steps: { type: 'string', default: '4' }, rounds: { type: 'string', default: '2' } } });
  const width = Number(values.width);
  const steps = Number(values.steps);
  const single: number[] = [];
  const dual: number[] = [];
  const comm: number[] = [];
  const halfBatch: number[] = [];
  let checksums: number[] = [];
  console.log(`data-parallel investigation: ResNet-18 width ${width}, batch 4, wasm + @lab/tfjs-train; load average ${loadavg()[0].toFixed(1)}`);
  for (let r = 0; r < Number(values.rounds); r++) {
    const one = await run(1, width, steps, 4);
    single.push(...one[0].times);
    const half = await run(1, width, steps, 2);
    halfBatch.push(...half[0].gradTimes);
    const two = await run(2, width, steps, 4);
    dual.push(...two.flatMap((t) => t.times));
    comm.push(...two.flatMap((t) => t.commTimes));
    checksums = two.map((t) => t.checksum);
    console.log(
      `round ${r + 1}: 1 thread x batch 4 ${median(one[0].times).toFixed(0)} ms/step (gradients ${median(one[0].gradTimes).toFixed(0)}); ` +
        `2 threads x batch 2 ${median(two.flatMap((t) => t.times)).toFixed(0)} ms/step (gradients ${median(two.flatMap((t) => t.gradTimes)).toFixed(0)}, exchange+average incl. waiting ${median(two.flatMap((t) => t.commTimes)).toFixed(0)})`,
    );
  }
  console.log(`gradient time of one replica's half batch (batch 2) alone on one thread: ${median(halfBatch).toFixed(0)} ms`);
  console.log(`median: 1 thread ${median(single).toFixed(0)} ms/step, 2 threads ${median(dual).toFixed(0)} ms/step, speed-up ${(median(single) / median(dual)).toFixed(2)}x; gradient exchange+average ${median(comm).toFixed(0)} ms/step`);
  console.log(`replicas identical after training: ${checksums[0] === checksums[1]} (weight |sum| ${checksums.map((c) => c.toFixed(4)).join(' vs ')}); load average now ${loadavg()[0].toFixed(1)}`);
} else {
  void workerMain(workerData as Job);
}
