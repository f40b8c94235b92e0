import { escapeHtml } from '@lab/experiment-runner';

/** One experiment's line on the index page. */
export interface IndexEntry {
  name: string;
  description: string;
  /** Run folder relative to the index page. */
  runDir: string;
  status: string;
  trials: { completed: number; total: number; failed: number };
  /** Wall time of the run in seconds. */
  seconds: number;
  /** The first conclusion of the report (one sentence), if any. */
  headline?: string;
}

export interface IndexMeta {
  title: string;
  scale: string;
  data: string;
  backend: string;
  createdAt: string;
  totalSeconds: number;
}

export function duration(seconds: number): string {
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole} s`;
  return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, '0')} s`;
}

/** Relative links use forward slashes whatever the platform. */
function link(dir: string, file: string): string {
  return `${dir.split(/[\\/]/).map(encodeURIComponent).join('/')}/${file}`;
}

/** The index page of a demo run, as Markdown and as a self-contained HTML page. */
export function renderIndex(entries: readonly IndexEntry[], meta: IndexMeta): { markdown: string; html: string } {
  const header = [
    `Scale: ${meta.scale}`,
    `Data: ${meta.data}`,
    `Backend: ${meta.backend}`,
    `Started: ${meta.createdAt}`,
    `Total wall time: ${duration(meta.totalSeconds)}`,
  ];
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const markdown = [
    `# ${meta.title}`,
    '',
    ...header.map((h) => `* ${h}`),
    '',
    '| experiment | report | status | trials | wall time | headline |',
    '|---|---|---|---|---|---|',
    ...entries.map(
      (e) =>
        `| ${cell(e.name)} | [HTML](${link(e.runDir, 'report.html')}) · [Markdown](${link(e.runDir, 'report.md')}) | ${cell(e.status)} | ${e.trials.completed}/${e.trials.total}${e.trials.failed ? ` (${e.trials.failed} failed)` : ''} | ${duration(e.seconds)} | ${cell(e.headline ?? '–')} |`,
    ),
    '',
    ...entries.map((e) => `- **${cell(e.name)}**: ${cell(e.description)}`),
    '',
  ].join('\n');
  const rows = entries
    .map(
      (e) =>
        `<tr><td>${escapeHtml(e.name)}</td><td><a href="${escapeHtml(link(e.runDir, 'report.html'))}">HTML</a> · <a href="${escapeHtml(link(e.runDir, 'report.md'))}">Markdown</a></td><td>${escapeHtml(e.status)}</td><td>${e.trials.completed}/${e.trials.total}${e.trials.failed ? ` (${e.trials.failed} failed)` : ''}</td><td>${escapeHtml(duration(e.seconds))}</td><td>${escapeHtml(e.headline ?? '–')}</td></tr>`,
    )
    .join('\n');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(meta.title)}</title>
<style>
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }
h1 { border-bottom: 2px solid #444; padding-bottom: .3rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
dt { font-weight: 600; }
</style>
</head>
<body>
<h1>${escapeHtml(meta.title)}</h1>
<ul>${header.map((h) => `<li>${escapeHtml(h)}</li>`).join('')}</ul>
<table>
<thead><tr><th>experiment</th><th>report</th><th>status</th><th>trials</th><th>wall time</th><th>headline</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<dl>${entries.map((e) => `<dt>${escapeHtml(e.name)}</dt><dd>${escapeHtml(e.description)}</dd>`).join('')}</dl>
</body>
</html>
`;
  return { markdown, html };
}

/** The first bullet under "What the numbers say" in a report.md, without Markdown emphasis. */
export function headlineOf(reportMarkdown: string): string | undefined {
  const start = reportMarkdown.indexOf('### What the numbers say');
  if (start < 0) return undefined;
  const line = reportMarkdown
    .slice(start)
    .split('\n')
    .find((l) => l.startsWith('- '));
  return line ? line.slice(2).replace(/&lt;/g, '<').replace(/&gt;/g, '>').trim() : undefined;
}
