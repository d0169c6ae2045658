/**
 * `progress({ total, keys })`: a live progress line on a terminal; elsewhere
 * (CI logs, pipes) a few plain lines and a summary at the end.
 *
 * @module
 */
import process from "node:process";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireInteger, requireNumber, requireOptions } from "../internal/validate.ts";
import type { Stage } from "../stream/stage.ts";
import { type StepEnd, stepStage } from "../stream/step_stage.ts";

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
  /**
   * Off a terminal, a plain line at most every this many seconds (besides
   * the first event's line and the summary at the end; default 30).
   */
  interval?: number;
  /**
   * Off a terminal, a plain line every this many events instead of by time
   * (0: none; the summary at the end is still written).
   */
  every?: number;
  /** Output (default: standard output). */
  output?: ProgressOutput;
  /**
   * What an event is (default `"epoch"`): `"step"` behind `stepStream`
   * counts steps (`step 45/100 (epoch 7)`, steps/s), with the epoch each
   * event's step belongs to.
   */
  unit?: "epoch" | "step";
}

const OPTION_KEYS = keysOf<ProgressOptions>({
  total: true,
  keys: true,
  interval: true,
  every: true,
  output: true,
  unit: true,
});

/** Seconds between plain lines by default: a long run's CI log gets a line or two a minute, not one per epoch. */
const DEFAULT_INTERVAL = 30;

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
 * newline when the stream ends. Elsewhere (CI logs, pipes), never a control
 * code: a line for the first event, then at most one every `interval`
 * seconds (or one every `every` events), and a summary when the stream ends
 * (`done: 7/10 epochs in 00:12, 0.58 epochs/s  train_loss=0.1234`), so even
 * a short run leaves its result in the log. Events pass on unchanged. Behind
 * `stepStream`, `unit: "step"` counts steps and shows each one's epoch.
 *
 * @example Plain lines into a buffer
 * ```ts
 * import { collect, progress } from "@fitstream/fitstream";
 *
 * const lines: string[] = [];
 * const output = { write: (t: string) => void lines.push(t), isTTY: false };
 * const events = ReadableStream.from([1, 2, 3, 4].map((step) => ({ step, train_loss: 1 / step })));
 * await collect(events.pipeThrough(progress({ total: 4, every: 2, output })));
 * console.log(lines.length); // 3
 * console.log(lines[2].startsWith("done: 4/4 epochs in ")); // true
 * ```
 */
export function progress<E extends object>(options: ProgressOptions = {}): Stage<E, E> {
  return progressStage(options, () => performance.now() / 1000);
}

/** {@link progress} on the clock `now` (seconds): tests drive it without waiting. Internal. */
export function progressStage<E extends object>(options: ProgressOptions, now: () => number): Stage<E, E> {
  requireOptions("progress", options);
  checkKeys("progress", options, OPTION_KEYS);
  const { total, keys, every, interval, output = process.stdout as unknown as ProgressOutput, unit = "epoch" } =
    options;
  if (unit !== "epoch" && unit !== "step") {
    throw new RangeError(`progress: unit must be "epoch" or "step", got ${describe(unit)}`);
  }
  if (total !== undefined) requireInteger("progress", "total", total, 1);
  if (every !== undefined) requireInteger("progress", "every", every, 0);
  if (interval !== undefined) {
    requireNumber("progress", "interval", interval, true);
    if (every !== undefined) throw new TypeError("progress: pass every or interval, not both");
  }
  if (keys !== undefined && (!Array.isArray(keys) || keys.some((k) => typeof k !== "string"))) {
    throw new TypeError(`progress: keys must be an array of key names, got ${describe(keys)}`);
  }
  if (typeof output?.write !== "function") throw new TypeError(`progress: output must have a write method`);
  const tty = output.isTTY === true;
  const seconds = interval ?? DEFAULT_INTERVAL;
  const started = now();
  let lastLine = -Infinity;
  let drawn = false;
  let last: Record<string, unknown> = {};
  let count = 0;

  const values = (event: Record<string, unknown>): string[] => {
    const shown = keys ?? ["train_loss", "val_loss"].filter((k) => typeof event[k] === "number");
    return shown.map((k) => {
      const v = event[k];
      return `${k}=${typeof v === "number" ? v.toFixed(4) : v === undefined ? "NA" : String(v)}`;
    });
  };
  const line = (event: Record<string, unknown>, n: number, elapsed: number): string => {
    const rate = n / Math.max(elapsed, 1e-9);
    const epoch = unit === "step" && typeof event.epoch === "number" ? ` (epoch ${event.epoch})` : "";
    let head: string;
    if (total) {
      const filled = Math.round((Math.min(n, total) / total) * 20);
      const bar = tty ? ` [${"#".repeat(filled)}${"-".repeat(20 - filled)}]` : "";
      head = `${unit} ${n}/${total}${epoch}${bar} ${clock(elapsed)} elapsed, ETA ${clock((total - n) / rate)}`;
    } else {
      head = `${unit} ${n}${epoch} ${clock(elapsed)} elapsed`;
    }
    return [head, `${rate.toFixed(2)} ${unit}s/s`, ...values(event)].join("  ");
  };
  /** Off a terminal, whether event `n` gets a line: the first, then by count or by time. */
  const due = (n: number, at: number): boolean => {
    if (every !== undefined) return every > 0 && n % every === 0;
    return n === 1 || at - lastLine >= seconds;
  };
  const summary = (end: StepEnd, elapsed: number): string => {
    const counted = total ? `${count}/${total}` : `${count}`;
    const head = end.how === "error" ? `stopped by an error after ${counted} ${unit}s` : `done: ${counted} ${unit}s`;
    const rate = count / Math.max(elapsed, 1e-9);
    return [`${head} in ${clock(elapsed)}, ${rate.toFixed(2)} ${unit}s/s`, ...values(last)].join("  ");
  };

  return stepStage<E, E>((event, n) => {
    const record = event as Record<string, unknown>;
    last = record;
    count = n;
    const at = now();
    if (tty) {
      output.write(`\r\x1b[2K${line(record, n, at - started)}`);
      drawn = true;
    } else if (due(n, at)) {
      output.write(`${line(record, n, at - started)}\n`);
      lastLine = at;
    }
    return event;
  }, {
    onEnd(end) {
      if (tty) {
        if (drawn) output.write("\n"); // the live line already shows the final state
      } else {
        output.write(`${summary(end, now() - started)}\n`);
      }
    },
  });
}
