import { readTrialStatus, type RunConfig } from './run-folder';

/**
 * Which host ran which trial, as "host: t1, t2; other: t3", from the trials' status.json (only queue and
 * cluster executors record it). Undefined when no trial says, e.g. a run on this machine only.
 */
export function describeTrialHosts(runDir: string, config: Pick<RunConfig, 'trials'>): string | undefined {
  const byHost = new Map<string, string[]>();
  for (const trial of config.trials) {
    let host: string | undefined;
    try {
      host = readTrialStatus(runDir, trial.id)?.ranOn?.host;
    } catch {
      continue; // an unreadable status is reported elsewhere (summary, lab ls)
    }
    if (host === undefined) continue;
    byHost.set(host, [...(byHost.get(host) ?? []), trial.id]);
  }
  if (!byHost.size) return undefined;
  return [...byHost].map(([host, ids]) => `${host}: ${ids.join(', ')}`).join('; ');
}
