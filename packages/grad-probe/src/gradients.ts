import * as tf from '@tensorflow/tfjs-core';
import type { RandomProjection, RandomProjectionJSON } from './random-projection';

/** Variables to differentiate: a list (named by `variable.name`) or a map name → variable. */
export type VariableInput = readonly tf.Variable[] | Readonly<Record<string, tf.Variable>>;

export interface GradientOptions {
  /** Project every gradient to `project.k` dimensions as soon as it is computed (saves memory). */
  project?: RandomProjection;
  /** Keep only the variables for which this returns true. Non-trainable variables are always skipped. */
  variableFilter?: (name: string, variable: tf.Variable) => boolean;
}

/** Where one variable's gradient sits inside the flattened (unprojected) vector. */
export interface GradientSegment {
  name: string;
  shape: number[];
  size: number;
  offset: number;
}

export interface GradientSet {
  /** `batch`: one gradient per batch; `sample`: one per sample. */
  kind: 'batch' | 'sample';
  /** Layout of the full flattened gradient (order of concatenation). */
  segments: GradientSegment[];
  /** Length d of the full flattened gradient. */
  dimension: number;
  /** The projection applied to `gradients`, or null when they are the full vectors. */
  projection: RandomProjectionJSON | null;
  /** One vector per item: length `dimension`, or `projection.k` when projected. */
  gradients: Float32Array[];
  /** L2 norm of each item's full gradient (computed before any projection). */
  norms: number[];
  /** layerNorms[item][segment]: L2 norm of each variable's gradient. */
  layerNorms: number[][];
  /** The loss value of each item. */
  losses: number[];
}

interface SelectedVariable {
  name: string;
  variable: tf.Variable;
}

function selectVariables(variables: VariableInput, filter: GradientOptions['variableFilter'], where: string): SelectedVariable[] {
  let entries: SelectedVariable[];
  if (Array.isArray(variables)) {
    entries = (variables as readonly tf.Variable[]).map((variable) => ({ name: variable?.name, variable }));
  } else if (variables != null && typeof variables === 'object') {
    entries = Object.entries(variables as Record<string, tf.Variable>).map(([name, variable]) => ({ name, variable }));
  } else {
    throw new Error(`${where}: variables must be an array of tf.Variable or a map name → tf.Variable`);
  }
  entries.forEach(({ name, variable }) => {
    if (!(variable instanceof tf.Variable)) {
      throw new Error(`${where}: variables["${name}"] is not a tf.Variable`);
    }
  });
  const selected = entries.filter(({ name, variable }) => variable.trainable && (filter ? filter(name, variable) : true));
  if (selected.length === 0) {
    throw new Error(`${where}: no trainable variable left to differentiate (after variableFilter)`);
  }
  return selected;
}

function segmentsOf(selected: SelectedVariable[]): GradientSegment[] {
  let offset = 0;
  return selected.map(({ name, variable }) => {
    const segment = { name, shape: [...variable.shape], size: variable.size, offset };
    offset += variable.size;
    return segment;
  });
}

/** An empty set over the selected variables: its layout, and the projection its vectors will get. */
function emptySet(kind: GradientSet['kind'], selected: SelectedVariable[], options: GradientOptions): GradientSet {
  const segments = segmentsOf(selected);
  return {
    kind,
    segments,
    dimension: segments.reduce((s, seg) => s + seg.size, 0),
    projection: options.project ? options.project.toJSON() : null,
    gradients: [],
    norms: [],
    layerNorms: [],
    losses: [],
  };
}

/** Adds one item's full gradient: its norms (before any projection), its loss, its (projected) vector. */
function appendItem(set: GradientSet, values: Float32Array, loss: number, options: GradientOptions): void {
  const layer = set.segments.map(({ offset, size }) => {
    let s = 0;
    for (let i = offset; i < offset + size; i++) s += values[i] * values[i];
    return Math.sqrt(s);
  });
  set.layerNorms.push(layer);
  set.norms.push(Math.sqrt(layer.reduce((s, n) => s + n * n, 0)));
  set.losses.push(loss);
  set.gradients.push(options.project ? options.project.project(values) : values);
}

/**
 * A GradientSet from gradients computed elsewhere (e.g. all per-sample gradients of a model in one
 * batched backward pass): `vectors[i]` is item i's full gradient, flattened in the order of the
 * selected variables (as `segments` lays them out), `losses[i]` its loss. Segments, norms, layer
 * norms and projection are exactly those `batchGradients` / `perSampleGradients` compute from the
 * same vectors. Unprojected vectors are kept as given (Float32Array) or copied into one.
 */
export function gradientSetFromVectors(
  kind: GradientSet['kind'],
  variables: VariableInput,
  vectors: readonly ArrayLike<number>[],
  losses: readonly number[] | ArrayLike<number>,
  options: GradientOptions = {},
): GradientSet {
  const where = 'grad-probe gradientSetFromVectors';
  if (kind !== 'batch' && kind !== 'sample') throw new Error(`${where}: kind must be 'batch' or 'sample', got ${String(kind)}`);
  if (!Array.isArray(vectors) || vectors.length === 0) throw new Error(`${where}: expected a non-empty array of gradient vectors`);
  if (losses == null || losses.length !== vectors.length) {
    throw new Error(`${where}: expected one loss per vector (${vectors.length}), got ${String(losses?.length)}`);
  }
  const set = emptySet(kind, selectVariables(variables, options.variableFilter, where), options);
  vectors.forEach((vector, i) => {
    if (vector == null || vector.length !== set.dimension) {
      throw new Error(`${where}: vectors[${i}] has length ${String(vector?.length)}, expected the gradient dimension ${set.dimension}`);
    }
    appendItem(set, vector instanceof Float32Array ? vector : Float32Array.from(vector), Number(losses[i]), options);
  });
  return set;
}

async function gradientsPerItem<T>(
  kind: GradientSet['kind'],
  variables: VariableInput,
  items: readonly T[],
  lossFn: (item: T) => tf.Scalar,
  options: GradientOptions,
  where: string,
): Promise<GradientSet> {
  if (!Array.isArray(items) || items.length === 0) {
    throw new Error(`${where}: expected a non-empty array of ${kind === 'batch' ? 'batches' : 'samples'}`);
  }
  if (typeof lossFn !== 'function') {
    throw new Error(`${where}: lossFn must be a function returning a scalar loss tensor`);
  }
  const selected = selectVariables(variables, options.variableFilter, where);
  const variableList = selected.map((s) => s.variable);
  const result = emptySet(kind, selected, options);

  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    let loss: tf.Tensor;
    let flat: tf.Tensor;
    try {
      [loss, flat] = tf.tidy(() => {
        // variableGrads computes gradients without touching the variables' values.
        const { value, grads } = tf.variableGrads(() => lossFn(item), variableList);
        // A variable the loss does not reach gets an explicit zero gradient.
        const parts = variableList.map((v) => grads[v.name] ?? tf.zeros([v.size]));
        return [value, tf.concat(parts.map((g) => tf.reshape(g, [-1])))];
      });
    } catch (error) {
      const message = (error as Error).message;
      // tfjs-core alone registers no gradients; @tensorflow/tfjs and tfjs-layers do on import.
      const hint = /gradient function not found/i.test(message)
        ? " (TF.js gradients are not registered: import '@tensorflow/tfjs' or '@tensorflow/tfjs-layers', or with a bundler '@tensorflow/tfjs-core/dist/register_all_gradients')"
        : '';
      throw new Error(`${where}: lossFn failed on ${kind} ${index}: ${message}${hint}`);
    }
    try {
      const [lossData, gradData] = await Promise.all([loss.data(), flat.data()]);
      // A copy: the CPU backend hands out its own buffer, which a single-variable concat may share
      // with tensors the caller still holds.
      appendItem(result, Float32Array.from(gradData as ArrayLike<number>), lossData[0], options);
    } finally {
      loss.dispose();
      flat.dispose();
    }
  }
  return result;
}

/**
 * Gradient of `lossFn(batch)` with respect to the (trainable, selected) variables for every batch,
 * flattened into one vector per batch in the order of `segments`. The variables are not updated.
 * Async because reading tensors back is asynchronous on GPU backends.
 */
export function batchGradients<B>(
  variables: VariableInput,
  batches: readonly B[],
  lossFn: (batch: B) => tf.Scalar,
  options: GradientOptions = {},
): Promise<GradientSet> {
  return gradientsPerItem('batch', variables, batches, lossFn, options, 'grad-probe batchGradients');
}

/**
 * One backward pass per sample: the gradient of `lossFn(sample)` for every sample.
 *
 * Batch normalisation: in training mode a layer normalises with the statistics of the batch it
 * sees, so a "batch" of one sample is normalised by itself (with a dense layer its output becomes
 * the bias and the gradient through it vanishes). The per-sample gradient is well defined only with
 * fixed statistics, so `lossFn` should run the model in inference mode (tfjs-layers:
 * `model.apply(x, { training: false })`, which uses the moving mean and variance and disables
 * dropout). Then the mean of the per-sample gradients equals the gradient of the batch-mean loss
 * in inference mode, which is what the GNS estimators assume. The choice is the caller's: this
 * function differentiates whatever `lossFn` computes.
 */
export function perSampleGradients<S>(
  variables: VariableInput,
  samples: readonly S[],
  lossFn: (sample: S) => tf.Scalar,
  options: GradientOptions = {},
): Promise<GradientSet> {
  return gradientsPerItem('sample', variables, samples, lossFn, options, 'grad-probe perSampleGradients');
}

export interface LayerGradientNorms {
  name: string;
  size: number;
  /** Norm of this variable's gradient for each item of the set. */
  norms: number[];
  meanNorm: number;
  /** Root-mean-square gradient entry: meanNorm / √size, comparable across layers of different size. */
  rmsPerParameter: number;
}

/** Per-variable gradient norms of a GradientSet (kept even when the vectors were projected). */
export function layerGradientNorms(set: GradientSet): LayerGradientNorms[] {
  if (set == null || !Array.isArray(set.segments) || !Array.isArray(set.layerNorms)) {
    throw new Error('grad-probe layerGradientNorms: expected a GradientSet from batchGradients or perSampleGradients');
  }
  return set.segments.map((segment, s) => {
    const norms = set.layerNorms.map((row) => row[s]);
    const meanNorm = norms.reduce((a, b) => a + b, 0) / Math.max(norms.length, 1);
    return { name: segment.name, size: segment.size, norms, meanNorm, rmsPerParameter: meanNorm / Math.sqrt(segment.size) };
  });
}
