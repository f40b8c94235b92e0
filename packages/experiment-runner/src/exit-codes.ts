import { describeFileError } from './input-error';
import { readRunConfig, readRunState, readTrialStatus } from './run-folder';

/**
 * Exit codes of `lab` (documented in `lab --help`), for every program that drives runs, so that a
 * script can tell a failed trial from a typo and from Ctrl-C the same way whichever program it called.
 */
export const EXIT = { ok: 0, trialsFailed: 1, usage: 2, incomplete: 3, interrupted: 130 } as const;

/** The exit code a finished (or stopped) run calls for: from its run.json, or 130 when it was aborted. */
export function exitCodeFor(runDir: string, aborted: boolean): number {
  if (aborted) return EXIT.interrupted;
  const status = readRunState(runDir)?.status;
  if (status === 'completed') return EXIT.ok;
  if (status === 'failed') return EXIT.trialsFailed;
  return EXIT.incomplete;
}

/**
 * SIGINT/SIGTERM abort the returned signal, which `runExperiment` and `resumeRun` take to stop cleanly
 * (trials stay resumable, the run is marked interrupted); a second signal exits at once with 130.
 * `notice` is what the user reads on the first signal (default: how to finish with `lab resume`).
 */
export function abortOnSignals(
  notice: (signal: NodeJS.Signals) => string = (sig) => `\n[lab] ${sig}: stopping; finish later with \`lab resume\`\n`,
): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    process.stderr.write(notice(sig));
    controller.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** The failed trials of a run, grouped by their error message (first line), in trial order. */
export function trialFailures(runDir: string): { message: string; trials: string[] }[] {
  const groups = new Map<string, string[]>();
  for (const trial of readRunConfig(runDir).trials) {
    const status = readTrialStatus(runDir, trial.id);
    if (status?.status !== 'failed') continue;
    const message = (status.error?.message ?? 'no error recorded').split('\n')[0];
    groups.set(message, [...(groups.get(message) ?? []), trial.id]);
  }
  return [...groups].map(([message, trials]) => ({ message, trials }));
}

/**
 * Lines that say why trials failed, one per distinct reason: "2 trials failed (v0-s0, v0-s1): ...". A
 * file-system error without a path (a full disk: "ENOSPC: ..., write") is told with the run folder.
 */
export function formatTrialFailures(runDir: string, maxIds = 4): string[] {
  return trialFailures(runDir).map(({ message, trials }) => {
    const ids = trials.length > maxIds ? `${trials.slice(0, maxIds).join(', ')}, … ${trials.length - maxIds} more` : trials.join(', ');
    return `${trials.length} trial${trials.length === 1 ? '' : 's'} failed (${ids}): ${describeFileError(message, runDir)}`;
  });
}
