// Per-layer timings of @lab/tfjs-train's native convolutions on the lab's ResNet-18 shapes, each
// layer through the direct path and through im2col + GEMM (the evidence behind the direct-path rule
// in native/fast-conv.c's direct_wanted):
//   tsx bench/conv-layers.ts [--gemm builtin|onednn|openblas] [--vector-target native|avx2|sse2]
//                            [--models demo,full] [--threads N] [--reps N]
// Prints µs per call (median of --reps) and GFLOP/s for the forward, input and filter gradients and
// the fused conv + batch-norm kernels, and the ratio direct / im2col per layer (< 1: direct faster).
import { parseArgs } from 'node:util';
import { convGeometry } from '../packages/tfjs-train/src/conv-geometry';
import { loadNativeKernels, type DirectConvMode, type NativeVectorTarget } from '../packages/tfjs-train/src/native-addon';
import { nativeGeometry } from '../packages/tfjs-train/src/native-conv';
import { cpuDescription, median } from './bench-support';

const { values: opts } = parseArgs({
  options: {
    gemm: { type: 'string', default: 'builtin' },
    'vector-target': { type: 'string', default: 'native' },
    models: { type: 'string', default: 'demo,full' },
    threads: { type: 'string' },
    reps: { type: 'string', default: '200' },
  },
});
// The GEMM library is chosen when the addon loads.
process.env.LAB_TFJS_TRAIN_GEMM = opts.gemm;
const loaded = await loadNativeKernels({ vectorTarget: opts['vector-target'] as NativeVectorTarget });
if (!loaded.ok) throw new Error(`native kernels unavailable: ${loaded.reason}`);
const k = loaded.kernels;

type Layer = { x: [number, number, number, number]; filter: [number, number, number, number]; stride: number };
const LAYERS: Record<string, { threads: number; layers: Layer[] }> = {
  // ResNet-18 x0.125, 3x3 stem, 32x32x1, batch 4 (`pnpm demo`).
  demo: {
    threads: 1,
    layers: [
      { x: [4, 32, 32, 1], filter: [3, 3, 1, 8], stride: 1 },
      { x: [4, 32, 32, 8], filter: [3, 3, 8, 8], stride: 1 },
      { x: [4, 16, 16, 16], filter: [3, 3, 16, 16], stride: 1 },
      { x: [4, 8, 8, 32], filter: [3, 3, 32, 32], stride: 1 },
      { x: [4, 4, 4, 64], filter: [3, 3, 64, 64], stride: 1 },
      { x: [4, 32, 32, 8], filter: [3, 3, 8, 16], stride: 2 },
    ],
  },
  // ResNet-18, 64x64x1, batch 16 (`pnpm demo --scale full`): its first stage and the next.
  full: {
    threads: 2,
    layers: [
      { x: [16, 16, 16, 64], filter: [3, 3, 64, 64], stride: 1 },
      { x: [16, 8, 8, 128], filter: [3, 3, 128, 128], stride: 1 },
    ],
  },
};

const reps = Number(opts.reps);
function microseconds(fn: () => void): number {
  for (let i = 0; i < 10; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) * 1000);
  }
  return median(times);
}

function random(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => Math.random() - 0.5);
}

/** µs per call of each kernel on one layer: forward, input gradient, filter gradient, conv-BN forward, conv-BN gradient. */
function timeLayer(layer: Layer, mode: DirectConvMode): number[] {
  k.setDirectConv(mode);
  const g = convGeometry(layer.x, layer.filter, [layer.stride, layer.stride], [1, 1], 'same', undefined, false);
  const geometry = nativeGeometry(g);
  const C = g.outChannels;
  const n = g.batch * g.outHeight * g.outWidth * C;
  const x = random(layer.x.reduce((a, b) => a * b));
  const w = random(layer.filter.reduce((a, b) => a * b));
  const [y, conv, dy] = [new Float32Array(n), new Float32Array(n), random(n)];
  const [dx, dw] = [new Float32Array(x.length), new Float32Array(w.length)];
  const [ones, zeros, stats, newMean, newVariance, dScale, dOffset] = [new Float32Array(C).fill(1), new Float32Array(C), new Float32Array(2 * C), new Float32Array(C), new Float32Array(C), new Float32Array(C), new Float32Array(C)];
  return [
    microseconds(() => k.conv2dForward(x, w, y, geometry, null, 0, 0)),
    microseconds(() => k.conv2dBackpropInput(dy, w, dx, geometry)),
    microseconds(() => k.conv2dBackpropFilter(x, dy, dw, geometry)),
    microseconds(() =>
      k.convBatchNormForward({ x, filter: w, scale: ones, offset: zeros, movingMean: zeros, movingVariance: ones, y, conv, stats, newMovingMean: newMean, newMovingVariance: newVariance, residual: null }, geometry, 1e-5, 0.9, true, true),
    ),
    microseconds(() => k.convBatchNormBackward({ dy, x, filter: w, conv, y, stats, scale: ones, dx, dFilter: dw, dScale, dOffset, dResidual: null }, geometry, 1e-5, true, true)),
  ];
}

console.log(`conv-layers  ${cpuDescription()}`);
console.log(`native: ${JSON.stringify({ gemm: k.info().gemm, isa: k.info().isa, tiles: k.info().tiles })}; median of ${reps} calls; µs (GFLOP/s)`);
const columns = ['fwd', 'dx', 'dw', 'convBN fwd', 'convBN grad'];
for (const model of opts.models!.split(',')) {
  const entry = LAYERS[model];
  if (entry == null) throw new Error(`--models: unknown model '${model}' (expected ${Object.keys(LAYERS).join(', ')})`);
  console.log(`\n${model} (${k.setThreads(Number(opts.threads ?? entry.threads))} thread(s))`);
  console.log(`${'layer'.padEnd(30)}${'path'.padEnd(8)}${columns.map((c) => c.padStart(14)).join('')}`);
  for (const layer of entry.layers) {
    const label = `x${layer.x.join('x')} f${layer.filter.join('x')} s${layer.stride}`;
    const g = convGeometry(layer.x, layer.filter, [layer.stride, layer.stride], [1, 1], 'same', undefined, false);
    const megaflop = (2 * g.batch * g.outHeight * g.outWidth * g.outChannels * layer.filter[0] * layer.filter[1] * layer.filter[2]) / 1e6;
    const rows: Record<string, number[]> = {};
    for (const mode of ['always', 'never', 'auto'] as DirectConvMode[]) rows[mode] = timeLayer(layer, mode);
    for (const [mode, name] of [['always', 'direct'], ['never', 'im2col'], ['auto', 'auto']] as const) {
      const cells = rows[mode].map((us, i) => `${us.toFixed(0)}${i < 3 ? ` (${(megaflop / us * 1000).toFixed(0)})` : ''}`.padStart(14));
      console.log(`${(mode === 'always' ? label : '').padEnd(30)}${name.padEnd(8)}${cells.join('')}`);
    }
    console.log(`${''.padEnd(30)}${'ratio'.padEnd(8)}${rows.always.map((us, i) => `${(us / rows.never[i]).toFixed(2)}x`.padStart(14)).join('')}`);
  }
}
k.setDirectConv('auto');
