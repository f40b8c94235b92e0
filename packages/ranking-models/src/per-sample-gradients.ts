import * as tf from '@tensorflow/tfjs-core';
import { hasFusedConvBatchNorm, planOf, runConvBatchNorm, type FusedUnit, type LayerLike, type LayerStep, type Plan } from './fused-forward';
import type { ModelInput, TrainableModel } from './trainable-model';

/** The loss of one row: the model's output and the target, each with a leading dimension of 1. */
export type RowLossFn = (output: tf.Tensor, target: tf.Tensor) => tf.Scalar;

export interface PerSampleGradientsResult {
  /** lossFn of each row. */
  losses: Float32Array;
  /** One tensor per trainable variable (in `model.trainableVariables` order), shape [P, ...variable.shape]. */
  gradients: tf.Tensor[];
  /** Whether all rows went through one grouped pass (false: the per-row loop ran). */
  batched: boolean;
}

/**
 * The gradient of each row's loss with respect to every trainable variable, batch norm in
 * inference mode (moving statistics; nothing is updated). Row p's loss is `lossFn(output row p,
 * target row p)`; summing the rows' losses and differentiating the sum w.r.t. per-row copies of
 * the weights gives every row's gradient, exact for any lossFn.
 *
 * Where @lab/tfjs-train's fused kernels are registered and the model's graph is one the fused path
 * plans (conv → BN (→ add) → ReLU units, weightless layers, a linear dense head), all rows go
 * through ONE forward and backward pass: each row is a group of the grouped conv op with its own
 * copies of the weights, the dense head a batched matmul. Otherwise one backward pass per row.
 */
export function perSampleGradients(model: TrainableModel, input: ModelInput, target: tf.Tensor, lossFn: RowLossFn): PerSampleGradientsResult {
  const rows = target.shape[0];
  const inputs = Array.isArray(input) ? input : [input];
  if (rows == null || rows < 1 || inputs.some((t) => t.shape[0] !== rows)) {
    throw new Error(`perSampleGradients: inputs and target must share a first dimension ≥ 1, got ${JSON.stringify(inputs.map((t) => t.shape[0]))} and ${String(rows)}`);
  }
  let batched = true;
  const result = tf.tidy(() => {
    const pass = batchedPass(model, input, target, lossFn);
    if (pass != null) return pass;
    batched = false;
    return loopPass(model, input, target, lossFn);
  });
  const losses = Float32Array.from(result.losses.dataSync());
  result.losses.dispose();
  return { losses, gradients: result.gradients, batched };
}

/** A type (not an interface) so that tf.tidy accepts it as a tensor container. */
type PassResult = {
  losses: tf.Tensor;
  gradients: tf.Tensor[];
};

/** Row p of a model input (each part's row p). */
function rowOf(input: ModelInput, p: number): ModelInput {
  return Array.isArray(input) ? input.map((t) => tf.slice(t, p, 1)) : tf.slice(input, p, 1);
}

/** The reference path: one tf.variableGrads per row, stacked. */
function loopPass(model: TrainableModel, input: ModelInput, target: tf.Tensor, lossFn: RowLossFn): PassResult {
  const variables = model.trainableVariables;
  const rows = target.shape[0];
  const losses: tf.Tensor[] = [];
  const perRow: tf.Tensor[][] = [];
  for (let p = 0; p < rows; p++) {
    const { value, grads } = tf.variableGrads(() => lossFn(model.forward(rowOf(input, p), { training: false }), tf.slice(target, p, 1)), variables);
    losses.push(value);
    // A variable the loss does not reach gets an explicit zero gradient, as with the batched path.
    perRow.push(variables.map((v) => grads[v.name] ?? tf.zerosLike(v)));
  }
  return { losses: tf.stack(losses), gradients: variables.map((_, i) => tf.stack(perRow.map((g) => g[i]))) };
}

/**
 * How each trainable variable enters the batched pass: P copies (one per group of a fused unit), or
 * one tensor stacked along a new leading axis (the dense head's batched matmul; its bias [P, 1, O]).
 */
type Copies = { kind: 'copies'; tensors: tf.Tensor[] } | { kind: 'stacked'; tensor: tf.Tensor };

interface DenseLike extends LayerLike {
  kernel: { read(): tf.Tensor };
  bias: { read(): tf.Tensor } | null;
}

function isLinearDense(layer: LayerLike): layer is DenseLike {
  const activation = layer.getConfig().activation;
  return layer.getClassName() === 'Dense' && (activation == null || activation === 'linear');
}

function isWeightless(layer: LayerLike): boolean {
  return (layer as unknown as { weights: unknown[] }).weights.length === 0;
}

/** The variables the plan's weighted steps use, in the form each step needs; null where a step or a variable is not one the batched pass handles. */
function copiesOf(plan: Plan, variables: tf.Variable[], rows: number): Map<tf.Tensor, Copies> | null {
  const forms = new Map<tf.Tensor, 'copies' | 'stacked'>();
  for (const step of plan.steps) {
    if (step.kind === 'fused') {
      for (const v of [step.conv.kernel.read(), step.bn.gamma!.read(), step.bn.beta!.read()]) forms.set(v, 'copies');
    } else if (isLinearDense(step.layer)) {
      forms.set(step.layer.kernel.read(), 'stacked');
      if (step.layer.bias != null) forms.set(step.layer.bias.read(), 'stacked');
    } else if (!isWeightless(step.layer)) {
      return null;
    }
  }
  if (variables.some((v) => !forms.has(v)) || forms.size !== variables.length) return null;
  // Copies are made outside the tape, so that differentiating stops at them (each row's own weights).
  return new Map(
    variables.map((v): [tf.Tensor, Copies] =>
      forms.get(v) === 'copies'
        ? [v, { kind: 'copies', tensors: Array.from({ length: rows }, () => tf.clone(v)) }]
        : [v, { kind: 'stacked', tensor: tf.tile(tf.expandDims(v, 0), [rows, ...v.shape.map(() => 1)]) }],
    ),
  );
}

/** A linear dense layer applied to each row group with its own weights: [P·K, F] → [P·K, O]. */
function batchedDense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null, rows: number): tf.Tensor {
  const [, features] = x.shape;
  const y = tf.matMul(tf.reshape(x, [rows, -1, features]), kernel);
  const biased = bias != null ? tf.add(y, tf.reshape(bias, [rows, 1, -1])) : y;
  return tf.reshape(biased, [x.shape[0], -1]);
}

/** The plan on P row groups, each with its own copies of the weights (`weights` maps a variable to the tensors differentiated). */
function runPlanPerRow(plan: Plan, x: tf.Tensor, rows: number, weights: (v: tf.Tensor) => tf.Tensor[] | tf.Tensor): tf.Tensor | null {
  const values = new Map<number, tf.Tensor>([[plan.input, x]]);
  for (const step of plan.steps) {
    if (step.kind === 'fused') {
      values.set(step.output, runFusedPerRow(step, values, rows, weights));
      continue;
    }
    const inputs = step.inputs.map((id) => values.get(id)!);
    if (isLinearDense(step.layer)) {
      if (inputs.length !== 1 || inputs[0].rank !== 2) return null;
      const bias = step.layer.bias != null ? (weights(step.layer.bias.read()) as tf.Tensor) : null;
      values.set(step.output, batchedDense(inputs[0], weights(step.layer.kernel.read()) as tf.Tensor, bias, rows));
    } else {
      // Weightless layers (padding, pooling, add, ReLU) treat rows independently: once on the whole batch.
      values.set(step.output, (step as LayerStep).layer.apply(inputs.length === 1 ? inputs[0] : inputs, { training: false }) as tf.Tensor);
    }
  }
  return values.get(plan.output)!;
}

function runFusedPerRow(unit: FusedUnit, values: Map<number, tf.Tensor>, rows: number, weights: (v: tf.Tensor) => tf.Tensor[] | tf.Tensor): tf.Tensor {
  const residual = unit.residual != null ? values.get(unit.residual)! : null;
  return runConvBatchNorm(Array<FusedUnit>(rows).fill(unit), values.get(unit.input)!, residual, false, {
    filters: weights(unit.conv.kernel.read()) as tf.Tensor[],
    scales: weights(unit.bn.gamma!.read()) as tf.Tensor[],
    offsets: weights(unit.bn.beta!.read()) as tf.Tensor[],
  });
}

/** Input parts [P, ...] each → rows interleaved [P·K, ...]: row p's K parts are group p's rows. */
function interleave(parts: tf.Tensor[]): tf.Tensor {
  if (parts.length === 1) return parts[0];
  const [rows, ...rest] = parts[0].shape;
  return tf.reshape(tf.stack(parts, 1), [rows * parts.length, ...rest]);
}

/** The inverse of `interleave` on the output [P·K, ...]: K parts [P, ...]. */
function deinterleave(output: tf.Tensor, rows: number, parts: number): tf.Tensor[] {
  if (parts === 1) return [output];
  const rest = output.shape.slice(1);
  return tf.unstack(tf.reshape(output, [rows, parts, ...rest]), 1);
}

/** All rows in one grouped forward + backward pass; null where this path does not apply. */
function batchedPass(model: TrainableModel, input: ModelInput, target: tf.Tensor, lossFn: RowLossFn): PassResult | null {
  if (!hasFusedConvBatchNorm() || model.inputParts == null || model.outputFrom == null) return null;
  const plan = planOf(model.model);
  const parts = model.inputParts(input);
  if (plan == null || parts.some((t) => t.dtype !== 'float32')) return null;
  const rows = target.shape[0];
  const variables = model.trainableVariables;
  const copies = copiesOf(plan, variables, rows);
  if (copies == null) return null;
  const flat = variables.flatMap((v) => {
    const c = copies.get(v)!;
    return c.kind === 'copies' ? c.tensors : [c.tensor];
  });
  let rowLosses: tf.Tensor | null = null;
  let supported = true;
  const f = (...xs: tf.Tensor[]): tf.Scalar => {
    // The arguments in `flat`'s order, handed back per variable.
    const byVariable = new Map<tf.Tensor, tf.Tensor[] | tf.Tensor>();
    let at = 0;
    for (const v of variables) {
      const c = copies.get(v)!;
      byVariable.set(v, c.kind === 'copies' ? xs.slice(at, (at += rows)) : xs[at++]);
    }
    const output = runPlanPerRow(plan, interleave(parts), rows, (v) => byVariable.get(v)!);
    if (output == null) {
      supported = false;
      return tf.scalar(0);
    }
    const full = model.outputFrom!(deinterleave(output, rows, parts.length), input);
    const losses = Array.from({ length: rows }, (_, p) => lossFn(tf.slice(full, p, 1), tf.slice(target, p, 1)));
    rowLosses = tf.keep(tf.stack(losses));
    return tf.addN(losses) as tf.Scalar;
  };
  let grads: tf.Tensor[];
  try {
    ({ grads } = tf.valueAndGrads(f)(flat));
  } catch (error) {
    if (supported) throw error;
    return null;
  }
  if (!supported) return null;
  let at = 0;
  const gradients = variables.map((v) => {
    const c = copies.get(v)!;
    if (c.kind === 'copies') return tf.stack(grads.slice(at, (at += rows)));
    return tf.reshape(grads[at++], [rows, ...v.shape]);
  });
  return { losses: rowLosses!, gradients };
}
