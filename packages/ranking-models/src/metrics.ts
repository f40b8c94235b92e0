/**
 * Evaluation metrics as pure functions over plain arrays (read tensors out with `.arraySync()`
 * first). Written by hand: they are a few lines each and must follow exact definitions
 * (tau-b, average ranks, the pairwise angle accuracy below) that are tested against SciPy.
 */

function checkSameLength(a: readonly unknown[], b: readonly unknown[], names: string, where: string): void {
  if (a.length !== b.length) throw new Error(`${where}: ${names} must have the same length, got ${a.length} and ${b.length}`);
}

function checkClassIndices(values: readonly number[], numClasses: number, name: string, where: string): void {
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      throw new Error(`${where}: ${name}[${i}] must be a class index in [0, ${numClasses}), got ${String(v)}`);
    }
  });
}

/** Fraction of samples whose predicted class equals the label (NaN for no samples). */
export function accuracy(predicted: readonly number[], labels: readonly number[]): number {
  checkSameLength(predicted, labels, 'predicted and labels', 'accuracy');
  if (labels.length === 0) return NaN;
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct / labels.length;
}

/** Counts matrix[true][predicted] of size numClasses × numClasses. */
export function confusionMatrix(labels: readonly number[], predicted: readonly number[], numClasses: number): number[][] {
  checkSameLength(labels, predicted, 'labels and predicted', 'confusionMatrix');
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`confusionMatrix: numClasses must be a positive integer, got ${String(numClasses)}`);
  checkClassIndices(labels, numClasses, 'labels', 'confusionMatrix');
  checkClassIndices(predicted, numClasses, 'predicted', 'confusionMatrix');
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) matrix[labels[i]][predicted[i]]++;
  return matrix;
}

/** Recall of each class from a confusion matrix (row = true class): diagonal / row sum; NaN for a class with no samples. */
export function perClassRecall(confusion: readonly (readonly number[])[]): number[] {
  return confusion.map((row, k) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? NaN : row[k] / total;
  });
}

/** Result of `pairwiseAngleAccuracy`: symmetric K × K matrices; the diagonal is NaN / 0. */
export interface PairwiseAngleAccuracy {
  /** accuracy[a][b] for a ≠ b; NaN where no comparison was possible. */
  accuracy: number[][];
  /** Number of comparisons behind each entry. */
  count: number[][];
}

export type PairwiseAngleInput =
  | {
      /** Classifier: class probabilities (or logits: only their order within a row matters), [N][K]. */
      probabilities: readonly (readonly number[])[];
      /** True class of each sample; class indices are in angle order. */
      labels: readonly number[];
    }
  | {
      /** Ranker: one score per sample (higher score = larger angle). */
      scores: readonly number[];
      labels: readonly number[];
    };

/**
 * How well the model separates each pair of angle classes a ≠ b (the lab's "deg000 vs deg180: 96.3 %").
 *
 * Classifier: over every sample whose true class is a or b, the fraction where the model puts
 * more probability on the true class than on the other class of the pair (p[true] > p[other]);
 * a tie counts one half. It is the accuracy of the two-way decision between a and b that the
 * K-way classifier implies, and it ignores the other classes.
 *
 * Ranker: over every pair (sample of class a, sample of class b), the fraction ordered correctly
 * by score (class indices are in angle order, so for a < b correct means score_a < score_b); a tie
 * counts one half. This is the AUC of the scores for telling class a from class b.
 *
 * numClasses defaults to the width of `probabilities`, or 1 + the largest label for the ranker.
 */
export function pairwiseAngleAccuracy(input: PairwiseAngleInput, numClasses?: number): PairwiseAngleAccuracy {
  const where = 'pairwiseAngleAccuracy';
  const labels = input.labels;
  const K =
    numClasses ??
    ('probabilities' in input ? (input.probabilities[0]?.length ?? 0) : labels.reduce((m, v) => Math.max(m, v + 1), 0));
  if (!Number.isInteger(K) || K < 2) throw new Error(`${where}: numClasses must be an integer ≥ 2, got ${String(K)}`);
  checkClassIndices(labels, K, 'labels', where);
  const correct = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  const count = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  if ('probabilities' in input) {
    checkSameLength(input.probabilities, labels, 'probabilities and labels', where);
    input.probabilities.forEach((p, i) => {
      if (p.length !== K) throw new Error(`${where}: probabilities[${i}] must have ${K} entries, got ${p.length}`);
      const t = labels[i];
      for (let other = 0; other < K; other++) {
        if (other === t) continue;
        const credit = p[t] > p[other] ? 1 : p[t] === p[other] ? 0.5 : 0;
        correct[t][other] += credit;
        correct[other][t] += credit;
        count[t][other]++;
        count[other][t]++;
      }
    });
  } else {
    checkSameLength(input.scores, labels, 'scores and labels', where);
    const { scores } = input;
    for (let i = 0; i < scores.length; i++) {
      for (let j = 0; j < scores.length; j++) {
        const [a, b] = [labels[i], labels[j]];
        if (a >= b) continue; // each (a-sample, b-sample) pair once, a < b
        const credit = scores[i] < scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
        correct[a][b] += credit;
        correct[b][a] += credit;
        count[a][b]++;
        count[b][a]++;
      }
    }
  }
  const accuracy = correct.map((row, a) => row.map((c, b) => (a === b || count[a][b] === 0 ? NaN : c / count[a][b])));
  return { accuracy, count };
}

/**
 * Kendall's tau-b (ties in either variable handled as in scipy.stats.kendalltau):
 * (concordant − discordant) / sqrt((n0 − tiesX)(n0 − tiesY)). NaN if either variable is constant.
 * O(n²), fine for evaluation sets of a few thousand samples.
 */
export function kendallTau(x: readonly number[], y: readonly number[]): number {
  checkSameLength(x, y, 'x and y', 'kendallTau');
  let concordant = 0;
  let discordant = 0;
  let tiesX = 0; // pairs tied in x (including tied in both)
  let tiesY = 0;
  const n = x.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = Math.sign(x[i] - x[j]);
      const dy = Math.sign(y[i] - y[j]);
      if (dx === 0) tiesX++;
      if (dy === 0) tiesY++;
      if (dx !== 0 && dy !== 0) {
        if (dx === dy) concordant++;
        else discordant++;
      }
    }
  }
  const n0 = (n * (n - 1)) / 2;
  const denominator = Math.sqrt((n0 - tiesX) * (n0 - tiesY));
  return denominator === 0 ? NaN : (concordant - discordant) / denominator;
}

/** Ranks 1..n with ties given the average of the ranks they span (scipy.stats.rankdata 'average'). */
export function averageRanks(values: readonly number[]): number[] {
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && values[order[end + 1]] === values[order[start]]) end++;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) ranks[order[k]] = rank;
    start = end + 1;
  }
  return ranks;
}

/** Spearman's rho: Pearson correlation of the average ranks. NaN if either variable is constant. */
export function spearmanRho(x: readonly number[], y: readonly number[]): number {
  checkSameLength(x, y, 'x and y', 'spearmanRho');
  const rx = averageRanks(x);
  const ry = averageRanks(y);
  const n = rx.length;
  const mx = rx.reduce((a, b) => a + b, 0) / n;
  const my = ry.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? NaN : sxy / Math.sqrt(sxx * syy);
}
