/**
 * Opens a local HTML page in headless Chromium (Debian's `chromium`, driven by `playwright-core`)
 * and reports what a reader would see: the drawn marks of every chart, every request the page made
 * besides itself (all blocked), console errors, the page's text, what it shows of parts named by
 * the caller (how many are drawn, cut off, their text and colours), and optionally a screenshot. Used
 * by tests of every report (leaderboard, ablation, attribution pages) and by the screenshot script.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DdaError } from '@dda/core';

/** Debian's Chromium; `DDA_CHROMIUM` overrides it. */
export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/** Flags of the headless run: no GPU, no sandbox (containers), no background traffic of Chromium's own. */
export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--no-first-run', '--disable-quic', '--disable-sync',
] as const;

/** Options of {@link checkPageInBrowser}. */
export interface BrowserCheckOptions {
  /** Chromium executable (default `$DDA_CHROMIUM`, else /usr/bin/chromium). */
  readonly executablePath?: string;
  /** Viewport width in CSS px (default 1200); the height is 900, a full-page screenshot grows with the page. */
  readonly width?: number;
  /** PNG screenshot(s) of the page or of elements of it, taken after the page has been inspected. */
  readonly screenshot?: Screenshot | readonly Screenshot[];
  /** Milliseconds allowed for launching, loading and inspecting (default 90,000). */
  readonly timeoutMs?: number;
  /** Parts of the page to inspect, by a name of the caller's choice: name → CSS selector (see {@link ElementsSeen}). */
  readonly elements?: Readonly<Record<string, string>>;
}

/** What the page shows of the elements matching one selector of {@link BrowserCheckOptions.elements}. */
export interface ElementsSeen {
  readonly count: number;
  /** Of them, drawn: a non-empty box, not `visibility: hidden`, opacity not 0. */
  readonly visible: number;
  /**
   * Of them, cut off: content wider or taller than the box that the element or an ancestor hides
   * (overflow hidden or clip, or text-overflow ellipsis) — e.g. an id shown as "err-held…".
   */
  readonly clipped: number;
  /** The `innerText` of each, in document order. */
  readonly texts: readonly string[];
  /** The distinct computed background colours of them (e.g. `rgb(255, 226, 122)`), in order of first appearance. */
  readonly backgrounds: readonly string[];
}

/**
 * A PNG to write: of the first element matching `selector` if given, else of the whole page
 * (`fullPage`, default true) or of the viewport.
 */
export interface Screenshot {
  readonly path: string;
  readonly selector?: string;
  readonly fullPage?: boolean;
  /** With `selector`: the element's top `maxHeight` CSS px only (a long element cropped for a README). */
  readonly maxHeight?: number;
}

/** Marks drawn by one chart (an element with `data-chart="<id>"`). */
export interface ChartMarks {
  readonly id: string;
  /**
   * Shapes of the chart's data marks with a non-empty bounding box: children of Vega's
   * `g.role-mark` groups (bars, lines, points, rules, areas, text marks), plus any element marked
   * `data-mark`. Axes, legends and titles are not counted.
   */
  readonly marks: number;
}

/** What {@link checkPageInBrowser} saw. */
export interface BrowserCheck {
  /** Every URL the page requested besides itself (all were blocked, never fetched); empty for a self-contained page. */
  readonly requests: readonly string[];
  /** Console messages of type `error` and uncaught page errors (e.g. a Content-Security-Policy violation). */
  readonly consoleErrors: readonly string[];
  /** Every `[data-chart]` element in document order. */
  readonly charts: readonly ChartMarks[];
  /** The page's visible text (`document.body.innerText`). */
  readonly text: string;
  /** What the page shows of each part named in {@link BrowserCheckOptions.elements}. */
  readonly elements: Readonly<Record<string, ElementsSeen>>;
}

/**
 * Opens `htmlPath` (a local file) in a fresh headless Chromium profile with every request other than
 * the page itself blocked and recorded, waits for the load event, and inspects the page.
 *
 * @throws DdaError naming `apt-get install chromium` when the executable is missing, or
 *   `npm install` when playwright-core is; and if the file does not exist.
 */
export async function checkPageInBrowser(htmlPath: string, options: BrowserCheckOptions = {}): Promise<BrowserCheck> {
  const executablePath = options.executablePath ?? process.env.DDA_CHROMIUM ?? DEFAULT_CHROMIUM;
  if (!existsSync(executablePath)) {
    throw new DdaError(`Chromium not found at ${executablePath}; the browser check of the HTML reports needs it`, 'install it: apt-get install chromium (or point DDA_CHROMIUM at a Chromium executable)');
  }
  const file = resolve(htmlPath);
  if (!existsSync(file)) throw new DdaError(`checkPageInBrowser: no file ${file}`, 'write the report first');
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new DdaError(`checkPageInBrowser needs the npm package playwright-core (${e instanceof Error ? e.message : String(e)})`, 'run npm install in the repository (it is a development dependency)');
  }
  const timeout = options.timeoutMs ?? 90_000;
  const pageUrl = pathToFileURL(file).href;
  const profile = mkdtempSync(join(tmpdir(), 'dda-chromium-'));
  const requests: string[] = [];
  const consoleErrors: string[] = [];
  const context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true, args: [...CHROMIUM_FLAGS], timeout,
    viewport: { width: options.width ?? 1200, height: 900 }, offline: false, serviceWorkers: 'block',
  });
  try {
    context.setDefaultTimeout(timeout);
    // Every network request is recorded and aborted: a report must draw without fetching anything.
    await context.route('**/*', async (route) => {
      const url = route.request().url();
      if (url === pageUrl) return route.continue();
      requests.push(url);
      return route.abort('blockedbyclient');
    });
    const page = context.pages()[0] ?? (await context.newPage());
    // Requests the router does not see (other file:// URLs) are recorded here.
    page.on('request', (r) => {
      const url = r.url();
      if (url !== pageUrl && !url.startsWith('data:') && !requests.includes(url)) requests.push(url);
    });
    page.on('websocket', (ws) => requests.push(ws.url()));
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(pageUrl, { waitUntil: 'load' });
    const seen = await page.evaluate((selectors: Record<string, string>) => {
      const shapes = 'path, rect, line, circle, ellipse, polygon, polyline, text, image';
      const drawn = (el: Element): boolean => {
        if (!(el instanceof SVGGraphicsElement)) return false;
        const b = el.getBBox();
        return b.width > 0 || b.height > 0;
      };
      const charts = [...document.querySelectorAll('[data-chart]')].map((chart) => {
        const inMarks = [...chart.querySelectorAll('g.role-mark')].flatMap((g) => [...g.children].filter((c) => c.matches(shapes)));
        const tagged = [...chart.querySelectorAll('[data-mark]')];
        return { id: chart.getAttribute('data-chart') ?? '', marks: [...new Set([...inMarks, ...tagged])].filter(drawn).length };
      });
      const cut = (el: Element): boolean => {
        for (let e: Element | null = el; e && e !== document.body; e = e.parentElement) {
          const st = getComputedStyle(e);
          const hides = (o: string): boolean => o === 'hidden' || o === 'clip';
          const wide = e.scrollWidth > e.clientWidth + 1 && (hides(st.overflowX) || st.textOverflow === 'ellipsis');
          const tall = e.scrollHeight > e.clientHeight + 1 && hides(st.overflowY);
          if (wide || tall) return true;
        }
        return false;
      };
      const elements = Object.fromEntries(Object.entries(selectors).map(([name, selector]) => {
        const all = [...document.querySelectorAll(selector)] as HTMLElement[];
        const shown = (el: HTMLElement): boolean => {
          const r = el.getBoundingClientRect();
          const st = getComputedStyle(el);
          return r.width > 0 && r.height > 0 && st.visibility !== 'hidden' && st.opacity !== '0';
        };
        const backgrounds = [...new Set(all.map((el) => getComputedStyle(el).backgroundColor))];
        return [name, { count: all.length, visible: all.filter(shown).length, clipped: all.filter(cut).length, texts: all.map((el) => el.innerText), backgrounds }];
      }));
      return { charts, text: document.body.innerText, elements };
    }, { ...options.elements });
    const shots: readonly Screenshot[] = options.screenshot === undefined ? [] : 'path' in options.screenshot ? [options.screenshot] : options.screenshot;
    for (const s of shots) {
      if (s.selector && s.maxHeight !== undefined) {
        await page.evaluate(() => window.scrollTo(0, 0));
        const box = await page.locator(s.selector).first().boundingBox();
        if (!box) throw new DdaError(`checkPageInBrowser: '${s.selector}' is not drawn`, 'screenshot a visible element');
        await page.screenshot({ path: s.path, fullPage: true, clip: { x: box.x, y: box.y, width: box.width, height: Math.min(box.height, s.maxHeight) } });
      } else if (s.selector) await page.locator(s.selector).first().screenshot({ path: s.path });
      else await page.screenshot({ path: s.path, fullPage: s.fullPage ?? true });
    }
    return { requests, consoleErrors, charts: seen.charts, text: seen.text, elements: seen.elements };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
