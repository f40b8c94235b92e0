import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * Kernel names of @lab/tfjs-train's fused convolution + batch norm (+ ReLU)
 * (CONV_BATCH_NORM and CONV_BATCH_NORM_GRAD there), looked up by string so this package does not
 * depend on it. Where both are registered for the current backend, a forward pass runs each
 * conv → PyTorchBatchNorm (→ ReLU) chain of a model as one op: one kernel dispatch
 * forward and one backward instead of ~30, which at the lab's model sizes is most of a step.
 */
export const CONV_BATCH_NORM = 'LabConvBatchNorm';
export const CONV_BATCH_NORM_GRAD = 'LabConvBatchNormGrad';

type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];
type Pad = 'same' | 'valid' | ExplicitPad;

/** The parts of tfjs-layers' layers that the fused path reads (protected or untyped there). */
export interface LayerVariableLike {
  read(): tf.Tensor;
  write(value: tf.Tensor): void;
}
export interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  inboundNodes: Array<{ inputTensors: Array<{ id: number }>; outputTensors: Array<{ id: number }> }>;
  apply(inputs: tf.Tensor | tf.Tensor[], kwargs?: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}
export interface ConvLayerLike extends LayerLike {
  kernel: LayerVariableLike;
}
export interface BatchNormLayerLike extends LayerLike {
  axis: number;
  epsilon: number;
  momentum: number;
  gamma: LayerVariableLike | null;
  beta: LayerVariableLike | null;
  movingMean: LayerVariableLike;
  movingVariance: LayerVariableLike;
}

export interface FusedUnit {
  kind: 'fused';
  conv: ConvLayerLike;
  bn: BatchNormLayerLike;
  relu: boolean;
  /** The other input of an Add after the BN (a residual block's shortcut), added before the ReLU. */
  residual: number | null;
  /** The layers the unit replaces; it runs where the last of them ran. */
  absorbed: LayerLike[];
  pad: Pad;
  strides: [number, number];
  dilations: [number, number];
  input: number;
  output: number;
}
export interface LayerStep {
  kind: 'layer';
  layer: LayerLike;
  inputs: number[];
  output: number;
}
export type Step = FusedUnit | LayerStep;

/** A model's layers in execution order, with conv–BN(–ReLU) chains fused; null when the graph is not one this path handles. */
export interface Plan {
  input: number;
  output: number;
  steps: Step[];
  fusedUnits: number;
}

const plans = new WeakMap<tfl.LayersModel, Plan | null>();

function pair(value: unknown, fallback: number): [number, number] {
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length >= 2) return [Number(value[0]), Number(value[1])];
  return [fallback, fallback];
}

function isChannelsLast(config: Record<string, unknown>): boolean {
  return config.dataFormat == null || config.dataFormat === 'channelsLast';
}

/** The conv, its zero-padding layer folded in where it has one, and the BN (and ReLU) after it. */
function fusableChain(
  conv: LayerLike,
  consumers: Map<number, LayerLike[]>,
  producer: Map<number, LayerLike>,
  modelOutputs: Set<number>,
  taken: Set<LayerLike>,
): Omit<FusedUnit, 'kind' | 'absorbed'> & { layers: LayerLike[] } | null {
  const config = conv.getConfig();
  if (config.useBias || (config.activation != null && config.activation !== 'linear') || !isChannelsLast(config)) return null;
  const only = (id: number): LayerLike | null => {
    const list = consumers.get(id) ?? [];
    return list.length === 1 && !modelOutputs.has(id) ? list[0] : null;
  };
  const convOut = conv.inboundNodes[0].outputTensors[0].id;
  const bn = only(convOut) as BatchNormLayerLike | null;
  if (bn == null || bn.getClassName() !== 'PyTorchBatchNorm' || bn.inboundNodes[0].inputTensors.length !== 1) return null;
  if (bn.gamma == null || bn.beta == null || (bn.axis !== -1 && bn.axis !== 3)) return null;
  let output = bn.inboundNodes[0].outputTensors[0].id;
  const layers: LayerLike[] = [conv, bn];
  const isRelu = (l: LayerLike | null) => l != null && l.getClassName() === 'Activation' && l.getConfig().activation === 'relu';
  let next = only(output);
  let residual: number | null = null;
  // conv → BN → Add(·, shortcut) → ReLU: the shortcut joins the unit (the end of a residual block),
  // unless another unit took that Add (the shortcut branch's own conv → BN then ends at its BN).
  if (next != null && next.getClassName() === 'Add' && next.inboundNodes[0].inputTensors.length === 2 && !taken.has(next)) {
    const after = only(next.inboundNodes[0].outputTensors[0].id);
    if (isRelu(after)) {
      const ids = next.inboundNodes[0].inputTensors.map((t) => t.id);
      residual = ids[0] === output ? ids[1] : ids[0];
      layers.push(next);
      output = next.inboundNodes[0].outputTensors[0].id;
      next = after;
    }
  }
  const relu = isRelu(next);
  if (relu) {
    layers.push(next!);
    output = next!.inboundNodes[0].outputTensors[0].id;
  } else if (residual != null) {
    return null;
  }
  let input = conv.inboundNodes[0].inputTensors[0].id;
  let pad: Pad = config.padding === 'same' ? 'same' : 'valid';
  const padLayer = producer.get(input);
  if (pad === 'valid' && padLayer != null && padLayer.getClassName() === 'ZeroPadding2D' && only(input) === conv) {
    const padConfig = padLayer.getConfig();
    const [[top, bottom], [left, right]] = padConfig.padding as [[number, number], [number, number]];
    if (isChannelsLast(padConfig)) {
      pad = [[0, 0], [top, bottom], [left, right], [0, 0]];
      input = padLayer.inboundNodes[0].inputTensors[0].id;
      layers.push(padLayer);
    }
  }
  return {
    conv: conv as ConvLayerLike,
    bn,
    relu,
    residual,
    layers,
    pad,
    strides: pair(config.strides, 1),
    dilations: pair(config.dilationRate, 1),
    input,
    output,
  };
}

function buildPlan(model: tfl.LayersModel): Plan | null {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return null;
  const layers = model.layers as unknown as LayerLike[];
  if (layers.some((l) => l.inboundNodes.length !== 1 || l.inboundNodes[0].outputTensors.length !== 1)) return null;
  const consumers = new Map<number, LayerLike[]>();
  const producer = new Map<number, LayerLike>();
  for (const layer of layers) {
    producer.set(layer.inboundNodes[0].outputTensors[0].id, layer);
    for (const t of layer.inboundNodes[0].inputTensors) consumers.set(t.id, [...(consumers.get(t.id) ?? []), layer]);
  }
  const modelOutputs = new Set(model.outputs.map((t) => t.id));
  // Each unit runs where the last layer it replaces ran: by then its input and its shortcut exist.
  const unitAt = new Map<LayerLike, FusedUnit>();
  const absorbed = new Set<LayerLike>();
  let fusedUnits = 0;
  for (const layer of layers) {
    if (layer.getClassName() !== 'Conv2D' || absorbed.has(layer)) continue;
    const chain = fusableChain(layer, consumers, producer, modelOutputs, absorbed);
    if (chain == null || chain.layers.some((l) => absorbed.has(l))) continue;
    const { layers: replaced, ...rest } = chain;
    for (const l of replaced) absorbed.add(l);
    const last = layers.filter((l) => replaced.includes(l)).pop()!;
    unitAt.set(last, { kind: 'fused', ...rest, absorbed: replaced });
    fusedUnits++;
  }
  if (fusedUnits === 0) return null;
  const steps: Step[] = [];
  for (const layer of layers) {
    const unit = unitAt.get(layer);
    if (unit != null) {
      steps.push(unit);
      continue;
    }
    if (layer.getClassName() === 'InputLayer' || absorbed.has(layer)) continue;
    steps.push({
      kind: 'layer',
      layer,
      inputs: layer.inboundNodes[0].inputTensors.map((t) => t.id),
      output: layer.inboundNodes[0].outputTensors[0].id,
    });
  }
  return { input: model.inputs[0].id, output: model.outputs[0].id, steps, fusedUnits };
}

export function planOf(model: tfl.LayersModel): Plan | null {
  if (!plans.has(model)) plans.set(model, buildPlan(model));
  return plans.get(model) ?? null;
}

/** Whether the fused conv + batch-norm kernels are registered for the current backend. */
export function hasFusedConvBatchNorm(): boolean {
  const backend = tf.getBackend();
  return tf.getKernel(CONV_BATCH_NORM, backend) != null && tf.getKernel(CONV_BATCH_NORM_GRAD, backend) != null;
}

/** How many conv–BN(–Add–ReLU) chains of `model` the fused path would run as one op each (0: none, or a graph it does not handle). */
export function fusedUnitCount(model: tfl.LayersModel): number {
  return planOf(model)?.fusedUnits ?? 0;
}

/**
 * One fused unit: y = [ReLU](BN(conv(x))). In training mode BN normalises with the batch
 * statistics and the layer's moving statistics are updated inside the op (where nothing is
 * taped); in inference mode the moving statistics normalise. The gradient is in closed form by
 * the backward kernel either way.
 */
function runFusedUnit(unit: FusedUnit, x: tf.Tensor, residual: tf.Tensor | null, training: boolean): tf.Tensor {
  return runConvBatchNorm([unit], x, residual, training);
}

/** A fused kernel's input or output of model g: `name` itself for one model, else `name` + g (the kernels' contract). */
function groupName(name: string, groups: number, g: number): string {
  return groups === 1 ? name : `${name}${g}`;
}

/** Each group's filter, gamma and beta, where they are not the units' own variables. */
export interface GroupWeights {
  filters: tf.Tensor[];
  scales: tf.Tensor[];
  offsets: tf.Tensor[];
}

/**
 * The fused op of one unit of each of G models (G = units.length; the models' batches side by
 * side in x and residual), with its closed-form gradient: x, residual and each model's filter,
 * gamma and beta are differentiable. In training mode each model's moving statistics are updated.
 * `weights` replaces the units' filters, gammas and betas (per-sample gradients differentiate
 * per-group copies of one model's weights); the moving statistics are still the units'.
 */
export function runConvBatchNorm(units: FusedUnit[], x: tf.Tensor, residual: tf.Tensor | null, training: boolean, weights?: GroupWeights): tf.Tensor {
  const groups = units.length;
  const { bn } = units[0];
  const attrs = {
    strides: units[0].strides,
    pad: units[0].pad,
    dilations: units[0].dilations,
    epsilon: bn.epsilon,
    momentum: bn.momentum,
    relu: units[0].relu,
    training,
    residual: residual != null,
    ...(groups > 1 ? { groups } : {}),
  } as unknown as tf.NamedAttrMap;
  const named = (name: string, tensors: tf.Tensor[]) => Object.fromEntries(tensors.map((t, g) => [groupName(name, groups, g), t]));
  const filters = weights?.filters ?? units.map((u) => u.conv.kernel.read());
  const scales = weights?.scales ?? units.map((u) => u.bn.gamma!.read());
  const offsets = weights?.offsets ?? units.map((u) => u.bn.beta!.read());
  const inputs = [x, ...filters, ...scales, ...offsets, ...(residual != null ? [residual] : [])];
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[inputs.length] as tf.GradSaveFunc;
    const values = args.slice(0, inputs.length) as tf.Tensor[];
    const [xIn, f, sc, of] = [values[0], values.slice(1, 1 + groups), values.slice(1 + groups, 1 + 2 * groups), values.slice(1 + 2 * groups, 1 + 3 * groups)];
    const shortcut = residual != null ? values[1 + 3 * groups] : null;
    const [y, conv, stats, ...moving] = tf.engine().runKernel(
      CONV_BATCH_NORM,
      {
        x: xIn,
        ...named('filter', f),
        ...named('scale', sc),
        ...named('offset', of),
        ...named('movingMean', units.map((u) => u.bn.movingMean.read())),
        ...named('movingVariance', units.map((u) => u.bn.movingVariance.read())),
        ...(shortcut != null ? { residual: shortcut } : {}),
      },
      attrs,
    ) as tf.Tensor[];
    if (training) {
      units.forEach((u, g) => {
        u.bn.movingMean.write(moving[g]);
        u.bn.movingVariance.write(moving[groups + g]);
      });
    }
    // The units' own weights are variables, alive and unchanged until the gradients are applied:
    // only other weights (per-sample copies) are saved. Each saved tensor is an Identity
    // dispatch and a tape node, ~10 % of a demo-model step when every unit saved its weights.
    const ownWeights = weights == null;
    save(ownWeights ? [xIn, conv, y, stats] : [xIn, conv, y, stats, ...f, ...sc]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, cs, ys, ss] = saved;
        const [savedFilters, savedScales] = ownWeights ? [filters, scales] : [saved.slice(4, 4 + groups), saved.slice(4 + groups)];
        const gradInputs = { dy, x: xs, conv: cs, y: ys, stats: ss, ...named('filter', savedFilters), ...named('scale', savedScales) };
        return tf.engine().runKernel(CONV_BATCH_NORM_GRAD, gradInputs, attrs) as tf.Tensor[];
      },
    };
  });
  return op(...inputs);
}

/**
 * `model.apply(input, { training })`, except that where @lab/tfjs-train's fused conv + batch-norm
 * kernels are registered, each conv → PyTorchBatchNorm (→ ReLU) chain runs as one op (a
 * zero-padding layer in front of a 'valid' conv is folded into the conv, and a residual block's
 * Add + ReLU after its last batch norm joins that op), in training mode and in
 * inference mode (evaluation, and the per-sample gradients of gradient probes). Same layers, same
 * weights and moving statistics, same results within float rounding; any graph it does not
 * recognise runs through `model.apply` unchanged.
 */
export function applyModel(model: tfl.LayersModel, input: tf.Tensor, training: boolean): tf.Tensor {
  const plan = hasFusedConvBatchNorm() && input.dtype === 'float32' ? planOf(model) : null;
  if (plan == null) return model.apply(input, { training }) as tf.Tensor;
  const values = new Map<number, tf.Tensor>([[plan.input, input]]);
  for (const step of plan.steps) {
    if (step.kind === 'fused') {
      values.set(step.output, runFusedUnit(step, values.get(step.input)!, step.residual != null ? values.get(step.residual)! : null, training));
    } else {
      const inputs = step.inputs.map((id) => values.get(id)!);
      values.set(step.output, step.layer.apply(inputs.length === 1 ? inputs[0] : inputs, { training }) as tf.Tensor);
    }
  }
  return values.get(plan.output)!;
}
