/** Report pieces shared by the ranker experiments (ranker-gradients, batch-size). */
import { formatNumber, type ReportContext, type ReportFigure, type ReportTable } from '@lab/experiment-runner';
import { gnsVsEpochSpec, tsneScatterSpec } from '@lab/grad-probe';
import type { RankerProbes } from './ranker-trial';
import { heatmapSpec, seriesLineSpec, unique, type MatrixCell, type TrialRow } from './report-kit';
import type { TrialGroup } from './classifier-report';

export function readProbes(ctx: Pick<ReportContext, 'readArtifact'>, row: TrialRow): RankerProbes | undefined {
  const text = ctx.readArtifact(row.id, 'probes.json');
  return text ? (JSON.parse(text) as RankerProbes) : undefined;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** "median [min – max] (k of n undefined)" of B_simple values; null = |G|² ≤ 0 (noise swamps the signal). */
export function gnsSummary(values: readonly (number | null)[]): string {
  const defined = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const undefinedCount = values.length - defined.length;
  const note = undefinedCount ? ` (${undefinedCount} of ${values.length} undefined: |G|² ≤ 0)` : '';
  if (!defined.length) return `undefined${note}`;
  if (defined.length === 1) return `${formatNumber(defined[0])}${note}`;
  return `${formatNumber(median(defined))} [${formatNumber(Math.min(...defined))} – ${formatNumber(Math.max(...defined))}]${note}`;
}

/** Per group and probed epoch: B_simple and mean batch cosine over the group's trials. */
export function probeTable(ctx: Pick<ReportContext, 'readArtifact'>, groups: readonly TrialGroup[]): ReportTable {
  const rows: (string | number)[][] = [];
  for (const g of groups) {
    const all = g.rows.map((r) => readProbes(ctx, r)).filter((p): p is RankerProbes => p !== undefined);
    const epochs = unique(all.flatMap((p) => p.probes.map((x) => x.epoch))).sort((a, b) => a - b);
    for (const epoch of epochs) {
      const at = all.flatMap((p) => p.probes.filter((x) => x.epoch === epoch));
      rows.push([
        g.name,
        epoch,
        at.length,
        gnsSummary(at.map((x) => x.gns.bSimple)),
        formatNumber(median(at.map((x) => x.meanBatchCosine))),
        formatNumber(median(at.map((x) => x.meanPairGradientNorm))),
      ]);
    }
  }
  return {
    columns: ['variant', 'epoch', 'trials', 'B_simple: median [min – max] over seeds', 'mean cosine between batch gradients (median)', 'mean per-pair gradient norm (median)'],
    rows,
    caption: 'Gradient probes. B_simple = tr(Σ)/|G|² (McCandlish et al. 2018) from per-pair gradients: dimensionless, roughly the batch size beyond which larger batches stop paying off.',
  };
}

/** B_simple per probed epoch: median over seeds with the min–max band, one line per group (log scale). */
export function gnsFigure(ctx: Pick<ReportContext, 'readArtifact'>, groups: readonly TrialGroup[], name: string): ReportFigure {
  const values = groups.flatMap((g) => {
    const all = g.rows.map((r) => readProbes(ctx, r)).filter((p): p is RankerProbes => p !== undefined);
    const epochs = unique(all.flatMap((p) => p.probes.map((x) => x.epoch))).sort((a, b) => a - b);
    return epochs.flatMap((epoch) => {
      const defined = all.flatMap((p) => p.probes.filter((x) => x.epoch === epoch)).map((x) => x.gns.bSimple).filter((v): v is number => v !== null && v > 0);
      return defined.length ? [{ epoch, value: median(defined), lo: Math.min(...defined), hi: Math.max(...defined), series: g.name }] : [];
    });
  });
  return {
    name,
    spec: seriesLineSpec(values, { title: 'Gradient noise scale B_simple vs epoch (median, min–max over seeds)', yTitle: 'B_simple (dimensionless)', log: true }),
    caption: 'Gradient noise scale B_simple = tr(Σ)/|G|² per probed epoch: median over seeds (line) and min–max band; log scale. Epochs where |G|² ≤ 0 are left out.',
  };
}

/** The bootstrap view of one trial: B_simple with its 95 % band and the EMA ratio. */
export function gnsBootstrapFigure(probes: RankerProbes, label: string, name: string): ReportFigure {
  return {
    name,
    spec: gnsVsEpochSpec(probes.gnsTracker, { title: `Gradient noise scale vs epoch: ${label}` }),
    caption: `${label}: B_simple at each probe with its percentile-bootstrap 95 % interval over the probe pairs, and the ratio of the EMAs of tr(Σ) and |G|² (dashed).`,
  };
}

export function tsneFigure(probes: RankerProbes, label: string, name: string): ReportFigure | undefined {
  const failed = probes.probes.filter((p) => p.tsneError);
  const groups = probes.probes.filter((p) => p.tsne).map((p) => ({ embedding: { points: p.tsne!.points, trustworthiness: p.tsne!.trustworthiness, perplexityUsed: p.tsne!.perplexityUsed }, epoch: p.epoch, labels: p.batchLabels }));
  if (!groups.length) return undefined;
  return {
    name,
    spec: tsneScatterSpec(groups, { colorBy: 'label', title: `t-SNE of batch-gradient directions per probed epoch: ${label}` }),
    caption: `${label}: t-SNE maps of the batch gradients (one point per batch of training pairs, coloured by the mean angle gap of its pairs, in angle classes of 36°), one panel per probed epoch; axes are not comparable between panels. Trustworthiness per map: ${groups.map((g) => `epoch ${g.epoch} ${formatNumber(g.embedding.trustworthiness)}`).join(', ')}.${failed.length ? ` No map at ${failed.map((p) => `epoch ${p.epoch} (${p.tsneError})`).join('; ')}.` : ''}`,
  };
}

export function cosineFigure(probes: RankerProbes, label: string, name: string): ReportFigure | undefined {
  const cells: MatrixCell[] = probes.probes.flatMap((p) =>
    p.batchCosine.flatMap((row, i) => row.map((value, j) => ({ panel: `epoch ${p.epoch}`, row: `b${String(i).padStart(2, '0')}`, col: `b${String(j).padStart(2, '0')}`, value, text: '' }))),
  );
  if (!cells.length) return undefined;
  return {
    name,
    spec: heatmapSpec(cells, { title: `Cosine similarity between batch gradients: ${label}`, rowTitle: 'batch', colTitle: 'batch', valueTitle: 'cosine', domain: [-1, 1], cellSize: 12 }),
    caption: `${label}: cosine similarity between the gradients of the probe batches (the same batches at every epoch), one panel per probed epoch; 1 = same direction, 0 = orthogonal, −1 = opposite.`,
  };
}

export function anomalyTable(probes: RankerProbes, label: string): ReportTable {
  const last = probes.probes[probes.probes.length - 1];
  return {
    columns: ['rank', 'training pair', 'score', 'cosine to the rest', 'cosine z', 'norm z'],
    rows: (last?.anomalies ?? []).map((a, i) => [i + 1, String(a.id), formatNumber(a.score), formatNumber(a.cosineToRest), formatNumber(a.cosineZScore), formatNumber(a.normZScore)]),
    caption: `${label}, epoch ${last?.epoch ?? '–'}: training pairs whose gradient is least aligned with the mean gradient of the other pairs and large (score = cosine z + norm z). Candidates to listen to, not proof of a bad recording.`,
  };
}
