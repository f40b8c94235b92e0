import { freemem } from 'node:os';
import type { Experiment } from './define-experiment';
import { InputError } from './input-error';
import type { TrialSpec } from './plan';
import { readTrialStatus, type RunConfig } from './run-folder';

/**
 * Fused trials: trials that the experiment says can train as one computation (same architecture,
 * same input shape: equal `fuse.key`) run together in one worker, each still its own trial (own
 * context, metrics, artifacts, checkpoint, status). The runner only groups them and hands every
 * member a `TrialGroupHandle`; what "one computation" means is the experiment's business (the lab
 * passes it to @lab/ranking-models' FusedTrainingGroup).
 */

/** `off`: every trial alone; `auto`: groups as large as fit, spread over the workers (see planTrialGroups); a number: at most that many per group. */
export type FuseSetting = 'auto' | 'off' | number;

/** What a trial running in a group sees of it (`ctx.group`). */
export interface TrialGroupHandle {
  /** Trials in the group, this one included. */
  readonly size: number;
  /** This trial's place in the group, 0 … size − 1. */
  readonly index: number;
  /** The group's trial ids, in index order. */
  readonly trialIds: readonly string[];
  /** One value shared by the group's trials under `key`: made by the first member that asks. */
  shared<T>(key: string, create: () => T): T;
  /** Calls `listener(index)` once a member's trial function has returned or thrown. */
  onMemberEnd(listener: (index: number) => void): void;
}

/** Per-trial memory assumed when the experiment does not say (`fuse.bytesPerTrial`). */
const DEFAULT_BYTES_PER_TRIAL = 256 * 1024 * 1024;
/** Beyond this many trials per group the per-step bookkeeping saved is already small and a failure costs more. */
const MAX_AUTO_GROUP = 16;

/** The setting a flag gives (`--fuse auto|off|K`; K = 1 means off). */
export function parseFuse(value: string, flag = '--fuse'): FuseSetting {
  return checkFuseSetting(/^\d+$/.test(value) ? Number(value) : value, flag);
}

/** A setting from a flag or from config.json, checked; `where` names it in the error. */
export function checkFuseSetting(value: unknown, where: string): FuseSetting {
  if (value === 'auto' || value === 'off') return value;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return value === 1 ? 'off' : value;
  throw new InputError(`${where}: expected auto, off or a positive integer (trials per group), got ${JSON.stringify(value)}`);
}

/** Splits `n` items into `parts` runs of nearly equal size (sizes differ by at most one). */
function balancedSizes(n: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0)).filter((s) => s > 0);
}

/**
 * The trials to run, as groups (a group of one: the trial alone). Trials group only with trials
 * of the same `fuse.key` (null: never grouped), in plan order. `auto` makes groups of at most
 * MAX_AUTO_GROUP and of what memory allows (half the free memory, shared by the workers, over
 * `fuse.bytesPerTrial` per trial); with several workers it makes a multiple of the worker count
 * of groups where there are trials enough, so that no worker idles while another trains a last
 * group. Measured with the lab's demo model on 2 cores (`pnpm bench:fused`, 2 worker processes
 * × 1 thread, 5 s per row, seven runs): groups of 4 trained 1.07-1.18x the trial-steps per second
 * of the same trials one by one, groups of 16 1.08-1.18x. A number K makes groups of at most K,
 * balanced, on any worker count.
 */
export function planTrialGroups(
  trials: TrialSpec[],
  experiment: Pick<Experiment, 'fuse'>,
  setting: FuseSetting,
  workers: number,
  freeBytes = freemem(),
): TrialSpec[][] {
  const fuse = experiment.fuse;
  if (setting === 'off' || fuse == null) return trials.map((t) => [t]);
  const byKey = new Map<string, TrialSpec[]>();
  const alone: TrialSpec[][] = [];
  for (const trial of trials) {
    const key = fuse.key(trial.params);
    if (key == null) alone.push([trial]);
    else byKey.set(key, [...(byKey.get(key) ?? []), trial]);
  }
  const parallel = Math.max(1, workers);
  const groups: TrialSpec[][] = [];
  for (const members of byKey.values()) {
    const bytes = fuse.bytesPerTrial?.(members[0].params) ?? DEFAULT_BYTES_PER_TRIAL;
    const limit = setting === 'auto' ? Math.min(MAX_AUTO_GROUP, Math.max(1, Math.floor(freeBytes / 2 / parallel / bytes))) : setting;
    let count = Math.ceil(members.length / Math.max(1, limit));
    if (setting === 'auto') count = Math.min(members.length, Math.ceil(count / parallel) * parallel);
    let at = 0;
    for (const size of balancedSizes(members.length, count)) {
      groups.push(members.slice(at, at + size));
      at += size;
    }
  }
  // Plan order: a group runs where its first trial stood.
  const order = new Map(trials.map((t, i) => [t.id, i]));
  return [...groups, ...alone].sort((a, b) => order.get(a[0].id)! - order.get(b[0].id)!);
}

/** The handles of one group's members, and the call that tells the others a member has ended. */
export function createTrialGroup(trialIds: readonly string[]): { handles: TrialGroupHandle[]; memberEnded(index: number): void } {
  const sharedValues = new Map<string, unknown>();
  const listeners: Array<(index: number) => void> = [];
  const ended = new Set<number>();
  const handles = trialIds.map(
    (_, index): TrialGroupHandle => ({
      size: trialIds.length,
      index,
      trialIds,
      shared<T>(key: string, create: () => T): T {
        if (!sharedValues.has(key)) sharedValues.set(key, create());
        return sharedValues.get(key) as T;
      },
      onMemberEnd(listener) {
        listeners.push(listener);
        // A member that ended before this listener came is reported to it at once.
        for (const i of ended) listener(i);
      },
    }),
  );
  return {
    handles,
    memberEnded(index) {
      if (ended.has(index)) return;
      ended.add(index);
      for (const listener of [...listeners]) listener(index);
    },
  };
}

/**
 * One line on how a run's trials trained, for its report: how many trained fused and in groups of
 * which sizes (from each trial's status), or undefined when none did.
 */
export function describeFusedTrials(runDir: string, config: Pick<RunConfig, 'trials' | 'execution'>): string | undefined {
  const setting = config.execution?.fuse;
  const sizes = new Map<number, number>();
  let fused = 0;
  for (const trial of config.trials) {
    const others = readTrialStatus(runDir, trial.id)?.fusedWith;
    if (!others?.length) continue;
    fused++;
    sizes.set(others.length + 1, (sizes.get(others.length + 1) ?? 0) + 1);
  }
  if (fused === 0) return setting === undefined || setting === 'off' ? undefined : `none (--fuse ${setting}: no two trials could train together)`;
  const groups = [...sizes.entries()].sort((a, b) => b[0] - a[0]).map(([size, trials]) => `${trials / size} × ${size}`);
  return `${fused} of ${config.trials.length} trials trained fused (groups: ${groups.join(', ')}; --fuse ${String(setting)}); each trial's status names the trials it trained with`;
}
