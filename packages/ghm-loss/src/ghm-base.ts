import { GradientDensity, checkBins, checkLossWeight, checkMomentum } from './gradient-density';
import type { GHMStats } from './gradient-density';

export interface GHMLossCallOptions {
  /**
   * Whether this call updates the EMA accumulator and stats() (default true). Pass false for
   * evaluation batches so that they do not move the training density estimate.
   */
  updateState?: boolean;
}

export interface LayersLossOptions extends GHMLossCallOptions {
  /**
   * What the model outputs: 'probs' (a softmax / sigmoid-activated layer, the tfjs-layers / Keras
   * convention, the default) or 'logits' (a linear last layer).
   */
  from?: 'logits' | 'probs';
}

/** Keras clips probabilities to [1e-7, 1 − 1e-7] before taking logs in its cross-entropies. */
export const PROB_EPSILON = 1e-7;

export function checkFrom(owner: string, from: unknown): 'logits' | 'probs' {
  if (from !== 'probs' && from !== 'logits') {
    throw new Error(`${owner}.asLayersLoss: option "from" must be 'logits' or 'probs', got ${String(from)}`);
  }
  return from;
}

/**
 * What GHMC, GHMSoftmax and GHMR share: validated options and the gradient-density state with its
 * read-outs. Each subclass adds its own gradient norm, per-element loss and serialised form.
 */
export abstract class GHMBase {
  readonly bins: number;
  readonly momentum: number;
  readonly lossWeight: number;
  protected readonly density: GradientDensity;

  protected constructor(owner: string, bins: number, momentum: number, lossWeight: number, lastEdge: number) {
    this.bins = checkBins(owner, bins);
    this.momentum = checkMomentum(owner, momentum);
    this.lossWeight = checkLossWeight(owner, lossWeight);
    this.density = new GradientDensity(this.bins, this.momentum, lastEdge);
  }

  /** Plain-JSON statistics of the latest state-updating call (reads the device state back). */
  stats(): GHMStats {
    return this.density.stats();
  }

  /** Forgets the EMA and the statistics (e.g. between cross-validation folds). */
  reset(): void {
    this.density.reset();
  }

  /** Frees the state's tensors; the object stays usable (it starts afresh, like after reset()). */
  dispose(): void {
    this.density.dispose();
  }
}

/** Checks the `type` tag of a serialised loss before any of its fields are trusted. */
export function checkJSONType(owner: string, json: unknown): void {
  if (json === null || typeof json !== 'object' || (json as { type?: unknown }).type !== owner) {
    throw new Error(`${owner}.fromJSON: field "type" must be "${owner}"`);
  }
}
