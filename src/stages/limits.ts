/**
 * `timeLimit(ms)` and `untilStep(n)`: end a run cleanly at a time budget or
 * at an absolute step.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireInteger, requireNumber, requireOptions } from "../internal/validate.ts";
import { DONE, type Puller, type PullResult } from "../stream/puller.ts";
import { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";
import { withStopReason } from "../stream/stop_reason.ts";

/** Options of {@link timeLimit}. */
export interface TimeLimitOptions {
  /** The clock, in milliseconds (default `performance.now`): tests pass their own. */
  now?: () => number;
}

const TIME_LIMIT_KEYS = keysOf<TimeLimitOptions>({ now: true });

/**
 * Ends the stream after the event during which `ms` milliseconds ran out,
 * counted from the first read: that event is delivered, nothing more is
 * read, upstream is cancelled and sinks close normally. So a run overshoots
 * by less than one event's time (one epoch behind `epochStream`, one step
 * behind `stepStream`).
 *
 * @example A budget on an injected clock
 * ```ts
 * import { collect, pipe, tap, timeLimit } from "@fitstream/fitstream";
 *
 * let clock = 0;
 * let step = 0;
 * const source = new ReadableStream({ pull: (c) => c.enqueue({ step: ++step }) }, { highWaterMark: 0 });
 * const epochOf70ms = tap(() => void (clock += 70));
 * const rows = await collect(pipe(source, epochOf70ms, timeLimit(300, { now: () => clock })));
 * console.log(rows.map((r) => r.step)); // [1, 2, 3, 4, 5]
 * console.log(clock); // 350
 * ```
 */
export function timeLimit<E>(ms: number, options: TimeLimitOptions = {}): Stage<E, E> {
  requireNumber("timeLimit", "ms", ms);
  if (ms <= 0) throw new RangeError(`timeLimit: ms must be > 0, got ${ms}`);
  requireOptions("timeLimit", options);
  checkKeys("timeLimit", options, TIME_LIMIT_KEYS);
  const { now = () => performance.now() } = options;
  if (typeof now !== "function") throw new TypeError(`timeLimit: now must be a function, got ${describe(now)}`);
  let started: number | undefined;
  return stepStage<E, E>((event, _index, control) => {
    if (now() - started! < ms) return event;
    control.stopAfter();
    return withStopReason(event, "time limit");
  }, {
    stopWhen: () => {
      started ??= now();
      return false;
    },
  });
}

/** The `step` of an event, or `undefined`. */
function stepOf(event: unknown): number | undefined {
  const step = (event as { step?: unknown } | null)?.step;
  return typeof step === "number" ? step : undefined;
}

class UntilStep<E> implements Puller<E> {
  #input: Puller<E>;
  #last: number;
  #ended = false;
  #reached = false;

  constructor(input: Puller<E>, last: number) {
    this.#input = input;
    this.#last = last;
  }

  async next(): Promise<PullResult<E>> {
    if (this.#ended) return DONE;
    // Past the last step (the last event went out, or a run resumed there): end without reading. Upstream is
    // cancelled only now, once the stages after this one are done with the last event (as take does).
    const upcoming = this.#input.upcomingStep?.();
    if (this.#reached || (upcoming !== undefined && upcoming > this.#last)) {
      this.#ended = true;
      await this.#input.cancel();
      return DONE;
    }
    const r = await this.#input.next();
    if (r.done) {
      this.#ended = true;
      return r;
    }
    const step = stepOf(r.value);
    if (step === undefined) {
      const error = new TypeError(`untilStep: the event has no numeric step, got ${describe(r.value)}`);
      this.#ended = true;
      await this.#input.cancel(error).catch(() => {});
      throw error;
    }
    if (step >= this.#last) {
      this.#reached = true;
      withStopReason(r.value, "until step");
    }
    return r;
  }

  upcomingStep(): number | undefined {
    return this.#input.upcomingStep?.();
  }

  async cancel(reason?: unknown): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.#input.cancel(reason);
  }
}

/**
 * Ends the stream after the event whose `step` reaches `n` — an absolute
 * step, not a count: a run resumed at step 70 and capped with
 * `untilStep(100)` trains 30 more (`take(30)` would be the count). Behind a
 * training stream that already stands at step `n` or past it, nothing is
 * read and nothing trains. An event without a numeric `step` is a
 * `TypeError`.
 *
 * @example Cap a run at step 3, wherever it starts
 * ```ts
 * import { collect, pipe, untilStep } from "@fitstream/fitstream";
 *
 * let step = 0;
 * const source = new ReadableStream({ pull: (c) => c.enqueue({ step: ++step }) }, { highWaterMark: 0 });
 * console.log(await collect(pipe(source, untilStep(3)))); // [{ step: 1 }, { step: 2 }, { step: 3 }]
 * console.log(step); // 3
 * ```
 */
export function untilStep<E>(n: number): Stage<E, E> {
  requireInteger("untilStep", "n", n, 1);
  return new Stage<E, E>((input) => new UntilStep(input, n));
}
