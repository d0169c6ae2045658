/** Shared helpers for the benchmarks: timing, medians, tables and the closing JSON line. */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { parseArgs } from "node:util";
import { type BackendName, useBackend } from "../mod.ts";
import { housingModel, loadHousing } from "../examples/housing_data.ts";

/** The runtime running this benchmark. */
export const runtime: string = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

/** Median of a list of numbers. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Prints rows as an aligned text table. */
export function table(rows: (string | number)[][]): void {
  const cells = rows.map((r) => r.map((c) => (typeof c === "number" ? formatNumber(c) : c)));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  for (const [k, r] of cells.entries()) {
    console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
    if (k === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
}

function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(3);
}

/**
 * Common flags: `--backend`, `--quick` (fewer rounds, for smoke tests), `--only=a,b` (the named arms alone;
 * `only` is undefined without it).
 */
export function benchArgs(): { backend?: BackendName; quick: boolean; only?: string[] } {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      backend: { type: "string" },
      quick: { type: "boolean", default: false },
      only: { type: "string" },
    },
    strict: true,
  });
  return {
    backend: values.backend as BackendName | undefined,
    quick: values.quick!,
    only: values.only?.split(","),
  };
}

/** Selects the backend and loads the housing data (standardised). */
export async function housingSetup(backend?: BackendName) {
  const name = await useBackend(backend);
  const data = await loadHousing();
  return { backend: name, data, model: () => housingModel(8, 0) };
}

/** Writes the closing machine-readable line. */
export function jsonLine(name: string, result: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench: name, runtime, backend: tf.getBackend(), ...result }));
}

/** Reads a stream one event at a time, timing each read (ms): an arm of the interleaved benchmarks. */
export function timedReads(stream: ReadableStream<unknown>): (reads: number) => Promise<number[]> {
  const reader = stream.getReader();
  return async (reads) => {
    const times: number[] = [];
    for (let i = 0; i < reads; i++) {
      const start = performance.now();
      await reader.read();
      times.push(performance.now() - start);
    }
    return times;
  };
}
