import * as tf from '@tensorflow/tfjs-core';
import { explainGradientError, TRAIN_STEP, trainingStep, type LossFn, type TrainingStepper, type TrainingStepResult } from './fit';
import { applyModelGroup } from './group-forward';
import type { ModelInput, TrainableModel } from './trainable-model';

interface Member {
  index: number;
  model: TrainableModel;
  lossFn: LossFn;
  /** The model's trainable variables, taken once as fit takes them (the getter walks every layer). */
  variables: tf.Variable[];
}

interface StepRequest {
  member: Member;
  input: ModelInput;
  target: tf.Tensor;
  resolve(result: TrainingStepResult): void;
  reject(error: unknown): void;
}

export interface FusedTrainingGroupStats {
  /** Members the group was made for. */
  size: number;
  /** Fused computations run (each served two or more members' steps). */
  fusedSteps: number;
  /** Member steps served by fused computations. */
  memberStepsFused: number;
  /** Member steps computed alone (no partner with the same batch shape was waiting). */
  memberStepsAlone: number;
}

/**
 * Trains several trials' models as one computation while each trial runs its own `fit`: every
 * member passes its `stepper` to fit, and a step is computed once every member still training
 * has asked for one (the others are between steps: validating, checkpointing, probing). The
 * waiting steps with equal batch shapes then run as one grouped forward and backward pass
 * (`applyModelGroup`: one kernel dispatch per layer for all of them), each member's loss
 * function on its own rows; each member's gradients are those of its own loss, so its optimiser,
 * history, early stopping, checkpoints and probes are exactly what its fit alone would have.
 * Members whose epochs or batch counts differ simply share fewer steps.
 *
 * Members are numbered 0 … size − 1. A member that ends (its fit returns or throws, or its trial
 * fails before training) must `leave`, else the others wait for it: fit does so itself; a caller
 * that may fail before fit starts calls `group.leave(index)` (idempotent).
 */
export class FusedTrainingGroup {
  private readonly members = new Map<number, Member>();
  private readonly left = new Set<number>();
  private waiting: StepRequest[] = [];
  private counts = { fusedSteps: 0, memberStepsFused: 0, memberStepsAlone: 0 };

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`FusedTrainingGroup: size must be a positive integer, got ${String(size)}`);
  }

  /** The stepper of member `index` (0 … size − 1) training `model` with `lossFn`: pass it to fit as `options.stepper`. */
  join(index: number, model: TrainableModel, lossFn: LossFn): TrainingStepper {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new Error(`FusedTrainingGroup.join: member index must be an integer in 0..${this.size - 1}, got ${String(index)}`);
    if (this.members.has(index) || this.left.has(index)) throw new Error(`FusedTrainingGroup.join: member ${index} has already joined`);
    const member: Member = { index, model, lossFn, variables: model.trainableVariables };
    this.members.set(index, member);
    return {
      step: (input, target) => this.request(member, input, target),
      leave: () => this.leave(index),
    };
  }

  /** Member `index` takes no more steps (it finished or failed). Idempotent. */
  leave(index: number): void {
    if (this.left.has(index)) return;
    this.left.add(index);
    this.members.delete(index);
    this.runIfAllWaiting();
  }

  stats(): FusedTrainingGroupStats {
    return { size: this.size, ...this.counts };
  }

  toJSON(): FusedTrainingGroupStats {
    return this.stats();
  }

  private request(member: Member, input: ModelInput, target: tf.Tensor): Promise<TrainingStepResult> {
    if (this.left.has(member.index)) return Promise.reject(new Error(`FusedTrainingGroup: member ${member.index} asked for a step after leaving`));
    return new Promise((resolve, reject) => {
      this.waiting.push({ member, input, target, resolve, reject });
      this.runIfAllWaiting();
    });
  }

  /** Runs the waiting steps once every member that may still ask (joined or not yet) is waiting. */
  private runIfAllWaiting(): void {
    if (this.waiting.length === 0 || this.waiting.length < this.size - this.left.size) return;
    const requests = this.waiting.sort((a, b) => a.member.index - b.member.index);
    this.waiting = [];
    for (const batch of groupByShape(requests)) this.run(batch);
  }

  private run(requests: StepRequest[]): void {
    try {
      const results = requests.length === 1 ? [this.alone(requests[0])] : this.fused(requests);
      requests.forEach((r, i) => r.resolve(results[i]));
    } catch (error) {
      for (const r of requests) r.reject(error);
    }
  }

  private alone(request: StepRequest): TrainingStepResult {
    this.counts.memberStepsAlone++;
    return trainingStep(request.member.model, request.member.lossFn, request.input, request.target);
  }

  /** One grouped forward and backward pass for all `requests`; the loss is the sum of the members' losses. */
  private fused(requests: StepRequest[]): TrainingStepResult[] {
    const models = requests.map((r) => r.member.model);
    const variables = requests.flatMap((r) => r.member.variables);
    // Gradients come back by variable name: two members sharing a variable would get each other's.
    if (new Set(variables.map((v) => v.name)).size !== variables.length) throw new Error('FusedTrainingGroup: members share trainable variables (or their names); each member needs its own model');
    const losses: tf.Scalar[] = [];
    let sum: tf.Scalar;
    let grads: tf.NamedTensorMap;
    try {
      ({ value: sum, grads } = tf.variableGrads(() => {
        const outputs = groupForward(models, requests.map((r) => r.input));
        requests.forEach((r, i) => losses.push(tf.keep(r.member.lossFn(outputs[i], r.target, TRAIN_STEP))));
        return tf.addN(losses) as tf.Scalar;
      }, variables));
    } catch (error) {
      tf.dispose(losses);
      throw explainGradientError(error);
    }
    sum.dispose();
    this.counts.fusedSteps++;
    this.counts.memberStepsFused += requests.length;
    return requests.map((r, i) => ({ value: losses[i], gradients: r.member.variables.map((v) => grads[v.name] ?? tf.zerosLike(v)) }));
  }
}

/** Requests whose inputs and targets have equal shapes can share one computation. */
function groupByShape(requests: StepRequest[]): StepRequest[][] {
  const groups = new Map<string, StepRequest[]>();
  for (const r of requests) {
    const parts = Array.isArray(r.input) ? r.input : [r.input];
    const key = JSON.stringify([parts.map((p) => p.shape), r.target.shape, Array.isArray(r.input)]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()];
}

/** Each model's output on its input, computed as one grouped pass per input part. */
function groupForward(models: TrainableModel[], inputs: ModelInput[]): tf.Tensor[] {
  const parts = models.map((m, i) => {
    if (m.inputParts == null || m.outputFrom == null) throw new Error('FusedTrainingGroup: a member model lacks inputParts/outputFrom (see TrainableModel)');
    return m.inputParts(inputs[i]);
  });
  const perModel: tf.Tensor[][] = models.map(() => []);
  for (let j = 0; j < parts[0].length; j++) {
    const rows = parts.map((p) => p[j].shape[0]);
    const stacked = applyModelGroup(models.map((m) => m.model), tf.concat(parts.map((p) => p[j])), true);
    tf.split(stacked, rows).forEach((out, i) => perModel[i].push(out));
  }
  return models.map((m, i) => m.outputFrom!(perModel[i], inputs[i]));
}
