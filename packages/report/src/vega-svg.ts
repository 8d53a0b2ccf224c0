/**
 * Vega-Lite charts rendered to SVG strings in Node, offline: the spec is compiled by `vega-lite`,
 * run by `vega` without a renderer (`renderer: 'none'`) and serialised with `view.toSVG()`. No
 * canvas package is needed for SVG (text widths are estimated), data must be inline (`values`), and
 * the loader refuses every URL, so rendering never touches the network; text uses the reader's
 * system fonts (`font-family` names only, nothing is fetched).
 */
import { DdaError } from '@dda/core';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** A Vega-Lite specification (https://vega.github.io/vega-lite/docs/spec.html) with inline data. */
export type ChartSpec = TopLevelSpec;

/** Defaults applied under every chart's own `config`: system fonts, a light frame, readable sizes. */
export const CHART_CONFIG = {
  font: 'system-ui, sans-serif',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  title: { fontSize: 14, anchor: 'start' as const, offset: 10 },
} as const;

/** What {@link renderVegaLiteSvg} returns: the SVG markup and Vega's warnings (empty when clean). */
export interface RenderedChart {
  readonly svg: string;
  readonly warnings: readonly string[];
}

/**
 * Renders a Vega-Lite spec to a standalone SVG string.
 *
 * @param spec - The chart; its data must be inline (`data: { values: [...] }`), never a URL.
 * @param idPrefix - Prefix of every `id` inside the SVG (clip paths, gradients), so that several
 *   charts can be inlined in one HTML page without their ids colliding (Vega numbers them from 1 in
 *   every render). Letters, digits, `-` and `_` only.
 * @returns The SVG markup (`<svg ...>...</svg>`, with `width`/`height` in px) and Vega's warnings.
 * @throws DdaError if the spec does not compile, the chart tries to load a URL, or `idPrefix` has
 *   other characters.
 */
export async function renderVegaLiteSvg(spec: ChartSpec, idPrefix = 'chart'): Promise<RenderedChart> {
  if (!/^[A-Za-z][\w-]*$/.test(idPrefix)) throw new DdaError(`renderVegaLiteSvg: idPrefix '${idPrefix}' must start with a letter and hold only letters, digits, '-' and '_'`);
  const warnings: string[] = [];
  const collect = (...args: unknown[]): void => { warnings.push(args.map(String).join(' ')); };
  let vgSpec: vega.Spec;
  try {
    const withConfig = { ...spec, config: { ...CHART_CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec;
    vgSpec = compile(withConfig, { logger: { level: () => 0, error: collect, warn: collect, info: () => {}, debug: () => {} } as unknown as vega.LoggerInterface }).spec;
  } catch (e) {
    throw new DdaError(`renderVegaLiteSvg: the Vega-Lite spec does not compile: ${e instanceof Error ? e.message : String(e)}`, 'check the spec against https://vega.github.io/vega-lite/docs/');
  }
  const loader = vega.loader();
  const refused: string[] = [];
  const refuse = async (uri: string): Promise<never> => {
    refused.push(uri);
    throw new Error(`offline: refused to load ${uri}`);
  };
  loader.load = refuse;
  loader.sanitize = refuse;
  const logger = vega.logger(vega.Warn);
  logger.warn = (...args: unknown[]) => { collect(...args); return logger; };
  logger.error = (...args: unknown[]) => { collect(...args); return logger; };
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none', loader, logger });
  try {
    const svg = await view.toSVG();
    // Vega logs a failed load and draws on without the data; a chart that wanted a URL is an error here.
    if (refused.length > 0) throw new DdaError(`renderVegaLiteSvg: the chart asks to load '${refused[0]}'; charts are rendered offline`, 'put the data inline: data: { values: [...] }');
    return { svg: prefixIds(svg, idPrefix), warnings };
  } finally {
    view.finalize();
  }
}

/** Prefixes every `id="x"` and its references (`url(#x)`, `href="#x"`) in an SVG string with `prefix-`. */
export function prefixIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${prefix}-${id})`)
    .replace(/href="#([^"]+)"/g, (_, id: string) => `href="#${prefix}-${id}"`);
}
