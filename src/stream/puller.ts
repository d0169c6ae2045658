/**
 * The pull protocol every library stage speaks internally.
 *
 * A `Puller` hands out one value per `next()` call and never reads ahead: the
 * value for call `n` is produced only when call `n` is made. Library stages are
 * chained as pullers, so a read at the end of a pipeline becomes exactly one
 * read at its source.
 *
 * @module
 */

/** Result of one `next()` call: a value, or the end of the stream. */
export type PullResult<T> = { done: false; value: T } | { done: true; value?: undefined };

/** A lazy, cancellable source of values. Internal; not exported from `mod.ts`. */
export interface Puller<T> {
  /** Produces the next value; rejects when the stream errors. */
  next(): Promise<PullResult<T>>;
  /** Stops the stream and releases what it holds; upstream is cancelled too. */
  cancel(reason?: unknown): Promise<void>;
  /**
   * The `step` the next value will have, when the source knows it without
   * producing it (a training stream: its run's position); stages pass it on.
   */
  upcomingStep?(): number | undefined;
}

/** The shared "stream has ended" result. */
export const DONE: PullResult<never> = Object.freeze({ done: true }) as PullResult<never>;

/** Wraps a value in a non-final result. */
export function more<T>(value: T): PullResult<T> {
  return { done: false, value };
}

/** A puller over any `ReadableStream`, reading through one locked reader. */
export function pullerFromReadable<T>(stream: ReadableStream<T>): Puller<T> {
  const reader = stream.getReader();
  return {
    async next() {
      const r = await reader.read();
      return r.done ? DONE : more(r.value);
    },
    async cancel(reason) {
      await reader.cancel(reason);
    },
  };
}
