/**
 * JSONL sinks: `jsonlSink(dest, options)` and `collectJsonl(stream, dest, options)`.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { resolve } from "node:path";
import { makeWritableFolder, openFileWritable, toPath } from "./file.ts";
import { type SelectOptions, selector } from "./select.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";

/** Where JSONL goes: a file path (string or `file:` URL) or any byte stream. */
export type JsonlDestination = string | URL | WritableStream<Uint8Array>;

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Nesting deeper than this is refused with a clear error (a 100,000-deep value overflowed the stack). */
const MAX_DEPTH = 1000;

/** Throws a `TypeError` naming `path` unless `value` survives `JSON.stringify` intact. */
function assertSerialisable(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case "number":
    case "string":
    case "boolean":
      return;
    case "object": {
      if (value === null) return;
      if (typeof (value as { toJSON?: unknown }).toJSON === "function") return;
      if (seen.has(value)) throw new TypeError(`jsonlSink: key "${path}" holds a circular reference`);
      if (!Array.isArray(value) && !isPlainObject(value)) break;
      if (seen.size >= MAX_DEPTH) {
        const key = path.split(".", 1)[0];
        throw new TypeError(
          `jsonlSink: key "${key}" is nested more than ${MAX_DEPTH} levels deep; log a summary of it`,
        );
      }
      seen.add(value);
      for (const [k, v] of Object.entries(value)) assertSerialisable(v, `${path}.${k}`, seen);
      seen.delete(value);
      return;
    }
  }
  throw new TypeError(
    `jsonlSink: key "${path}" holds ${describe(value)}, which JSON cannot represent; ` +
      `leave it out with { exclude: [...] } or keep only metrics with { include: [...] }`,
  );
}

/** One event as a JSONL line (model dropped, keys selected, values checked). Internal. */
export function jsonlLine(row: Record<string, unknown>): string {
  for (const [key, value] of Object.entries(row)) assertSerialisable(value, key, new Set());
  return JSON.stringify(row) + "\n";
}

/** Options of {@link jsonlSink} and {@link collectJsonl}: key selection, and appending to a file. */
export interface JsonlOptions extends SelectOptions {
  /** Append to an existing file instead of overwriting it (default `false`; paths only). */
  append?: boolean;
}

const OPTION_KEYS = keysOf<JsonlOptions>({ include: true, exclude: true, append: true });

/** Files a jsonlSink of this process writes now: a second sink on one of them would lose lines. */
const openPaths = new Set<string>();

async function resolveDestination(dest: JsonlDestination, append: boolean): Promise<WritableStream<Uint8Array>> {
  if (dest instanceof WritableStream) return dest;
  const onRepair = (what: string) => console.warn(`jsonlSink: appending to "${toPath(dest)}": ${what}`);
  try {
    return await openFileWritable(dest, append, onRepair);
  } catch (error) {
    throw new Error(`jsonlSink: ${(error as Error).message}`, { cause: error });
  }
}

function checkDestination(dest: unknown): void {
  if (!(dest instanceof WritableStream) && typeof dest !== "string" && !(dest instanceof URL)) {
    throw new TypeError(`jsonlSink: dest must be a file path, a file URL or a WritableStream, got ${describe(dest)}`);
  }
  if (typeof dest === "string" && dest === "") throw new TypeError("jsonlSink: dest must not be an empty path");
  if (typeof dest === "string" || dest instanceof URL) {
    try {
      makeWritableFolder(dest);
    } catch (error) {
      throw new Error(`jsonlSink: ${(error as Error).message}`, { cause: error });
    }
  }
}

/**
 * A `WritableStream` of events that writes one JSON object per line to `dest`
 * (a path, which is overwritten and whose missing folders are created, or any
 * `WritableStream<Uint8Array>`: stdout, a socket, a `fetch` request body). Lines go through `TextEncoderStream` and
 * are written as they come. `model` is never written. NaN and ±Infinity are
 * written as `null`, as `JSON.stringify` does. A value JSON cannot represent
 * (a function, a tensor, a class instance, a BigInt) errors the stream with a
 * `TypeError` naming its key, after every earlier line has been flushed.
 * With `append`, a partial last line left by a killed run is repaired first
 * (completed, or cut off) and a warning says which. Two sinks of one process
 * may not write one file at a time: the second is refused at construction.
 *
 * @example Stream events into a file
 * ```ts
 * import { jsonlSink, take } from "@fitstream/fitstream";
 * import { readFile } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 *
 * const path = `${tmpdir()}/fitstream-example.jsonl`;
 * const source = ReadableStream.from([{ step: 1, train_loss: 0.5, model: {} }]);
 * await source.pipeThrough(take(1)).pipeTo(jsonlSink(path));
 * console.log(await readFile(path, "utf8")); // '{"step":1,"train_loss":0.5}\n'
 * ```
 */
export function jsonlSink(dest: JsonlDestination, options?: JsonlOptions): WritableStream<object> {
  checkKeys("jsonlSink", options, OPTION_KEYS); // before checkDestination, which creates folders
  checkDestination(dest);
  const select = selector("jsonlSink", options, ["append"]);
  const append = options?.append ?? false;
  if (typeof append !== "boolean") throw new TypeError(`jsonlSink: append must be a boolean, got ${describe(append)}`);
  const claimed = dest instanceof WritableStream ? undefined : resolve(toPath(dest));
  if (claimed !== undefined) {
    if (openPaths.has(claimed)) {
      throw new Error(
        `jsonlSink: "${claimed}" is already being written by another jsonlSink of this process; ` +
          `their lines would overwrite each other: write to one sink, or give each its own file`,
      );
    }
    openPaths.add(claimed);
  }
  const release = () => claimed !== undefined && openPaths.delete(claimed);
  // Lines go through a TextEncoderStream and on to the destination one at a
  // time: write() settles only once the destination has taken the line.
  const encoder = new TextEncoderStream();
  const encode = encoder.writable.getWriter();
  const encoded = encoder.readable.getReader();
  let out: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let finished: Promise<void> | undefined;
  const finish = () =>
    finished ??= (async () => {
      try {
        await encode.close();
        await out?.close();
      } finally {
        release();
      }
    })();
  return new WritableStream<object>({
    async start() {
      try {
        out = (await resolveDestination(dest, append)).getWriter();
      } catch (error) {
        release();
        throw error;
      }
    },
    async write(event) {
      let line: string;
      try {
        line = jsonlLine(select(event));
      } catch (error) {
        await finish().catch(() => {});
        throw error;
      }
      const written = encode.write(line);
      const chunk = await encoded.read();
      await written;
      try {
        if (!chunk.done) await out!.write(chunk.value);
      } catch (error) {
        release();
        throw new Error(`jsonlSink: ${(error as Error).message}`, { cause: error });
      }
    },
    close: finish,
    // Upstream failed: keep what was written, close the destination cleanly.
    abort: () => finish().catch(() => {}),
  });
}

/**
 * Writes every event of a (finite) stream to `dest` as JSONL and resolves
 * when the destination is closed. Reads one event at a time, so nothing is
 * pulled ahead of what has been written.
 *
 * @example Save a history
 * ```ts
 * import { collectJsonl } from "@fitstream/fitstream";
 * import { readFile } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 *
 * const path = `${tmpdir()}/fitstream-history.jsonl`;
 * await collectJsonl(ReadableStream.from([{ step: 1, lr: 0.1 }, { step: 2, lr: 0.05 }]), path, { include: ["step"] });
 * console.log(await readFile(path, "utf8")); // '{"step":1}\n{"step":2}\n'
 * ```
 */
export async function collectJsonl(
  stream: ReadableStream<object>,
  dest: JsonlDestination,
  options?: JsonlOptions,
): Promise<void> {
  if (!(stream instanceof ReadableStream)) {
    throw new TypeError(`collectJsonl: stream must be a ReadableStream, got ${describe(stream)}`);
  }
  checkKeys("collectJsonl", options, OPTION_KEYS);
  const writer = jsonlSink(dest, options).getWriter();
  const reader = stream.getReader();
  for (;;) {
    let next: ReadableStreamReadResult<object>;
    try {
      next = await reader.read();
    } catch (error) {
      await writer.abort(error); // flushes and closes what was written
      throw error;
    }
    if (next.done) break;
    try {
      await writer.write(next.value);
    } catch (error) {
      await reader.cancel(error);
      throw error;
    }
  }
  await writer.close();
}
