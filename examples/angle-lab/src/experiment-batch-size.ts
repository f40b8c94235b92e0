import { defineExperiment, formatNumber, type ReportContext, type ReportSection } from '@lab/experiment-runner';
import type { TrialGroup } from './classifier-report';
import { RANKER_DEFAULTS } from './experiment-ranker-gradients';
import { ciText, compare, comparisonSentence, comparisonTable, completedTrials, isSignificant, meanCIOf, unique, type Comparison } from './report-kit';
import { gnsFigure, gnsSummary, median, probeTable, readProbes } from './ranker-report';
import { rankerMethod } from './ranker-method';
import { RANKER_FUSE, rankerTrial, type RankerParams, type RankerProbes } from './ranker-trial';
import { labPlanCheck } from './scales';

export const BATCH_SIZE_DEFAULTS: RankerParams = { ...RANKER_DEFAULTS, tsne: false };

function batchSizeReport(ctx: ReportContext): ReportSection[] {
  const rows = completedTrials(ctx);
  const sizes = unique(rows.map((r) => Number(r.params.batchSize)));
  const sortedSizes = [...sizes].sort((a, b) => a - b);
  const groups: TrialGroup[] = sizes.map((b) => ({ name: `batch ${b}`, rows: rows.filter((r) => r.params.batchSize === b) }));
  const lastProbe = (g: TrialGroup) =>
    g.rows
      .map((r) => readProbes(ctx, r))
      .filter((p): p is RankerProbes => p !== undefined && p.probes.length > 0)
      .map((p) => p.probes[p.probes.length - 1].gns.bSimple);
  const baseline = groups[0];
  const comparisons = groups.slice(1).flatMap((g) => {
    const c = compare(g.rows, baseline.rows, { a: g.name, b: baseline.name, metric: 'val_tau' });
    return c ? [c] : [];
  }) as Comparison[];
  const sections: ReportSection[] = [
    {
      title: 'Ranking quality and noise scale per batch size',
      markdown:
        'Every batch size trains for the same number of epochs on the same number of pairs, so smaller batches take more (and noisier) optimiser steps. B_simple is measured with per-pair gradients, independently of the batch size used for training.',
      tables: [
        {
          columns: ['batch size', 'n', 'optimiser steps per epoch', "held-out Kendall's τ (final)", 'B_simple at the last probe: median [min – max]'],
          rows: groups.map((g) => [g.name, g.rows.length, Math.ceil(Number(g.rows[0].params.pairsPerEpoch) / Number(g.rows[0].params.batchSize)), ciText(meanCIOf(g.rows, 'val_tau')), gnsSummary(lastProbe(g))]),
          caption: 'mean ± half-width of the 95 % CI over seeds',
        },
        ...(comparisons.length ? [comparisonTable(comparisons, `held-out τ, each batch size against ${baseline.name} (the seed report's setting), paired by seed`)] : []),
        probeTable(ctx, groups),
      ],
      figures: [gnsFigure(ctx, groups, 'gns_vs_epoch_by_batch_size')],
    },
  ];
  const conclusions: string[] = [];
  const ranked = groups.map((g) => ({ g, ci: meanCIOf(g.rows, 'val_tau') })).filter((x) => x.ci).sort((a, b) => b.ci!.mean - a.ci!.mean);
  if (ranked.length) conclusions.push(`Highest mean held-out τ: ${ranked[0].g.name} (${formatNumber(ranked[0].ci!.mean)}); lowest: ${ranked[ranked.length - 1].g.name} (${formatNumber(ranked[ranked.length - 1].ci!.mean)}).`);
  for (const c of comparisons) conclusions.push(`${comparisonSentence(c)}${isSignificant(c) ? '' : ` No effect of going from ${c.labelB} to ${c.labelA} is shown.`}`);
  const allGns = groups.flatMap(lastProbe).filter((v): v is number => v !== null);
  if (allGns.length) {
    const b = median(allGns);
    const below = sortedSizes.filter((s) => s < b);
    conclusions.push(
      `Measured noise scale at the end of training: median B_simple ${formatNumber(b)} over all trials. Batch sizes below it (${below.length ? below.join(', ') : 'none of those tested'}) are in the noise-dominated regime, where doubling the batch roughly halves the steps needed; above it, larger batches mostly cost computation (McCandlish et al. 2018). With this few trials and epochs, τ differences between batch sizes reflect both the batch size and the number of steps taken.`,
    );
  }
  sections.push({ title: 'What the numbers say', placement: 'conclusions', markdown: conclusions.map((s) => `- ${s}`).join('\n') });
  return sections;
}

export const batchSizeExperiment = defineExperiment({
  name: 'batch-size',
  description: 'Batch-size sensitivity of the angle ranker (2, 4, 8, 16 pairs per batch): ranking quality and the gradient noise scale.',
  background:
    'Future work of the seed report "Batch gradient analysis": try batch sizes 2, 4, 8 and 16 and relate them to the gradient noise scale. The noise scale B_simple estimates the critical batch size, so it predicts where larger batches stop helping.',
  hypotheses: ['Ranking quality depends on the batch size.', 'Batch sizes well below the measured B_simple train in the noise-dominated regime.'],
  params: BATCH_SIZE_DEFAULTS,
  // The seed's batch size first: the runner compares every variant with variant 0.
  sweep: { list: [{ batchSize: 4 }, { batchSize: 2 }, { batchSize: 8 }, { batchSize: 16 }] },
  seeds: 5,
  primaryMetric: { name: 'val_tau', goal: 'max' },
  method: (params) => rankerMethod(params, ['**Sweep.** Only the training batch size varies (probe batches keep the listed size per variant); everything else as in ranker-gradients.']),
  trial: rankerTrial,
  fuse: RANKER_FUSE,
  report: batchSizeReport,
  // Parameter ranges and the recordings each trial needs, checked before the run folder exists.
  checkPlan: labPlanCheck('batch-size'),
});
