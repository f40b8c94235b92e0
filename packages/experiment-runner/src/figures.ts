import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Loader } from 'vega';
import type { TopLevelSpec } from 'vega-lite';
import type { VegaLiteSpec } from './trial-context';

export interface RenderedFigure {
  svg: string;
  png: Uint8Array;
  width: number;
  height: number;
}

/**
 * Renders a Vega-Lite spec to SVG with vega's headless renderer (no browser, no canvas: text widths
 * are estimated) and to PNG with resvg. Data URLs in the spec may only name files under `baseDir`
 * (nothing is fetched from the network, and a report cannot pull in other local files).
 */
export async function renderVegaLite(spec: VegaLiteSpec, options: { baseDir?: string; scale?: number } = {}): Promise<RenderedFigure> {
  // Loaded on first use: vega, vega-lite and resvg take seconds to import, and worker processes
  // (which import the experiment module, hence this package) never render anything.
  const [vega, { compile }, { Resvg }] = await Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]);
  let vegaSpec: import('vega').Spec;
  try {
    vegaSpec = compile(spec as unknown as TopLevelSpec).spec;
  } catch (error) {
    throw new Error(`figure: not a valid Vega-Lite spec (${(error as Error).message})`);
  }
  const loader = confinedLoader(vega.loader({ mode: 'file', ...(options.baseDir ? { baseURL: options.baseDir } : {}) }), options.baseDir);
  // vega only warns when a data file fails to load and then draws an empty chart; a report must say so.
  const loadFailures: string[] = [];
  const logger = vega.logger(vega.Warn);
  const warn = logger.warn.bind(logger);
  logger.warn = (...args: readonly unknown[]) => {
    if (args[0] === 'Loading failed') loadFailures.push(`${String(args[1])}: ${(args[2] as Error)?.message ?? String(args[2])}`);
    else warn(...args);
    return logger;
  };
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none', loader, logger });
  try {
    const svg = await view.toSVG();
    if (loadFailures.length) throw new Error(`figure: data could not be loaded (${loadFailures.join('; ')})`);
    const resvg = new Resvg(svg, {
      fitTo: { mode: 'zoom', value: options.scale ?? 2 },
      background: 'white',
      font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
    });
    const image = resvg.render();
    return { svg, png: new Uint8Array(image.asPng()), width: image.width, height: image.height };
  } finally {
    view.finalize();
  }
}

/** Wraps vega's file loader so that it only reads files inside `baseDir` (none at all without one). */
function confinedLoader(base: Loader, baseDir: string | undefined): Loader {
  const sanitize: Loader['sanitize'] = async (uri, options) => {
    const result = await base.sanitize(uri, options);
    const fromBase = baseDir === undefined ? undefined : relative(resolve(baseDir), resolve(result.href.replace(/^file:\/\//, '')));
    const inside = fromBase !== undefined && fromBase !== '..' && !fromBase.startsWith(`..${sep}`) && !isAbsolute(fromBase);
    if (!(result as { localFile?: boolean }).localFile || !inside) {
      throw new Error(`figure data ${JSON.stringify(uri)}: only files inside ${baseDir ?? '(no folder given)'} can be read`);
    }
    return result;
  };
  return { ...base, sanitize };
}
