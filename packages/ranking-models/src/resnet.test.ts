import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAngleClassifier } from './angle-classifier';
import { createAngleRanker } from './angle-ranker';
import { buildResNet, countTrainableParameters, resNetWidths } from './resnet';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('buildResNet', () => {
  it('ResNet-18, 1 input channel, 6-way head has torchvision\'s 11,173,318 trainable parameters', () => {
    // torchvision resnet18: 11,689,512 with a 3-channel stem and a 1000-way fc.
    // 1-channel stem: −64·2·49 = −6,272; 6-way fc: 512·6+6 = 3,078 instead of 513,000 (−509,922).
    const classifier = createAngleClassifier({ depth: 18, inputShape: [32, 32, 1], numClasses: 6, seed: 1 });
    expect(countTrainableParameters(classifier.model)).toBe(11_173_318);
    // Moving mean and variance of the 20 batch norms (4,800 channels in all, 2 numbers each) are not trainable.
    expect(classifier.stats()).toEqual({ inputShape: [32, 32, 1], numClasses: 6, trainableParameters: 11_173_318, nonTrainableParameters: 2 * 4_800 });
    classifier.dispose();
  });

  it('ResNet-34 backbone has torchvision\'s trainable parameter count without the fc', () => {
    // torchvision resnet34: 21,797,672 total; minus fc (513,000) and the stem's 2 extra input channels (6,272).
    const backbone = buildResNet({ depth: 34, inputShape: [32, 32, 1] });
    expect(countTrainableParameters(backbone)).toBe(21_797_672 - 513_000 - 6_272);
    backbone.dispose();
  });

  it('gives torchvision output sizes (7×7/2 stem, 3×3/2 max-pool) and widths scaled by the multiplier', () => {
    const backbone = buildResNet({ depth: 18, inputShape: [128, 128, 1], widthMultiplier: 0.25 });
    expect(backbone.outputs[0].shape).toEqual([null, 128]);
    // 128 → conv1 64 → maxpool 32 → layer2 16 → layer3 8 → layer4 4, as in PyTorch.
    expect(backbone.getLayer('maxpool').outputShape).toEqual([null, 32, 32, 16]);
    expect(backbone.getLayer('layer4.1.relu2').outputShape).toEqual([null, 4, 4, 128]);
    // An odd size: PyTorch gives floor((H + 2p − k)/s) + 1 at each stride-2 step: 45 → 23 → 12 → 6 → 3 → 2.
    const odd = buildResNet({ depth: 18, inputShape: [45, 45, 2], widthMultiplier: 0.125 });
    expect(odd.getLayer('maxpool').outputShape).toEqual([null, 12, 12, 8]);
    expect(odd.getLayer('layer4.1.relu2').outputShape).toEqual([null, 2, 2, 64]);
    expect(resNetWidths(0.25)).toEqual({ stem: 16, stages: [16, 32, 64, 128] });
    backbone.dispose();
    odd.dispose();
  });

  it('small-input stem keeps the spatial size until layer2', () => {
    const backbone = buildResNet({ depth: 18, inputShape: [16, 16, 1], widthMultiplier: 0.125, smallInputStem: true });
    expect(backbone.getLayer('layer1.1.relu2').outputShape).toEqual([null, 16, 16, 8]);
    expect(backbone.getLayer('layer4.1.relu2').outputShape).toEqual([null, 2, 2, 64]);
    backbone.dispose();
  });

  it('uses PyTorch batch norm (momentum 0.1 ⇒ tfjs 0.9, epsilon 1e-5, unbiased running variance)', () => {
    const backbone = buildResNet({ depth: 18, inputShape: [16, 16, 1], widthMultiplier: 0.125, smallInputStem: true });
    expect(backbone.getLayer('bn1').getClassName()).toBe('PyTorchBatchNorm');
    const config = backbone.getLayer('bn1').getConfig();
    expect(config.momentum).toBe(0.9);
    expect(config.epsilon).toBe(1e-5);
    backbone.dispose();
  });

  it('same seed gives the same weights; another seed gives others; layers get different streams', () => {
    const options = { depth: 18 as const, inputShape: [16, 16, 1] as [number, number, number], widthMultiplier: 0.125, smallInputStem: true };
    const a = createAngleRanker({ ...options, seed: 7 });
    const b = createAngleRanker({ ...options, seed: 7 });
    const c = createAngleRanker({ ...options, seed: 8 });
    const wa = a.model.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = b.model.getWeights().map((w) => Array.from(w.dataSync()));
    const wc = c.model.getWeights().map((w) => Array.from(w.dataSync()));
    expect(wb).toEqual(wa);
    expect(wc[0]).not.toEqual(wa[0]);
    // conv2 of layer1.0 and layer1.1 have the same shape but must not share values.
    const k1 = a.model.getLayer('layer1.0.conv2').getWeights()[0].dataSync();
    const k2 = a.model.getLayer('layer1.1.conv2').getWeights()[0].dataSync();
    expect(Array.from(k1)).not.toEqual(Array.from(k2));
    // kaiming_normal_(fan_out): std = sqrt(2 / (64·9)) at full width; here 8 channels: sqrt(2/72).
    const conv = a.model.getLayer('layer1.0.conv1').getWeights()[0];
    const std = tf.tidy(() => tf.sqrt(tf.mean(tf.square(conv))).dataSync()[0]);
    expect(std).toBeGreaterThan(Math.sqrt(2 / 72) * 0.8);
    expect(std).toBeLessThan(Math.sqrt(2 / 72) * 1.2);
    a.dispose();
    b.dispose();
    c.dispose();
  });

  it('rejects bad options with a message naming the field', () => {
    expect(() => buildResNet({ depth: 50 as 18, inputShape: [8, 8, 1] })).toThrow(/depth/);
    expect(() => buildResNet({ depth: 18, inputShape: [8, 8] as unknown as [number, number, number] })).toThrow(/inputShape/);
    expect(() => createAngleClassifier({ depth: 18, inputShape: [8, 8, 1], numClasses: 1 })).toThrow(/numClasses/);
  });
});
