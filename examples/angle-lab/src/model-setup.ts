import * as tf from '@tensorflow/tfjs-core';
import { GHMSoftmax, softmaxCrossEntropy, type GHMSoftmaxJSON } from '@lab/ghm-loss';
import { createAngleClassifier, createAngleRanker, resNetWidths, type AngleClassifier, type AngleRanker, type LossFn } from '@lab/ranking-models';
import { parseInput } from './lab-data';
import { useFastTraining } from '@lab/tfjs-train';

/** Model and optimiser settings shared by the experiments (defaults: the seed reports' ResNet-18). */
export type ModelParams = {
  depth: number;
  /** Channel multiplier of the ResNet (1 = torchvision's widths). */
  width: number;
  /** 3×3 stride-1 stem without max-pool, for small inputs. */
  smallInputStem: boolean;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
};

export const MODEL_DEFAULTS: ModelParams = { depth: 18, width: 1, smallInputStem: false, epochs: 30, batchSize: 16, lr: 1e-3, weightDecay: 1e-5 };

function resNetOptions(params: ModelParams, seed: number, inputShape: [number, number, number]) {
  if (params.depth !== 18 && params.depth !== 34) throw new Error(`params.depth: expected 18 or 34, got ${params.depth}`);
  return { depth: params.depth as 18 | 34, inputShape, widthMultiplier: params.width, smallInputStem: params.smallInputStem, seed };
}

export function buildClassifier(params: ModelParams, seed: number, inputShape: [number, number, number], numClasses: number): AngleClassifier {
  return createAngleClassifier({ ...resNetOptions(params, seed, inputShape), numClasses });
}

export function buildRanker(params: ModelParams, seed: number, inputShape: [number, number, number]): AngleRanker {
  return createAngleRanker(resNetOptions(params, seed, inputShape));
}

/**
 * Which trials can train fused (ExperimentDefinition.fuse): same network and input shape, same
 * batch size (their steps then have equal shapes). The data, seed, loss and learning rate may differ.
 */
export function fuseKey(kind: 'classifier' | 'ranker', params: ModelParams & { featureSize: number; input: string }): string {
  const channels = parseInput(params.input).length;
  return JSON.stringify([kind, params.depth, params.width, params.smallInputStem, params.featureSize, channels, params.batchSize]);
}

/**
 * A rough upper bound of one trial's memory (activations kept for the backward pass, ~40 per
 * step the size of the largest, the stem's output at full resolution; pairs count twice; plus
 * weights, data and Adam state), which bounds how many trials `--fuse auto` puts in one worker.
 */
export function trialBytes(kind: 'classifier' | 'ranker', params: ModelParams & { featureSize: number }): number {
  const largest = params.batchSize * params.featureSize ** 2 * resNetWidths(params.width).stem;
  const activations = 40 * largest * 4 * (kind === 'ranker' ? 2 : 1);
  return activations + 64 * 1024 * 1024;
}

export function describeModel(params: ModelParams): string {
  const widths = params.width === 1 ? "torchvision's channel widths" : `channel widths × ${params.width}`;
  const stem = params.smallInputStem ? '3×3 stride-1 stem without max-pool (small inputs)' : '7×7/2 stem + 3×3/2 max-pool';
  return `ResNet-${params.depth} (${widths}, ${stem}); Adam, lr ${params.lr}, L2 weight decay ${params.weightDecay}, batch ${params.batchSize}, ${params.epochs} epochs`;
}

/**
 * The wasm and cpu backends lack fast (wasm: any) convolution-gradient kernels; @lab/tfjs-train
 * provides them. Installing is idempotent, so every trial calls this once it runs on its backend.
 */
export async function ensureTrainingKernels(): Promise<{ backend: string; kernels: string[] }> {
  const backend = tf.getBackend();
  if (backend !== 'wasm' && backend !== 'cpu') return { backend, kernels: [] };
  const info = await useFastTraining(backend);
  return { backend, kernels: info.kernels };
}

export interface ClassificationLoss {
  kind: 'ce' | 'ghm';
  lossFn: LossFn;
  /** Set for GHM: its bin statistics. */
  ghm?: GHMSoftmax;
  dispose(): void;
}

/** `restore`: GHM state saved in a trial checkpoint (its bins and momentum must match the params). */
export function classificationLoss(loss: string, options: { bins: number; alpha: number; restore?: GHMSoftmaxJSON }): ClassificationLoss {
  if (loss === 'ce') {
    return {
      kind: 'ce',
      lossFn: (output, target) => softmaxCrossEntropy(output as tf.Tensor2D, target as tf.Tensor1D),
      dispose: () => {},
    };
  }
  if (loss === 'ghm') {
    const ghm = options.restore ? GHMSoftmax.fromJSON(options.restore) : new GHMSoftmax({ bins: options.bins, momentum: options.alpha });
    if (ghm.bins !== options.bins || ghm.momentum !== options.alpha) {
      ghm.dispose();
      throw new Error(`checkpoint: GHM state has bins ${ghm.bins}, momentum ${ghm.momentum}; params say bins ${options.bins}, alpha ${options.alpha}`);
    }
    return {
      kind: 'ghm',
      ghm,
      // fit() also calls the loss for validation and gradient probes: only training steps may move
      // GHM's gradient-density estimate.
      lossFn: (output, target, context) =>
        ghm.loss(output as tf.Tensor2D, target as tf.Tensor1D, undefined, { updateState: context.training }),
      dispose: () => ghm.dispose(),
    };
  }
  throw new Error(`params.loss: expected "ce" or "ghm", got ${JSON.stringify(loss)}`);
}
