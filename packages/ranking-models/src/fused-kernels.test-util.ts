import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, type TestContext } from 'vitest';
// This package does not depend on @lab/tfjs-train (it looks its kernels up by name); the tests
// take the kernels from the sibling package's source, as a user installing both would.
import { removeFastTraining, useFastTraining, type FastTrainingInfo } from '@lab/tfjs-train';
import { hasFusedConvBatchNorm } from './fused-forward';

// CI sets LAB_TFJS_TRAIN_EXPECT_NATIVE=1 where a C compiler exists: there a failed native build fails the tests.
const expectNative = process.env.LAB_TFJS_TRAIN_EXPECT_NATIVE === '1';

/**
 * For a test file: installs @lab/tfjs-train's kernels (native, 2 threads, a private build cache)
 * on wasm before its tests and removes them after. `requireFused(ctx)` skips a test where the
 * native kernels could not be built (failing instead where they must be); `install()` installs
 * them again after a test removed them.
 */
export function fusedKernelsForTests(name: string): { requireFused(ctx: TestContext): void; install(): Promise<FastTrainingInfo> } {
  const cacheDir = mkdtempSync(join(tmpdir(), `ranking-models-${name}-`));
  let info: FastTrainingInfo | undefined;
  const install = async () => (info = await useFastTraining('wasm', { nativeBuild: { cacheDir }, threads: 2 }));
  beforeAll(async () => {
    await tf.setBackend('cpu');
    await tf.setBackend('wasm');
    await install();
  });
  afterAll(() => {
    removeFastTraining('wasm');
    rmSync(cacheDir, { recursive: true, force: true });
  });
  return {
    install,
    requireFused(ctx) {
      if (!info!.native.enabled) {
        expect(expectNative, `native kernels unavailable: ${info!.native.reason}`).toBe(false);
        ctx.skip();
      }
      expect(hasFusedConvBatchNorm()).toBe(true);
    },
  };
}

/** max |a − b| / max |b|: relative to the scale of the reference (Infinity where a has NaN). */
export function relativeDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return Number.isNaN(diff) ? Infinity : diff / Math.max(scale, 1e-30);
}
