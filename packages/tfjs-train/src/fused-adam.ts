import type { KernelBackend, KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { allocFloat32, float32View, isWasmLike } from './backend-access';

/**
 * Kernel name of the fused Adam step: inputs { weights, gradient, firstMoment, secondMoment },
 * attrs `FusedAdamAttrs`, outputs [weights', firstMoment', secondMoment']. @lab/ranking-models'
 * AdamOptimizer looks it up by this string (it does not depend on this package) and falls back
 * to tfjs ops on backends without it, so the string must not change on one side only.
 */
export const FUSED_ADAM = 'LabFusedAdam';

export interface FusedAdamAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** true: AdamW (w ← w·(1 − lr·wd) before the step); false: L2 (wd·w added to the gradient). */
  decoupled: boolean;
  /** t, the 1-based step count including this step (bias corrections use β^t). */
  step: number;
}

/** The update over typed arrays: `adamUpdateInto`, or the native one with the same signature. */
export type AdamUpdateFn = (
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  wOut: Float32Array,
  mOut: Float32Array,
  vOut: Float32Array,
  attrs: FusedAdamAttrs,
) => void;

/**
 * One PyTorch Adam / AdamW step for one variable, the same rule as AdamOptimizer.applyGradients:
 *   g ← g + wd·w (L2 only);  w ← w·(1 − lr·wd) (AdamW only)
 *   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
 *   w ← w − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + ε)
 * Intermediates are float64 (JS numbers), rounded once on store. Every input of index i is read
 * before any output of index i is written, so outputs may alias inputs.
 */
export const adamUpdateInto: AdamUpdateFn = (w, g, m, v, wOut, mOut, vOut, attrs) => {
  const { lr, beta1, beta2, epsilon, weightDecay, decoupled, step } = attrs;
  const stepSize = lr / (1 - beta1 ** step);
  // A multiply by the reciprocal instead of a divide per element: ~15% faster in V8, and the
  // change (≤ 1 float64 ulp) vanishes in the float32 store.
  const invSqrtBiasCorrection2 = 1 / Math.sqrt(1 - beta2 ** step);
  // Folding the decay into two per-variant factors keeps the loop branch-free.
  const gradientDecay = !decoupled && weightDecay > 0 ? weightDecay : 0;
  const weightScale = decoupled && weightDecay > 0 ? 1 - lr * weightDecay : 1;
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  const n = w.length;
  for (let i = 0; i < n; i++) {
    const wi = w[i];
    const gi = g[i] + gradientDecay * wi;
    const mi = beta1 * m[i] + oneMinusBeta1 * gi;
    const vi = beta2 * v[i] + oneMinusBeta2 * gi * gi;
    mOut[i] = mi;
    vOut[i] = vi;
    wOut[i] = wi * weightScale - (stepSize * mi) / (Math.sqrt(vi) * invSqrtBiasCorrection2 + epsilon);
  }
};

const INPUT_NAMES = ['weights', 'gradient', 'firstMoment', 'secondMoment'] as const;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkAttrs(attrs: NamedAttrMap | undefined): FusedAdamAttrs {
  const a = (attrs ?? {}) as unknown as FusedAdamAttrs;
  for (const key of ['lr', 'beta1', 'beta2', 'epsilon', 'weightDecay'] as const) {
    if (typeof a[key] !== 'number' || !Number.isFinite(a[key])) {
      throw new Error(`@lab/tfjs-train ${FUSED_ADAM}: attr '${key}' must be a finite number, got ${String(a[key])}`);
    }
  }
  // step 0 would divide by 1 − β1⁰ = 0.
  if (!Number.isInteger(a.step) || a.step < 1) {
    throw new Error(`@lab/tfjs-train ${FUSED_ADAM}: attr 'step' must be an integer ≥ 1 (the count after this step), got ${String(a.step)}`);
  }
  if (typeof a.decoupled !== 'boolean') {
    throw new Error(`@lab/tfjs-train ${FUSED_ADAM}: attr 'decoupled' must be a boolean, got ${String(a.decoupled)}`);
  }
  return a;
}

/**
 * The output that replaces a moment: on the wasm backend its own buffer when no other tensor holds
 * it (reference count 1), else a new one. Updating the moments in place skips two allocations per
 * variable and the writes to fresh memory. Only the moments, only on wasm: the wasm backend's
 * XNNPACK matmul and convolution keep packed copies of a weight tensor, keyed on the tensor, for as
 * long as it lives, and would go on computing with the old weights; on the cpu backend a tensor
 * made from a JS array keeps that array, which its caller may still hold, as its storage, a sharing
 * no reference count shows. A moment is read by nothing but this step. The output then shares the
 * input's buffer the way a Reshape's output does, with the reference count raised for it.
 */
function momentOutput(backend: KernelBackend, input: TensorInfo): TensorInfo {
  if (!isWasmLike(backend) || backend.refCount(input.dataId) !== 1) return allocFloat32(backend, [...input.shape]);
  backend.incRef(input.dataId);
  return { dataId: input.dataId, shape: [...input.shape], dtype: 'float32' };
}

function makeFusedAdamKernel(update: AdamUpdateFn): KernelFunc {
  return ({ inputs, backend: backendAny, attrs }) => {
    const backend = backendAny as KernelBackend;
    const infos = inputs as Partial<Record<(typeof INPUT_NAMES)[number], TensorInfo>>;
    const weights = infos.weights;
    if (weights == null) throw new Error(`@lab/tfjs-train ${FUSED_ADAM}: missing input 'weights'`);
    for (const name of INPUT_NAMES) {
      const info = infos[name];
      if (info == null) throw new Error(`@lab/tfjs-train ${FUSED_ADAM}: missing input '${name}'`);
      if (info.dtype !== 'float32') {
        throw new Error(`@lab/tfjs-train ${FUSED_ADAM}: input '${name}' must be float32, got ${info.dtype}`);
      }
      if (!sameShape(info.shape, weights.shape)) {
        throw new Error(`@lab/tfjs-train ${FUSED_ADAM}: input '${name}' has shape [${info.shape}], expected the shape of 'weights' [${weights.shape}]`);
      }
    }
    const checked = checkAttrs(attrs);
    // All three are allocated before any view is taken because a wasm allocation may grow the
    // heap and detach earlier views.
    const wOut = allocFloat32(backend, [...weights.shape]);
    const mOut = momentOutput(backend, infos.firstMoment!);
    const vOut = momentOutput(backend, infos.secondMoment!);
    try {
      update(
        float32View(backend, weights),
        float32View(backend, infos.gradient!),
        float32View(backend, infos.firstMoment!),
        float32View(backend, infos.secondMoment!),
        float32View(backend, wOut),
        float32View(backend, mOut),
        float32View(backend, vOut),
        checked,
      );
    } catch (error) {
      // The engine never sees these outputs if the update throws, so nobody else frees them (for
      // an output over its input this only takes back the reference added for it). Every input
      // was checked above, so the update throws before it writes anything.
      for (const out of [wOut, mOut, vOut]) backend.disposeData(out.dataId);
      throw error;
    }
    return [wOut, mOut, vOut];
  };
}

/**
 * `LabFusedAdamMulti`: the same step for many variables in one kernel dispatch (the per-dispatch
 * bookkeeping of ~60 calls cost more than their arithmetic on the lab's small models). Inputs
 * `weights<i>`, `gradient<i>`, `firstMoment<i>`, `secondMoment<i>` for i < attr `count`, plus the
 * attributes of `LabFusedAdam`; outputs [weights0, firstMoment0, secondMoment0, weights1, ...].
 */
export const FUSED_ADAM_MULTI = 'LabFusedAdamMulti';

function makeFusedAdamMultiKernel(update: AdamUpdateFn): KernelFunc {
  const single = makeFusedAdamKernel(update);
  return ({ inputs, backend, attrs }) => {
    const count = Number((attrs as { count?: unknown } | undefined)?.count);
    if (!Number.isInteger(count) || count < 0) {
      throw new Error(`@lab/tfjs-train ${FUSED_ADAM_MULTI}: attr 'count' must be a non-negative integer, got ${String(count)}`);
    }
    const named = inputs as Record<string, TensorInfo | undefined>;
    const outputs: TensorInfo[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const one = { weights: named[`weights${i}`], gradient: named[`gradient${i}`], firstMoment: named[`firstMoment${i}`], secondMoment: named[`secondMoment${i}`] };
        outputs.push(...(single({ inputs: one as NamedTensorInfoMap, backend, attrs }) as TensorInfo[]));
      }
    } catch (error) {
      for (const out of outputs) (backend as KernelBackend).disposeData(out.dataId);
      throw new Error(`${(error as Error).message.replace(FUSED_ADAM, FUSED_ADAM_MULTI)} (variable ${outputs.length / 3})`);
    }
    return outputs;
  };
}

/** `LabFusedAdamMulti` for the 'wasm' or 'cpu' backend (`native` as for `fusedAdamConfig`). */
export function fusedAdamMultiConfig(backendName: string, native?: AdamUpdateFn): KernelConfig {
  return { kernelName: FUSED_ADAM_MULTI, backendName, kernelFunc: makeFusedAdamMultiKernel(native ?? adamUpdateInto) };
}

/**
 * Fused Adam kernel for the 'wasm' or 'cpu' backend: one pass over the four inputs instead of
 * ~10 tfjs ops (and passes) per variable. `native` replaces the JS loop (same arguments).
 */
export function fusedAdamConfig(backendName: string, native?: AdamUpdateFn): KernelConfig {
  return { kernelName: FUSED_ADAM, backendName, kernelFunc: makeFusedAdamKernel(native ?? adamUpdateInto) };
}
