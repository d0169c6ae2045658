/**
 * `toSvg(events, { keys })` and `plotSvg(dest, { keys })`: loss curves as a
 * static SVG, readable without a browser (reports, READMEs).
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireOptions } from "../internal/validate.ts";
import { makeWritableFolder, openFileWritable } from "./file.ts";

/** Options of {@link toSvg} and {@link plotSvg}. */
export interface SvgOptions {
  /** Keys to plot (default: `train_loss` and `val_loss`, those present). */
  keys?: readonly string[];
  /** Picture size in pixels (default 640 × 360). */
  width?: number;
  /** Picture height in pixels. */
  height?: number;
  /** Title (default: the keys). */
  title?: string;
  /** Logarithmic y axis (default `false`; non-positive values are skipped). */
  logY?: boolean;
}

const OPTION_KEYS = keysOf<SvgOptions>({ keys: true, width: true, height: true, title: true, logY: true });

const COLORS = ["#1a73e8", "#e8710a", "#188038", "#d93025", "#9334e6", "#12b5cb"];

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * About `count` round values from `min` to `max`. Overflow-safe for any finite
 * range (the span is taken from halves, as ±1.8e308 - ∓1.8e308 is Infinity),
 * and bounded: a step below the values' resolution (1e17 and the next double)
 * used to add nothing to `t` and loop forever.
 */
function niceTicks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const raw = ((max / 2 - min / 2) / count) * 2;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  if (step === undefined || !(step > 0) || !Number.isFinite(step)) return [min, max];
  const ticks: number[] = [];
  const first = Math.ceil(min / step) * step;
  for (let i = 0; i <= 2 * count + 2; i++) {
    const t = Number((first + i * step).toPrecision(12));
    if (!Number.isFinite(t) || t > max + step * 1e-9) break;
    if (t !== ticks[ticks.length - 1]) ticks.push(t);
  }
  return ticks.length > 0 ? ticks : [min, max];
}

function formatTick(v: number): string {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

/** The smallest and largest of `values`, or the fallbacks when there are none. */
function extent(values: readonly number[], emptyMin: number, emptyMax: number): [number, number] {
  if (values.length === 0) return [emptyMin, emptyMax];
  let min = Infinity, max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/**
 * Maps `[lo, hi]` onto `[0, 1]` (a single value onto 0.5). Differences are
 * taken between halves, so values near ±1.8e308 give finite coordinates
 * instead of Infinity / Infinity = NaN.
 */
function unitScale(lo: number, hi: number): (v: number) => number {
  const span = hi / 2 - lo / 2;
  return span > 0 ? (v) => (v / 2 - lo / 2) / span : () => 0.5;
}

/** `[min, max]` widened around a single value, enough to show at any magnitude, within the finite numbers. */
function widen(min: number, max: number): [number, number] {
  if (max > min) return [min, max];
  // ±0.5 as before, unless it vanishes in the rounding (1e16 and larger): then a tenth of the value.
  const pad = min - 0.5 < min && max + 0.5 > max ? 0.5 : Math.abs(min) / 10;
  return [Math.max(min - pad, -Number.MAX_VALUE), Math.min(max + pad, Number.MAX_VALUE)];
}

/**
 * Draws `events` (rows with a `step` and numeric keys) as an SVG line chart:
 * one path per key, labelled axes and a legend. Missing, NaN or infinite
 * values leave a gap in their line. Keys and the title are escaped.
 *
 * @example Two curves
 * ```ts
 * import { toSvg } from "@fitstream/fitstream";
 *
 * const svg = toSvg([{ step: 1, train_loss: 1, val_loss: 1.2 }, { step: 2, train_loss: 0.5, val_loss: 0.7 }]);
 * console.log(svg.startsWith("<svg")); // true
 * console.log(svg.match(/<path /g)?.length); // 2
 * ```
 */
export function toSvg(events: readonly object[], options: SvgOptions = {}): string {
  if (!Array.isArray(events)) throw new TypeError(`toSvg: events must be an array of events, got ${describe(events)}`);
  requireOptions("toSvg", options);
  checkKeys("toSvg", options, OPTION_KEYS);
  const { width = 640, height = 360, logY = false } = options;
  const rows = events as Record<string, unknown>[];
  const keys = options.keys ?? ["train_loss", "val_loss"].filter((k) => rows.some((r) => typeof r[k] === "number"));
  const title = options.title ?? keys.join(" · ");
  const margin = { left: 64, right: 16, top: 36, bottom: 48 };
  const plotW = width - margin.left - margin.right, plotH = height - margin.top - margin.bottom;
  const xs = rows.map((r, i) => (typeof r.step === "number" ? r.step : i + 1));
  const usable = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && (!logY || v > 0);
  const tr = (v: number) => (logY ? Math.log10(v) : v);
  // A point needs a finite step too: a NaN or infinite step (a replayed log can hold one) is a gap.
  const drawn = (k: string) => rows.flatMap((r, i) => (Number.isFinite(xs[i]) && usable(r[k]) ? [tr(r[k])] : []));
  const values = keys.flatMap(drawn);
  // A loop, not Math.min(...xs): spreading 70,000 values overflows Deno's call stack.
  const [xMin, xMax] = extent(xs.filter(Number.isFinite), 0, 0);
  const [yMin, yMax] = widen(...extent(values, 0, 1));
  const unitX = unitScale(xMin, xMax), unitY = unitScale(yMin, yMax);
  const px = (x: number) => margin.left + unitX(x) * plotW;
  const py = (y: number) => margin.top + plotH - unitY(y) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  for (const t of niceTicks(yMin, yMax, 5)) {
    const y = py(t).toFixed(1);
    out.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(
      `<text x="${margin.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${
        escapeXml(formatTick(logY ? 10 ** t : t))
      }</text>`,
    );
  }
  for (const t of niceTicks(xMin, xMax, 6)) {
    out.push(
      `<text x="${px(t).toFixed(1)}" y="${height - margin.bottom + 16}" text-anchor="middle">${
        escapeXml(formatTick(t))
      }</text>`,
    );
  }
  out.push(
    `<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#333"/>`,
    `<line x1="${margin.left}" x2="${width - margin.right}" y1="${margin.top + plotH}" y2="${
      margin.top + plotH
    }" stroke="#333"/>`,
    `<text class="axis-label" x="${margin.left + plotW / 2}" y="${height - 8}" text-anchor="middle">step</text>`,
    `<text class="axis-label" transform="translate(14 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${
      logY ? "value (log)" : "value"
    }</text>`,
  );
  keys.forEach((key, k) => {
    let d = "";
    let pen = "M";
    rows.forEach((r, i) => {
      const v = r[key];
      if (!usable(v) || !Number.isFinite(xs[i])) {
        pen = "M"; // a gap
        return;
      }
      d += `${pen}${px(xs[i]).toFixed(1)} ${py(tr(v)).toFixed(1)} `;
      pen = "L";
    });
    const color = COLORS[k % COLORS.length];
    out.push(`<path data-key="${escapeXml(key)}" d="${d.trim()}" fill="none" stroke="${color}" stroke-width="2"/>`);
    const ly = margin.top + 6 + 16 * k;
    out.push(
      `<line x1="${width - margin.right - 120}" x2="${
        width - margin.right - 100
      }" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${width - margin.right - 94}" y="${ly}" dominant-baseline="middle">${escapeXml(key)}</text>`,
    );
  });
  out.push("</svg>\n");
  return out.join("\n");
}

/**
 * A `WritableStream` of events that writes their SVG chart (see
 * {@link toSvg}) to a file path (its missing folders created when the sink
 * is built) or byte stream when the stream closes. It keeps only the numeric
 * values of `step` and the plotted keys.
 *
 * @example Chart a finished run
 * ```ts ignore
 * await fromJsonl("runs/california_housing.jsonl").pipeTo(plotSvg("runs/california_housing.svg"));
 * ```
 */
export function plotSvg(
  dest: string | URL | WritableStream<Uint8Array>,
  options: SvgOptions = {},
): WritableStream<object> {
  requireOptions("plotSvg", options);
  checkKeys("plotSvg", options, OPTION_KEYS);
  if (typeof dest === "string" || dest instanceof URL) {
    try {
      makeWritableFolder(dest);
    } catch (error) {
      throw new Error(`plotSvg: ${(error as Error).message}`, { cause: error });
    }
  } else if (!(dest instanceof WritableStream)) {
    throw new TypeError(`plotSvg: dest must be a file path or a WritableStream, got ${describe(dest)}`);
  }
  const rows: Record<string, number>[] = [];
  return new WritableStream<object>({
    write(event) {
      const row: Record<string, number> = {};
      for (const [k, v] of Object.entries(event)) if (typeof v === "number") row[k] = v;
      rows.push(row);
    },
    async close() {
      try {
        const target = dest instanceof WritableStream ? dest : await openFileWritable(dest);
        const writer = target.getWriter();
        await writer.write(new TextEncoder().encode(toSvg(rows, options)));
        await writer.close();
      } catch (error) {
        throw new Error(`plotSvg: ${(error as Error).message}`, { cause: error });
      }
    },
  });
}
