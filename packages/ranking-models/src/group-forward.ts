import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { applyModel, hasFusedConvBatchNorm, planOf, runConvBatchNorm, type FusedUnit, type LayerStep, type Plan } from './fused-forward';

/**
 * G models of one architecture run as one computation (fused trials, after HFTA: Wang et al.,
 * MLSys 2021): their batches side by side along the batch axis, each conv → batch norm (→ add →
 * ReLU) unit one grouped op (each model's weights passed as they are, nothing stacked),
 * weightless layers (pooling, padding) once on the whole batch, layers with other weights (the
 * dense head) per model on its rows. Each model's weights stay its own variables, so autodiff
 * hands every model the gradient of its own variables.
 */

/** A plan of each model, when all models share one structure the grouped path handles; else null. */
function groupPlans(models: tfl.LayersModel[]): Plan[] | null {
  const plans = models.map(planOf);
  if (plans.some((p) => p == null)) return null;
  const [first, ...rest] = plans as Plan[];
  const sameStep = (a: Plan['steps'][number], b: Plan['steps'][number]) =>
    a.kind === b.kind &&
    (a.kind === 'fused'
      ? sameShape(a.conv.kernel.read().shape, (b as FusedUnit).conv.kernel.read().shape) && a.relu === (b as FusedUnit).relu && (a.residual == null) === ((b as FusedUnit).residual == null)
      : a.layer.getClassName() === (b as LayerStep).layer.getClassName());
  for (const plan of rest) {
    if (plan.steps.length !== first.steps.length || plan.steps.some((step, i) => !sameStep(first.steps[i], step))) return null;
  }
  return plans as Plan[];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Each model's layer `index` on its own rows: layers with weights other than the fused units (the
 * dense head). A batched matmul would save K − 1 dispatches here but changes the summation order
 * (XNNPACK's batched and single matmuls differ in the last bits), and a fused trial's numbers are
 * to be bit-identical to the trial alone.
 */
function layerPerModel(plans: Plan[], index: number, inputs: tf.Tensor[], training: boolean): tf.Tensor {
  const groups = plans.length;
  const parts = inputs.map((t) => tf.split(t, groups));
  const outputs = plans.map((plan, g) => {
    const own = parts.map((p) => p[g]);
    return (plan.steps[index] as LayerStep).layer.apply(own.length === 1 ? own[0] : own, { training }) as tf.Tensor;
  });
  return tf.concat(outputs);
}

function runGroupedStep(plans: Plan[], index: number, values: Map<number, tf.Tensor>, training: boolean): void {
  const step = plans[0].steps[index];
  if (step.kind === 'fused') {
    const residual = step.residual != null ? values.get(step.residual)! : null;
    values.set(step.output, runConvBatchNorm(plans.map((p) => p.steps[index] as FusedUnit), values.get(step.input)!, residual, training));
    return;
  }
  const inputs = step.inputs.map((id) => values.get(id)!);
  const weightless = (step.layer as unknown as { weights: unknown[] }).weights.length === 0;
  values.set(step.output, weightless ? (step.layer.apply(inputs.length === 1 ? inputs[0] : inputs, { training }) as tf.Tensor) : layerPerModel(plans, index, inputs, training));
}

/**
 * `applyModel` of G models at once: `input` holds model g's batch at rows g·B … (g+1)·B − 1 and
 * the output holds model g's outputs in the same rows. Equal, model by model, to
 * `applyModel(models[g], rows of g, training)` (bit-identical where the fused kernels run: they
 * compute each group as its call alone would); in training mode each model's batch-norm moving
 * statistics are updated as by that call. Where the fused kernels are not registered, or the
 * models differ in structure, each model runs on its rows alone (a correct split, no speed-up).
 */
export function applyModelGroup(models: tfl.LayersModel[], input: tf.Tensor, training: boolean): tf.Tensor {
  if (models.length === 0) throw new Error('applyModelGroup: no models');
  if (input.shape[0] % models.length !== 0) {
    throw new Error(`applyModelGroup: the batch of ${input.shape[0]} rows does not split evenly among ${models.length} models`);
  }
  if (models.length === 1) return applyModel(models[0], input, training);
  const plans = hasFusedConvBatchNorm() && input.dtype === 'float32' ? groupPlans(models) : null;
  if (plans == null) {
    const parts = tf.split(input, models.length);
    return tf.concat(models.map((m, g) => applyModel(m, parts[g], training)));
  }
  const values = new Map<number, tf.Tensor>([[plans[0].input, input]]);
  for (let index = 0; index < plans[0].steps.length; index++) runGroupedStep(plans, index, values, training);
  return values.get(plans[0].output)!;
}
