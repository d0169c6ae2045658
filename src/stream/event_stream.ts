/**
 * `EventStream`: the `ReadableStream` every fitstream source and library stage
 * returns. It behaves as a plain `ReadableStream` (HWM 0: nothing is produced
 * before a read), and its `pipeThrough` links library stages directly, without
 * the one-value read-ahead that `pipeTo` adds per stage.
 *
 * @module
 */
import type { Puller } from "./puller.ts";

/** Hooks that let `pipeThrough` link a library stage without `pipeTo`. */
export interface Linkable<In> {
  /** Feeds the stage from `input` instead of from its writable side. */
  link(input: Puller<In>): void;
}

const linkables = new WeakMap<object, Linkable<unknown>>();

/** Registers `pair` as a library stage that can be linked directly. Internal. */
export function registerLinkable<In>(pair: object, linkable: Linkable<In>): void {
  linkables.set(pair, linkable as Linkable<unknown>);
}

/** The direct-link hooks of a library stage, or `undefined` for a foreign stage. Internal. */
export function linkableOf(pair: unknown): Linkable<unknown> | undefined {
  return typeof pair === "object" && pair !== null ? linkables.get(pair) : undefined;
}

const pullerOf = new WeakMap<EventStream<unknown>, () => Puller<unknown>>();

/** Takes the puller behind an unlocked `EventStream`, locking the stream. Internal. */
export function takePuller<T>(stream: ReadableStream<T>): Puller<T> | undefined {
  const get = pullerOf.get(stream as EventStream<unknown>);
  if (!get) return undefined;
  if (stream.locked) throw new TypeError("stream is locked: it is already being read or piped");
  stream.getReader(); // lock it, as a native pipeThrough would; never read
  return get() as Puller<T>;
}

/**
 * A lazy `ReadableStream` of training events.
 *
 * It is returned by {@link epochStream}, {@link pipe} and the `readable` side of
 * every library stage. Reading it pulls exactly one event from upstream per read.
 *
 * @example Read events one by one
 * ```ts
 * import { pipe, take } from "@fitstream/fitstream";
 *
 * let n = 0;
 * const source = new ReadableStream({ pull: (c) => c.enqueue({ step: ++n }) }, { highWaterMark: 0 });
 * const events = pipe(source, take(2));
 * const steps: number[] = [];
 * for await (const event of events) steps.push(event.step);
 * console.log(steps); // [1, 2]
 * ```
 */
export class EventStream<T> extends ReadableStream<T> {
  /**
   * Builds a stream over a puller factory; the factory runs on first use.
   * Used by the library; most users never call it.
   */
  constructor(makePuller: () => Puller<T>) {
    let puller: Puller<T> | undefined;
    const get = (): Puller<T> => (puller ??= makePuller());
    let cancelled = false;
    super({
      async pull(controller) {
        const result = await get().next();
        if (cancelled) return;
        if (result.done) controller.close();
        else controller.enqueue(result.value);
      },
      cancel(reason) {
        cancelled = true;
        return get().cancel(reason);
      },
    }, { highWaterMark: 0 });
    pullerOf.set(this as EventStream<unknown>, get as () => Puller<unknown>);
  }

  /**
   * Pipes through a stage. Library stages are linked directly (no read-ahead);
   * any other `TransformStream` or pair goes through the standard `pipeThrough`.
   */
  override pipeThrough<U>(
    transform: { writable: WritableStream<T>; readable: ReadableStream<U> },
    options?: StreamPipeOptions,
  ): ReadableStream<U> {
    const linkable = linkableOf(transform);
    if (!linkable || options !== undefined) return super.pipeThrough(transform, options);
    linkable.link(takePuller(this)!);
    return transform.readable;
  }
}
