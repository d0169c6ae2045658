/**
 * `pipe(source, ...stages)`: left-to-right composition of stages.
 *
 * @module
 */
import { linkableOf, takePuller } from "./event_stream.ts";
import { pullerFromReadable } from "./puller.ts";
import { describe } from "../internal/describe.ts";

/** Anything `pipeThrough` accepts: a `TransformStream` or a `{ writable, readable }` pair. */
export type StageLike<In, Out> = { writable: WritableStream<In>; readable: ReadableStream<Out> };

/** A stage, or `false` / `null` / `undefined` for none: `pipe` skips those (`verbose && tap(log)`). */
export type Optional<S> = S | false | null | undefined;

/** Throws a `TypeError` unless `value` looks like a stage. Internal. */
export function assertStage(value: unknown, where: string): asserts value is StageLike<unknown, unknown> {
  const v = value as { writable?: unknown; readable?: unknown } | null;
  if (
    typeof v !== "object" || v === null ||
    !(v.writable instanceof WritableStream) || !(v.readable instanceof ReadableStream)
  ) {
    throw new TypeError(
      `${where} is not a stage: expected a TransformStream or a { writable, readable } pair, got ${describe(value)}`,
    );
  }
}

/**
 * Composes a source with stages, left to right.
 *
 * Library stages are linked without read-ahead, so reading the result `n`
 * times pulls the source exactly `n` times. Foreign `TransformStream`s work
 * too, through the standard `pipeThrough` (which reads one value ahead each).
 * A stage given as `false`, `null` or `undefined` is skipped, so a stage can
 * be conditional: `pipe(source, verbose && tap(log), take(10))`.
 *
 * @example A source, an augmenter and a cap
 * ```ts
 * import { augment, collect, pipe, take } from "@fitstream/fitstream";
 *
 * let n = 0;
 * const source = new ReadableStream({ pull: (c) => c.enqueue({ step: ++n }) }, { highWaterMark: 0 });
 * const rows = await collect(pipe(source, augment((e) => ({ double: e.step * 2 })), take(3)));
 * console.log(rows); // [{ step: 1, double: 2 }, { step: 2, double: 4 }, { step: 3, double: 6 }]
 * ```
 */
export function pipe<A>(source: ReadableStream<A>): ReadableStream<A>;
/** Composes a source with 1 stage, left to right (see the first overload). */
export function pipe<A, B>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
): ReadableStream<B>;
/** Composes a source with 2 stages, left to right (see the first overload). */
export function pipe<A, B, C>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
): ReadableStream<C>;
/** Composes a source with 3 stages, left to right (see the first overload). */
export function pipe<A, B, C, D>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
  s3: Optional<StageLike<C, D>>,
): ReadableStream<D>;
/** Composes a source with 4 stages, left to right (see the first overload). */
export function pipe<A, B, C, D, E>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
  s3: Optional<StageLike<C, D>>,
  s4: Optional<StageLike<D, E>>,
): ReadableStream<E>;
/** Composes a source with 5 stages, left to right (see the first overload). */
export function pipe<A, B, C, D, E, F>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
  s3: Optional<StageLike<C, D>>,
  s4: Optional<StageLike<D, E>>,
  s5: Optional<StageLike<E, F>>,
): ReadableStream<F>;
/** Composes a source with 6 stages, left to right (see the first overload). */
export function pipe<A, B, C, D, E, F, G>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
  s3: Optional<StageLike<C, D>>,
  s4: Optional<StageLike<D, E>>,
  s5: Optional<StageLike<E, F>>,
  s6: Optional<StageLike<F, G>>,
): ReadableStream<G>;
/** Composes a source with 7 stages, left to right (see the first overload). */
export function pipe<A, B, C, D, E, F, G, H>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
  s3: Optional<StageLike<C, D>>,
  s4: Optional<StageLike<D, E>>,
  s5: Optional<StageLike<E, F>>,
  s6: Optional<StageLike<F, G>>,
  s7: Optional<StageLike<G, H>>,
): ReadableStream<H>;
/** Composes a source with 8 stages, left to right (see the first overload). */
export function pipe<A, B, C, D, E, F, G, H, I>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
  s3: Optional<StageLike<C, D>>,
  s4: Optional<StageLike<D, E>>,
  s5: Optional<StageLike<E, F>>,
  s6: Optional<StageLike<F, G>>,
  s7: Optional<StageLike<G, H>>,
  s8: Optional<StageLike<H, I>>,
): ReadableStream<I>;
/** Composes a source with 9 stages, left to right (see the first overload). */
export function pipe<A, B, C, D, E, F, G, H, I, J>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
  s3: Optional<StageLike<C, D>>,
  s4: Optional<StageLike<D, E>>,
  s5: Optional<StageLike<E, F>>,
  s6: Optional<StageLike<F, G>>,
  s7: Optional<StageLike<G, H>>,
  s8: Optional<StageLike<H, I>>,
  s9: Optional<StageLike<I, J>>,
): ReadableStream<J>;
/** Composes a source with 10 stages, left to right (see the first overload). */
export function pipe<A, B, C, D, E, F, G, H, I, J, K>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
  s3: Optional<StageLike<C, D>>,
  s4: Optional<StageLike<D, E>>,
  s5: Optional<StageLike<E, F>>,
  s6: Optional<StageLike<F, G>>,
  s7: Optional<StageLike<G, H>>,
  s8: Optional<StageLike<H, I>>,
  s9: Optional<StageLike<I, J>>,
  s10: Optional<StageLike<J, K>>,
): ReadableStream<K>;
/** Composes a source with 11 stages, left to right (see the first overload). */
export function pipe<A, B, C, D, E, F, G, H, I, J, K, L>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
  s3: Optional<StageLike<C, D>>,
  s4: Optional<StageLike<D, E>>,
  s5: Optional<StageLike<E, F>>,
  s6: Optional<StageLike<F, G>>,
  s7: Optional<StageLike<G, H>>,
  s8: Optional<StageLike<H, I>>,
  s9: Optional<StageLike<I, J>>,
  s10: Optional<StageLike<J, K>>,
  s11: Optional<StageLike<K, L>>,
): ReadableStream<L>;
/** Composes a source with 12 stages, left to right (see the first overload). */
export function pipe<A, B, C, D, E, F, G, H, I, J, K, L, M>(
  source: ReadableStream<A>,
  s1: Optional<StageLike<A, B>>,
  s2: Optional<StageLike<B, C>>,
  s3: Optional<StageLike<C, D>>,
  s4: Optional<StageLike<D, E>>,
  s5: Optional<StageLike<E, F>>,
  s6: Optional<StageLike<F, G>>,
  s7: Optional<StageLike<G, H>>,
  s8: Optional<StageLike<H, I>>,
  s9: Optional<StageLike<I, J>>,
  s10: Optional<StageLike<J, K>>,
  s11: Optional<StageLike<K, L>>,
  s12: Optional<StageLike<L, M>>,
): ReadableStream<M>;
export function pipe(
  source: ReadableStream<unknown>,
  ...stages: Optional<StageLike<unknown, unknown>>[]
): ReadableStream<unknown> {
  if (!(source instanceof ReadableStream)) {
    throw new TypeError(`pipe: source must be a ReadableStream, got ${describe(source)}`);
  }
  const present = stages.filter((stage, i) => {
    if (stage === undefined || stage === null || stage === false) return false;
    assertStage(stage, `pipe: stage ${i + 1}`);
    return true;
  }) as StageLike<unknown, unknown>[];
  let stream: ReadableStream<unknown> = source;
  for (const stage of present) {
    const linkable = linkableOf(stage);
    if (linkable) {
      // Link directly, also behind a plain ReadableStream: no pipeTo, no read-ahead.
      linkable.link(takePuller(stream) ?? pullerFromReadable(stream));
      stream = stage.readable;
    } else {
      stream = stream.pipeThrough(stage);
    }
  }
  return stream;
}
