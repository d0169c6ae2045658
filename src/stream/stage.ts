/**
 * `Stage`: a library stage, usable with `pipe(...)` and with `.pipeThrough(...)`.
 *
 * @module
 */
import { EventStream, registerLinkable } from "./event_stream.ts";
import { Inbox } from "./inbox.ts";
import type { Puller } from "./puller.ts";

/** Turns the stage's input puller into its output puller. Internal. */
export type Operator<In, Out> = (input: Puller<In>) => Puller<Out>;

/**
 * A pipeline stage: a `{ writable, readable }` pair like a `TransformStream`,
 * but one that never reads ahead. Every library stage (`augment`, `take`,
 * `ema`, …) returns one. A stage can be used once.
 *
 * @example Use a stage with `pipeThrough`
 * ```ts
 * import { take } from "@fitstream/fitstream";
 *
 * const source = ReadableStream.from([{ step: 1 }, { step: 2 }, { step: 3 }]);
 * const firstTwo = source.pipeThrough(take(2));
 * const steps = (await Array.fromAsync(firstTwo)).map((e) => e.step);
 * console.log(steps); // [1, 2]
 * ```
 */
export class Stage<In, Out> {
  /** Where upstream events are written (by `pipeTo` or `pipeThrough`). */
  readonly writable: WritableStream<In>;
  /** The stage's output events. */
  readonly readable: EventStream<Out>;

  /** Wraps an operator; used by the library's stage factories. */
  constructor(operator: Operator<In, Out>) {
    const inbox = new Inbox<In>();
    let input: Puller<In> | undefined;
    this.writable = inbox.writable;
    this.readable = new EventStream<Out>(() => operator(input ??= inbox));
    registerLinkable<In>(this, {
      link: (puller) => {
        if (input !== undefined || this.writable.locked) {
          throw new TypeError("stage is already in use: create a new stage for each pipeline");
        }
        input = puller;
        this.writable.getWriter(); // lock: nothing else may write into a linked stage
      },
    });
  }
}
