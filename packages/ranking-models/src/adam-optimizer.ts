import * as tf from '@tensorflow/tfjs-core';

/**
 * Name of @lab/tfjs-train's fused Adam kernel (FUSED_ADAM there). Looked up by string so this
 * package does not depend on @lab/tfjs-train: when that package has registered the kernel for the
 * current backend, each variable is updated by one kernel call instead of ~10 ops.
 */
const FUSED_ADAM_KERNEL = 'LabFusedAdam';
/** The same step for all variables in one kernel call (FUSED_ADAM_MULTI there), where registered. */
const FUSED_ADAM_MULTI_KERNEL = 'LabFusedAdamMulti';

export interface AdamOptions {
  /** Learning rate (the lab uses 1e-3). */
  lr: number;
  /** Weight decay coefficient (the lab uses 1e-5). Default 0. */
  weightDecay?: number;
  /**
   * false (default): PyTorch `torch.optim.Adam(weight_decay=wd)`: L2, wd·w is added to the
   * gradient before the moment estimates (so it is rescaled by Adam like any gradient).
   * true: PyTorch `torch.optim.AdamW`: decoupled decay, w ← w·(1 − lr·wd) before the Adam step.
   */
  decoupled?: boolean;
  beta1?: number;
  beta2?: number;
  /** Added to sqrt(v̂), as in PyTorch (default 1e-8; tfjs's adam uses 1e-7 and another placement). */
  epsilon?: number;
}

/** Serialisable optimiser state: step count and the moments, in the order of the variables. */
export interface AdamState {
  step: number;
  firstMoments: tf.Tensor[];
  secondMoments: tf.Tensor[];
}

/**
 * Adam with PyTorch's exact update rule and both weight-decay conventions. Written by hand
 * rather than using tf.train.adam because tfjs's Adam has no weight decay and places epsilon
 * differently; here each step is, with t the step count:
 *   g ← g + wd·w                       (L2 variant only)
 *   w ← w·(1 − lr·wd)                  (decoupled / AdamW variant only)
 *   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
 *   w ← w − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + ε)
 * Weight decay applies to every variable handed in (PyTorch's `model.parameters()` includes
 * batch-norm γ/β and biases too). When @lab/tfjs-train's fused kernel is registered for the
 * current backend, float32 variables take the same step in one kernel call each.
 */
export class AdamOptimizer {
  readonly options: Required<AdamOptions>;
  private stepCount = 0;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];

  constructor(
    readonly variables: tf.Variable[],
    options: AdamOptions,
  ) {
    if (!(options.lr > 0)) throw new Error(`AdamOptimizer: options.lr must be a positive number, got ${String(options.lr)}`);
    const weightDecay = options.weightDecay ?? 0;
    if (!(weightDecay >= 0)) throw new Error(`AdamOptimizer: options.weightDecay must be ≥ 0, got ${String(weightDecay)}`);
    this.options = {
      lr: options.lr,
      weightDecay,
      decoupled: options.decoupled ?? false,
      beta1: options.beta1 ?? 0.9,
      beta2: options.beta2 ?? 0.999,
      epsilon: options.epsilon ?? 1e-8,
    };
    // tidy disposes the zeros; the variables keep their own reference to the data.
    this.m = variables.map((w) => tf.tidy(() => tf.variable(tf.zerosLike(w), false)));
    this.v = variables.map((w) => tf.tidy(() => tf.variable(tf.zerosLike(w), false)));
  }

  get step(): number {
    return this.stepCount;
  }

  /** Applies one update; `gradients[i]` belongs to `variables[i]`. Does not dispose the gradients. */
  applyGradients(gradients: tf.Tensor[]): void {
    if (gradients.length !== this.variables.length) {
      throw new Error(`AdamOptimizer.applyGradients: expected ${this.variables.length} gradients, got ${gradients.length}`);
    }
    const { lr, weightDecay, decoupled, beta1, beta2, epsilon } = this.options;
    this.stepCount++;
    const t = this.stepCount;
    const stepSize = lr / (1 - beta1 ** t);
    const sqrtBiasCorrection2 = Math.sqrt(1 - beta2 ** t);
    const fusedAvailable = tf.getKernel(FUSED_ADAM_KERNEL, tf.getBackend()) != null;
    const attrs = { lr, beta1, beta2, epsilon, weightDecay, decoupled, step: t };
    if (tf.getKernel(FUSED_ADAM_MULTI_KERNEL, tf.getBackend()) != null && this.applyAllFused(gradients, attrs)) return;
    tf.tidy(() => {
      this.variables.forEach((w, i) => {
        let g = gradients[i];
        // Other dtypes or shapes keep the op path, which broadcasts or throws exactly as before.
        if (fusedAvailable && w.dtype === 'float32' && g.dtype === 'float32' && tf.util.arraysEqual(w.shape, g.shape)) {
          const [weightsOut, firstMoment, secondMoment] = tf.engine().runKernel(
            FUSED_ADAM_KERNEL,
            { weights: w, gradient: g, firstMoment: this.m[i], secondMoment: this.v[i] },
            attrs as unknown as tf.NamedAttrMap,
          ) as tf.Tensor[];
          this.m[i].assign(firstMoment);
          this.v[i].assign(secondMoment);
          w.assign(weightsOut);
          return;
        }
        let weights: tf.Tensor = w;
        if (weightDecay > 0) {
          if (decoupled) weights = tf.mul(w, 1 - lr * weightDecay);
          else g = tf.add(g, tf.mul(w, weightDecay));
        }
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        const denominator = tf.add(tf.div(tf.sqrt(v), sqrtBiasCorrection2), epsilon);
        this.m[i].assign(m);
        this.v[i].assign(v);
        w.assign(tf.sub(weights, tf.mul(tf.div(m, denominator), stepSize)));
      });
    });
  }

  /** One LabFusedAdamMulti call for every variable; false (nothing done) when one is not float32 of its gradient's shape. */
  private applyAllFused(gradients: tf.Tensor[], attrs: Record<string, number | boolean>): boolean {
    const inputs: tf.NamedTensorMap = {};
    for (const [i, w] of this.variables.entries()) {
      const g = gradients[i];
      if (w.dtype !== 'float32' || g.dtype !== 'float32' || !tf.util.arraysEqual(w.shape, g.shape)) return false;
      inputs[`weights${i}`] = w;
      inputs[`gradient${i}`] = g;
      inputs[`firstMoment${i}`] = this.m[i];
      inputs[`secondMoment${i}`] = this.v[i];
    }
    const outputs = tf.engine().runKernel(FUSED_ADAM_MULTI_KERNEL, inputs, { ...attrs, count: this.variables.length } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    this.variables.forEach((w, i) => {
      w.assign(outputs[3 * i]);
      this.m[i].assign(outputs[3 * i + 1]);
      this.v[i].assign(outputs[3 * i + 2]);
    });
    tf.dispose(outputs);
    return true;
  }

  /** Copies of the state (the caller owns and disposes the tensors). */
  getState(): AdamState {
    return {
      step: this.stepCount,
      firstMoments: this.m.map((m) => m.clone()),
      secondMoments: this.v.map((v) => v.clone()),
    };
  }

  /** Restores a state taken from an optimiser over variables of the same shapes, same order. */
  setState(state: AdamState): void {
    const check = (list: tf.Tensor[], name: string) => {
      if (list.length !== this.variables.length) {
        throw new Error(`AdamOptimizer.setState: state.${name} has ${list.length} tensors, expected ${this.variables.length}`);
      }
      list.forEach((t, i) => {
        if (!tf.util.arraysEqual(t.shape, this.variables[i].shape)) {
          throw new Error(`AdamOptimizer.setState: state.${name}[${i}] has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(this.variables[i].shape)}`);
        }
      });
    };
    check(state.firstMoments, 'firstMoments');
    check(state.secondMoments, 'secondMoments');
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`AdamOptimizer.setState: state.step must be a non-negative integer, got ${String(state.step)}`);
    state.firstMoments.forEach((t, i) => this.m[i].assign(t));
    state.secondMoments.forEach((t, i) => this.v[i].assign(t));
    this.stepCount = state.step;
  }

  stats(): { step: number; variables: number; parameters: number } {
    return { step: this.stepCount, variables: this.variables.length, parameters: this.variables.reduce((s, w) => s + w.size, 0) };
  }

  toJSON(): { type: 'adam'; variant: 'L2' | 'AdamW'; options: Required<AdamOptions>; step: number } {
    return { type: 'adam', variant: this.options.decoupled ? 'AdamW' : 'L2', options: this.options, step: this.stepCount };
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}
