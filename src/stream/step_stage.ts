/**
 * `stage(handler, { limit, stopWhen, onEnd })`: the common kind of stage —
 * one output event per input event, with an optional stop condition — built
 * without read-ahead. Every library stage is one; users write theirs with it.
 * Errors raised by the handler cancel upstream before they reach the
 * consumer.
 *
 * @module
 */
import { carryNotes } from "./event_meta.ts";
import { DONE, more, type Puller, type PullResult } from "./puller.ts";
import { Stage } from "./stage.ts";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireInteger, requireOptions } from "../internal/validate.ts";

/** What a stage's handler can decide for one event. */
export interface StepControl {
  /** Ends the stream after this event is delivered (upstream is cancelled, nothing more is read). */
  stopAfter(): void;
}

/** Per-event logic: receives the event, its 1-based index and a {@link StepControl}; may be async. */
export type StepHandler<In, Out> = (event: In, index: number, control: StepControl) => Out | Promise<Out>;

/** How a stage ended, as its `onEnd` hears it. */
export interface StepEnd {
  /** `stopped`: the stage ended the stream itself (`stopAfter`, `limit`, `stopWhen`); `done`: upstream ended;
   * `error`: upstream or the handler failed; `cancelled`: downstream cancelled. */
  how: "stopped" | "done" | "error" | "cancelled";
  /** The error, when `how` is `"error"`. */
  error?: unknown;
  /** What downstream cancelled with, when `how` is `"cancelled"` (the error, when a later stage failed). */
  reason?: unknown;
}

/** Options of {@link stage}. */
export interface StepOptions {
  /** Ends the stream (without pulling) once this many events were delivered. */
  limit?: number;
  /** Checked before each pull: `true` ends the stream without pulling. */
  stopWhen?: () => boolean;
  /** Runs once when the stage ends, for whatever reason (see {@link StepEnd}). */
  onEnd?: (end: StepEnd) => void | Promise<void>;
}

const OPTION_KEYS = keysOf<StepOptions>({ limit: true, stopWhen: true, onEnd: true });

class StepPuller<In, Out> implements Puller<Out>, StepControl {
  #input: Puller<In>;
  #handle: StepHandler<In, Out>;
  #limit: number;
  #onEnd: ((end: StepEnd) => void | Promise<void>) | undefined;
  #stopWhen: (() => boolean) | undefined;
  #index = 0;
  #ended = false;
  #stopRequested = false;

  constructor(input: Puller<In>, handle: StepHandler<In, Out>, options: StepOptions) {
    this.#input = input;
    this.#handle = handle;
    this.#limit = options.limit ?? Infinity;
    this.#onEnd = options.onEnd;
    this.#stopWhen = options.stopWhen;
  }

  /** Marks the stage ended and runs `onEnd` once. */
  async #end(end: StepEnd): Promise<void> {
    this.#ended = true;
    const onEnd = this.#onEnd;
    this.#onEnd = undefined;
    await onEnd?.(end);
  }

  stopAfter(): void {
    this.#stopRequested = true;
  }

  async next(): Promise<PullResult<Out>> {
    if (this.#ended) return DONE;
    if (this.#stopRequested || this.#index >= this.#limit || this.#stopWhen?.()) {
      await this.#end({ how: "stopped" });
      await this.#input.cancel();
      return DONE;
    }
    let r: PullResult<In>;
    try {
      r = await this.#input.next();
    } catch (error) {
      await this.#end({ how: "error", error }); // upstream has failed and cleaned up after itself
      throw error;
    }
    if (r.done) {
      await this.#end({ how: "done" });
      return DONE;
    }
    try {
      const out = await this.#handle(r.value, ++this.#index, this);
      carryNotes(r.value, out); // a new event made from the old one keeps its notes (training state, stop reason)
      return more(out);
    } catch (error) {
      await this.#end({ how: "error", error }).catch(() => {});
      await this.#input.cancel(error).catch(() => {});
      throw error;
    }
  }

  upcomingStep(): number | undefined {
    return this.#input.upcomingStep?.();
  }

  async cancel(reason?: unknown): Promise<void> {
    if (this.#ended) return;
    await this.#end(this.#stopRequested ? { how: "stopped" } : { how: "cancelled", reason });
    await this.#input.cancel(reason);
  }
}

/** Builds a one-in, one-out {@link Stage} from a per-event handler. Internal. */
export function stepStage<In, Out>(handle: StepHandler<In, Out>, options: StepOptions = {}): Stage<In, Out> {
  return new Stage<In, Out>((input) => new StepPuller(input, handle, options));
}

/**
 * Builds a stage from a per-event handler: each event read downstream reads
 * exactly one event upstream (no read-ahead, so behind `epochStream` epoch
 * `n` trains only once event `n` is asked for). The handler returns the
 * event to pass on (a new object, or the same one); `control.stopAfter()`
 * ends the stream after this event. `limit` ends it after that many events,
 * `stopWhen()` is asked before each read, and `onEnd` runs once however the
 * stage ends. Events keep what the library notes beside them (the training
 * run, a stop reason) when the handler returns a new object.
 *
 * @example Stop at the first loss under a threshold
 * ```ts
 * import { collect, pipe, stage } from "@fitstream/fitstream";
 *
 * let reads = 0;
 * const source = new ReadableStream({
 *   pull: (c) => c.enqueue({ step: ++reads, loss: 1 / reads }),
 * }, { highWaterMark: 0 });
 * const untilSmall = stage((e: { step: number; loss: number }, _i, control) => {
 *   if (e.loss < 0.3) control.stopAfter();
 *   return { ...e, small: e.loss < 0.3 };
 * });
 * const rows = await collect(pipe(source, untilSmall));
 * console.log(rows.map((r) => r.step)); // [1, 2, 3, 4]
 * console.log(reads); // 4
 * ```
 */
export function stage<In, Out>(handler: StepHandler<In, Out>, options: StepOptions = {}): Stage<In, Out> {
  if (typeof handler !== "function") {
    throw new TypeError(`stage: handler must be a function, got ${describe(handler)}`);
  }
  requireOptions("stage", options);
  checkKeys("stage", options, OPTION_KEYS);
  const { limit, stopWhen, onEnd } = options;
  if (limit !== undefined) requireInteger("stage", "limit", limit, 0);
  if (stopWhen !== undefined && typeof stopWhen !== "function") {
    throw new TypeError(`stage: stopWhen must be a function, got ${describe(stopWhen)}`);
  }
  if (onEnd !== undefined && typeof onEnd !== "function") {
    throw new TypeError(`stage: onEnd must be a function, got ${describe(onEnd)}`);
  }
  return stepStage(handler, options);
}
