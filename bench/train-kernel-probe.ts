// Per-layer CPU time (ms) of the gradient kernels on ResNet-18 shapes against the forward conv and
// the stock kernels (exploratory):  tsx bench/train-kernel-probe.ts [wasm|cpu] [layer-name-prefix]
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-cpu';
import { conv2dBackpropFilterNHWC, conv2dBackpropInputNHWC, convGeometry } from '@lab/tfjs-train';

const backendName = process.argv[2] ?? 'wasm';
await tf.setBackend(backendName);
const backend = tf.findBackend(backendName)!;
const only = process.argv[3];
const layers: Array<[string, number[], number[], number]> = [
  ['stem7x7s2', [4, 128, 128, 1], [7, 7, 1, 64], 2],
  ['l1 3x3', [4, 32, 32, 64], [3, 3, 64, 64], 1],
  ['l2.0 3x3s2', [4, 32, 32, 64], [3, 3, 64, 128], 2],
  ['l2 3x3', [4, 16, 16, 128], [3, 3, 128, 128], 1],
  ['l2 ds1x1s2', [4, 32, 32, 64], [1, 1, 64, 128], 2],
  ['l3 3x3', [4, 8, 8, 256], [3, 3, 256, 256], 1],
  ['l4 3x3', [4, 4, 4, 512], [3, 3, 512, 512], 1],
];
function med(f: () => void, n = 7): number {
  f();
  const t: number[] = [];
  // CPU time, not wall time: the machine is shared and this process is single-threaded.
  for (let i = 0; i < n; i++) { const c = process.cpuUsage(); f(); const d = process.cpuUsage(c); t.push((d.user + d.system) / 1000); }
  return t.sort((a, b) => a - b)[n >> 1];
}
for (const [name, xs, fs, s] of layers) {
  if (only && !name.startsWith(only)) continue;
  const x = tf.randomNormal(xs as [number, number, number, number]) as tf.Tensor4D;
  const w = tf.randomNormal(fs as [number, number, number, number]) as tf.Tensor4D;
  const y = tf.conv2d(x, w, s, 'same');
  const dy = tf.randomNormal(y.shape);
  const g = convGeometry(xs, fs as [number, number, number, number], [s, s], [1, 1], 'same', undefined, false);
  const fwd = med(() => tf.conv2d(x, w, s, 'same').dispose());
  const res: Record<string, string> = { fwd: fwd.toFixed(1) };
  for (const strat of ['conv', 'matmul', 'auto'] as const) {
    res[strat] = med(() => { const o = conv2dBackpropFilterNHWC(backend, backendName, x, dy, g, strat); backend.disposeData(o.dataId); }).toFixed(1);
  }
  res.ourInput = med(() => { const o = conv2dBackpropInputNHWC(backend, backendName, dy, w, g); backend.disposeData(o.dataId); }).toFixed(1);
  res.stockInput = med(() => tf.conv2dTranspose(dy as tf.Tensor4D, w, xs as [number, number, number, number], s, 'same').dispose()).toFixed(1);
  if (backendName === 'cpu' && xs[3] <= 128) res.stockFilter = med(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: [s, s], pad: 'same', dataFormat: 'NHWC', filterShape: fs } as any) as any, 1).toFixed(1);
  console.log(name.padEnd(12), JSON.stringify(res));
  tf.dispose([x, w, y, dy]);
}
