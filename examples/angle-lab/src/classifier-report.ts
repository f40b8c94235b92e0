/** Report pieces shared by the classifier experiments (frequency-loss, ghm-sensitivity, material, fusion). */
import { formatNumber, type ReportContext, type ReportFigure, type ReportTable } from '@lab/experiment-runner';
import { ghmBinsSpec, type GHMBinRow } from '@lab/grad-probe';
import type { ClassifierEvaluation } from './classifier-trial';
import {
  angleLabel,
  ciText,
  curveSpec,
  heatmapSpec,
  meanCIOf,
  meanMatrix,
  meanText,
  percent,
  sumMatrix,
  type MatrixCell,
  type TrialRow,
} from './report-kit';

/** A named set of trials summarised together (a variant, or variants pooled). */
export interface TrialGroup {
  name: string;
  rows: TrialRow[];
}

export const ACCURACY_COLUMNS = ['variant', 'n', 'held-out accuracy (mean ± 95 % CI)', 'selected epoch (mean)', 'validation accuracy at that epoch (mean)'];

/** The main table: held-out accuracy of the model of the epoch selected on validation. */
export function accuracyTable(groups: readonly TrialGroup[], caption: string): ReportTable {
  return {
    columns: ACCURACY_COLUMNS,
    rows: groups.map((g) => [g.name, g.rows.length, ciText(meanCIOf(g.rows, 'test_acc')), meanText(g.rows, 'best_epoch'), meanText(g.rows, 'best_val_acc')]),
    caption,
  };
}

export function readEvaluations(ctx: Pick<ReportContext, 'readArtifact'>, rows: readonly TrialRow[]): ClassifierEvaluation[] {
  return rows.flatMap((row) => {
    const text = ctx.readArtifact(row.id, 'evaluation.json');
    return text ? [JSON.parse(text) as ClassifierEvaluation] : [];
  });
}

/** Validation accuracy per epoch (mean ± standard error over trials) of each group. */
export function validationCurves(ctx: Pick<ReportContext, 'metricsOf'>, groups: readonly TrialGroup[], name: string): ReportFigure {
  const values = groups.flatMap((g) =>
    g.rows.flatMap((row) =>
      ctx
        .metricsOf(row.id)
        .filter((l) => typeof l.epoch === 'number' && typeof l.val_acc === 'number')
        .map((l) => ({ epoch: l.epoch as number, value: l.val_acc as number, series: g.name })),
    ),
  );
  return {
    name,
    spec: curveSpec(values, { title: 'Validation accuracy per epoch (mean ± s.e. over trials)', yTitle: 'validation accuracy' }),
    caption: 'Validation accuracy per epoch, mean and standard-error band over seeds and folds. The epoch is selected on this curve; the tables report the held-out fold.',
  };
}

/** Confusion matrices summed over the trials of each group, rows normalised to the true class. */
export function confusionFigure(ctx: Pick<ReportContext, 'readArtifact'>, groups: readonly TrialGroup[], name: string): ReportFigure | undefined {
  const cells: MatrixCell[] = [];
  for (const g of groups) {
    const evaluations = readEvaluations(ctx, g.rows);
    if (!evaluations.length) continue;
    const angles = evaluations[0].angles;
    const total = sumMatrix(evaluations.map((e) => e.confusion));
    total.forEach((row, i) => {
      const n = row.reduce((s, v) => s + v, 0);
      row.forEach((count, j) =>
        cells.push({ panel: g.name, row: angleLabel(angles[i]), col: angleLabel(angles[j]), value: n ? count / n : null, text: String(count) }),
      );
    });
  }
  if (!cells.length) return undefined;
  return {
    name,
    spec: heatmapSpec(cells, { title: 'Confusion matrices on the held-out folds (summed over trials)', rowTitle: 'true angle', colTitle: 'predicted angle', valueTitle: 'fraction of row', domain: [0, 1] }),
    caption: 'Confusion matrices of the held-out folds, summed over seeds and folds: cell text = count, colour = fraction of the true class.',
  };
}

/** Mean pairwise angle accuracy (two-way decision between angles a and b implied by the classifier). */
export function pairwiseFigure(ctx: Pick<ReportContext, 'readArtifact'>, groups: readonly TrialGroup[], name: string): ReportFigure | undefined {
  const cells: MatrixCell[] = [];
  for (const g of groups) {
    const evaluations = readEvaluations(ctx, g.rows);
    if (!evaluations.length) continue;
    const angles = evaluations[0].angles;
    const mean = meanMatrix(evaluations.map((e) => e.pairwise));
    mean.forEach((row, i) =>
      row.forEach((value, j) =>
        cells.push({ panel: g.name, row: angleLabel(angles[i]), col: angleLabel(angles[j]), value: i === j ? null : value, text: i === j || value === null ? '' : (value * 100).toFixed(0) }),
      ),
    );
  }
  if (!cells.length) return undefined;
  return {
    name,
    spec: heatmapSpec(cells, { title: 'Pairwise angle accuracy on the held-out folds (%)', rowTitle: 'angle a', colTitle: 'angle b', valueTitle: 'accuracy', domain: [0.5, 1] }),
    caption:
      "Pairwise angle accuracy: for samples of angle a or b, how often the classifier gives the true angle more probability than the other one (the seed report's \"deg000 vs deg180\" numbers), mean over trials, in %. 50 % is chance.",
  };
}

export interface AnglePairScore {
  group: string;
  a: number;
  b: number;
  accuracy: number;
}

/** The hardest and easiest angle pairs of each group (mean pairwise accuracy over its trials). */
export function anglePairs(
  ctx: Pick<ReportContext, 'readArtifact'>,
  groups: readonly TrialGroup[],
): { table: ReportTable; scores: AnglePairScore[]; distance: { group: string; adjacent: number; far: number | null }[] } {
  const scores: AnglePairScore[] = [];
  const distance: { group: string; adjacent: number; far: number | null }[] = [];
  const rows: (string | number)[][] = [];
  for (const g of groups) {
    const evaluations = readEvaluations(ctx, g.rows);
    if (!evaluations.length) continue;
    const angles = evaluations[0].angles;
    const mean = meanMatrix(evaluations.map((e) => e.pairwise));
    const pairs: AnglePairScore[] = [];
    for (let i = 0; i < angles.length; i++) for (let j = i + 1; j < angles.length; j++) if (mean[i][j] !== null) pairs.push({ group: g.name, a: angles[i], b: angles[j], accuracy: mean[i][j]! });
    pairs.sort((x, y) => x.accuracy - y.accuracy);
    scores.push(...pairs);
    const describe = (p: AnglePairScore) => `${angleLabel(p.a)} vs ${angleLabel(p.b)}: ${percent(p.accuracy)}`;
    const adjacent = pairs.filter((p) => angles.indexOf(p.b) - angles.indexOf(p.a) === 1);
    const far = pairs.filter((p) => angles.indexOf(p.b) - angles.indexOf(p.a) >= 3);
    const mean1 = adjacent.reduce((s, p) => s + p.accuracy, 0) / Math.max(adjacent.length, 1);
    const mean3 = far.reduce((s, p) => s + p.accuracy, 0) / Math.max(far.length, 1);
    distance.push({ group: g.name, adjacent: mean1, far: far.length ? mean3 : null });
    rows.push([g.name, pairs.slice(0, 2).map(describe).join('; '), pairs.slice(-2).reverse().map(describe).join('; '), percent(mean1), far.length ? percent(mean3) : '–']);
  }
  return {
    table: {
      columns: ['variant', 'hardest pairs', 'easiest pairs', 'adjacent angles (mean)', 'angles ≥ 3 steps apart (mean)'],
      rows,
      caption: 'Pairwise angle accuracy on the held-out folds, mean over trials',
    },
    scores,
    distance,
  };
}

/**
 * GHM bin statistics per epoch, summed over trials: how many training samples fell in each bin of
 * g = 1 − p_target during the epoch, and the mean GHM weight they received (1 = the weight plain
 * cross-entropy gives every sample). Derived from the cumulative statistics recorded after each epoch.
 */
export function ghmEpochRows(evaluations: readonly ClassifierEvaluation[]): GHMBinRow[] {
  const sums = new Map<string, { epoch: number; bin: number; binStart: number; binEnd: number; count: number; weighted: number }>();
  for (const evaluation of evaluations) {
    const records = evaluation.ghm?.records ?? [];
    let previousCounts: number[] | undefined;
    let previousWeighted: number[] | undefined;
    for (const { epoch, stats } of records) {
      const cumulative = (stats.cumulativeCounts ?? []) as number[];
      const meanWeight = (stats.meanWeightPerBin ?? []) as number[];
      const weighted = cumulative.map((c, i) => c * (meanWeight[i] ?? 0));
      cumulative.forEach((c, bin) => {
        const count = c - (previousCounts?.[bin] ?? 0);
        const w = weighted[bin] - (previousWeighted?.[bin] ?? 0);
        const key = `${epoch}/${bin}`;
        const entry = sums.get(key) ?? { epoch, bin, binStart: stats.edges[bin], binEnd: Math.min(stats.edges[bin + 1], 1), count: 0, weighted: 0 };
        entry.count += count;
        entry.weighted += w;
        sums.set(key, entry);
      });
      previousCounts = cumulative;
      previousWeighted = weighted;
    }
  }
  return [...sums.values()]
    .sort((a, b) => a.epoch - b.epoch || a.bin - b.bin)
    .map((e) => ({
      epoch: e.epoch,
      bin: e.bin,
      binStart: e.binStart,
      binEnd: e.binEnd,
      count: e.count,
      weight: e.count > 0 ? e.weighted / e.count : null,
      cumulativeCount: e.count,
      meanWeight: e.count > 0 ? e.weighted / e.count : null,
    }));
}

export function ghmFigure(rows: readonly GHMBinRow[], name: string, label: string): ReportFigure {
  return {
    name,
    spec: ghmBinsSpec(rows, { counts: 'cumulative', weights: 'mean', title: `GHM bins over epochs: ${label}` }),
    caption: `${label}: training samples per bin of g = 1 − p(true angle) in each epoch (top) and the mean GHM weight they received (bottom; plain cross-entropy gives every sample weight 1), summed over seeds and folds. Bin 0 holds the easy, confidently correct samples.`,
  };
}

/**
 * What GHM did in the last epoch, in numbers: the share of samples in the lowest-g bin (easy) and
 * their weight against the weight of the sparsest occupied bins.
 */
export function describeGhmWeighting(rows: readonly GHMBinRow[], label: string): string | undefined {
  if (!rows.length) return undefined;
  const lastEpoch = Math.max(...rows.map((r) => r.epoch));
  const last = rows.filter((r) => r.epoch === lastEpoch && r.count > 0);
  const total = last.reduce((s, r) => s + r.count, 0);
  if (!total) return undefined;
  const densest = [...last].sort((a, b) => b.count - a.count)[0];
  const sparsest = [...last].sort((a, b) => a.count - b.count)[0];
  const low = last.find((r) => r.bin === 0);
  const parts = [
    `${label}, epoch ${lastEpoch}: the densest bin was g ∈ [${formatNumber(densest.binStart)}, ${formatNumber(densest.binEnd)}) with ${percent(densest.count / total)} of the training samples, and GHM gave its samples a mean weight of ${formatNumber(densest.weight)}`,
    `the sparsest occupied bin, g ∈ [${formatNumber(sparsest.binStart)}, ${formatNumber(sparsest.binEnd)}) (${percent(sparsest.count / total)}), got ${formatNumber(sparsest.weight)}`,
  ];
  if (low && low !== densest) parts.push(`the easy bin g < ${formatNumber(low.binEnd)} held ${percent(low.count / total)} at weight ${formatNumber(low.weight)}`);
  let reading = '';
  if (low && low.weight !== null) {
    reading =
      low.weight < 1
        ? ' The easy samples were the dense region, so GHM weighted them down relative to cross-entropy.'
        : ` The easy samples were still a minority at this point of training, so GHM weighted them up (${formatNumber(low.weight)} > 1): its down-weighting of easy samples appears only once most of the training set is fitted.`;
  }
  return `${parts.join('; ')}.${reading}`;
}

export const GHM_EXPLANATION =
  'How GHM weights samples: g = 1 − p(true class) is the norm of the loss gradient with respect to the logits; GHM divides the samples into bins of g and gives each sample a weight inversely proportional to the (EMA-smoothed) number of samples in its bin. It therefore down-weights regions of high gradient density. Once a model fits its training set these are the many easy, confidently correct samples (low g); the rare samples in sparsely populated bins (moderately hard ones, but also very hard outliers or mislabelled takes at g ≈ 1) are weighted up relative to them. Low gradient norm means easy, not hard: the seed report\'s statement that GHM raises the weight of "hard samples (low-gradient bins)" mixes the two up.';
