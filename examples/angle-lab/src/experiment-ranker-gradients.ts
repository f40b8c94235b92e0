import { defineExperiment, formatNumber, type ReportContext, type ReportFigure, type ReportSection } from '@lab/experiment-runner';
import type { TrialGroup } from './classifier-report';
import { DATA_DEFAULTS } from './lab-data';
import { MODEL_DEFAULTS } from './model-setup';
import { compare, comparisonSentence, completedTrials, isSignificant, meanCIOf, ciText, unique } from './report-kit';
import { anomalyTable, cosineFigure, gnsBootstrapFigure, gnsFigure, median, probeTable, readProbes, tsneFigure } from './ranker-report';
import { rankerMethod } from './ranker-method';
import { RANKER_FUSE, rankerTrial, type RankerParams, type RankerProbes } from './ranker-trial';
import { labPlanCheck } from './scales';

export const RANKER_DEFAULTS: RankerParams = {
  ...DATA_DEFAULTS,
  ...MODEL_DEFAULTS,
  batchSize: 4,
  lr: 1e-3,
  weightDecay: 1e-5,
  epochs: 30,
  material: 'plastic',
  input: '3000Hz',
  margin: 10,
  pairsPerEpoch: 96,
  validationFraction: 0.1,
  probeEvery: 5,
  probeBatches: 16,
  probePairs: 32,
  // Whole gradients: projecting ResNet-18's 11 M parameters costs more than the analyses themselves
  // (about 2 GB for the 48 probe gradients at full scale).
  projectionDim: 0,
  gnsBootstrap: 500,
  tsne: true,
};

export function variantName(params: Record<string, unknown>): string {
  return `${params.material} ${params.input}`;
}

/** B_simple at the first and the last probe of each trial (only trials where both are defined). */
function gnsTrend(all: RankerProbes[]): { first: number[]; last: number[]; firstEpoch: number; lastEpoch: number } | undefined {
  const usable = all.filter((p) => p.probes.length >= 2 && p.probes[0].gns.bSimple !== null && p.probes[p.probes.length - 1].gns.bSimple !== null);
  if (!usable.length) return undefined;
  return {
    first: usable.map((p) => p.probes[0].gns.bSimple!),
    last: usable.map((p) => p.probes[p.probes.length - 1].gns.bSimple!),
    firstEpoch: usable[0].probes[0].epoch,
    lastEpoch: usable[0].probes[usable[0].probes.length - 1].epoch,
  };
}

export function rankerGradientReport(ctx: ReportContext): ReportSection[] {
  const rows = completedTrials(ctx);
  const names = unique(rows.map((r) => variantName(r.params)));
  const groups: TrialGroup[] = names.map((name) => ({ name, rows: rows.filter((r) => variantName(r.params) === name) }));
  const main = groups[0];
  const sections: ReportSection[] = [];
  sections.push({
    title: 'Ranking quality',
    tables: [
      {
        columns: ['variant', 'n', "held-out Kendall's τ (final epoch)", "training Kendall's τ (final)", 'held-out pair accuracy (final)'],
        rows: groups.map((g) => [g.name, g.rows.length, ciText(meanCIOf(g.rows, 'val_tau')), ciText(meanCIOf(g.rows, 'train_tau')), ciText(meanCIOf(g.rows, 'val_pair_acc'))]),
        caption: 'mean ± half-width of the 95 % CI over seeds',
      },
    ],
  });

  const figures: ReportFigure[] = [gnsFigure(ctx, groups, 'gns_vs_epoch')];
  const mainProbes = main ? main.rows.map((r) => readProbes(ctx, r)).find((p) => p !== undefined) : undefined;
  if (mainProbes) figures.push(gnsBootstrapFigure(mainProbes, `${main.name}, seed ${main.rows[0].seed}`, 'gns_bootstrap_main'));
  sections.push({ title: 'Gradient noise scale and batch-gradient agreement', tables: [probeTable(ctx, groups)], figures });

  if (mainProbes) {
    const label = `${main.name}, seed ${main.rows[0].seed}`;
    const maps: ReportFigure[] = [];
    const tsne = tsneFigure(mainProbes, label, 'tsne_batch_gradients');
    if (tsne) maps.push(tsne);
    const cosine = cosineFigure(mainProbes, label, 'cosine_batch_gradients');
    if (cosine) maps.push(cosine);
    sections.push({ title: 'Batch-gradient directions per probed epoch', figures: maps, tables: [anomalyTable(mainProbes, label)] });
  }

  const conclusions: string[] = [];
  let rising = 0;
  let compared = 0;
  for (const g of groups) {
    const tau = meanCIOf(g.rows, 'val_tau');
    const all = g.rows.map((r) => readProbes(ctx, r)).filter((p): p is RankerProbes => p !== undefined);
    const trend = gnsTrend(all);
    const parts = [`${g.name}: held-out τ ${ciText(tau)}`];
    if (tau && (tau.n < 3 || !tau.halfWidth)) parts.push('too few trials (or identical values) for a confidence statement');
    else if (tau && tau.lo !== null) parts.push(tau.lo > 0 ? 'its CI excludes 0, so the ranker orders the held-out angles better than chance' : 'its CI includes 0, so better-than-chance ordering is not shown');
    if (trend) {
      const up = trend.last.filter((v, i) => v > trend.first[i]).length;
      rising += up;
      compared += trend.first.length;
      parts.push(
        `B_simple went from a median of ${formatNumber(median(trend.first))} (epoch ${trend.firstEpoch}) to ${formatNumber(median(trend.last))} (epoch ${trend.lastEpoch}), rising in ${up} of ${trend.first.length} trials`,
      );
    }
    const cosFirst = all.map((p) => p.probes[0]?.meanBatchCosine).filter((v): v is number => v !== undefined);
    const cosLast = all.map((p) => p.probes[p.probes.length - 1]?.meanBatchCosine).filter((v): v is number => v !== undefined);
    if (cosFirst.length && all[0].probes.length >= 2) parts.push(`mean cosine between batch gradients ${formatNumber(median(cosFirst))} → ${formatNumber(median(cosLast))}`);
    conclusions.push(`${parts.join('; ')}.`);
  }
  // From the probes, not the metrics: a trial's last logged B_simple may belong to an earlier probe when the last one was undefined.
  const lastGns = (main?.rows ?? [])
    .map((r) => readProbes(ctx, r)?.probes.at(-1)?.gns.bSimple)
    .filter((v): v is number => typeof v === 'number');
  if (main && lastGns.length) {
    const b = median(lastGns);
    const batch = Number(main.rows[0].params.batchSize);
    const perEpoch = Number(main.rows[0].params.pairsPerEpoch);
    conclusions.push(
      b <= batch
        ? `At the last probe B_simple ≈ ${formatNumber(b)} (median) is at or below the batch size ${batch}: larger batches would mostly waste computation.`
        : b >= perEpoch
          ? `At the last probe B_simple ≈ ${formatNumber(b)} (median) exceeds even the ${perEpoch} pairs drawn per epoch: the per-pair gradients mostly disagree, every feasible batch is noise-dominated, and a batch of ${batch} follows the mean gradient only loosely.`
          : `At the last probe B_simple ≈ ${formatNumber(b)} (median) is larger than the batch size ${batch}: training is noise-dominated, and batches up to about ${formatNumber(b)} pairs would make each step more useful at nearly the same number of epochs (see the batch-size experiment).`,
    );
  }
  conclusions.push(
    `The seed report expected the noise scale to fall as training converges. Here B_simple = tr(Σ)/|G|² was higher at the last probe than at the first in ${rising} of ${compared} trials (where both were defined)${compared && rising >= 0.75 * compared ? ': it mostly grew, as McCandlish et al. (2018) observe, because the mean gradient |G| shrinks faster than the spread of the per-pair gradients' : compared && rising <= 0.25 * compared ? ': it mostly fell, as the seed report expected' : compared ? ': no consistent direction, so neither a fall nor a rise is shown' : ''}. The seed report's "GNS" of about 1e-5 is not this dimensionless quantity and cannot be compared with it.`,
  );
  for (const g of groups.slice(1)) {
    const c = compare(g.rows, main.rows, { a: g.name, b: main.name, metric: 'val_tau' });
    if (c) conclusions.push(`${comparisonSentence(c)}${isSignificant(c) ? '' : ` No difference in ranking quality between ${g.name} and ${main.name} is shown.`}`);
  }
  sections.push({ title: 'What the numbers say', placement: 'conclusions', markdown: conclusions.map((s) => `- ${s}`).join('\n') });
  return sections;
}

export const rankerGradientsExperiment = defineExperiment({
  name: 'ranker-gradients',
  description: 'Batch-gradient analysis of the angle ranker (ResNet ranker on pairs, MarginRankingLoss margin 10): gradient noise scale, batch-gradient cosines and t-SNE per probed epoch, anomalous pairs, Kendall τ.',
  background:
    'The seed report "Batch gradient analysis" trained a ResNet-18 ranker on plastic at 3000 Hz (54 takes, 90/10 split, batch 4, lr 1e-3, weight decay 1e-5, margin 10) and looked at batch gradients at epochs 5–30: a "GNS" of about 1e-5, t-SNE maps and cosine matrices that it read as growing agreement. Its GNS did not follow the standard definition, there was one run, and no ranking quality was reported. This experiment repeats the analysis over seeds with the standard noise scale and its uncertainty, adds the ranking quality, and runs the other frequencies and the box material as variants.',
  hypotheses: [
    'The ranker orders the held-out takes by angle better than chance (Kendall τ > 0).',
    'The gradient noise scale B_simple changes systematically over training (the seed report expected it to fall).',
    'Batch-gradient directions agree more in later epochs (higher mean cosine).',
    'Some training pairs have gradients that disagree with the rest (candidates for problem recordings).',
  ],
  params: RANKER_DEFAULTS,
  sweep: {
    list: [
      { material: 'plastic', input: '3000Hz' },
      { material: 'plastic', input: '1000Hz' },
      { material: 'plastic', input: '500Hz' },
      { material: 'box', input: '3000Hz' },
    ],
  },
  seeds: 5,
  primaryMetric: { name: 'val_tau', goal: 'max' },
  method: (params) => rankerMethod(params),
  trial: rankerTrial,
  fuse: RANKER_FUSE,
  report: rankerGradientReport,
  // Parameter ranges and the recordings each trial needs, checked before the run folder exists.
  checkPlan: labPlanCheck('ranker-gradients'),
});
