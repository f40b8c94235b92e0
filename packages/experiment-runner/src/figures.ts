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
 * are estimated) and to PNG with resvg. Data URLs in the spec may only name files under `baseDir`.
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
  const loader = vega.loader({ mode: 'file', ...(options.baseDir ? { baseURL: options.baseDir } : {}) });
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none', loader });
  try {
    const svg = await view.toSVG();
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
