/**
 * `augment(fn)`: merge computed keys into every event.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { requireFunction } from "../internal/validate.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";
import type { Merge } from "../types.ts";

/** What an augmenter may return: keys to merge, or nothing. */
export type AugmentResult = object | null | undefined | void;

/** The keys an augmenter adds, with `null`/`undefined` returns removed. */
export type Added<R> = Exclude<R, null | undefined | void>;

/**
 * Calls `fn(event)` for each event and merges the object it returns into the
 * event (`{ ...event, ...result }`: the result's keys win). Returning `null` or
 * `undefined` leaves the event unchanged. `fn` may be async; events are
 * processed one at a time, in order. Returning anything else (a number, a
 * string, an array) errors the stream with a `TypeError`.
 *
 * @example Add a learning rate to every event
 * ```ts
 * import { augment, collect, take } from "@fitstream/fitstream";
 *
 * const source = ReadableStream.from([{ step: 1 }, { step: 2 }]);
 * const rows = await collect(source.pipeThrough(augment(() => ({ lr: 0.1 }))).pipeThrough(take(2)));
 * console.log(rows); // [{ step: 1, lr: 0.1 }, { step: 2, lr: 0.1 }]
 * ```
 */
export function augment<E extends object, R extends AugmentResult>(
  fn: (event: NoInfer<E>) => R | PromiseLike<R>,
): Stage<E, Merge<E, Added<R>>>;
/** Calls `fn(event)` and merges its result; this form takes the event type from `fn`'s parameter. */
export function augment<E extends object, R extends AugmentResult>(
  fn: (event: E) => R | PromiseLike<R>,
): Stage<E, Merge<E, Added<R>>>;
export function augment<E extends object, R extends AugmentResult>(
  fn: (event: E) => R | PromiseLike<R>,
): Stage<E, Merge<E, Added<R>>> {
  requireFunction("augment", "fn", fn);
  return stepStage<E, Merge<E, Added<R>>>(async (event) => {
    const result: unknown = await fn(event);
    if (result === null || result === undefined) return event as Merge<E, Added<R>>;
    if (typeof result !== "object" || Array.isArray(result)) {
      throw new TypeError(
        `augment: fn must return an object of keys to add, or null/undefined; got ${describe(result)}`,
      );
    }
    return { ...event, ...result } as Merge<E, Added<R>>;
  });
}
