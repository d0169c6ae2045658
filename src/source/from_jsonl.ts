/**
 * `fromJsonl(source)`: replay a JSONL log as a stream of events.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { checkReadOptions, openReadable, type ReadOptions } from "../data/open_input.ts";
import { type Line, splitLines } from "../data/lines.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireOptions } from "../internal/validate.ts";
import { EventStream } from "../stream/event_stream.ts";
import { DONE, more, pullerFromReadable } from "../stream/puller.ts";

/** Options of {@link fromJsonl}. */
export interface FromJsonlOptions extends ReadOptions {
  /**
   * What to do with a last line that has no newline and is not JSON — what a
   * killed writer or a full disk leaves: `"error"` (default) or `"skip"` it.
   */
  partialLastLine?: "error" | "skip";
}

const OPTION_KEYS = keysOf<FromJsonlOptions>({ partialLastLine: true, signal: true, timeout: true });

/**
 * Reads a JSONL log (a file path, an `http(s)` URL, or a byte stream) and
 * yields one event per line, lazily: a line is read when its event is asked
 * for. Blank lines are skipped; a line that is not a JSON object is an error
 * naming its line number; a cut-off last line can be skipped instead
 * (`partialLastLine: "skip"`). Lines of any length are read in linear time.
 * A URL that stays silent for `timeout` ms fails the read, and `signal`
 * cancels it.
 *
 * @example Replay a log
 * ```ts
 * import { collect, fromJsonl } from "@fitstream/fitstream";
 *
 * const log = new Blob(['{"step":1,"loss":0.5}\n{"step":2,"loss":0.25}\n']).stream();
 * console.log(await collect(fromJsonl(log))); // [{ step: 1, loss: 0.5 }, { step: 2, loss: 0.25 }]
 * ```
 */
export function fromJsonl(
  source: string | URL | ReadableStream<Uint8Array>,
  options: FromJsonlOptions = {},
): EventStream<Record<string, unknown>> {
  if (typeof source !== "string" && !(source instanceof URL) && !(source instanceof ReadableStream)) {
    throw new TypeError(`fromJsonl: source must be a file path, a URL or a ReadableStream, got ${describe(source)}`);
  }
  requireOptions("fromJsonl", options);
  checkKeys("fromJsonl", options, OPTION_KEYS);
  checkReadOptions("fromJsonl", options);
  const { partialLastLine = "error" } = options;
  if (partialLastLine !== "error" && partialLastLine !== "skip") {
    throw new RangeError(`fromJsonl: partialLastLine must be "error" or "skip", got ${describe(partialLastLine)}`);
  }
  return new EventStream(() => {
    let lines: ReturnType<typeof pullerFromReadable<Line>> | undefined;
    let name = "stream";
    let lineNo = 0;
    return {
      async next() {
        if (!lines) {
          const opened = await openReadable("fromJsonl", source, options);
          name = opened.name;
          lines = pullerFromReadable(opened.stream.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines()));
        }
        for (;;) {
          const r = await lines.next();
          if (r.done) return DONE;
          lineNo++;
          const { text, terminated } = r.value;
          if (text.trim() === "") continue;
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch (error) {
            if (!terminated && partialLastLine === "skip") return DONE;
            await lines.cancel();
            const hint = terminated
              ? ""
              : ` (the last line has no newline: a cut-off write? partialLastLine: "skip" skips it)`;
            throw new SyntaxError(`fromJsonl: ${name}: line ${lineNo} is not JSON: ${(error as Error).message}${hint}`);
          }
          if (typeof value !== "object" || value === null || Array.isArray(value)) {
            await lines.cancel();
            throw new TypeError(`fromJsonl: ${name}: line ${lineNo} is not a JSON object`);
          }
          return more(value as Record<string, unknown>);
        }
      },
      async cancel(reason) {
        await lines?.cancel(reason);
      },
    };
  });
}
