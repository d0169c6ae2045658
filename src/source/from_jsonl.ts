/**
 * `fromJsonl(source)`: replay a JSONL log as a stream of events.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { openReadable } from "../data/open_input.ts";
import { EventStream } from "../stream/event_stream.ts";
import { DONE, more, pullerFromReadable } from "../stream/puller.ts";

/**
 * Reads a JSONL log (a file path, an `http(s)` URL, or a byte stream) and
 * yields one event per line, lazily: a line is read when its event is asked
 * for. Blank lines are skipped; a line that is not a JSON object is an error
 * naming its line number.
 *
 * @example Replay a log
 * ```ts
 * import { collect, fromJsonl } from "@fitstream/fitstream";
 *
 * const log = new Blob(['{"step":1,"loss":0.5}\n{"step":2,"loss":0.25}\n']).stream();
 * console.log(await collect(fromJsonl(log))); // [{ step: 1, loss: 0.5 }, { step: 2, loss: 0.25 }]
 * ```
 */
export function fromJsonl(source: string | URL | ReadableStream<Uint8Array>): EventStream<Record<string, unknown>> {
  if (typeof source !== "string" && !(source instanceof URL) && !(source instanceof ReadableStream)) {
    throw new TypeError(`fromJsonl: source must be a file path, a URL or a ReadableStream, got ${describe(source)}`);
  }
  return new EventStream(() => {
    let lines: ReturnType<typeof pullerFromReadable<string>> | undefined;
    let name = "stream";
    let lineNo = 0;
    return {
      async next() {
        if (!lines) {
          const opened = await openReadable("fromJsonl", source);
          name = opened.name;
          lines = pullerFromReadable(opened.stream.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines()));
        }
        for (;;) {
          const r = await lines.next();
          if (r.done) return DONE;
          lineNo++;
          if (r.value.trim() === "") continue;
          let value: unknown;
          try {
            value = JSON.parse(r.value);
          } catch (error) {
            await lines.cancel();
            throw new SyntaxError(`fromJsonl: ${name}: line ${lineNo} is not JSON: ${(error as Error).message}`);
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

function splitLines(): TransformStream<string, string> {
  let pending = "";
  return new TransformStream({
    transform(chunk, controller) {
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      for (const line of parts) controller.enqueue(line.endsWith("\r") ? line.slice(0, -1) : line);
    },
    flush(controller) {
      if (pending !== "") controller.enqueue(pending);
    },
  });
}
