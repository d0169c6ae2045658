/**
 * `collect(stream, { include, exclude })`: read a finite stream into rows.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { type SelectOptions, selector } from "./select.ts";

/**
 * Reads every event of a (finite) stream and resolves to the rows, without
 * `model` (and filtered by `include`/`exclude`). An error in the stream
 * rejects the promise.
 *
 * @example Collect a capped stream
 * ```ts
 * import { collect } from "@fitstream/fitstream";
 *
 * const rows = await collect(ReadableStream.from([{ step: 1, model: {} }, { step: 2, model: {} }]));
 * console.log(rows); // [{ step: 1 }, { step: 2 }]
 * ```
 */
export async function collect<E extends object>(
  stream: ReadableStream<E>,
  options?: SelectOptions,
): Promise<Omit<E, "model">[]> {
  if (!(stream instanceof ReadableStream)) {
    throw new TypeError(`collect: stream must be a ReadableStream, got ${describe(stream)}`);
  }
  const select = selector("collect", options);
  const rows: Omit<E, "model">[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return rows;
      rows.push(select(value) as Omit<E, "model">);
    }
  } finally {
    reader.releaseLock();
  }
}
