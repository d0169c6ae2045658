/**
 * The chart library's files, read from the installed `uplot` package (never
 * from a CDN: machines may be offline).
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

let cached: Promise<{ js: string; css: string }> | undefined;

/** uPlot's browser build and stylesheet. Internal. */
export function uplotAssets(): Promise<{ js: string; css: string }> {
  cached ??= (async () => {
    await import("uplot"); // makes sure the package is installed where the runtime resolves it
    const entry = fileURLToPath(import.meta.resolve("uplot"));
    const dir = entry.slice(0, entry.lastIndexOf("/") + 1);
    const [js, css] = await Promise.all([
      readFile(`${dir}uPlot.iife.min.js`, "utf8"),
      readFile(`${dir}uPlot.min.css`, "utf8"),
    ]);
    return { js, css };
  })();
  return cached;
}
