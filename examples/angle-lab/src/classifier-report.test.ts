import { describe, expect, it } from 'vitest';
import type { ClassifierEvaluation } from './classifier-trial';
import { describeGhmWeighting, ghmEpochRows } from './classifier-report';

// Two bins, two epochs. Epoch 1: cumulative counts [3, 1] with mean weights [0.5, 2]
// (weighted sums 1.5 and 2). Epoch 2: cumulative [8, 2] with mean weights [0.4, 1.5]
// (weighted sums 3.2 and 3). So epoch 2 alone: counts [5, 1], weighted [1.7, 1], weights [0.34, 1].
function evaluation(): ClassifierEvaluation {
  const stats = (cumulativeCounts: number[], meanWeightPerBin: number[]) => ({ edges: [0, 0.5, 1 + 1e-6], counts: [0, 0], cumulativeCounts, meanWeightPerBin });
  return {
    angles: [0, 36],
    input: '1000Hz',
    material: 'plastic',
    split: { train: 6, validation: 2, test: 2 },
    bestEpoch: 2,
    labels: [],
    predicted: [],
    confusion: [],
    pairwise: [],
    pairwiseCount: [],
    backend: 'cpu',
    trainingKernels: [],
    ghm: { records: [{ epoch: 1, stats: stats([3, 1], [0.5, 2]) }, { epoch: 2, stats: stats([8, 2], [0.4, 1.5]) }] },
  };
}

describe('ghmEpochRows', () => {
  it('turns cumulative GHM statistics into per-epoch counts and mean weights', () => {
    const rows = ghmEpochRows([evaluation()]);
    const at = (epoch: number, bin: number) => rows.find((r) => r.epoch === epoch && r.bin === bin)!;
    expect(at(1, 0).count).toBe(3);
    expect(at(1, 1).weight).toBeCloseTo(2, 12);
    expect(at(2, 0).count).toBe(5);
    expect(at(2, 0).weight).toBeCloseTo(0.34, 12);
    expect(at(2, 1).count).toBe(1);
    expect(at(2, 1).weight).toBeCloseTo(1, 12);
    expect(at(2, 1).binEnd).toBe(1);
  });

  it('sums over trials: counts add, weights are count-weighted means', () => {
    const rows = ghmEpochRows([evaluation(), evaluation()]);
    const r = rows.find((x) => x.epoch === 2 && x.bin === 0)!;
    expect(r.count).toBe(10);
    expect(r.weight).toBeCloseTo(0.34, 12);
  });

  it('describes the last epoch: densest bin down-weighted against the sparsest', () => {
    const text = describeGhmWeighting(ghmEpochRows([evaluation()]), 'GHM at 1000Hz')!;
    expect(text).toContain('epoch 2');
    expect(text).toContain('83.3 % of the training samples');
    expect(text).toContain('mean weight of 0.34');
    expect(text).toContain('GHM weighted them down');
  });
});
