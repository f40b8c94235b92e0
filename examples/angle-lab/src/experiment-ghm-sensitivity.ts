import { defineExperiment, formatNumber, type ReportContext, type ReportSection } from '@lab/experiment-runner';
import { classifierMethod } from './classifier-method';
import { accuracyTable, type TrialGroup } from './classifier-report';
import { CLASSIFIER_FUSE, classifierTrial, type ClassifierParams } from './classifier-trial';
import { FREQUENCY_LOSS_DEFAULTS } from './experiment-frequency-loss';
import { compare, comparisonSentence, comparisonTable, completedTrials, heatmapSpec, isSignificant, meanCIOf, unique, type MatrixCell } from './report-kit';
import { labPlanCheck } from './scales';

export const GHM_SENSITIVITY_DEFAULTS: ClassifierParams = { ...FREQUENCY_LOSS_DEFAULTS, input: '1000Hz', loss: 'ghm' };

function ghmSensitivityReport(ctx: ReportContext): ReportSection[] {
  const rows = completedTrials(ctx);
  const binsValues = unique(rows.map((r) => Number(r.params.bins))).sort((a, b) => a - b);
  const alphaValues = unique(rows.map((r) => Number(r.params.alpha))).sort((a, b) => a - b);
  const of = (bins: number, alpha: number) => rows.filter((r) => r.params.bins === bins && r.params.alpha === alpha);
  const groups: TrialGroup[] = binsValues.flatMap((bins) => alphaValues.map((alpha) => ({ name: `bins ${bins}, alpha ${alpha}`, rows: of(bins, alpha) })));
  const cells: MatrixCell[] = [];
  for (const bins of binsValues) {
    for (const alpha of alphaValues) {
      const ci = meanCIOf(of(bins, alpha), 'test_acc');
      cells.push({
        panel: '',
        row: `bins ${bins}`,
        col: `alpha ${alpha}`,
        value: ci ? ci.mean : null,
        text: ci ? `${formatNumber(ci.mean)}${ci.halfWidth !== null ? ` ± ${formatNumber(ci.halfWidth)}` : ''}` : '–',
      });
    }
  }
  const ranked = groups.map((g) => ({ g, ci: meanCIOf(g.rows, 'test_acc') })).filter((x) => x.ci).sort((a, b) => b.ci!.mean - a.ci!.mean);
  const sections: ReportSection[] = [
    {
      title: 'Held-out accuracy over the GHM grid',
      tables: [accuracyTable(groups, 'GHM at the tested frequency; mean ± half-width of the 95 % CI over seeds × folds')],
      figures: [
        {
          name: 'ghm_grid_heatmap',
          spec: heatmapSpec(cells, { title: 'Held-out accuracy: GHM bins × alpha (mean ± 95 % CI half-width)', rowTitle: 'bins', colTitle: 'alpha (EMA momentum)', valueTitle: 'accuracy', cellSize: 90 }),
          caption: 'Held-out accuracy for each combination of GHM bins and alpha (the EMA momentum of the bin counts): colour = mean, text = mean ± half-width of the 95 % CI over seeds × folds.',
        },
      ],
    },
  ];
  const conclusions: string[] = [];
  const seedDefault = groups.find((g) => g.rows[0]?.params.bins === 10 && g.rows[0]?.params.alpha === 0.75);
  if (ranked.length > 1) {
    const best = ranked[0];
    const worst = ranked[ranked.length - 1];
    conclusions.push(`Highest mean held-out accuracy: ${best.g.name} (${formatNumber(best.ci!.mean)}); lowest: ${worst.g.name} (${formatNumber(worst.ci!.mean)}); spread ${formatNumber(best.ci!.mean - worst.ci!.mean)}.`);
    const comparisons = [compare(best.g.rows, worst.g.rows, { a: best.g.name, b: worst.g.name, metric: 'test_acc' })];
    if (seedDefault && seedDefault !== best.g) comparisons.push(compare(best.g.rows, seedDefault.rows, { a: best.g.name, b: `${seedDefault.name} (the seed's default)`, metric: 'test_acc' }));
    const valid = comparisons.filter((c) => c !== undefined);
    sections.push({ title: 'Best against worst and against the default', tables: [comparisonTable(valid, 'paired by seed and fold; the best and worst cells were picked after seeing the data, so these p-values are optimistic')] });
    // The extremes were chosen after seeing all cells: judge them against every pair of cells that could have been picked.
    const possiblePairs = (ranked.length * (ranked.length - 1)) / 2;
    const threshold = 0.05 / possiblePairs;
    for (const c of valid) {
      const p = c.result.tTest?.p;
      const correction =
        p === undefined || !isSignificant(c)
          ? ''
          : p < threshold
            ? ` It stays significant after a Bonferroni correction for the ${possiblePairs} pairs of cells that could have been compared (threshold ${formatNumber(threshold)}).`
            : ` But the cells were picked after seeing all ${ranked.length}; corrected for the ${possiblePairs} pairs that could have been compared (Bonferroni threshold ${formatNumber(threshold)}) the difference is not significant.`;
      conclusions.push(`${comparisonSentence(c)}${correction}`);
    }
    if (valid.every((c) => !isSignificant(c) || (c.result.tTest?.p ?? 1) >= threshold)) {
      conclusions.push(
        `Within this grid the GHM parameters make no difference that these trials can detect: no pair of cells differs significantly once the choice of the extremes is accounted for${seedDefault ? (seedDefault === best.g ? ', although the seed default (bins 10, alpha 0.75) had the highest mean' : ', and the seed default (bins 10, alpha 0.75) is not significantly worse than the best cell') : ''}.`,
      );
    }
  }
  conclusions.push('alpha is the momentum of the EMA of the bin counts, not a weighting exponent: alpha 0 uses each batch\'s own counts (noisy with small batches), alpha near 1 smooths the density over many batches. More bins resolve the density of g more finely but leave fewer samples per bin in a batch.');
  sections.push({ title: 'What the numbers say', placement: 'conclusions', markdown: conclusions.map((s) => `- ${s}`).join('\n') });
  return sections;
}

export const ghmSensitivityExperiment = defineExperiment({
  name: 'ghm-sensitivity',
  description: 'Sensitivity of the GHM classifier to its two parameters: bins {5, 10, 20, 30} × alpha (EMA momentum) {0, 0.5, 0.75, 0.9}, at 1000 Hz.',
  background:
    'The seed report "GHM training and visualisation report" could not finish its parameter study ("due to time limits"): it only noted that bins 10, alpha 0.75 worked well. This experiment runs the full grid with repetitions and held-out folds.',
  hypotheses: [
    'Held-out accuracy depends on the number of bins and on alpha.',
    'The seed default (bins 10, alpha 0.75) is among the best combinations.',
  ],
  params: GHM_SENSITIVITY_DEFAULTS,
  sweep: { grid: { bins: [5, 10, 20, 30], alpha: [0, 0.5, 0.75, 0.9] } },
  seeds: 5,
  folds: 5,
  // The report's own section compares cells with a multiple-comparison correction.
  primaryMetric: { name: 'test_acc', goal: 'max', compare: 'none' },
  method: (params) => classifierMethod(params),
  trial: classifierTrial,
  fuse: CLASSIFIER_FUSE,
  report: ghmSensitivityReport,
  // Parameter ranges and the recordings each trial needs, checked before the run folder exists.
  checkPlan: labPlanCheck('ghm-sensitivity'),
});
