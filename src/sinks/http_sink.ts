/**
 * `httpSink(url, { run, token })`: events to a fitstream collector over HTTP,
 * without ever making training wait.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { requireInteger, requireKey, requireOptions } from "../internal/validate.ts";
import { jsonlLine } from "./jsonl.ts";
import { type SelectOptions, selector } from "./select.ts";

/** Options of {@link httpSink}. */
export interface HttpSinkOptions extends SelectOptions {
  /** The run's name at the collector (letters, digits, `.`, `_`, `-`): stored as `<name>.jsonl`. */
  run: string;
  /** The collector's token (`cli.ts serve --collect <dir> --token <token>`). */
  token: string;
  /** Lines held while the collector is away (integer >= 1, default 100,000); beyond it the oldest are dropped. */
  maxBuffer?: number;
  /** How long `close()` keeps trying to deliver what is held (ms, default 10,000). */
  closeTimeout?: number;
  /** Least time between two requests (ms, default 200): lines written meanwhile go together. */
  flushInterval?: number;
  /** Told how many lines were dropped, when it happens (default: a warning on stderr). */
  onDrop?: (count: number, reason: string) => void;
}

/** What an {@link httpSink} has done so far. */
export interface HttpSinkStats {
  /** Lines the collector has acknowledged. */
  readonly delivered: number;
  /** Lines dropped: the buffer was full, or `close()` ran out of time. */
  readonly dropped: number;
  /** Lines held now, waiting for the collector. */
  readonly pending: number;
}

/** An {@link httpSink}: a `WritableStream` of events with its delivery counts. */
export interface HttpSink extends WritableStream<object> {
  /** Delivered, dropped and pending lines. */
  readonly stats: HttpSinkStats;
}

const RUN_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;
/** Most lines one request carries. */
const LINES_PER_POST = 2000;

/**
 * A `WritableStream` of events that posts them as JSONL to a fitstream
 * collector (`POST <url>/runs/<run>`, bearer `token`). Writing never waits on
 * the network: each event becomes a line in a bounded buffer that a
 * background loop sends in batches. When the collector is unreachable or
 * restarting, lines wait and are sent once it answers again (the collector
 * appends); if the buffer fills, the oldest lines are dropped and reported —
 * through `onDrop`, and to the collector as a `{"fitstream_dropped": n}` line
 * in the run's log, so a gap is never silent. A refused token or run name
 * (401, 400) errors the stream at the next write. `close()` delivers what is
 * held (for up to `closeTimeout`) and reports what it could not.
 *
 * @example Stream a run to a collector
 * ```ts ignore
 * // on the collecting machine: deno run -A cli.ts serve --collect runs/ --token s3cret --host 0.0.0.0 --port 8080
 * await pipe(epochStream({ ... }), take(100))
 *   .pipeTo(httpSink("http://trainbox:8080", { run: "lr-0.01", token: "s3cret" }));
 * ```
 */
export function httpSink(url: string | URL, options: HttpSinkOptions): HttpSink {
  let endpoint: URL;
  try {
    endpoint = new URL(String(url));
  } catch {
    throw new TypeError(`httpSink: url must be an http(s) URL, got ${describe(url)}`);
  }
  if (!/^https?:$/.test(endpoint.protocol)) throw new TypeError(`httpSink: url must be http(s), got ${endpoint.href}`);
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`httpSink: options must be an object with run and token, got ${describe(options)}`);
  }
  requireOptions("httpSink", options);
  requireKey("httpSink", "run", options.run);
  if (!RUN_NAME.test(options.run)) {
    throw new RangeError(
      `httpSink: run must be 1-100 letters, digits, '.', '_' or '-' (not starting with '.'), got ${
        JSON.stringify(options.run)
      }`,
    );
  }
  requireKey("httpSink", "token", options.token);
  const { maxBuffer = 100_000, closeTimeout = 10_000, flushInterval = 200 } = options;
  requireInteger("httpSink", "maxBuffer", maxBuffer, 1);
  requireInteger("httpSink", "closeTimeout", closeTimeout, 0);
  requireInteger("httpSink", "flushInterval", flushInterval, 0);
  const onDrop = options.onDrop ??
    ((count: number, reason: string) =>
      console.warn(`httpSink: ${count} lines of run "${options.run}" dropped: ${reason}`));
  const select = selector("httpSink", options, [
    "run",
    "token",
    "maxBuffer",
    "closeTimeout",
    "flushInterval",
    "onDrop",
  ]);
  const target = new URL(
    `runs/${encodeURIComponent(options.run)}`,
    endpoint.href.endsWith("/") ? endpoint : `${endpoint.href}/`,
  );

  const queue: string[] = [];
  let head = 0; // queue[head…] are pending
  let delivered = 0, dropped = 0, unreported = 0;
  let failure: Error | undefined;
  let sending: Promise<void> | undefined;
  let closing = false;
  let wake: (() => void) | undefined;

  const pending = () => queue.length - head;
  const drop = (count: number, reason: string) => {
    dropped += count;
    unreported += count;
    onDrop(count, reason);
  };
  const compact = () => {
    if (head > 4096 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  /**
   * Sends what is pending, batch by batch, retrying with backoff while the
   * collector is away. Requests are at least `flushInterval` apart: a request
   * per event cost the training process ~7% of a housing epoch (bench/collector.ts).
   */
  const send = async () => {
    let backoff = 100;
    while (pending() > 0 && !failure) {
      const wait = lastSend + flushInterval - Date.now();
      if (wait > 0 && !closing && pending() < LINES_PER_POST) await sleep(wait);
      lastSend = Date.now();
      const count = Math.min(pending(), LINES_PER_POST);
      const marker = unreported > 0 ? JSON.stringify({ fitstream_dropped: unreported }) + "\n" : "";
      const body = marker + queue.slice(head, head + count).join("");
      let status = 0;
      try {
        const response = await fetch(target, {
          method: "POST",
          headers: { authorization: `Bearer ${options.token}`, "content-type": "application/x-ndjson" },
          body,
        });
        status = response.status;
        await response.body?.cancel();
      } catch {
        status = 0; // unreachable: try again
      }
      if (status >= 200 && status < 300) {
        head += count;
        delivered += count;
        if (marker) unreported = 0;
        compact();
        backoff = 100;
      } else if (status === 401 || status === 400 || status === 404 || status === 413) {
        failure = new Error(`httpSink: the collector at ${target.href} refused run "${options.run}": HTTP ${status}`);
      } else {
        if (closing && Date.now() > deadline) return;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  };
  let deadline = Infinity;
  let lastSend = 0;
  const kick = () => {
    sending ??= send().finally(() => {
      sending = undefined;
      if (pending() > 0 && !failure && !closing) kick();
    });
  };

  const stream = new WritableStream<object>({
    write(event) {
      if (failure) throw failure;
      queue.push(jsonlLine(select(event)));
      if (pending() > maxBuffer) {
        head++;
        drop(1, `the buffer of ${maxBuffer} lines was full while the collector was away`);
        compact();
      }
      kick();
    },
    async close() {
      closing = true;
      deadline = Date.now() + closeTimeout;
      wake?.();
      while (pending() > 0 && !failure && Date.now() <= deadline) {
        kick();
        await Promise.race([sending, new Promise((r) => setTimeout(r, 50))]);
        if (pending() > 0) wake?.();
      }
      await sending;
      if (failure) throw failure;
      if (pending() > 0) drop(pending(), `the collector did not take them within ${closeTimeout} ms of close()`);
    },
    abort() {
      closing = true;
      deadline = Date.now();
      wake?.();
    },
  });
  return Object.assign(stream, {
    stats: {
      get delivered() {
        return delivered;
      },
      get dropped() {
        return dropped;
      },
      get pending() {
        return pending();
      },
    },
  });
}
