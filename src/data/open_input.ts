/**
 * Opening a byte source by kind: an `http(s)` URL through `fetch`, a file
 * through `node:fs`, or a stream as is. Shared by `loadCsv` and `fromJsonl`.
 * Network reads never wait forever: a peer silent for `timeout` ms (before
 * the answer or between two chunks of the body) fails the read, and the
 * caller's `AbortSignal` cancels it at any point.
 *
 * @module
 */
import { type FileHandle, open } from "node:fs/promises";
import type { Stats } from "node:fs";
import { describe } from "../internal/describe.ts";
import { toPath } from "../sinks/file.ts";

/** How long a URL may stay silent before its read fails (ms): 30 s. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** Options shared by the loaders that read URLs. */
export interface ReadOptions {
  /** Cancels the read (fetch, body, file) when aborted; the loader rejects with the signal's reason (for a plain `abort()`, an `AbortError` naming the URL or file). */
  signal?: AbortSignal;
  /** Milliseconds a URL may stay silent — before it answers, or between two chunks — before the read fails (default 30,000). */
  timeout?: number;
}

function isUrl(source: string | URL): boolean {
  return /^https?:\/\//i.test(String(source));
}

/** Checks `signal` and `timeout` of a loader's options. Internal. */
export function checkReadOptions(where: string, options: ReadOptions): void {
  const { signal, timeout } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`${where}: signal must be an AbortSignal, got ${describe(signal)}`);
  }
  if (timeout !== undefined && (typeof timeout !== "number" || !(timeout > 0))) {
    throw new RangeError(`${where}: timeout must be a number of milliseconds > 0, got ${describe(timeout)}`);
  }
}

/**
 * The reason to reject with when `signal` aborted: the caller's own reason,
 * or, for a plain `abort()` (whose default reason, "The operation was
 * aborted.", names nothing), an `AbortError` naming the source.
 */
function abortReason(where: string, name: string, signal: AbortSignal): unknown {
  const reason = signal.reason;
  if (reason === undefined || (reason instanceof DOMException && reason.name === "AbortError")) {
    return new DOMException(`${where}: reading ${name} was aborted`, "AbortError");
  }
  return reason;
}

/**
 * Opens a URL (`fetch`), a file path or `file:` URL (as a `URL` or a string),
 * or passes a byte stream through. Internal.
 */
export async function openReadable(
  where: string,
  source: string | URL | ReadableStream<Uint8Array>,
  options: ReadOptions = {},
): Promise<{ stream: ReadableStream<Uint8Array>; name: string }> {
  if (source instanceof ReadableStream) return { stream: source, name: "stream" };
  if (typeof source !== "string" && !(source instanceof URL)) {
    throw new TypeError(`${where}: source must be a URL, a file path or a ReadableStream, got ${describe(source)}`);
  }
  const { signal } = options;
  if (signal?.aborted) throw abortReason(where, String(source), signal);
  if (isUrl(source)) return await openUrl(where, String(source), options);
  const path = toPath(typeof source === "string" && /^file:\/\//i.test(source) ? new URL(source) : source);
  return { stream: await openFile(where, path, signal), name: path };
}

/**
 * Why a regular file read to its end may hold cut or mixed rows, or
 * `undefined`: it ended short of its size at open (rewritten, when it has
 * that size again by the end), is now shorter than what was read, or was
 * rewritten at the same size (a new mtime). A file that grows is fine: a
 * log being appended to. Internal (exported for tests).
 */
export function changedWhileRead(opened: Stats, now: Stats, read: number): string | undefined {
  if (!opened.isFile()) return undefined; // a pipe or a device has no size to compare
  const sizes = `${opened.size} bytes when opened, ${now.size} now, ${read} read`;
  // Cut short mid-read but its old size again by the end: a rewrite (truncated, then written) seen half-way.
  if (read < opened.size && now.size >= opened.size) return `was rewritten while it was read (${sizes})`;
  if (read < opened.size || now.size < read) return `shrank while it was read (${sizes})`;
  if (now.size === opened.size && now.mtimeMs !== opened.mtimeMs) {
    return `was rewritten while it was read (same size, modified at ${now.mtime.toISOString()})`;
  }
  return undefined;
}

/**
 * A file as a byte stream, 64 KiB a read. A file rewritten while it is read
 * (a data-prep job writing the next version) fails the read at its end,
 * naming the file: the read would otherwise end with a row cut at the point
 * the rewrite reached, parsed as if whole.
 */
async function openFile(
  where: string,
  path: string,
  signal: AbortSignal | undefined,
): Promise<ReadableStream<Uint8Array>> {
  let file: FileHandle | undefined, opened: Stats;
  try {
    file = await open(path, "r");
    opened = await file.stat();
  } catch (error) {
    await file?.close().catch(() => {});
    throw new Error(`${where}: cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  const handle = file;
  const buffer = new Uint8Array(64 * 1024);
  let read = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (signal?.aborted) {
        await handle.close();
        controller.error(abortReason(where, path, signal));
        return;
      }
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead > 0) {
        read += bytesRead;
        controller.enqueue(buffer.slice(0, bytesRead));
        return;
      }
      const changed = changedWhileRead(opened, await handle.stat(), read);
      await handle.close();
      if (changed) controller.error(new Error(`${where}: ${path} ${changed}: read it again once it is written`));
      else controller.close();
    },
    cancel: () => handle.close(),
  });
}

/**
 * Fetches `url` with an idle timeout and the caller's signal, both reaching
 * into the body. Each wait (for the answer, for a chunk) is raced against a
 * promise that the timer or the signal rejects, so the load settles even
 * where aborting the fetch does not reach a pending read. On Deno it did
 * not once a garbage collection ran: its fetch aborts the body through the
 * request's signal, which follows ours only weakly, and went with the
 * collected Response; a stalled URL then hung past its timeout and ignored
 * Ctrl-C. The Response is also held until the body ends, so the abort
 * still reaches the connection and closes it.
 */
async function openUrl(
  where: string,
  url: string,
  options: ReadOptions,
): Promise<{ stream: ReadableStream<Uint8Array>; name: string }> {
  const { signal, timeout = DEFAULT_TIMEOUT_MS } = options;
  const fetching = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failure: Error | undefined;
  let reject!: (error: Error) => void;
  const failed = new Promise<never>((_, r) => (reject = r));
  failed.catch(() => {}); // only ever awaited in a race
  const fail = (error: Error) => {
    if (failure) return;
    failure = error;
    fetching.abort(error);
    reject(error);
  };
  const onAbort = () => fail(abortReason(where, url, signal!) as Error);
  signal?.addEventListener("abort", onAbort, { once: true });
  const quiet = () => { // (re)starts the clock of silence
    clearTimeout(timer);
    timer = setTimeout(
      () => fail(new Error(`${where}: ${url} sent nothing for ${timeout} ms: gave up (timeout option)`)),
      timeout,
    );
  };
  let response: Response | undefined;
  const done = () => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    response = undefined;
  };
  quiet();
  const fetched = fetch(url, { signal: fetching.signal });
  try {
    response = await Promise.race([fetched, failed]);
  } catch (error) {
    done();
    // An answer that comes after the failure is closed, not left holding the connection.
    fetched.then((late) => late.body?.cancel().catch(() => {}), () => {});
    if (failure) throw failure;
    throw new Error(`${where}: cannot fetch ${url}: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok || !response.body) {
    const { status, statusText } = response;
    response.body?.cancel().catch(() => {}); // not awaited: the error needs nothing more from the peer
    done();
    throw new Error(`${where}: cannot fetch ${url}: HTTP ${status} ${statusText}`);
  }
  clearTimeout(timer); // the clock runs only while a read waits on the peer, not while the consumer works
  const body = response.body.getReader();
  return {
    name: url,
    stream: new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          if (failure) throw failure; // aborted while the consumer worked
          quiet();
          const chunk = await Promise.race([body.read(), failed]);
          clearTimeout(timer);
          if (chunk.done) {
            done();
            controller.close();
          } else {
            controller.enqueue(chunk.value);
          }
        } catch (error) {
          done();
          body.cancel(failure).catch(() => {}); // not awaited: a stuck body must not hold the error back
          throw failure ?? new Error(`${where}: reading ${url} failed: ${(error as Error).message}`, { cause: error });
        }
      },
      async cancel(reason) {
        done();
        await body.cancel(reason);
      },
    }, { highWaterMark: 0 }),
  };
}
