/**
 * `take(n)`: the first `n` events, then the end.
 *
 * @module
 */
import { requireInteger } from "../internal/validate.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";
import { withStopReason } from "../stream/stop_reason.ts";

/**
 * Passes the first `n` events, then ends the stream and cancels upstream.
 * It never pulls event `n + 1`, so behind `epochStream` exactly `n` epochs
 * train. `take(0)` yields nothing.
 *
 * @example Cap an infinite stream
 * ```ts
 * import { collect, take } from "@fitstream/fitstream";
 *
 * let step = 0;
 * const endless = new ReadableStream({ pull: (c) => c.enqueue({ step: ++step }) }, { highWaterMark: 0 });
 * console.log(await collect(endless.pipeThrough(take(3)))); // [{ step: 1 }, { step: 2 }, { step: 3 }]
 * // nothing was produced past the cap:
 * console.log(step); // 3
 * ```
 */
export function take<E>(n: number): Stage<E, E> {
  requireInteger("take", "n", n, 0);
  return stepStage<E, E>((event, i) => (i === n ? withStopReason(event, "take") : event), { limit: n });
}
