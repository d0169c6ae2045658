/**
 * A helper that builds the common kind of stage: one output event per input
 * event, with an optional stop condition. Errors raised by the stage's own
 * logic cancel upstream before they reach the consumer.
 *
 * @module
 */
import { DONE, more, type Puller, type PullResult } from "./puller.ts";
import { Stage } from "./stage.ts";

/** What a step handler decides for one event. Internal. */
export interface StepControl {
  /** Ends the stream after this event is delivered. */
  stopAfter(): void;
}

/** Per-event logic: receives the event and its 1-based index. Internal. */
export type StepHandler<In, Out> = (event: In, index: number, control: StepControl) => Out | Promise<Out>;

/** How a step stage ended. Internal. */
export interface StepEnd {
  /** `stopped`: the stage ended the stream itself (`stopAfter`, `limit`, `stopWhen`); `done`: upstream ended;
   * `error`: upstream or the handler failed; `cancelled`: downstream cancelled. */
  how: "stopped" | "done" | "error" | "cancelled";
  /** The error, when `how` is `"error"`. */
  error?: unknown;
}

/** Options of {@link stepStage}. Internal. */
export interface StepOptions {
  /** Ends the stream (without pulling) once this many events were delivered. */
  limit?: number;
  /** Checked before each pull: `true` ends the stream without pulling. */
  stopWhen?: () => boolean;
  /** Runs once when the stage ends, for whatever reason (see {@link StepEnd}). */
  onEnd?: (end: StepEnd) => void | Promise<void>;
}

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
      return more(await this.#handle(r.value, ++this.#index, this));
    } catch (error) {
      await this.#end({ how: "error", error }).catch(() => {});
      await this.#input.cancel(error).catch(() => {});
      throw error;
    }
  }

  async cancel(reason?: unknown): Promise<void> {
    if (this.#ended) return;
    await this.#end({ how: this.#stopRequested ? "stopped" : "cancelled" });
    await this.#input.cancel(reason);
  }
}

/** Builds a one-in, one-out {@link Stage} from a per-event handler. Internal. */
export function stepStage<In, Out>(handle: StepHandler<In, Out>, options: StepOptions = {}): Stage<In, Out> {
  return new Stage<In, Out>((input) => new StepPuller(input, handle, options));
}
