import { defineExperiment, type ReportContext, type ReportSection } from '@lab/experiment-runner';
import { classifierMethod } from './classifier-method';
import { accuracyTable, anglePairs, confusionFigure, type TrialGroup } from './classifier-report';
import { CLASSIFIER_FUSE, classifierTrial, type ClassifierParams } from './classifier-trial';
import { FREQUENCY_LOSS_DEFAULTS } from './experiment-frequency-loss';
import { compare, comparisonSentence, comparisonTable, completedTrials, isSignificant, unique } from './report-kit';
import { labPlanCheck } from './scales';

export const MATERIAL_DEFAULTS: ClassifierParams = { ...FREQUENCY_LOSS_DEFAULTS, input: '1000Hz', loss: 'ce' };

function materialReport(ctx: ReportContext): ReportSection[] {
  const rows = completedTrials(ctx);
  const materials = unique(rows.map((r) => String(r.params.material)));
  const groups: TrialGroup[] = materials.map((m) => ({ name: `${m} ${rows.find((r) => r.params.material === m)!.params.input}`, rows: rows.filter((r) => r.params.material === m) }));
  const comparisons = groups.slice(1).flatMap((g) => {
    const c = compare(g.rows, groups[0].rows, { a: g.name, b: groups[0].name, metric: 'test_acc' });
    return c ? [c] : [];
  });
  const confusion = confusionFigure(ctx, groups, 'confusion_by_material');
  const pairs = anglePairs(ctx, groups);
  const conclusions = comparisons.map((c) => `${comparisonSentence(c)}${isSignificant(c) ? '' : ' The data do not show a difference between the materials.'}`);
  return [
    {
      title: 'Held-out accuracy per material',
      tables: [accuracyTable(groups, 'mean ± half-width of the 95 % CI over seeds × folds'), ...(comparisons.length ? [comparisonTable(comparisons, 'paired by seed and fold')] : []), pairs.table],
      figures: confusion ? [confusion] : [],
    },
    { title: 'What the numbers say', placement: 'conclusions', markdown: conclusions.map((s) => `- ${s}`).join('\n') || '- Only one material was run.' },
  ];
}

export const materialExperiment = defineExperiment({
  name: 'material',
  description: 'Plastic vs box reflector: angle classification accuracy on held-out folds at one frequency.',
  background:
    'Future work of the seed report "Batch gradient analysis": compare the materials plastic and box. A cardboard box side absorbs more of the sound than a stiff plastic sheet, so its reflection carries less angle information; whether the classifier notices is an empirical question. The ranker-gradients experiment compares the two materials\' gradient behaviour.',
  hypotheses: ['Held-out accuracy differs between plastic and box.'],
  params: MATERIAL_DEFAULTS,
  sweep: { list: [{ material: 'plastic' }, { material: 'box' }] },
  seeds: 5,
  folds: 5,
  primaryMetric: { name: 'test_acc', goal: 'max' },
  method: (params) => classifierMethod(params),
  trial: classifierTrial,
  fuse: CLASSIFIER_FUSE,
  report: materialReport,
  // Parameter ranges and the recordings each trial needs, checked before the run folder exists.
  checkPlan: labPlanCheck('material'),
});
