/**
 * `dashboard({ port, host, keys })`: a live page of the run, served from the stage.
 *
 * @module
 */
import { Hono } from "hono";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireFunction, requireInteger, requireKey, requireOptions } from "../internal/validate.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";
import { stopReasonOf } from "../stream/stop_reason.ts";
import { uplotAssets } from "./assets.ts";
import { History, HISTORY_PAGE, shownValues } from "./history.ts";
import { HistoryAnswers } from "./history_answer.ts";
import { PAGE_HTML, PAGE_JS } from "./page.ts";
import { type RunningServer, serveFetch } from "./serve.ts";
import { guard } from "./guard.ts";

/** Options of {@link dashboard}. */
export interface DashboardOptions {
  /** Port to listen on (default 0: a free port, reported through `onListen`). */
  port?: number;
  /** Interface to bind (default `"127.0.0.1"`: this machine only). */
  host?: string;
  /** Keys to chart (default: every numeric key; `train_loss` and `val_loss` share a chart). */
  keys?: readonly string[];
  /** Called with the page's URL once the server listens (default: prints it). */
  onListen?: (url: string) => void;
  /** Keep serving the finished run after the stream ends, until `close()` (default `false`). */
  linger?: boolean;
  /**
   * Most pages connected at once (integer >= 1, default 16), and most `/history` answers being sent at
   * once; more get HTTP 503.
   */
  maxClients?: number;
  /**
   * Extra `Host` header values to answer (e.g. `"myhost:8080"` behind a tunnel). By default only the
   * address served is answered (and `localhost` when bound to a loopback address): a page from another
   * site that rebinds its name to this address gets HTTP 421 instead of the run's data.
   */
  allowedHosts?: readonly string[];
}

/** A dashboard stage; `url` resolves to the page's address. */
export interface DashboardStage<E> extends Stage<E, E> {
  /** The page's address, e.g. `http://127.0.0.1:41234/`. */
  readonly url: string;
  /** Resolves when the server has shut down (after the stream ended or was cancelled). */
  readonly closed: Promise<void>;
  /** Shuts the server down now (pages keep what they show). */
  close(): Promise<void>;
}

const OPTION_KEYS = keysOf<DashboardOptions>({
  port: true,
  host: true,
  keys: true,
  onListen: true,
  linger: true,
  maxClients: true,
  allowedHosts: true,
});

/** A browser that falls this many messages behind is disconnected (it can reconnect for the history). */
const MAX_BACKLOG = 1024;
/** History goes to a page in messages of this many events, each made when the page has read the one before. */
const HISTORY_CHUNK = 1000;
/** How long closing waits for pages to take their last messages before it drops their connections (ms). */
const CLOSE_GRACE_MS = 2000;

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** Events of the history sent so far; live rows go only to pages that have caught up. */
  cursor: number;
  live: boolean;
}

/**
 * Serves a live dashboard of the run on `http://host:port/`: one chart per
 * metric (train and validation loss together), a log-scale toggle, the
 * latest event as a table, and the run's status (running, stopped by take,
 * early stop, error). Updates are pushed with Server-Sent Events; a page
 * opened late gets the whole history, a thousand events at a time as it
 * reads them. The stage never waits for a browser: a slow one is dropped once
 * it is far behind, a page that stops reading holds at most one chunk, and
 * the history is kept as compact numeric columns. With many keys the page
 * charts a few and lets you pick others. Events pass on unchanged. The
 * server binds 127.0.0.1 unless told otherwise, answers only its own routes
 * and only requests addressed to it (`Host`), sends CSP, `nosniff` and
 * `no-referrer` on every response, takes at most `maxClients` pages and as
 * many `/history` answers at once (each sent in pieces as it is read; a
 * reader that stops reading is cut once the run has ended), and shuts down
 * when the stream ends or is cancelled.
 *
 * Place it last in the pipeline, after `take` and `earlyStop`: from there it
 * sees how the stream ended and tells a `take` cap from an early stop.
 *
 * @example Watch a run
 * ```ts ignore
 * pipe(epochStream({ ... }), augment(validationLoss({ ... })), take(100), dashboard({ port: 8080 }));
 * ```
 */
export function dashboard<E extends object>(options: DashboardOptions = {}): DashboardStage<E> {
  requireOptions("dashboard", options);
  checkKeys("dashboard", options, OPTION_KEYS);
  const {
    port = 0,
    host = "127.0.0.1",
    keys,
    linger = false,
    maxClients = 16,
    allowedHosts = [],
    onListen = (url: string) => console.log(`fitstream dashboard: ${url}`),
  } = options;
  requireInteger("dashboard", "maxClients", maxClients, 1);
  if (!Array.isArray(allowedHosts) || allowedHosts.some((h) => typeof h !== "string")) {
    throw new TypeError(`dashboard: allowedHosts must be an array of host names, got ${describe(allowedHosts)}`);
  }
  requireInteger("dashboard", "port", port, 0);
  if (port > 65535) throw new RangeError(`dashboard: port must be at most 65535, got ${port}`);
  requireKey("dashboard", "host", host);
  requireFunction("dashboard", "onListen", onListen);
  if (keys !== undefined && (!Array.isArray(keys) || keys.some((k) => typeof k !== "string"))) {
    throw new TypeError(`dashboard: keys must be an array of key names, got ${describe(keys)}`);
  }

  const history = new History();
  const clients = new Set<Client>();
  const answers = new HistoryAnswers(CLOSE_GRACE_MS);
  const encoder = new TextEncoder();
  let latest: Record<string, unknown> = {};
  let status = "running";
  let reason: string | undefined;

  const message = (event: string, data: unknown) =>
    encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const drop = (client: Client) => {
    clients.delete(client);
    try {
      client.controller.close();
    } catch { /* already closed */ }
  };
  const send = (bytes: Uint8Array) => {
    for (const client of clients) {
      if (!client.live) continue; // still reading the history: it reaches this row by itself
      const backlog = -(client.controller.desiredSize ?? 0);
      if (backlog > MAX_BACKLOG) drop(client);
      else {
        client.cursor = history.length; // first: enqueue may call pull (feed) at once
        client.controller.enqueue(bytes);
      }
    }
  };
  /** The next message of a page's stream: a chunk of history, or the switch to live rows (or the end). */
  const feed = (client: Client) => {
    const { controller } = client;
    if (client.cursor < history.length) {
      const chunk = history.slice(client.cursor, client.cursor + HISTORY_CHUNK);
      client.cursor += chunk.length;
      controller.enqueue(message("rows", chunk));
    } else if (!client.live) {
      client.live = true;
      controller.enqueue(message("live", { latest, status }));
      if (status !== "running") {
        controller.enqueue(message("status", status));
        clients.delete(client);
        controller.close();
      }
    }
  };

  const guarded = guard(host, allowedHosts);
  const app = new Hono();
  app.use("*", guarded.middleware); // first, so every response — pages, data, errors, 404 — is guarded
  app.get("/", (c) => c.html(PAGE_HTML));
  app.get("/app.js", (c) => c.body(PAGE_JS, 200, { "content-type": "text/javascript; charset=utf-8" }));
  app.get("/uplot.js", async (c) => c.body((await uplotAssets()).js, 200, { "content-type": "text/javascript" }));
  app.get("/uplot.css", async (c) => c.body((await uplotAssets()).css, 200, { "content-type": "text/css" }));
  app.get("/favicon.ico", (c) => c.body(null, 204));
  app.get("/config", (c) => c.json({ keys: keys ?? null }));
  app.get("/history", (c) => {
    const from = Number(c.req.query("from") ?? 0);
    if (!Number.isSafeInteger(from) || from < 0) return c.text("from must be an integer >= 0", 400);
    if (answers.size >= maxClients) {
      c.header("retry-after", "1");
      return c.text(`too many history answers being sent (${maxClients}): retry when one has finished`, 503);
    }
    return answers.respond(history.slice(from, from + HISTORY_PAGE), { total: history.length, latest, status });
  });
  app.get("/events", (c) => {
    if (clients.size >= maxClients) return c.text(`too many pages open (${maxClients}): close one`, 503);
    const client: Client = { controller: undefined!, cursor: 0, live: false };
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        client.controller = controller;
        clients.add(client);
        controller.enqueue(message("start", { total: history.length, status }));
      },
      pull: () => feed(client),
      cancel() {
        clients.delete(client);
      },
    }, { highWaterMark: 2 });
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" },
    });
  });
  app.notFound((c) => c.text("not found", 404));

  let server: RunningServer;
  try {
    server = serveFetch((request) => app.fetch(request), host, port);
  } catch (error) {
    throw new Error(`dashboard: cannot listen on ${host}:${port}: ${(error as Error).message}`, { cause: error });
  }
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${server.port}/`;
  guarded.listening(server.port);
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      for (const client of [...clients]) drop(client);
      // A page that stopped reading keeps its connection; the server's graceful shutdown waited for
      // it (19 s measured on Deno, and Ctrl-C of `cli.ts serve` with it): after a grace period it is cut.
      await server.close(CLOSE_GRACE_MS);
      resolveClosed();
    })();
  onListen(url);

  const stage = stepStage<E, E>((event) => {
    history.push(event as Record<string, unknown>);
    latest = shownValues(event);
    reason = stopReasonOf(event) ?? reason;
    if (clients.size > 0) send(message("row", latest));
    return event;
  }, {
    async onEnd({ how, error }) {
      status = how === "error"
        ? `error: ${error instanceof Error ? error.message : String(error)}`
        : how === "cancelled"
        ? "stopped"
        : `stopped by ${reason ?? "end of stream"}`;
      send(message("status", status));
      for (const client of [...clients]) if (client.live) drop(client);
      answers.watchStalled(); // as pages that stopped reading are dropped, so are stalled history readers
      if (!linger) await close();
    },
  });
  return Object.assign(stage, { url, closed, close });
}
