import { defineExperiment, formatNumber, type ReportContext, type ReportSection } from '@lab/experiment-runner';
import { classifierMethod } from './classifier-method';
import { accuracyTable, confusionFigure, pairwiseFigure, type TrialGroup } from './classifier-report';
import { CLASSIFIER_FUSE, classifierTrial, type ClassifierParams } from './classifier-trial';
import { FREQUENCY_LOSS_DEFAULTS } from './experiment-frequency-loss';
import { compare, comparisonSentence, comparisonTable, completedTrials, isSignificant, meanCIOf, unique } from './report-kit';
import { labPlanCheck } from './scales';

export const FUSION_INPUT = '500Hz+1000Hz+3000Hz';
export const FUSION_DEFAULTS: ClassifierParams = { ...FREQUENCY_LOSS_DEFAULTS, input: FUSION_INPUT, loss: 'ce' };

function fusionReport(ctx: ReportContext): ReportSection[] {
  const rows = completedTrials(ctx);
  const inputs = unique(rows.map((r) => String(r.params.input)));
  const groups: TrialGroup[] = inputs.map((input) => ({ name: input.includes('+') ? `fused ${input}` : input, rows: rows.filter((r) => r.params.input === input) }));
  const fused = groups.find((g) => g.name.startsWith('fused'));
  const singles = groups.filter((g) => g !== fused).map((g) => ({ g, ci: meanCIOf(g.rows, 'test_acc') })).filter((x) => x.ci).sort((a, b) => b.ci!.mean - a.ci!.mean);
  const sections: ReportSection[] = [];
  const figures = [confusionFigure(ctx, groups, 'confusion_fusion'), pairwiseFigure(ctx, groups, 'pairwise_fusion')].filter((f) => f !== undefined);
  const conclusions: string[] = [];
  const comparisons = [];
  if (fused && singles.length) {
    const best = singles[0];
    const c = compare(fused.rows, best.g.rows, { a: fused.name, b: `best single ${best.g.name}`, metric: 'test_acc' });
    if (c) {
      comparisons.push(c);
      const verdict = isSignificant(c) ? (c.result.diff > 0 ? 'Fusion beats the best single frequency.' : 'Fusion is worse than the best single frequency.') : 'Fusion does not significantly beat the best single frequency.';
      conclusions.push(`${comparisonSentence(c)} ${verdict}`);
    }
    for (const other of singles.slice(1)) {
      const d = compare(fused.rows, other.g.rows, { a: fused.name, b: other.g.name, metric: 'test_acc' });
      if (d) comparisons.push(d);
    }
    conclusions.push(`The best single frequency (${best.g.name}, ${formatNumber(best.ci!.mean)}) was picked on the same trials it is compared on, which favours it slightly; a fusion advantage here is therefore conservative.`);
  }
  sections.push({
    title: 'Fusion against single frequencies',
    markdown: 'The fused model sees the three frequencies of the same take as three input channels; the single-frequency models see one. Same takes, folds and seeds for all inputs.',
    tables: [accuracyTable(groups, 'mean ± half-width of the 95 % CI over seeds × folds'), ...(comparisons.length ? [comparisonTable(comparisons, 'fused minus single frequency, paired by seed and fold')] : [])],
    figures,
  });
  sections.push({ title: 'What the numbers say', placement: 'conclusions', markdown: conclusions.map((s) => `- ${s}`).join('\n') || '- No fused input was run.' });
  return sections;
}

export const fusionExperiment = defineExperiment({
  name: 'fusion',
  description: 'Multi-frequency fusion: the 500, 1000 and 3000 Hz spectrograms of the same take as three channels, against each single frequency.',
  background:
    'Future work of the seed report "GHM training and visualisation report": combine the frequencies in a multi-frequency fusion model. The frequencies see the reflector differently (wavelengths 69, 34 and 11 cm), so together they may resolve angles that each alone confuses.',
  hypotheses: ['The fused input gives higher held-out accuracy than the best single frequency.'],
  params: FUSION_DEFAULTS,
  sweep: { list: [{ input: FUSION_INPUT }, { input: '500Hz' }, { input: '1000Hz' }, { input: '3000Hz' }] },
  seeds: 5,
  folds: 5,
  primaryMetric: { name: 'test_acc', goal: 'max' },
  method: (params) => classifierMethod(params),
  trial: classifierTrial,
  fuse: CLASSIFIER_FUSE,
  report: fusionReport,
  // Parameter ranges and the recordings each trial needs, checked before the run folder exists.
  checkPlan: labPlanCheck('fusion'),
});
