/**
 * `progress({ total, keys })`: a live progress line on a terminal, plain lines elsewhere.
 *
 * @module
 */
import process from "node:process";
import { describe } from "../internal/describe.ts";
import { requireInteger, requireOptions } from "../internal/validate.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";

/** Where progress goes: anything with `write(text)`; `isTTY` selects the live line. */
export interface ProgressOutput {
  /** Writes text as is. */
  write(text: string): unknown;
  /** A terminal: redraw one line in place. */
  isTTY?: boolean;
}

/** Options of {@link progress}. */
export interface ProgressOptions {
  /** Expected number of epochs, for the bar and the ETA (default: unknown). */
  total?: number;
  /** Keys whose latest values are shown (default: `train_loss`, `val_loss` when present). */
  keys?: readonly string[];
  /** On a non-terminal, print a plain line every this many events (default 10; 0 prints nothing). */
  every?: number;
  /** Output (default: standard output). */
  output?: ProgressOutput;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/**
 * Shows how the run is going. On a terminal: one line redrawn in place —
 * epoch `n/total` with a bar (or `n` when the total is unknown), elapsed time,
 * ETA, epochs per second and the latest values of `keys` — finished with a
 * newline when the stream ends. Elsewhere (CI logs, pipes): a plain line every
 * `every` events and never a control code. Events pass on unchanged.
 *
 * @example Plain lines into a buffer
 * ```ts
 * import { collect, progress } from "@fitstream/fitstream";
 *
 * const lines: string[] = [];
 * const output = { write: (t: string) => void lines.push(t), isTTY: false };
 * await collect(ReadableStream.from([1, 2, 3, 4].map((step) => ({ step, train_loss: 1 / step }))).pipeThrough(progress({ total: 4, every: 2, output })));
 * console.log(lines.length); // 2
 * ```
 */
export function progress<E extends object>(options: ProgressOptions = {}): Stage<E, E> {
  requireOptions("progress", options);
  const { total, keys, every = 10, output = process.stdout as unknown as ProgressOutput } = options;
  if (total !== undefined) requireInteger("progress", "total", total, 1);
  requireInteger("progress", "every", every, 0);
  if (keys !== undefined && (!Array.isArray(keys) || keys.some((k) => typeof k !== "string"))) {
    throw new TypeError(`progress: keys must be an array of key names, got ${describe(keys)}`);
  }
  if (typeof output?.write !== "function") throw new TypeError(`progress: output must have a write method`);
  const tty = output.isTTY === true;
  const started = performance.now();
  let drawn = false;

  const line = (event: Record<string, unknown>, n: number): string => {
    const elapsed = (performance.now() - started) / 1000;
    const rate = n / Math.max(elapsed, 1e-9);
    const shown = keys ?? ["train_loss", "val_loss"].filter((k) => typeof event[k] === "number");
    const values = shown.map((k) => {
      const v = event[k];
      return `${k}=${typeof v === "number" ? v.toFixed(4) : v === undefined ? "NA" : String(v)}`;
    });
    let head: string;
    if (total) {
      const filled = Math.round((Math.min(n, total) / total) * 20);
      const bar = tty ? ` [${"#".repeat(filled)}${"-".repeat(20 - filled)}]` : "";
      head = `epoch ${n}/${total}${bar} ${clock(elapsed)} elapsed, ETA ${clock((total - n) / rate)}`;
    } else {
      head = `epoch ${n} ${clock(elapsed)} elapsed`;
    }
    return [head, `${rate.toFixed(2)} epochs/s`, ...values].join("  ");
  };

  return stepStage<E, E>((event, n) => {
    const record = event as Record<string, unknown>;
    if (tty) {
      output.write(`\r\x1b[2K${line(record, n)}`);
      drawn = true;
    } else if (every > 0 && n % every === 0) {
      output.write(`${line(record, n)}\n`);
    }
    return event;
  }, {
    onEnd() {
      if (drawn) output.write("\n");
    },
  });
}
