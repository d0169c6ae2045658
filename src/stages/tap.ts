/**
 * `tap(fn, { every, start })` and `tick(fn)`: side effects that leave events unchanged.
 *
 * @module
 */
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireFunction, requireInteger, requireOptions } from "../internal/validate.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";

/** Options of {@link tap}. */
export interface TapOptions {
  /** Call `fn` on every `every`-th selected event (default 1). */
  every?: number;
  /** 1-based index of the first event passed to `fn` (default 1). */
  start?: number;
}

const OPTION_KEYS = keysOf<TapOptions>({ every: true, start: true });

/**
 * Calls `fn(event)` on the events whose 1-based index `i` satisfies
 * `i >= start && (i - start) % every === 0`, and passes every event on
 * unchanged. `fn` may be async; the stage waits for it before moving on.
 *
 * @example Print every second event
 * ```ts
 * import { collect, tap } from "@fitstream/fitstream";
 *
 * const source = ReadableStream.from([{ step: 1 }, { step: 2 }, { step: 3 }, { step: 4 }]);
 * await collect(source.pipeThrough(tap((e) => console.log("at", e.step), { every: 2 })));
 * // prints "at 1" and "at 3"
 * ```
 */
export function tap<E>(fn: (event: NoInfer<E>) => unknown, options?: TapOptions): Stage<E, E>;
/** Calls `fn(event)` on selected events; this form takes the event type from `fn`'s parameter. */
export function tap<E>(fn: (event: E) => unknown, options?: TapOptions): Stage<E, E>;
export function tap<E>(fn: (event: E) => unknown, options: TapOptions = {}): Stage<E, E> {
  requireFunction("tap", "fn", fn);
  requireOptions("tap", options);
  checkKeys("tap", options, OPTION_KEYS);
  const { every = 1, start = 1 } = options;
  requireInteger("tap", "every", every, 1);
  requireInteger("tap", "start", start, 1);
  return stepStage<E, E>(async (event, i) => {
    if (i >= start && (i - start) % every === 0) await fn(event);
    return event;
  });
}

/**
 * Calls `fn()` (no arguments) once per event and passes the event on
 * unchanged: the place for per-epoch schedulers. `fn` may be async.
 *
 * @example Count events
 * ```ts
 * import { collect, tick } from "@fitstream/fitstream";
 *
 * let ticks = 0;
 * await collect(ReadableStream.from([{ step: 1 }, { step: 2 }]).pipeThrough(tick(() => ticks++)));
 * console.log(ticks); // 2
 * ```
 */
export function tick<E>(fn: () => unknown): Stage<E, E> {
  requireFunction("tick", "fn", fn);
  return stepStage<E, E>(async (event) => {
    await fn();
    return event;
  });
}
