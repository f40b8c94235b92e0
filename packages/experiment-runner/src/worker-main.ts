// Entry point of a worker process: imports the experiment module by path and runs the trials it is sent.
import { selectBackend, type BackendName } from './backend';
import { errorRecord, runTrialHere, type FromWorker, type ToWorker } from './executor';
import { loadExperiment } from './load-experiment';

const send = (message: FromWorker) => {
  if (process.connected) process.send?.(message);
};

// The scheduler is gone (finished, or killed with -9): stop at once rather than keep writing to the run.
process.on('disconnect', () => process.exit(0));
const ensureParent = () => {
  if (!process.connected) process.exit(0);
};

let backendReady: Promise<unknown> | undefined;
let current: AbortController | undefined;

process.on('message', (message: ToWorker) => {
  if (message.type === 'abort') {
    current?.abort(new Error('trial aborted by the runner'));
    return;
  }
  if (message.type !== 'run') return;
  const { job } = message;
  const controller = new AbortController();
  current = controller;
  void (async () => {
    try {
      const experiment = await loadExperiment(job.experimentFile!, job.experimentName);
      if (job.backend !== 'none') {
        backendReady ??= selectBackend(job.backend as BackendName, { log: (m) => send({ type: 'log', message: m }) });
        await backendReady;
      }
      const outcome = await runTrialHere(
        experiment,
        job,
        {
          signal: controller.signal,
          onProgress: (done, total, note, trialId) => send({ type: 'progress', done, total, ...(note !== undefined ? { note } : {}), ...(trialId !== undefined ? { trialId } : {}) }),
          onMemberOutcome: (trialId, outcome) => send({ type: 'member-outcome', trialId, outcome }),
        },
        ensureParent,
      );
      send({ type: 'outcome', outcome });
    } catch (error) {
      send({ type: 'outcome', outcome: { status: 'failed', error: errorRecord(error) } });
    }
  })();
});

