import { describe, expect, it } from 'vitest';
import { gradientSNR } from './gradient-snr';

describe('gradientSNR', () => {
  it('averages mean²/variance over parameters that vary (worked by hand)', () => {
    // Samples (1, 2, 0), (3, 2, 4), (2, 2, −1): parameter 0 has mean 2, unbiased variance
    // ((1)² + (1)² + 0)/2 = 1, GSNR 4; parameter 1 never varies (left out); parameter 2 has mean 1,
    // variance ((−1)² + 3² + (−2)²)/2 = 7, GSNR 1/7. Mean over the two: (4 + 1/7)/2.
    const grads = [Float32Array.of(1, 2, 0), Float32Array.of(3, 2, 4), Float32Array.of(2, 2, -1)];
    const r = gradientSNR(grads, {
      segments: [
        { name: 'a', shape: [2], size: 2, offset: 0 },
        { name: 'b', shape: [1], size: 1, offset: 2 },
      ],
    });
    expect(r.meanGSNR).toBeCloseTo((4 + 1 / 7) / 2, 12);
    expect(r).toMatchObject({ parameters: 2, zeroVarianceParameters: 1, n: 3 });
    expect(r.perSegment![0].meanGSNR).toBeCloseTo(4, 12);
    expect(r.perSegment![1].meanGSNR).toBeCloseTo(1 / 7, 12);
  });

  it('returns null, not NaN, when nothing varies, and checks segments', () => {
    const same = [Float32Array.of(1, 1), Float32Array.of(1, 1)];
    expect(gradientSNR(same)).toMatchObject({ meanGSNR: null, parameters: 0, zeroVarianceParameters: 2 });
    expect(() => gradientSNR(same, { segments: [{ name: 'a', shape: [3], size: 3, offset: 0 }] })).toThrow(/cover 3 parameters but the vectors have 2/);
  });
});
