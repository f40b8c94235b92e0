// Investigation: how much faster could the conv GEMMs of a ResNet-18 step run in a native Node
// addon than in the wasm backend's XNNPACK? Builds a throw-away N-API addon in a temp dir with
// g++ (no node-gyp, no download: Node's own headers from /usr/include/node), exposing
//   (a) a plain C++ sgemm compiled with -O3 -march=native (what a from-source install could
//       always build), 1 or 2 threads;
//   (b) oneDNN's sgemm through dlopen('libdnnl.so.2') where that library is present (Debian
//       ships it with python3-torch; it is what PyTorch's CPU convolutions use).
// and times both against tf.matMul on the wasm backend for the im2col GEMM shapes of the
// ResNet-18 layers at batch 4, 128x128.
//   tsx bench/train-native-gemm.ts
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const source = String.raw`
#include <node_api.h>
#include <dlfcn.h>
#include <thread>
#include <vector>
#include <cstring>
typedef int (*dnnl_sgemm_t)(char, char, long, long, long, float, const float*, long, const float*, long, float, float*, long);
static dnnl_sgemm_t dnnl_sgemm = nullptr;

// C[M,N] = A[M,K] B[K,N], row-major; rows of C split across threads. Four rows of A share each
// B row load; the j loop is left to the auto-vectoriser (-O3 -march=native).
static void gemm_rows(const float* A, const float* B, float* C, long m0, long m1, long N, long K) {
  long i = m0;
  for (; i + 4 <= m1; i += 4) {
    float* c0 = C + i * N; float* c1 = c0 + N; float* c2 = c1 + N; float* c3 = c2 + N;
    std::memset(c0, 0, sizeof(float) * N * 4);
    for (long k = 0; k < K; k++) {
      const float a0 = A[i * K + k], a1 = A[(i + 1) * K + k], a2 = A[(i + 2) * K + k], a3 = A[(i + 3) * K + k];
      const float* b = B + k * N;
      for (long j = 0; j < N; j++) { const float bj = b[j]; c0[j] += a0 * bj; c1[j] += a1 * bj; c2[j] += a2 * bj; c3[j] += a3 * bj; }
    }
  }
  for (; i < m1; i++) {
    float* c = C + i * N;
    std::memset(c, 0, sizeof(float) * N);
    for (long k = 0; k < K; k++) { const float a = A[i * K + k]; const float* b = B + k * N; for (long j = 0; j < N; j++) c[j] += a * b[j]; }
  }
}

static float* f32(napi_env env, napi_value v) {
  napi_typedarray_type t; size_t len; void* data; napi_value ab; size_t off;
  napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &off);
  return static_cast<float*>(data);
}
static long num(napi_env env, napi_value v) { int64_t x; napi_get_value_int64(env, v, &x); return (long)x; }

// gemm(engine 0 = plain C++, 1 = oneDNN, threads, M, N, K, A, B, C)
static napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 9; napi_value a[9];
  napi_get_cb_info(env, info, &argc, a, nullptr, nullptr);
  long engine = num(env, a[0]), threads = num(env, a[1]), M = num(env, a[2]), N = num(env, a[3]), K = num(env, a[4]);
  float *A = f32(env, a[5]), *B = f32(env, a[6]), *C = f32(env, a[7]);
  if (engine == 1) {
    dnnl_sgemm('N', 'N', M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
  } else if (threads <= 1) {
    gemm_rows(A, B, C, 0, M, N, K);
  } else {
    std::vector<std::thread> pool;
    for (long t = 0; t < threads; t++) {
      long m0 = M * t / threads, m1 = M * (t + 1) / threads;
      pool.emplace_back(gemm_rows, A, B, C, m0, m1, N, K);
    }
    for (auto& th : pool) th.join();
  }
  return nullptr;
}

static napi_value HasDnnl(napi_env env, napi_callback_info) {
  napi_value r; napi_get_boolean(env, dnnl_sgemm != nullptr, &r); return r;
}

static napi_value Init(napi_env env, napi_value exports) {
  void* h = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (h) dnnl_sgemm = (dnnl_sgemm_t)dlsym(h, "dnnl_sgemm");
  napi_value f, g;
  napi_create_function(env, "gemm", NAPI_AUTO_LENGTH, Gemm, nullptr, &f);
  napi_create_function(env, "hasDnnl", NAPI_AUTO_LENGTH, HasDnnl, nullptr, &g);
  napi_set_named_property(env, exports, "gemm", f);
  napi_set_named_property(env, exports, "hasDnnl", g);
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
`;

interface Addon {
  gemm(engine: number, threads: number, M: number, N: number, K: number, A: Float32Array, B: Float32Array, C: Float32Array): void;
  hasDnnl(): boolean;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[s.length >> 1];
}
function time(fn: () => void, reps = 7): number {
  fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

const headers = '/usr/include/node';
if (!existsSync(join(headers, 'node_api.h'))) {
  console.log(`no Node headers at ${headers} (Debian: apt-get install libnode-dev); skipping the native prototype`);
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'tfjs-train-native-'));
writeFileSync(join(dir, 'gemm.cc'), source);
// OpenMP threads of oneDNN, fixed before the library loads. One thread by default: it compares
// per-core efficiency with the single-threaded wasm backend, and OpenMP teams of 2 collapse on a
// machine whose cores are busy with other work (as PyTorch's 2 threads do in bench:train).
process.env.OMP_NUM_THREADS ??= '1';
try {
  execFileSync('g++', ['-O3', '-march=native', '-shared', '-fPIC', `-I${headers}`, '-DNODE_GYP_MODULE_NAME=gemm', 'gemm.cc', '-o', 'gemm.node', '-ldl', '-lpthread'], { cwd: dir, stdio: 'pipe' });
} catch (e) {
  console.log(`g++ could not build the addon (${(e as Error).message.split('\n')[0]}); skipping`);
  process.exit(0);
}
const addon = createRequire(import.meta.url)(join(dir, 'gemm.node')) as Addon;
await tf.setBackend('wasm');

// im2col GEMMs of the ResNet-18 3x3 convolutions, batch 4 at 128x128: [b*oh*ow, 9*ci] x [9*ci, co].
const shapes: Array<[string, number, number, number]> = [
  ['layer1 3x3 64->64   (32x32)', 4096, 64, 576],
  ['layer2 3x3 128->128 (16x16)', 1024, 128, 1152],
  ['layer3 3x3 256->256 (8x8)', 256, 256, 2304],
  ['layer4 3x3 512->512 (4x4)', 64, 512, 4608],
];
console.log(`native GEMM prototype vs wasm (XNNPACK) matMul; load average ${loadavg()[0].toFixed(1)} (shared machine: compare ratios)`);
console.log(`oneDNN available: ${addon.hasDnnl()} (OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS})`);
console.log('shape'.padEnd(30) + 'wasm ms'.padStart(9) + 'c++ 1t'.padStart(9) + 'c++ 2t'.padStart(9) + 'oneDNN'.padStart(9) + '   GFLOP/s wasm / c++1t / c++2t / oneDNN');
const ratios: number[] = [];
for (const [name, M, N, K] of shapes) {
  const A = Float32Array.from({ length: M * K }, () => Math.random() - 0.5);
  const B = Float32Array.from({ length: K * N }, () => Math.random() - 0.5);
  const C = new Float32Array(M * N);
  const a = tf.tensor(A, [M, K]) as tf.Tensor2D;
  const b = tf.tensor(B, [K, N]) as tf.Tensor2D;
  const wasmMs = time(() => tf.matMul(a, b).dispose());
  const check = tf.matMul(a, b).dataSync();
  addon.gemm(0, 1, M, N, K, A, B, C);
  let err = 0;
  for (let i = 0; i < C.length; i++) err = Math.max(err, Math.abs(C[i] - check[i]));
  if (err > 1e-2) throw new Error(`native gemm disagrees with wasm by ${err}`);
  const c1 = time(() => addon.gemm(0, 1, M, N, K, A, B, C));
  const c2 = time(() => addon.gemm(0, 2, M, N, K, A, B, C));
  const dn = addon.hasDnnl() ? time(() => addon.gemm(1, 2, M, N, K, A, B, C)) : NaN;
  const gf = (ms: number) => ((2 * M * N * K) / ms / 1e6).toFixed(0);
  console.log(
    name.padEnd(30) + wasmMs.toFixed(2).padStart(9) + c1.toFixed(2).padStart(9) + c2.toFixed(2).padStart(9) + (Number.isNaN(dn) ? '-' : dn.toFixed(2)).padStart(9) +
      `   ${gf(wasmMs)} / ${gf(c1)} / ${gf(c2)} / ${Number.isNaN(dn) ? '-' : gf(dn)}`,
  );
  ratios.push(wasmMs / (Number.isNaN(dn) ? c2 : dn));
  tf.dispose([a, b]);
}
console.log(`median speed-up of the best native GEMM over wasm XNNPACK: ${median(ratios).toFixed(2)}x`);
