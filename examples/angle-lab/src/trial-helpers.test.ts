import { describe, expect, it } from 'vitest';
import type { FitResumeState } from '@lab/ranking-models';
import { EpochCheckpoints } from './trial-helpers';

function fakeContext() {
  const saved: Uint8Array[] = [];
  const controller = new AbortController();
  const ctx = { checkpoint: { save: (bytes: unknown) => saved.push(bytes as Uint8Array), load: () => undefined }, signal: controller.signal };
  return { ctx, saved, controller };
}

// The smallest state fitStateToBytes packs: no variables, an empty history.
const fitState: FitResumeState = {
  epoch: 1,
  history: { epochs: [], bestEpoch: 0, bestValue: 0, monitor: { metric: 'loss', mode: 'min' }, optimizerSteps: 0 } as unknown as FitResumeState['history'],
  earlyStopping: { best: 0, epochsWithoutImprovement: 0 },
  weights: [Float32Array.of(1, 2)],
  optimizer: { step: 0, firstMoments: [], secondMoments: [] },
};

describe('EpochCheckpoints', () => {
  it('saves after the first epoch, then once per interval, and whenever the run was aborted', () => {
    const { ctx, saved, controller } = fakeContext();
    let clock = 0;
    let built = 0;
    const checkpoints = new EpochCheckpoints(ctx as never, 10_000, () => clock);
    const state = () => {
      built++;
      return { fit: fitState, trial: { epoch: built } };
    };
    const due: boolean[] = [];
    for (const t of [100, 200, 9_000, 10_100, 10_200, 19_000]) {
      clock = t;
      due.push(checkpoints.afterEpoch(state));
    }
    // Saved at 100 (first), 10_100 (10 s after it); 19_000 is 8.9 s after the last save.
    expect(due).toEqual([true, false, false, true, false, false]);
    expect(built).toBe(2);
    controller.abort();
    clock = 19_100;
    expect(checkpoints.afterEpoch(state)).toBe(true);
    expect(saved).toHaveLength(3);
    expect(checkpoints.stats()).toEqual({ saved: 3, skipped: 4, intervalMs: 10_000 });
  });
});
