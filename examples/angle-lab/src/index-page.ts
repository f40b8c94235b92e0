import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { escapeHtml, escapeMarkdown, listRuns, readRunConfig, readRunState, readTrialStatus } from '@lab/experiment-runner';

/** One run folder's line on the index page. */
export interface IndexEntry {
  /** The run folder's name (`<YYYYMMDD_HHMMSS>_<experiment>`). */
  id: string;
  /** The experiment ('' when the run folder cannot be read). */
  name: string;
  description: string;
  /** Run folder relative to the index page. */
  runDir: string;
  /** completed | failed | interrupted | running | unknown | unreadable */
  status: string;
  trials: { completed: number; total: number; failed: number };
  /** Wall time of the run in seconds (all its sessions), when known. */
  seconds?: number;
  backend?: string;
  /** The first conclusion of the report (one sentence), if any. */
  headline?: string;
  /** Why the run folder (or one of its files) could not be read. */
  problem?: string;
  /** Whether report.html / report.md exist (default: assumed to). */
  report?: boolean;
}

/** The demo that wrote the index (the folder may hold runs of earlier demos too). */
export interface IndexMeta {
  title: string;
  scale: string;
  data: string;
  backend: string;
  createdAt: string;
  totalSeconds: number;
  /** Run folder ids started by this demo. */
  current?: readonly string[];
}

export function duration(seconds: number): string {
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole} s`;
  return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, '0')} s`;
}

/** Relative links use forward slashes whatever the platform, every segment percent-encoded (parentheses too: they end a Markdown link). */
function link(dir: string, file: string): string {
  const encode = (segment: string) => encodeURIComponent(segment).replace(/[()'!*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${dir.split(/[\\/]/).map(encode).join('/')}/${file}`;
}

function trialsText(e: IndexEntry): string {
  if (e.trials.total === 0 && e.status === 'unreadable') return '–';
  return `${e.trials.completed}/${e.trials.total}${e.trials.failed ? ` (${e.trials.failed} failed)` : ''}`;
}

function statusText(e: IndexEntry): string {
  return e.problem ? `${e.status}: ${e.problem}` : e.status;
}

const hasReport = (e: IndexEntry) => e.report !== false && e.status !== 'unreadable';

/** The index page of a runs folder, as Markdown and as a self-contained HTML page. Every user string is escaped. */
export function renderIndex(entries: readonly IndexEntry[], meta: IndexMeta): { markdown: string; html: string } {
  const current = new Set(meta.current ?? []);
  const header = [
    `Scale: ${meta.scale}`,
    `Data: ${meta.data}`,
    `Backend: ${meta.backend}`,
    `Started: ${meta.createdAt}`,
    `Total wall time: ${duration(meta.totalSeconds)}`,
    `Runs in this folder: ${entries.length}${meta.current ? ` (${entries.filter((e) => current.has(e.id)).length} from this demo, marked *)` : ''}`,
  ];
  const md = (s: string) => escapeMarkdown(s, true);
  const mark = (e: IndexEntry) => (current.has(e.id) ? ' *' : '');
  const described = new Map<string, string>();
  for (const e of entries) if (e.name) described.set(e.name, e.description);
  const markdown = [
    `# ${md(meta.title)}`,
    '',
    ...header.map((h) => `* ${md(h)}`),
    '',
    '| run | experiment | report | status | trials | wall time | backend | headline |',
    '|---|---|---|---|---|---|---|---|',
    ...entries.map(
      (e) =>
        `| ${md(e.id)}${mark(e)} | ${md(e.name || '–')} | ${hasReport(e) ? `[HTML](${link(e.runDir, 'report.html')}) · [Markdown](${link(e.runDir, 'report.md')})` : '–'} | ${md(statusText(e))} | ${trialsText(e)} | ${e.seconds === undefined ? '–' : duration(e.seconds)} | ${md(e.backend || '–')} | ${md(e.headline ?? '–')} |`,
    ),
    '',
    ...[...described].map(([name, description]) => `- **${md(name)}**: ${md(description)}`),
    '',
  ].join('\n');
  const rows = entries
    .map(
      (e) =>
        `<tr><td>${escapeHtml(e.id)}${mark(e)}</td><td>${escapeHtml(e.name || '–')}</td><td>${hasReport(e) ? `<a href="${escapeHtml(link(e.runDir, 'report.html'))}">HTML</a> · <a href="${escapeHtml(link(e.runDir, 'report.md'))}">Markdown</a>` : '–'}</td><td>${escapeHtml(statusText(e))}</td><td>${escapeHtml(trialsText(e))}</td><td>${escapeHtml(e.seconds === undefined ? '–' : duration(e.seconds))}</td><td>${escapeHtml(e.backend || '–')}</td><td>${escapeHtml(e.headline ?? '–')}</td></tr>`,
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
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 80rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }
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
<thead><tr><th>run</th><th>experiment</th><th>report</th><th>status</th><th>trials</th><th>wall time</th><th>backend</th><th>headline</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<dl>${[...described].map(([name, description]) => `<dt>${escapeHtml(name)}</dt><dd>${escapeHtml(description)}</dd>`).join('')}</dl>
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

/** Files only a run folder has: a folder with one of them is listed, readable or not. */
const RUN_MARKERS = ['config.json', 'run.json', 'summary.json', 'metrics.jsonl', 'trials'];

function message(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/** Seconds the run's sessions took (a session killed without finishing counts nothing). */
function wallSeconds(runDir: string): number | undefined {
  const sessions = readRunState(runDir)?.sessions ?? [];
  const finished = sessions.filter((s) => s.finishedAt);
  if (finished.length === 0) return undefined;
  return finished.reduce((sum, s) => sum + (Date.parse(s.finishedAt!) - Date.parse(s.startedAt)) / 1000, 0);
}

/**
 * Every run folder in `out`, oldest first: status, trials, wall time, backend and headline from its
 * config.json, run.json, trial statuses, summary.json and report.md. A folder that looks like a run
 * (it has one of config.json, run.json, summary.json, metrics.jsonl, trials/) but whose files cannot
 * be read is listed as unreadable, with the reason, never left out.
 */
export function readIndexEntries(out: string): IndexEntry[] {
  if (!existsSync(out)) return [];
  // Status (a "running" run whose process died is interrupted) and trial counts as `lab ls` gives them.
  const listed = new Map(listRuns(out).map((run) => [run.dir, run]));
  const entries: IndexEntry[] = [];
  for (const name of readdirSync(out).sort()) {
    const dir = join(out, name);
    const base: IndexEntry = { id: name, name: '', description: '', runDir: relative(out, dir), status: 'unreadable', trials: { completed: 0, total: 0, failed: 0 } };
    let files: string[];
    try {
      if (!statSync(dir).isDirectory()) continue;
      files = readdirSync(dir);
    } catch (error) {
      entries.push({ ...base, problem: message(error) });
      continue;
    }
    if (!RUN_MARKERS.some((m) => files.includes(m))) continue;
    const run = listed.get(dir) as ({ problem?: string; status: string } & ReturnType<typeof listRuns>[number]) | undefined;
    try {
      const config = readRunConfig(dir);
      const entry: IndexEntry = {
        ...base,
        name: String(config.experiment?.name ?? ''),
        description: String(config.experiment?.description ?? ''),
        backend: String(config.backend?.name ?? ''),
        status: run ? String(run.status) : 'unreadable',
        trials: { completed: run?.completed ?? 0, total: Array.isArray(config.trials) ? config.trials.length : 0, failed: run?.failed ?? 0 },
        report: existsSync(join(dir, 'report.html')),
      };
      if (!run) throw new Error(unreadableReason(dir, config.trials));
      if (run.problem) entry.problem = run.problem;
      const summaryPath = join(dir, 'summary.json');
      if (existsSync(summaryPath)) {
        try {
          JSON.parse(readFileSync(summaryPath, 'utf8'));
        } catch (error) {
          entry.status = 'unreadable';
          entry.problem = `${summaryPath} is not valid JSON (${message(error)})`;
        }
      }
      try {
        const seconds = wallSeconds(dir);
        if (seconds !== undefined) entry.seconds = seconds;
      } catch (error) {
        entry.status = 'unreadable';
        entry.problem ??= message(error);
      }
      const reportMd = join(dir, 'report.md');
      if (existsSync(reportMd)) {
        const headline = headlineOf(readFileSync(reportMd, 'utf8'));
        if (headline) entry.headline = headline;
      }
      entries.push(entry);
    } catch (error) {
      entries.push({ ...base, ...(run ? { trials: { completed: run.completed, total: run.trials, failed: run.failed } } : {}), problem: run?.problem ?? message(error) });
    }
  }
  return entries;
}

/** Why `lab ls` left a run with a readable config.json out: its run.json or a trial's status.json. */
function unreadableReason(dir: string, trials: unknown): string {
  try {
    readRunState(dir);
    if (Array.isArray(trials)) for (const trial of trials as { id: string }[]) readTrialStatus(dir, trial.id);
  } catch (error) {
    return message(error);
  }
  return `${dir}: its run files cannot be read`;
}
