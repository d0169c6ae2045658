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
  /** How long `close()` keeps trying to deliver what is held (ms, default 10,000); then it drops the rest. */
  closeTimeout?: number;
  /** Least time between two requests (ms, default 200): lines written meanwhile go together. */
  flushInterval?: number;
  /** How long one request may take to be answered (ms, default 30,000); then its batch is sent again. */
  requestTimeout?: number;
  /** Told how many lines were dropped, when it happens (default: a warning on stderr). */
  onDrop?: (count: number, reason: string) => void;
}

/**
 * What an {@link httpSink} has done so far. Every line written is counted in
 * exactly one of `delivered`, `dropped` and `pending`.
 */
export interface HttpSinkStats {
  /** Lines the collector has acknowledged. */
  readonly delivered: number;
  /** Lines given up: the buffer was full, the collector refused the run, or `close()` ran out of time. */
  readonly dropped: number;
  /** Lines held now, waiting for the collector. */
  readonly pending: number;
  /** Lines sent again after a request failed or got no answer in time (the collector stores them once). */
  readonly resent: number;
  /** Lines sent again that the collector already had: an answer to an earlier request was lost. */
  readonly duplicates: number;
}

/** An {@link httpSink}: a `WritableStream` of events with its delivery counts. */
export interface HttpSink extends WritableStream<object> {
  /** Delivered, dropped and pending lines, and what was sent again. */
  readonly stats: HttpSinkStats;
}

const RUN_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;
/** Most lines one request carries. */
const LINES_PER_POST = 2000;

/**
 * Lines sent together, numbered: its lines have sequence numbers `first` …
 * `first + size - 1` (a gap marker, when it has one, is its first line and
 * numbered too). A batch is sent as it is until the collector takes it, so a
 * batch sent again carries the same numbers and the collector can tell the
 * lines it already stored.
 */
interface Batch {
  first: number;
  body: string;
  /** Lines written to the sink in it (the gap marker is not one). */
  count: number;
  sent: boolean;
}

/** The answer to one request: its status (0: no answer) and the lines the collector said it already had. */
interface Answer {
  status: number;
  duplicates: number;
}

/** 16 hex digits, random: tells this sink's batches from those of other sinks (and runs) at the collector. */
function sinkId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A `WritableStream` of events that posts them as JSONL to a fitstream
 * collector (`POST <url>/runs/<run>`, bearer `token`). Writing never waits on
 * the network: each event becomes a line in a bounded buffer that a
 * background loop sends in batches. When the collector is unreachable or
 * restarting, lines wait and are sent once it answers again (the collector
 * appends); if the buffer fills, the oldest lines are dropped and reported —
 * through `onDrop`, and to the collector as a `{"fitstream_dropped": n}` line
 * in the run's log, so a gap is never silent. A request without an answer
 * within `requestTimeout` is sent again; each batch carries
 * `X-Fitstream-Batch: <sink id>:<first line's number>`, so the collector
 * stores every line once even when an answer was lost or it restarted. A
 * refused token or run name (401, 400) drops what is held and errors the
 * stream at the next write. `close()` delivers what is held (for up to
 * `closeTimeout`, aborting a request still open then) and reports what it
 * could not. `stats` counts every line written as delivered, dropped or pending.
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
  const { maxBuffer = 100_000, closeTimeout = 10_000, flushInterval = 200, requestTimeout = 30_000 } = options;
  requireInteger("httpSink", "maxBuffer", maxBuffer, 1);
  requireInteger("httpSink", "closeTimeout", closeTimeout, 0);
  requireInteger("httpSink", "flushInterval", flushInterval, 0);
  requireInteger("httpSink", "requestTimeout", requestTimeout, 1);
  const onDrop = options.onDrop ??
    ((count: number, reason: string) =>
      console.warn(`httpSink: ${count} lines of run "${options.run}" dropped: ${reason}`));
  const select = selector("httpSink", options, [
    "run",
    "token",
    "maxBuffer",
    "closeTimeout",
    "flushInterval",
    "requestTimeout",
    "onDrop",
  ]);
  const target = new URL(
    `runs/${encodeURIComponent(options.run)}`,
    endpoint.href.endsWith("/") ? endpoint : `${endpoint.href}/`,
  );
  const id = sinkId();
  // Half the buffer at most, so lines written while a batch waits to be sent again still have room.
  const batchLines = Math.min(LINES_PER_POST, Math.ceil(maxBuffer / 2));

  const queue: string[] = [];
  let head = 0; // queue[head…] wait for a batch
  let batch: Batch | undefined; // taken from the queue, sent until the collector takes it
  let nextSeq = 1;
  let delivered = 0, dropped = 0, unreported = 0, resent = 0, duplicates = 0;
  let failure: Error | undefined;
  let sending: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  let deadline = Infinity;
  let lastSend = 0;
  let inFlight: AbortController | undefined;
  let wake: (() => void) | undefined;

  const waiting = () => queue.length - head;
  const pending = () => waiting() + (batch?.count ?? 0);
  const drop = (count: number, reason: string) => {
    if (count === 0) return;
    dropped += count;
    onDrop(count, reason);
  };
  /** Drops every line held (the batch and the queue): the sink gives up on them. */
  const dropHeld = (reason: string) => {
    const count = pending();
    batch = undefined;
    queue.length = 0;
    head = 0;
    drop(count, reason);
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
  const late = () => closing !== undefined && Date.now() >= deadline;

  const nextBatch = (): Batch => {
    const count = Math.min(waiting(), batchLines);
    const lines = queue.slice(head, head + count);
    head += count;
    compact();
    if (unreported > 0) lines.unshift(JSON.stringify({ fitstream_dropped: unreported }) + "\n");
    unreported = 0;
    const made = { first: nextSeq, body: lines.join(""), count, sent: false };
    nextSeq += lines.length;
    return made;
  };

  /** Posts `b`, giving up after `requestTimeout` (or at close()'s deadline): a silent collector never holds it. */
  const post = async (b: Batch): Promise<Answer> => {
    const abort = new AbortController();
    inFlight = abort;
    const limit = closing ? Math.max(0, Math.min(requestTimeout, deadline - Date.now())) : requestTimeout;
    const timer = setTimeout(() => abort.abort(), limit);
    try {
      const response = await fetch(target, {
        method: "POST",
        headers: {
          authorization: `Bearer ${options.token}`,
          "content-type": "application/x-ndjson",
          "x-fitstream-batch": `${id}:${b.first}`,
        },
        body: b.body,
        signal: abort.signal,
      });
      if (!response.ok) {
        await response.body?.cancel().catch(() => {});
        return { status: response.status, duplicates: 0 };
      }
      const answer = await response.json().catch(() => undefined) as { duplicates?: unknown } | undefined;
      const had = answer?.duplicates;
      return { status: response.status, duplicates: typeof had === "number" && had >= 0 ? had : 0 };
    } catch {
      return { status: 0, duplicates: 0 }; // unreachable, or no answer in time: sent again
    } finally {
      clearTimeout(timer);
      inFlight = undefined;
    }
  };

  /**
   * Sends what is held, batch by batch, retrying with backoff while the
   * collector is away. Requests are at least `flushInterval` apart: a request
   * per event cost the training process ~7% of a housing epoch (bench/collector.ts).
   */
  const send = async () => {
    let backoff = 100;
    while (!failure && pending() > 0 && !late()) {
      if (!batch) {
        const wait = lastSend + flushInterval - Date.now();
        if (wait > 0 && !closing && waiting() < batchLines) await sleep(wait);
        if (waiting() === 0) continue;
        batch = nextBatch();
      }
      const current = batch;
      if (current.sent) resent += current.count;
      current.sent = true;
      lastSend = Date.now();
      const { status, duplicates: had } = await post(current);
      if (status >= 200 && status < 300) {
        batch = undefined;
        delivered += current.count;
        duplicates += had;
        backoff = 100;
      } else if (status === 401 || status === 400 || status === 404 || status === 413) {
        failure = new Error(`httpSink: the collector at ${target.href} refused run "${options.run}": HTTP ${status}`);
        dropHeld(failure.message);
      } else if (!late()) {
        await sleep(Math.min(backoff, closing ? Math.max(0, deadline - Date.now()) : backoff));
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  };
  const kick = () => {
    sending ??= send().finally(() => {
      sending = undefined;
      if (pending() > 0 && !failure && !closing) kick();
    });
  };

  /** Delivers what is held for up to `closeTimeout` (aborting a request still open then), drops the rest. */
  const finish = () =>
    closing ??= (async () => {
      deadline = Date.now() + closeTimeout;
      const cut = setTimeout(() => inFlight?.abort(), closeTimeout);
      wake?.();
      try {
        while (!failure && pending() > 0 && !late()) {
          kick();
          await sending;
        }
        await sending;
      } finally {
        clearTimeout(cut);
      }
      if (pending() > 0) dropHeld(`the collector did not take them within ${closeTimeout} ms of close()`);
    })();

  const stream = new WritableStream<object>({
    write(event) {
      if (failure) throw failure;
      queue.push(jsonlLine(select(event)));
      if (pending() > maxBuffer) {
        head++; // the oldest line not in the batch being sent
        unreported++;
        drop(1, `the buffer of ${maxBuffer} lines was full while the collector was away`);
        compact();
      }
      kick();
    },
    async close() {
      await finish();
      if (failure) throw failure;
    },
    async abort() {
      await finish(); // lines written before an error are delivered too
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
      get resent() {
        return resent;
      },
      get duplicates() {
        return duplicates;
      },
    },
  });
}
