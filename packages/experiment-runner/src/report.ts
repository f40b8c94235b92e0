import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-write';
import type { Experiment } from './define-experiment';
import { renderVegaLite } from './figures';
import { escapeHtml, escapeMarkdown, markdownToHtml } from './html';
import { loadExperiment } from './load-experiment';
import { formatDuration } from './progress';
import { adapterLabel } from './webgpu-adapter';
import type { ReportContext, ReportSection, ReportTable } from './report-types';
import { formatMetricsProblem, readRunConfig, readRunState, slugify, type IncompleteMetricsOptions, type MetricsLine, type RunConfig } from './run-folder';
import { describeComparison, describeMeanCI, formatMeanCI, formatNumber, formatP, meanCI95, pairedComparison, type MeanCI } from './stats';
import { summarizeChecked, type RunSummary } from './summary';
import { describeTrialHosts } from './trial-hosts';
import { describeFusedTrials } from './trial-group';
import type { VegaLiteSpec } from './trial-context';

/** A report as blocks, rendered once to Markdown and once to HTML so the two always agree. */
type Block =
  | { kind: 'heading'; level: number; text: string }
  | { kind: 'markdown'; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'list'; ordered: boolean; items: string[] }
  | { kind: 'fields'; items: [string, string][] }
  | { kind: 'table'; table: ReportTable }
  | { kind: 'figure'; file: string; svg: string; caption: string };

export interface ReportResult {
  markdownPath: string;
  htmlPath: string;
  figures: string[];
  /** Figures whose spec could not be rendered, with the reason (also stated in the report). */
  figureErrors: { name: string; error: string }[];
}

function ci(m: MeanCI | undefined): string {
  return m ? formatMeanCI(m) : '–';
}

function flatten(value: unknown, prefix = ''): [string, string][] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, typeof value === 'string' ? value : JSON.stringify(value)]];
}

function primaryCurveSpec(config: RunConfig, summary: RunSummary, metrics: MetricsLine[]): VegaLiteSpec | undefined {
  const primary = summary.primaryMetric;
  if (!primary) return undefined;
  const variantOf = new Map(config.trials.map((t) => [t.id, summary.variants.find((v) => v.variant === t.variant)?.label ?? `variant ${t.variant}`]));
  const values = metrics
    .filter((l) => typeof l.epoch === 'number' && typeof l[primary.name] === 'number')
    .map((l) => ({ epoch: l.epoch, value: l[primary.name], variant: variantOf.get(l.trial) ?? l.trial }));
  if (values.length < 2) return undefined;
  const encodingX = { field: 'epoch', type: 'quantitative', title: 'epoch' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `${primary.name} per epoch (mean ± standard error over seeds/folds)`,
    width: 480,
    height: 260,
    data: { values },
    layer: [
      { mark: { type: 'errorband', extent: 'stderr' }, encoding: { x: encodingX, y: { field: 'value', type: 'quantitative', title: primary.name }, color: { field: 'variant', type: 'nominal' } } },
      { mark: 'line', encoding: { x: encodingX, y: { aggregate: 'mean', field: 'value', type: 'quantitative', title: primary.name }, color: { field: 'variant', type: 'nominal' } } },
    ],
  };
}

function finalBarSpec(summary: RunSummary): VegaLiteSpec | undefined {
  const primary = summary.primaryMetric;
  if (!primary) return undefined;
  const values = summary.variants
    .filter((v) => v.metrics[primary.name])
    .map((v) => {
      const m = v.metrics[primary.name];
      return { variant: `${v.label} (n = ${m.n})`, mean: m.mean, lo: m.lo ?? m.mean, hi: m.hi ?? m.mean, n: m.n };
    });
  if (values.length === 0) return undefined;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `final ${primary.name} per variant (mean and 95 % CI)`,
    width: Math.max(160, 60 * values.length),
    height: 240,
    data: { values },
    layer: [
      { mark: 'bar', encoding: { x: { field: 'variant', type: 'nominal', sort: null, title: 'variant' }, y: { field: 'mean', type: 'quantitative', title: primary.name } } },
      { mark: { type: 'rule', color: 'black' }, encoding: { x: { field: 'variant', type: 'nominal', sort: null }, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
    ],
  };
}

function toMarkdown(blocks: Block[]): string {
  const out: string[] = [];
  for (const block of blocks) {
    switch (block.kind) {
      case 'heading':
        out.push(`${'#'.repeat(block.level)} ${escapeMarkdown(block.text)}`);
        break;
      case 'markdown':
        out.push(escapeMarkdown(block.text));
        break;
      case 'paragraph':
        out.push(escapeMarkdown(block.text));
        break;
      case 'list':
        out.push(block.items.map((item, i) => `${block.ordered ? `${i + 1}.` : '-'} ${escapeMarkdown(item)}`).join('\n'));
        break;
      case 'fields':
        out.push(block.items.map(([k, v]) => `* **${escapeMarkdown(k)}:** ${escapeMarkdown(v)}`).join('\n'));
        break;
      case 'table': {
        const { columns, rows, caption } = block.table;
        const lines = [
          `| ${columns.map((c) => escapeMarkdown(c, true)).join(' | ')} |`,
          `|${columns.map(() => '---').join('|')}|`,
          ...rows.map((row) => `| ${row.map((cell) => escapeMarkdown(cell ?? '–', true)).join(' | ')} |`),
        ];
        out.push(caption ? `${lines.join('\n')}\n\n*${escapeMarkdown(caption)}*` : lines.join('\n'));
        break;
      }
      case 'figure':
        out.push(`![${escapeMarkdown(block.caption).replace(/[[\]]/g, '')}](${block.file.replace(/\.svg$/, '.png')})\n\n*${escapeMarkdown(block.caption)}* ([SVG](${block.file}))`);
        break;
    }
  }
  return `${out.join('\n\n')}\n`;
}

function toHtml(blocks: Block[], title: string): string {
  const body: string[] = [];
  for (const block of blocks) {
    switch (block.kind) {
      case 'heading':
        body.push(`<h${block.level}>${escapeHtml(block.text)}</h${block.level}>`);
        break;
      case 'markdown':
        body.push(markdownToHtml(block.text, 2));
        break;
      case 'paragraph':
        body.push(`<p>${escapeHtml(block.text)}</p>`);
        break;
      case 'list': {
        const tag = block.ordered ? 'ol' : 'ul';
        body.push(`<${tag}>${block.items.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</${tag}>`);
        break;
      }
      case 'fields':
        body.push(`<dl class="fields">${block.items.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`);
        break;
      case 'table': {
        const { columns, rows, caption } = block.table;
        body.push(
          `<table>${caption ? `<caption>${escapeHtml(caption)}</caption>` : ''}<thead><tr>${columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${rows
            .map((row) => `<tr>${row.map((cell) => `<td>${escapeHtml(cell ?? '–')}</td>`).join('')}</tr>`)
            .join('')}</tbody></table>`,
        );
        break;
      }
      case 'figure': {
        // An <img> with a data URL: the SVG is shown but can never run script in the page.
        const data = Buffer.from(block.svg, 'utf8').toString('base64');
        body.push(
          `<figure><img class="figure" alt="${escapeHtml(block.caption)}" data-file="${escapeHtml(block.file)}" src="data:image/svg+xml;base64,${data}"><figcaption>${escapeHtml(block.caption)}</figcaption></figure>`,
        );
        break;
      }
    }
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }
h1 { border-bottom: 2px solid #444; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
caption { caption-side: bottom; font-style: italic; padding-top: .3rem; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.fields dt { font-weight: 600; }
dl.fields dd { margin: 0; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; }
figcaption { font-style: italic; font-size: .9rem; }
code { background: #f3f3f3; padding: 0 .2rem; }
</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`;
}

async function loadExperimentFor(config: RunConfig, experiment?: Experiment): Promise<Experiment | undefined> {
  if (experiment) return experiment;
  if (!config.experiment.file || !existsSync(config.experiment.file)) return undefined;
  try {
    return await loadExperiment(config.experiment.file, config.experiment.name);
  } catch {
    return undefined;
  }
}

/**
 * Writes report.md, a self-contained report.html and figures/*.svg + *.png for a run, in the lab's
 * template: metadata, background, purpose and hypotheses, method, results, conclusions. The
 * experiment (for `method` and `report`) is imported from the recorded module when not given.
 *
 * A completed trial whose metrics lines are incomplete (a damaged line of metrics.jsonl, a gap or a
 * repeat in its seq numbers) is not reported: IncompleteMetricsError names the file and lines, unless
 * `options.allowIncomplete`, in which case the report says which trials are incomplete and why.
 */
export async function buildReport(runDir: string, experiment?: Experiment, options: IncompleteMetricsOptions = {}): Promise<ReportResult> {
  const config = readRunConfig(runDir);
  const state = readRunState(runDir);
  const { summary, lines: metrics } = summarizeChecked(runDir, options, 'report');
  const exp = await loadExperimentFor(config, experiment);
  const figuresDir = join(runDir, 'figures');
  mkdirSync(figuresDir, { recursive: true });
  const written: string[] = [];
  const figureErrors: { name: string; error: string }[] = [];
  const usedNames = new Set<string>();

  const figureBlock = async (name: string, spec: VegaLiteSpec, caption: string, baseDir: string): Promise<Block[]> => {
    let stem = slugify(name);
    for (let i = 2; usedNames.has(stem); i++) stem = `${slugify(name)}_${i}`;
    usedNames.add(stem);
    try {
      const rendered = await renderVegaLite(spec, { baseDir });
      writeFileAtomic(join(figuresDir, `${stem}.svg`), rendered.svg);
      writeFileAtomic(join(figuresDir, `${stem}.png`), rendered.png);
      written.push(`figures/${stem}.svg`, `figures/${stem}.png`);
      return [{ kind: 'figure', file: `figures/${stem}.svg`, svg: rendered.svg, caption }];
    } catch (error) {
      const message = (error as Error).message;
      figureErrors.push({ name, error: message });
      return [{ kind: 'paragraph', text: `Figure "${caption}" could not be rendered: ${message}` }];
    }
  };

  const context: ReportContext = {
    runDir,
    config,
    summary,
    trials: summary.trials,
    metrics,
    metricsOf: (trialId) => metrics.filter((l) => l.trial === trialId),
    readArtifact: (trialId, name) => {
      const path = join(runDir, 'trials', trialId, 'artifacts', name);
      return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    },
    stats: { meanCI95, pairedComparison, describeComparison, describeMeanCI, formatNumber },
  };
  let custom: ReportSection[] = [];
  let customError: string | undefined;
  if (exp?.report) {
    try {
      custom = await exp.report(context);
    } catch (error) {
      customError = (error as Error).message;
    }
  }

  const blocks: Block[] = [];
  const primary = summary.primaryMetric;
  blocks.push({ kind: 'heading', level: 1, text: `Experiment report: ${config.id}` });

  // 1. Metadata
  const duration = (state?.sessions ?? []).reduce((s, x) => s + (x.finishedAt ? Date.parse(x.finishedAt) - Date.parse(x.startedAt) : 0), 0);
  blocks.push({ kind: 'heading', level: 2, text: '1. Metadata' });
  blocks.push({
    kind: 'fields',
    items: [
      ['Experiment ID', config.id],
      ['Experiment', config.experiment.name],
      ['Timestamp', `${config.createdAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`],
      ['Description', config.experiment.description],
      ['Executor', `${config.executor.kind}, ${config.executor.workers} worker${config.executor.workers === 1 ? '' : 's'} on ${config.host.user ? `${config.host.user}@` : ''}${config.host.hostname} (${config.host.platform}/${config.host.arch}, ${config.host.cpus} CPUs, Node ${config.host.node})`],
      ...((hosts) => (hosts ? [['Trials ran on', hosts] as [string, string]] : []))(describeTrialHosts(runDir, config)),
      ...((fused) => (fused ? [['Fused trials', fused] as [string, string]] : []))(describeFusedTrials(runDir, config)),
      ['Backend', config.backend.name === 'none' ? 'none (no TensorFlow.js)' : `${config.backend.name}${config.backend.adapter ? ` on ${adapterLabel(config.backend.adapter)}` : ''}${config.backend.fastTraining ? ' with @lab/tfjs-train training kernels' : ''}${config.backend.native ? ` (${config.backend.native})` : ''} (asked: ${config.backend.preference})`],
      ['Versions', Object.entries(config.versions).map(([k, v]) => `${k} ${v}`).join(', ')],
      ['Git commit', config.git.commit ? `${config.git.commit}${config.git.dirty ? ' (with uncommitted changes)' : ''}` : 'not a git checkout'],
      ['Status', `${state?.status ?? 'unknown'}: ${summary.counts.completed}/${summary.counts.total} trials completed${summary.counts.failed ? `, ${summary.counts.failed} failed` : ''}${summary.counts.pending ? `, ${summary.counts.pending} not run` : ''}${state && state.sessions.length > 1 ? `, resumed ${state.sessions.length - 1}×` : ''}`],
      ['Run time', formatDuration(duration)],
    ],
  });

  // 2. Background
  blocks.push({ kind: 'heading', level: 2, text: '2. Background & motivation' });
  blocks.push(config.experiment.background ? { kind: 'markdown', text: config.experiment.background } : { kind: 'paragraph', text: 'No background was given.' });

  // 3. Purpose and hypotheses
  blocks.push({ kind: 'heading', level: 2, text: '3. Purpose & hypotheses' });
  blocks.push({ kind: 'paragraph', text: `Purpose: ${config.experiment.description}` });
  if (config.experiment.hypotheses.length) blocks.push({ kind: 'list', ordered: true, items: config.experiment.hypotheses.map((h) => `Hypothesis: ${h}`) });
  else blocks.push({ kind: 'paragraph', text: 'No hypotheses were stated.' });

  // 4. Method
  blocks.push({ kind: 'heading', level: 2, text: '4. Method' });
  if (exp?.method) {
    try {
      blocks.push({ kind: 'markdown', text: exp.method(config.params) });
    } catch (error) {
      blocks.push({ kind: 'paragraph', text: `The experiment's method description failed: ${(error as Error).message}` });
    }
  }
  blocks.push({ kind: 'heading', level: 3, text: 'Hyper-parameters' });
  blocks.push({ kind: 'table', table: { columns: ['parameter', 'value'], rows: flatten(config.params).map(([k, v]) => [k, config.varied.includes(k.split('.')[0]) ? `${v} (swept)` : v]) } });
  blocks.push({ kind: 'heading', level: 3, text: 'Sweep and repetitions' });
  const sweepItems: string[] = [];
  for (const [axis, values] of Object.entries(config.sweep.grid ?? {})) sweepItems.push(`grid ${axis}: ${values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}`);
  if (config.sweep.list) sweepItems.push(`list of ${config.sweep.list.length} variants: ${config.sweep.list.map((e) => JSON.stringify(e)).join('; ')}`);
  sweepItems.push(`${summary.variants.length} variant${summary.variants.length === 1 ? '' : 's'} × ${config.seeds.length} seed${config.seeds.length === 1 ? '' : 's'} (${config.seeds.join(', ')})${config.folds ? ` × ${config.folds} folds` : ''} = ${config.trials.length} trials`);
  blocks.push({ kind: 'list', ordered: false, items: sweepItems });
  blocks.push({
    kind: 'paragraph',
    text: `Statistics: each trial's final values are those of its last logged epoch (metrics logged without an epoch, such as a test score after training: their last value), summarised as mean ± 95 % confidence interval (Student t, n − 1 degrees of freedom) over ${config.folds ? 'seeds and folds' : 'seeds'}. Variants are compared with variant 0 on ${primary ? primary.name : 'the primary metric'} by pairing trials with the same seed${config.folds ? ' and fold' : ''}: mean difference with its 95 % CI, paired t-test, Wilcoxon signed-rank test (exact for n ≤ 50) and a sign-flip permutation test (exact for n ≤ 16). n is the number of pairs. The conclusions call a difference significant when the paired t-test gives p < 0.05; the two other tests, which do not assume normal differences, are reported beside it and the conclusions say when they disagree.`,
  });

  // 5. Results
  blocks.push({ kind: 'heading', level: 2, text: '5. Results' });
  const completedTrials = summary.trials.filter((t) => t.status === 'completed');
  // Metrics logged by completed trials but absent from some of their final rows (probes logged at some epochs only).
  const notAlwaysFinal = [...new Set(completedTrials.flatMap((t) => Object.keys(t.lastLogged ?? {}).filter((m) => !(m in t.final))))];
  const metricNames = [...new Set([...summary.variants.flatMap((v) => Object.keys(v.metrics)), ...notAlwaysFinal])];
  if (primary) metricNames.sort((a, b) => (a === primary.name ? -1 : b === primary.name ? 1 : 0));
  if (metricNames.length) {
    blocks.push({ kind: 'heading', level: 3, text: 'Final metrics per variant' });
    blocks.push({
      kind: 'table',
      table: {
        columns: ['variant', 'n', ...metricNames, ...(summary.variants.some((v) => v.failed) ? ['failed'] : [])],
        rows: summary.variants.map((v) => [
          v.label,
          v.n,
          ...metricNames.map((m) => ci(v.metrics[m])),
          ...(summary.variants.some((x) => x.failed) ? [v.failed] : []),
        ]),
        caption: "values of each trial's last logged epoch (metrics logged without an epoch: their last value), mean ± half-width of the 95 % CI over completed trials; n = completed trials; – where the last epoch did not log the metric",
      },
    });
    if (notAlwaysFinal.length) {
      blocks.push({ kind: 'heading', level: 3, text: 'Last logged value of metrics missing from the last epoch' });
      blocks.push({
        kind: 'table',
        table: {
          columns: ['variant', ...notAlwaysFinal],
          rows: summary.variants.map((v) => [
            v.label,
            ...notAlwaysFinal.map((m) => {
              const logged = completedTrials.filter((t) => t.variant === v.variant && t.lastLogged?.[m]).map((t) => t.lastLogged[m]);
              if (logged.length === 0) return '–';
              const epochs = [...new Set(logged.map((l) => l.epoch).filter((e): e is number => e !== undefined))].sort((a, b) => a - b);
              const at = epochs.length === 0 ? '' : epochs.length === 1 ? `, at epoch ${epochs[0]}` : `, at epochs ${epochs[0]}–${epochs[epochs.length - 1]}`;
              return `${describeMeanCI(meanCI95(logged.map((l) => l.value)))}${at}`;
            }),
          ]),
          caption: 'last logged value (not a final value): the latest epoch at which each trial logged the metric, mean ± half-width of the 95 % CI',
        },
      });
    }
  } else {
    blocks.push({ kind: 'paragraph', text: 'No numeric metrics were logged.' });
  }
  // A best over one value per trial is that value again: only shown when the metric was tracked during training.
  if (primary && summary.variants.some((v) => v.best) && completedTrials.some((t) => (t.primaryLogged ?? 0) > 1)) {
    blocks.push({ kind: 'heading', level: 3, text: `Best ${primary.name} during training` });
    blocks.push({
      kind: 'table',
      table: {
        columns: ['variant', 'n', `best ${primary.name}`, 'epoch of best (mean)'],
        rows: summary.variants.map((v) => {
          const epochs = summary.trials.filter((t) => t.variant === v.variant && t.status === 'completed' && t.best?.epoch !== undefined).map((t) => t.best!.epoch!);
          return [v.label, v.n, ci(v.best), epochs.length ? formatNumber(epochs.reduce((s, e) => s + e, 0) / epochs.length) : '–'];
        }),
        caption: `${primary.goal === 'max' ? 'highest' : 'lowest'} value reached by each trial; mean ± half-width of the 95 % CI over trials`,
      },
    });
  }
  if (summary.comparisons.length) {
    blocks.push({ kind: 'heading', level: 3, text: `Paired comparisons on ${primary?.name ?? ''}` });
    blocks.push({
      kind: 'table',
      table: {
        columns: ['comparison', 'n', 'difference', '95 % CI', 'paired t-test', 'Wilcoxon signed-rank', 'sign-flip permutation'],
        rows: summary.comparisons.map((c) => [
          `${c.aLabel} − ${c.bLabel}`,
          c.result.n,
          formatNumber(c.result.diff),
          c.result.ci95 ? `${formatNumber(c.result.ci95[0])} to ${formatNumber(c.result.ci95[1])}` : '–',
          c.result.tTest ? formatP(c.result.tTest.p) : '–',
          c.result.wilcoxon ? `${formatP(c.result.wilcoxon.p)}${c.result.wilcoxon.exact ? ' (exact)' : ''}` : '–',
          c.result.permutation ? `${formatP(c.result.permutation.p)}${c.result.permutation.exact ? ' (exact)' : ''}` : '–',
        ]),
      },
    });
  }
  const curve = primaryCurveSpec(config, summary, metrics);
  const bars = finalBarSpec(summary);
  if (curve || bars) blocks.push({ kind: 'heading', level: 3, text: 'Figures' });
  if (curve) blocks.push(...(await figureBlock(`curve_${primary!.name}`, curve, `${primary!.name} per epoch, mean ± standard error over ${config.folds ? 'seeds and folds' : 'seeds'}, per variant`, runDir)));
  if (bars) blocks.push(...(await figureBlock(`final_${primary!.name}`, bars, `final ${primary!.name} per variant, mean and 95 % CI`, runDir)));

  const trialFigures: { trial: string; name: string; path: string }[] = [];
  for (const trial of config.trials) {
    const dir = join(runDir, 'trials', trial.id, 'figures');
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.vl.json')).sort()) trialFigures.push({ trial: trial.id, name: file.slice(0, -'.vl.json'.length), path: join(dir, file) });
  }
  if (trialFigures.length) {
    blocks.push({ kind: 'heading', level: 3, text: 'Figures logged by the trials' });
    for (const f of trialFigures) {
      let spec: VegaLiteSpec;
      try {
        spec = JSON.parse(readFileSync(f.path, 'utf8')) as VegaLiteSpec;
      } catch (error) {
        const message = `${f.path} is not valid JSON (${(error as Error).message})`;
        figureErrors.push({ name: `${f.trial}__${f.name}`, error: message });
        blocks.push({ kind: 'paragraph', text: `Figure "${f.name}" (trial ${f.trial}) could not be rendered: ${message}` });
        continue;
      }
      const label = config.trials.find((t) => t.id === f.trial)?.variantLabel;
      blocks.push(...(await figureBlock(`${f.trial}__${f.name}`, spec, `${f.name} (trial ${f.trial}${label ? `: ${label}` : ''})`, join(runDir, 'trials', f.trial))));
    }
  }
  const renderSection = async (section: ReportSection): Promise<void> => {
    blocks.push({ kind: 'heading', level: 3, text: section.title });
    if (section.markdown) blocks.push({ kind: 'markdown', text: section.markdown });
    for (const table of section.tables ?? []) blocks.push({ kind: 'table', table });
    for (const fig of section.figures ?? []) blocks.push(...(await figureBlock(fig.name, fig.spec, fig.caption ?? fig.name, runDir)));
  };
  for (const section of custom.filter((s) => (s.placement ?? 'results') === 'results')) await renderSection(section);
  if (customError) blocks.push({ kind: 'paragraph', text: `The experiment's report sections failed: ${customError}` });

  const incomplete = summary.trials.filter((t) => t.incomplete);
  if (summary.metricsProblems?.length) {
    blocks.push({ kind: 'heading', level: 3, text: 'Metrics lines that could not be used' });
    blocks.push({
      kind: 'paragraph',
      text: incomplete.length
        ? `The metrics of ${incomplete.length} completed trial${incomplete.length === 1 ? '' : 's'} (${incomplete.map((t) => t.id).join(', ')}) are incomplete: their final values and every statistic above were computed from the lines that could be read (reported because allowIncomplete / --allow-incomplete was given).`
        : 'Only trials that did not complete are affected; they are not in the statistics.',
    });
    blocks.push({ kind: 'list', ordered: false, items: summary.metricsProblems.map(formatMetricsProblem) });
  }

  const failed = summary.trials.filter((t) => t.status === 'failed');
  if (failed.length) {
    blocks.push({ kind: 'heading', level: 3, text: 'Failed trials' });
    blocks.push({ kind: 'table', table: { columns: ['trial', 'variant', 'seed', 'error'], rows: failed.map((t) => [t.id, t.variantLabel || '–', t.seed, t.error?.message ?? 'unknown error']) } });
  }

  // 6. Conclusions
  blocks.push({ kind: 'heading', level: 2, text: '6. Conclusions' });
  const sentences: string[] = [];
  if (primary) {
    const ranked = summary.variants.filter((v) => v.metrics[primary.name]).sort((a, b) => (primary.goal === 'max' ? b.metrics[primary.name].mean - a.metrics[primary.name].mean : a.metrics[primary.name].mean - b.metrics[primary.name].mean));
    if (ranked.length > 1) sentences.push(`${primary.goal === 'max' ? 'Highest' : 'Lowest'} mean final ${primary.name}: ${ranked[0].label}, ${describeMeanCI(ranked[0].metrics[primary.name])}; ${primary.goal === 'max' ? 'lowest' : 'highest'}: ${ranked[ranked.length - 1].label}, ${describeMeanCI(ranked[ranked.length - 1].metrics[primary.name])}.`);
    else if (ranked.length === 1) sentences.push(`Final ${primary.name}: ${describeMeanCI(ranked[0].metrics[primary.name])}.`);
  }
  for (const c of summary.comparisons) sentences.push(describeComparison(c.result, { a: c.aLabel, b: c.bLabel, metric: c.metric }));
  if (summary.counts.failed) sentences.push(`${summary.counts.failed} of ${summary.counts.total} trials failed; their variants' statistics use the completed trials only.`);
  if (incomplete.length) sentences.push(`${incomplete.length} completed trial${incomplete.length === 1 ? ' has' : 's have'} incomplete metrics (${incomplete.map((t) => t.id).join(', ')}): the numbers above use the lines that could be read; see "Metrics lines that could not be used".`);
  if (summary.counts.pending) sentences.push(`${summary.counts.pending} of ${summary.counts.total} trials have not run yet: resume the run to complete it.`);
  if (sentences.length === 0) sentences.push('No metrics were logged, so nothing can be concluded from numbers.');
  blocks.push({ kind: 'list', ordered: false, items: sentences });
  for (const section of custom.filter((s) => s.placement === 'conclusions')) await renderSection(section);

  const markdownPath = join(runDir, 'report.md');
  const htmlPath = join(runDir, 'report.html');
  writeFileAtomic(markdownPath, toMarkdown(blocks));
  writeFileAtomic(htmlPath, toHtml(blocks, `Experiment report: ${config.id}`));
  return { markdownPath, htmlPath, figures: written, figureErrors };
}
