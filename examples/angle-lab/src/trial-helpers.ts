import { dirname } from 'node:path';
import { readRunConfig, type TrialContext } from '@lab/experiment-runner';
import { fitStateFromBytes, fitStateToBytes, FusedTrainingGroup, type FitResumeState, type LossFn, type TrainableModel, type TrainingStepper } from '@lab/ranking-models';

/**
 * Number of cross-validation folds of the run this trial belongs to: the context's, which the
 * runner sets (also on queue workers, whose scratch folder has no config.json); a context made
 * without it falls back to the run's config.json (`<run>/trials/<id>` is the trial folder).
 */
export function runFolds(ctx: Pick<TrialContext, 'trialDir' | 'fold' | 'folds'>): number | undefined {
  if (ctx.fold === undefined) return undefined;
  return ctx.folds ?? readRunConfig(dirname(dirname(ctx.trialDir))).folds;
}

/** Matrices may hold NaN (no comparison possible); JSON has no NaN, so they are stored as null. */
export function matrixToJson(matrix: readonly (readonly number[])[]): (number | null)[][] {
  return matrix.map((row) => row.map((v) => (Number.isFinite(v) ? v : null)));
}

export function argMaxRows(rows: readonly (readonly number[])[]): number[] {
  return rows.map((row) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0));
}

/**
 * The per-epoch checkpoint of a training trial: fit's resume state (weights, batch-norm statistics,
 * Adam moments, history, best weights) plus the trial's own state as JSON (loss state, recorded
 * statistics, probe results), packed into one byte array so that float32 values stay bit-exact
 * and the runner stores them as a file rather than inside checkpoint.json.
 * Size: 4 bytes per variable value for the weights, twice that for Adam's moments, and as much
 * again for the best weights when the trial restores them. The narrow demo models (width 1/8,
 * ~175 k values) give ~2.8 MB (classifier, with best weights) and ~2.1 MB (ranker); a full ResNet-18
 * (11.7 M parameters) is ~45 MB of weights + 2 × 45 MB of Adam moments (+ 45 MB of best weights),
 * written once per epoch, which the minutes of a full-scale epoch dwarf.
 */
export function saveEpochCheckpoint(ctx: Pick<TrialContext, 'checkpoint'>, fitState: FitResumeState, trialState: object): number {
  const bytes = fitStateToBytes(fitState, trialState);
  ctx.checkpoint.save(bytes);
  return bytes.length;
}

/**
 * When a training trial writes its epoch checkpoint: after its first epoch, then at most once per
 * `intervalMs` (15 s by default), and always when the run was aborted (the trial stops right after,
 * and a resume continues from that epoch). A crash (kill -9, power cut) therefore costs at most the
 * interval's epochs, recomputed on resume with the same numbers. At demo scale an epoch lasts a
 * fraction of a second, and a checkpoint every epoch (~2-3 MB, hashed, three fsyncs) was 7 % of a
 * classifier trial's time.
 */
export class EpochCheckpoints {
  private lastSaved = Number.NEGATIVE_INFINITY;
  private saved = 0;
  private skipped = 0;

  constructor(
    private readonly ctx: Pick<TrialContext, 'checkpoint' | 'signal'>,
    private readonly intervalMs = 15_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Saves when due and returns whether it did; `state` is called only then (fit's snapshot copies every weight). */
  afterEpoch(state: () => { fit: FitResumeState; trial: object }): boolean {
    const due = this.saved === 0 || this.ctx.signal.aborted || this.now() - this.lastSaved >= this.intervalMs;
    if (!due) {
      this.skipped++;
      return false;
    }
    const { fit, trial } = state();
    saveEpochCheckpoint(this.ctx, fit, trial);
    this.lastSaved = this.now();
    this.saved++;
    return true;
  }

  stats(): { saved: number; skipped: number; intervalMs: number } {
    return { saved: this.saved, skipped: this.skipped, intervalMs: this.intervalMs };
  }
}

/** The checkpoint of an interrupted attempt of this trial, or undefined on a fresh start. */
export function loadEpochCheckpoint<T extends object>(ctx: Pick<TrialContext, 'checkpoint' | 'trialId'>): { fit: FitResumeState; trial: T } | undefined {
  const saved = ctx.checkpoint.load();
  if (saved === undefined) return undefined;
  if (!(saved instanceof Uint8Array)) throw new Error(`trial ${ctx.trialId}: checkpoint is not the bytes saveEpochCheckpoint writes`);
  const { state, extra } = fitStateFromBytes(saved);
  return { fit: state, trial: extra as T };
}

/**
 * Ends an aborted trial right after its checkpoint: the runner marks it interrupted and a resume
 * continues from that epoch, so training on would only be thrown away.
 */
export function stopIfAborted(ctx: Pick<TrialContext, 'signal' | 'trialId'>, epoch: number): void {
  if (ctx.signal.aborted) throw new Error(`trial ${ctx.trialId} stopped after epoch ${epoch}: the run was aborted (resumable from this epoch)`);
}


/**
 * The stepper that trains this trial's model as one computation with the other trials of its
 * group (the runner's fused trials), for fit's `stepper` option; undefined when it runs alone.
 * A member that ends before training leaves the group through the runner's onMemberEnd.
 */
export function fusedStepper(ctx: Pick<TrialContext, 'group'>, model: TrainableModel, lossFn: LossFn): TrainingStepper | undefined {
  const group = ctx.group;
  if (group == null) return undefined;
  const training = group.shared('fused-training', () => {
    const shared = new FusedTrainingGroup(group.size);
    group.onMemberEnd((index) => shared.leave(index));
    return shared;
  });
  return training.join(group.index, model, lossFn);
}

/** `{ [key]: value }`, or nothing when value is undefined (options that must be absent, not undefined). */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
