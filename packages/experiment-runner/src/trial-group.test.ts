import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fusedTiny } from '../fixtures/fused-experiment';
import { buildReport } from './report';
import { byTrialThenSeq, readMetrics, readRunConfig, readTrialStatus } from './run-folder';
import { resumeRun, runExperiment } from './run-experiment';
import { createTrialGroup, parseFuse, planTrialGroups } from './trial-group';
import type { TrialSpec } from './plan';

const fixtureFile = resolve(__dirname, '../fixtures/fused-experiment.ts');
const quiet = { progress: 'none' as const, log: () => {}, report: false };

const spec = (id: string, shape: string | null): TrialSpec => ({ id, variant: 0, seed: 0, params: { shape } }) as unknown as TrialSpec;
const byShape = { fuse: { key: (p: Record<string, unknown>) => (p.shape as string | null), bytesPerTrial: () => 1000 } };
const ids = (groups: TrialSpec[][]) => groups.map((g) => g.map((t) => t.id));

/** Each trial's metrics lines without time and the `together` count (which says how it ran, not what it computed). */
function numbers(runDir: string) {
  return readMetrics(runDir)
    .map(({ time: _t, together: _together, ...rest }) => rest)
    .sort(byTrialThenSeq);
}

describe('planTrialGroups', () => {
  const trials = [spec('a1', 'a'), spec('b1', 'b'), spec('a2', 'a'), spec('n1', null), spec('a3', 'a'), spec('a4', 'a'), spec('a5', 'a')];

  it('groups only trials of equal keys, in plan order; a null key runs alone; off groups nothing', () => {
    expect(ids(planTrialGroups(trials, byShape, 'auto', 1))).toEqual([['a1', 'a2', 'a3', 'a4', 'a5'], ['b1'], ['n1']]);
    expect(ids(planTrialGroups(trials, byShape, 'off', 1))).toEqual(trials.map((t) => [t.id]));
    expect(ids(planTrialGroups(trials, {}, 'auto', 1))).toEqual(trials.map((t) => [t.id]));
  });

  it('auto spreads groups over the workers; K makes balanced groups of at most K on any worker count; memory bounds auto', () => {
    // Two workers: a multiple of two groups where there are trials enough, none where there are not.
    expect(ids(planTrialGroups(trials, byShape, 'auto', 2))).toEqual([['a1', 'a2', 'a3'], ['b1'], ['n1'], ['a4', 'a5']]);
    expect(ids(planTrialGroups(trials, byShape, 'auto', 4))).toEqual([['a1', 'a2'], ['b1'], ['n1'], ['a3'], ['a4'], ['a5']]);
    // The workers share half the free memory: 2 workers, 4000 bytes free, 1000 per trial: one each.
    expect(ids(planTrialGroups(trials, byShape, 'auto', 2, 4000))).toEqual(trials.map((t) => [t.id]));
    expect(ids(planTrialGroups(trials, byShape, 'auto', 2, 8000))).toEqual([['a1', 'a2'], ['b1'], ['n1'], ['a3'], ['a4'], ['a5']]);
    expect(ids(planTrialGroups(trials, byShape, 2, 2))).toEqual([['a1', 'a2'], ['b1'], ['n1'], ['a3', 'a4'], ['a5']]);
    expect(ids(planTrialGroups(trials, byShape, 2, 1))).toEqual([['a1', 'a2'], ['b1'], ['n1'], ['a3', 'a4'], ['a5']]);
    expect(ids(planTrialGroups(trials, byShape, 4, 1))).toEqual([['a1', 'a2', 'a3'], ['b1'], ['n1'], ['a4', 'a5']]);
    // 5000 bytes free: half of it holds two trials of 1000 bytes.
    expect(ids(planTrialGroups(trials, byShape, 'auto', 1, 5000))).toEqual([['a1', 'a2'], ['b1'], ['n1'], ['a3', 'a4'], ['a5']]);
  });

  it('parseFuse takes auto, off or a positive integer and names the flag otherwise', () => {
    expect(parseFuse('auto')).toBe('auto');
    expect(parseFuse('off')).toBe('off');
    expect(parseFuse('8')).toBe(8);
    expect(parseFuse('1')).toBe('off');
    for (const bad of ['0', '-2', '2.5', 'yes', '']) expect(() => parseFuse(bad)).toThrow(/--fuse: expected auto, off or a positive integer/);
  });

  it('a group handle shares one value per key and tells every listener which member ended, even one added later', () => {
    const group = createTrialGroup(['x', 'y', 'z']);
    let made = 0;
    const first = group.handles[0].shared('k', () => ++made);
    expect(group.handles[2].shared('k', () => ++made)).toBe(first);
    expect(made).toBe(1);
    const heard: number[] = [];
    group.handles[0].onMemberEnd((i) => heard.push(i));
    group.memberEnded(1);
    group.memberEnded(1);
    const late: number[] = [];
    group.handles[2].onMemberEnd((i) => late.push(i));
    expect(heard).toEqual([1]);
    expect(late).toEqual([1]);
    expect(group.handles[1]).toMatchObject({ size: 3, index: 1, trialIds: ['x', 'y', 'z'] });
  });
});

describe('fused trials in a run', () => {
  it('in process: all six trials train as one group, each its own trial, with the numbers of the unfused run', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-fused-'));
    const alone = await runExperiment(fusedTiny, { runsDir, workers: 0, fuse: 'off', ...quiet });
    const fused = await runExperiment(fusedTiny, { runsDir, workers: 0, ...quiet });
    expect(readRunConfig(fused).execution?.fuse).toBe('auto');
    expect(readRunConfig(alone).execution?.fuse).toBe('off');
    expect(numbers(fused)).toEqual(numbers(alone));
    expect(readMetrics(fused).filter((l) => l.epoch !== undefined).every((l) => l.together === 6)).toBe(true);
    expect(readMetrics(alone).every((l) => l.together === undefined || l.together === 1)).toBe(true);
    const status = readTrialStatus(fused, 'v1-s2')!;
    expect(status.status).toBe('completed');
    expect(status.fusedWith).toEqual(['v0-s0', 'v0-s1', 'v0-s2', 'v1-s0', 'v1-s1']);
    expect(readTrialStatus(alone, 'v1-s2')!.fusedWith).toBeUndefined();
    await buildReport(fused, fusedTiny, { warn: () => {} });
    expect(readFileSync(join(fused, 'report.md'), 'utf8')).toMatch(/Fused trials.*6 of 6 trials trained fused \(groups: 1 × 6; --fuse auto\)/);
  });

  it('worker processes, --fuse 2: a member that throws fails alone; its partners complete; resume reruns only it', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-fused-'));
    const overrides = { params: { crashSeed: 1 } };
    const runDir = await runExperiment(fusedTiny, { runsDir, workers: 2, fuse: 2, experimentFile: fixtureFile, overrides, ...quiet });
    const statuses = readRunConfig(runDir).trials.map((t) => readTrialStatus(runDir, t.id)!);
    expect(statuses.filter((s) => s.status === 'failed').map((s) => s.id)).toEqual(['v0-s1', 'v1-s1']);
    expect(statuses.filter((s) => s.status === 'completed')).toHaveLength(4);
    expect(statuses.every((s) => s.fusedWith?.length === 1)).toBe(true);
    const groupOf = (id: string) => JSON.parse(readFileSync(join(runDir, 'trials', id, 'artifacts', 'final.json'), 'utf8')).group;
    expect(groupOf('v0-s0')).toEqual(['v0-s0', 'v0-s1']);
    // The failed trials' partners finished in the same process as they (one group, one worker).
    const finalOf = (id: string) => JSON.parse(readFileSync(join(runDir, 'trials', id, 'artifacts', 'final.json'), 'utf8'));
    expect(finalOf('v0-s2').pid).toBe(finalOf('v1-s0').pid);
    const alone = await runExperiment(fusedTiny, { runsDir, workers: 0, fuse: 'off', ...quiet });
    // Without the crash the failed trials complete on resume, from their checkpoints; nothing else runs again.
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
    const before = statuses.filter((s) => s.status === 'completed').map((s) => [s.id, s.finishedAt]);
    config.trials = config.trials.map((t: TrialSpec) => ({ ...t, params: { ...t.params, crashSeed: -1 } }));
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(runDir, 'config.json'), JSON.stringify(config));
    await resumeRun(runDir, [fusedTiny], { workers: 0, ...quiet });
    for (const [id, finishedAt] of before) expect(readTrialStatus(runDir, id!)!.finishedAt).toBe(finishedAt);
    expect(readTrialStatus(runDir, 'v0-s1')!.status).toBe('completed');
    // The resumed pair trained together again (the recorded --fuse 2), and every number equals the unfused run's.
    expect(readTrialStatus(runDir, 'v0-s1')!.fusedWith).toEqual(['v1-s1']);
    expect(numbers(runDir)).toEqual(numbers(alone));
  });

  it('an experiment without fuse runs unfused whatever --fuse says, and says so', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'er-fused-'));
    const { fuse: _fuse, ...plain } = fusedTiny;
    const messages: string[] = [];
    const runDir = await runExperiment({ ...plain, name: 'plain' } as typeof fusedTiny, { runsDir, workers: 0, fuse: 4, ...quiet, log: (m) => messages.push(m) });
    expect(readRunConfig(runDir).execution?.fuse).toBe('off');
    expect(messages.join('\n')).toMatch(/does not declare fused trials/);
  });
});
