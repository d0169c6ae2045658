/**
 * `terminateOnNaN()` and `untilAborted(signal)`: stop a run safely.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";

/**
 * Errors the stream with a `RangeError` naming the step and the key as soon
 * as an event holds NaN or ±Infinity in any numeric key (or only in `keys`).
 * Every earlier event has already gone downstream, so sinks keep them.
 *
 * @example Stop on a diverged loss
 * ```ts
 * import { collect, terminateOnNaN } from "@fitstream/fitstream";
 *
 * const source = ReadableStream.from([{ step: 1, loss: 1 }, { step: 2, loss: NaN }]);
 * const error = await collect(source.pipeThrough(terminateOnNaN())).catch((e) => e.message);
 * console.log(error); // "terminateOnNaN: step 2: loss is NaN"
 * ```
 */
export function terminateOnNaN<E extends object>(keys?: readonly string[]): Stage<E, E> {
  if (keys !== undefined && (!Array.isArray(keys) || keys.some((k) => typeof k !== "string"))) {
    throw new TypeError(`terminateOnNaN: keys must be an array of key names, got ${describe(keys)}`);
  }
  return stepStage<E, E>((event, index) => {
    const record = event as Record<string, unknown>;
    for (const key of keys ?? Object.keys(record)) {
      const value = record[key];
      if (typeof value === "number" && !Number.isFinite(value)) {
        const step = typeof record.step === "number" ? record.step : index;
        throw new RangeError(`terminateOnNaN: step ${step}: ${key} is ${value}`);
      }
    }
    return event;
  });
}

/**
 * Ends the stream, without pulling another event, once `signal` is aborted
 * (on SIGINT, say): an epoch already in flight finishes and its event is
 * delivered; then the stream ends, downstream sinks close normally, and
 * upstream is cancelled.
 *
 * @example Stop when a controller aborts
 * ```ts
 * import { collect, tap, untilAborted } from "@fitstream/fitstream";
 *
 * const controller = new AbortController();
 * let step = 0;
 * const source = new ReadableStream({ pull: (c) => c.enqueue({ step: ++step }) }, { highWaterMark: 0 });
 * const rows = await collect(source.pipeThrough(tap((e) => e.step === 3 && controller.abort())).pipeThrough(untilAborted(controller.signal)));
 * console.log(rows.length); // 3
 * ```
 */
export function untilAborted<E>(signal: AbortSignal): Stage<E, E> {
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(`untilAborted: signal must be an AbortSignal, got ${describe(signal)}`);
  }
  return stepStage<E, E>((event) => event, { stopWhen: () => signal.aborted });
}
