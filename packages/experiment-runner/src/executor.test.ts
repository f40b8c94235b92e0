import { describe, expect, it } from 'vitest';
import { workerEnvironment } from './executor';

describe('workerEnvironment', () => {
  it('splits the cores between the workers for multithreaded kernels (OMP_NUM_THREADS)', () => {
    expect(workerEnvironment(1, { PATH: '/bin' }, 2)).toEqual({ PATH: '/bin', OMP_NUM_THREADS: '2' });
    expect(workerEnvironment(2, {}, 2).OMP_NUM_THREADS).toBe('1');
    expect(workerEnvironment(3, {}, 8).OMP_NUM_THREADS).toBe('2');
    // More workers than cores still gives each one thread.
    expect(workerEnvironment(4, {}, 2).OMP_NUM_THREADS).toBe('1');
  });

  it("keeps the user's own OMP_NUM_THREADS and does not modify the parent's environment", () => {
    const env = { OMP_NUM_THREADS: '3' };
    expect(workerEnvironment(2, env, 2).OMP_NUM_THREADS).toBe('3');
    const parent: NodeJS.ProcessEnv = {};
    workerEnvironment(2, parent, 2);
    expect(parent).toEqual({});
  });
});
