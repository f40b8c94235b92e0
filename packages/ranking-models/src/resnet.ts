import * as tfl from '@tensorflow/tfjs-layers';
import { PyTorchBatchNorm } from './pytorch-batch-norm';
import { deriveSeed } from './seeded-random';

export type ResNetDepth = 18 | 34;

export interface ResNetOptions {
  /** 18 (BasicBlocks [2,2,2,2]) or 34 (BasicBlocks [3,4,6,3]), as in torchvision. */
  depth: ResNetDepth;
  /** Input shape without the batch axis, channels last: [H, W, C]. */
  inputShape: [number, number, number];
  /** Scales every channel count (0.25 gives 16/32/64/128). Default 1. */
  widthMultiplier?: number;
  /** 3×3 stride-1 stem and no max-pool, for small inputs. Default false (7×7/2 stem + 3×3/2 max-pool). */
  smallInputStem?: boolean;
  /** Seed of the initialisers; each layer gets its own seed derived from it. Default 0. */
  seed?: number;
}

/** Blocks per stage in torchvision's resnet18 / resnet34. */
const BLOCKS_PER_STAGE: Record<ResNetDepth, number[]> = { 18: [2, 2, 2, 2], 34: [3, 4, 6, 3] };
const BASE_WIDTHS = [64, 128, 256, 512];

/**
 * PyTorch BatchNorm2d defaults expressed in tfjs-layers terms. tfjs-layers defaults to
 * momentum 0.99 / epsilon 1e-3 (Keras); PyTorch uses momentum 0.1 meaning
 * `running = (1 − 0.1)·running + 0.1·batch`, which is tfjs momentum 0.9, and epsilon 1e-5.
 * The layer is `PyTorchBatchNorm`, which also updates the running variance with the unbiased
 * batch variance as PyTorch does.
 */
export const PYTORCH_BATCH_NORM = { momentum: 0.9, epsilon: 1e-5 } as const;

/** Channel counts of the stem and the four stages for a width multiplier. */
export function resNetWidths(widthMultiplier = 1): { stem: number; stages: number[] } {
  const scale = (c: number) => Math.max(1, Math.round(c * widthMultiplier));
  return { stem: scale(64), stages: BASE_WIDTHS.map(scale) };
}

export function validateResNetOptions(options: ResNetOptions, where = 'buildResNet'): void {
  if (options.depth !== 18 && options.depth !== 34) {
    throw new Error(`${where}: options.depth must be 18 or 34, got ${String(options.depth)}`);
  }
  const shape = options.inputShape;
  if (!Array.isArray(shape) || shape.length !== 3 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`${where}: options.inputShape must be [H, W, C] with positive integers, got ${JSON.stringify(shape)}`);
  }
  const wm = options.widthMultiplier ?? 1;
  if (!(wm > 0) || !Number.isFinite(wm)) {
    throw new Error(`${where}: options.widthMultiplier must be a positive number, got ${String(wm)}`);
  }
  if (options.seed !== undefined && !Number.isInteger(options.seed)) {
    throw new Error(`${where}: options.seed must be an integer, got ${String(options.seed)}`);
  }
}

/** Hands out one derived seed per layer, in construction order. */
export class LayerSeeds {
  private index = 0;
  constructor(private readonly seed: number) {}
  next(): number {
    return deriveSeed(this.seed, this.index++);
  }
}

/**
 * torchvision initialises convolutions with kaiming_normal_(mode='fan_out', nonlinearity='relu'):
 * an untruncated normal with std = sqrt(2 / (outChannels·k·k)). tfjs's varianceScaling 'normal'
 * is a truncated normal, so randomNormal with the computed std is used instead.
 */
function conv(
  x: tfl.SymbolicTensor,
  filters: number,
  kernelSize: number,
  strides: number,
  name: string,
  seeds: LayerSeeds,
): tfl.SymbolicTensor {
  // PyTorch pads symmetrically (padding = k // 2); TF 'same' pads asymmetrically at stride 2,
  // so there pad explicitly and convolve 'valid' to reproduce torchvision's output sizes and
  // alignment. At stride 1 with an odd kernel 'same' IS the symmetric k // 2 padding, and a
  // separate pad layer would cost a padded copy forward and a slice backward per convolution.
  const pad = Math.floor(kernelSize / 2);
  const explicitPad = pad > 0 && strides !== 1;
  const padded = explicitPad
    ? (tfl.layers.zeroPadding2d({ padding: pad, name: `${name}.pad` }).apply(x) as tfl.SymbolicTensor)
    : x;
  return tfl.layers
    .conv2d({
      filters,
      kernelSize,
      strides,
      padding: explicitPad || pad === 0 ? 'valid' : 'same',
      useBias: false,
      kernelInitializer: tfl.initializers.randomNormal({
        mean: 0,
        stddev: Math.sqrt(2 / (filters * kernelSize * kernelSize)),
        seed: seeds.next(),
      }),
      name,
    })
    .apply(padded) as tfl.SymbolicTensor;
}

function batchNorm(x: tfl.SymbolicTensor, name: string): tfl.SymbolicTensor {
  return new PyTorchBatchNorm({
    axis: -1,
    momentum: PYTORCH_BATCH_NORM.momentum,
    epsilon: PYTORCH_BATCH_NORM.epsilon,
    gammaInitializer: 'ones',
    betaInitializer: 'zeros',
    name,
  }).apply(x) as tfl.SymbolicTensor;
}

function relu(x: tfl.SymbolicTensor, name: string): tfl.SymbolicTensor {
  return tfl.layers.activation({ activation: 'relu', name }).apply(x) as tfl.SymbolicTensor;
}

/** torchvision BasicBlock: conv3×3(stride)–BN–ReLU–conv3×3–BN, plus identity or 1×1 conv+BN shortcut. */
function basicBlock(
  x: tfl.SymbolicTensor,
  inChannels: number,
  outChannels: number,
  stride: number,
  name: string,
  seeds: LayerSeeds,
): tfl.SymbolicTensor {
  let out = conv(x, outChannels, 3, stride, `${name}.conv1`, seeds);
  out = batchNorm(out, `${name}.bn1`);
  out = relu(out, `${name}.relu1`);
  out = conv(out, outChannels, 3, 1, `${name}.conv2`, seeds);
  out = batchNorm(out, `${name}.bn2`);
  let shortcut = x;
  if (stride !== 1 || inChannels !== outChannels) {
    shortcut = conv(x, outChannels, 1, stride, `${name}.downsample.0`, seeds);
    shortcut = batchNorm(shortcut, `${name}.downsample.1`);
  }
  const sum = tfl.layers.add({ name: `${name}.add` }).apply([out, shortcut]) as tfl.SymbolicTensor;
  return relu(sum, `${name}.relu2`);
}

/**
 * Builds the symbolic ResNet backbone (input → globally average-pooled features) and returns
 * the input, the features and the seed stream (so heads continue the same stream).
 */
export function buildResNetGraph(options: ResNetOptions): {
  input: tfl.SymbolicTensor;
  features: tfl.SymbolicTensor;
  featureSize: number;
  seeds: LayerSeeds;
} {
  validateResNetOptions(options);
  const seeds = new LayerSeeds(options.seed ?? 0);
  const widths = resNetWidths(options.widthMultiplier ?? 1);
  const input = tfl.input({ shape: options.inputShape, name: 'input' });
  let x: tfl.SymbolicTensor;
  if (options.smallInputStem) {
    x = conv(input, widths.stem, 3, 1, 'conv1', seeds);
    x = batchNorm(x, 'bn1');
    x = relu(x, 'relu');
  } else {
    x = conv(input, widths.stem, 7, 2, 'conv1', seeds);
    x = batchNorm(x, 'bn1');
    x = relu(x, 'relu');
    // PyTorch pads the max-pool with −inf; after ReLU every value is ≥ 0 and each window holds at
    // least one real value, so zero padding gives the same maxima.
    x = tfl.layers.zeroPadding2d({ padding: 1, name: 'maxpool.pad' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid', name: 'maxpool' }).apply(x) as tfl.SymbolicTensor;
  }
  let inChannels = widths.stem;
  BLOCKS_PER_STAGE[options.depth].forEach((blocks, stage) => {
    const outChannels = widths.stages[stage];
    for (let b = 0; b < blocks; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      x = basicBlock(x, inChannels, outChannels, stride, `layer${stage + 1}.${b}`, seeds);
      inChannels = outChannels;
    }
  });
  const features = tfl.layers.globalAveragePooling2d({ name: 'avgpool' }).apply(x) as tfl.SymbolicTensor;
  return { input, features, featureSize: inChannels, seeds };
}

/** A torchvision-layout ResNet backbone: [B, H, W, C] → pooled features [B, 512·widthMultiplier]. */
export function buildResNet(options: ResNetOptions): tfl.LayersModel {
  const { input, features } = buildResNetGraph(options);
  return tfl.model({ inputs: input, outputs: features, name: `resnet${options.depth}` });
}

/**
 * PyTorch nn.Linear default initialisation (kaiming_uniform_ with a = √5 for the weight and the
 * matching bias bound): both uniform in ±1/sqrt(fanIn).
 */
export function linearHead(
  features: tfl.SymbolicTensor,
  fanIn: number,
  units: number,
  name: string,
  seeds: LayerSeeds,
): tfl.SymbolicTensor {
  const bound = 1 / Math.sqrt(fanIn);
  return tfl.layers
    .dense({
      units,
      kernelInitializer: tfl.initializers.randomUniform({ minval: -bound, maxval: bound, seed: seeds.next() }),
      biasInitializer: tfl.initializers.randomUniform({ minval: -bound, maxval: bound, seed: seeds.next() }),
      name,
    })
    .apply(features) as tfl.SymbolicTensor;
}

/** Number of scalars in a list of layer weights. */
export function countParameters(weights: readonly { shape: readonly (number | null)[] }[]): number {
  return weights.reduce((sum, w) => sum + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
}

/** Input shape (without the batch axis) and parameter counts of a model, for logs and run records. */
export function modelSizes(model: tfl.LayersModel): { inputShape: number[]; trainableParameters: number; nonTrainableParameters: number } {
  return {
    inputShape: model.inputs[0].shape.slice(1) as number[],
    trainableParameters: countParameters(model.trainableWeights),
    nonTrainableParameters: countParameters(model.nonTrainableWeights),
  };
}

/** Number of trainable scalars (batch-norm moving statistics excluded). */
export function countTrainableParameters(model: tfl.LayersModel): number {
  return countParameters(model.trainableWeights);
}
