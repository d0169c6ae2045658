/**
 * The writable side of a library stage, seen as a {@link Puller}.
 *
 * `pipeTo` writes as soon as the writable is ready, which is what makes plain
 * `TransformStream` chains read ahead. The inbox acknowledges a write only
 * when the *next* value is asked for, so a `pipeTo` feeding it pulls a new
 * value from upstream exactly when the stage needs one.
 *
 * @module
 */
import { DONE, more, type Puller, type PullResult } from "./puller.ts";

type Waiter<T> = { resolve: (r: PullResult<T>) => void; reject: (e: unknown) => void };

/** Adapts a `WritableStream` (fed by `pipeTo`) into a lazy {@link Puller}. */
export class Inbox<T> implements Puller<T> {
  /** The stream `pipeTo` writes into. */
  readonly writable: WritableStream<T>;
  #controller!: WritableStreamDefaultController;
  #pending: { value: T; ack: () => void } | undefined;
  #deliveredAck: (() => void) | undefined;
  #waiter: Waiter<T> | undefined;
  #ended: { error: false } | { error: true; reason: unknown } | undefined;

  constructor() {
    this.writable = new WritableStream<T>({
      start: (controller) => {
        this.#controller = controller;
      },
      write: (value) =>
        new Promise<void>((ack) => {
          const waiter = this.#waiter;
          if (waiter) {
            this.#waiter = undefined;
            this.#deliveredAck = ack;
            waiter.resolve(more(value));
          } else {
            this.#pending = { value, ack };
          }
        }),
      close: () => this.#end({ error: false }),
      abort: (reason) => this.#end({ error: true, reason }),
    });
  }

  #end(end: { error: false } | { error: true; reason: unknown }): void {
    if (this.#ended) return;
    this.#ended = end;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (!waiter) return;
    if (end.error) waiter.reject(end.reason);
    else waiter.resolve(DONE);
  }

  next(): Promise<PullResult<T>> {
    // Asking for the next value is the moment the previous write may settle.
    const ack = this.#deliveredAck;
    this.#deliveredAck = undefined;
    ack?.();
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      this.#deliveredAck = pending.ack;
      return Promise.resolve(more(pending.value));
    }
    const ended = this.#ended;
    if (ended) return ended.error ? Promise.reject(ended.reason) : Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  cancel(reason?: unknown): Promise<void> {
    if (!this.#ended) this.#ended = { error: false };
    // Settle any write in flight, then error the writable: the `pipeTo` that
    // feeds us sees it and cancels its source with `reason`.
    this.#deliveredAck?.();
    this.#pending?.ack();
    this.#deliveredAck = undefined;
    this.#pending = undefined;
    this.#controller.error(reason ?? new DOMException("stage cancelled", "AbortError"));
    return Promise.resolve();
  }
}
