/**
 * `dashboard({ port, host, keys })`: a live page of the run, served from the stage.
 *
 * @module
 */
import { Hono } from "hono";
import { describe } from "../internal/describe.ts";
import { requireFunction, requireInteger, requireKey, requireOptions } from "../internal/validate.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";
import { stopReasonOf } from "../stream/stop_reason.ts";
import { uplotAssets } from "./assets.ts";
import { History } from "./history.ts";
import { PAGE_HTML, PAGE_JS } from "./page.ts";
import { type RunningServer, serveFetch } from "./serve.ts";

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

/** A browser that falls this many messages behind is disconnected (it can reconnect for the history). */
const MAX_BACKLOG = 1024;

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
}

function jsonRow(event: object): Record<string, string | number | boolean | null> {
  const row: Record<string, string | number | boolean | null> = {};
  for (const [k, v] of Object.entries(event)) {
    if (typeof v === "number") row[k] = Number.isFinite(v) ? v : null;
    else if (typeof v === "string" || typeof v === "boolean") row[k] = v;
  }
  return row;
}

/**
 * Serves a live dashboard of the run on `http://host:port/`: one chart per
 * metric (train and validation loss together), a log-scale toggle, the
 * latest event as a table, and the run's status (running, stopped by take,
 * early stop, error). Updates are pushed with Server-Sent Events; a page
 * opened late gets the whole history. The stage never waits for a browser:
 * a slow one is dropped once it is far behind, and the history is kept as
 * compact numeric columns. Events pass on unchanged. The server binds
 * 127.0.0.1 unless told otherwise, answers only its own routes, and shuts
 * down when the stream ends or is cancelled.
 *
 * @example Watch a run
 * ```ts ignore
 * pipe(epochStream({ ... }), augment(validationLoss({ ... })), dashboard({ port: 8080 }), take(100));
 * ```
 */
export function dashboard<E extends object>(options: DashboardOptions = {}): DashboardStage<E> {
  requireOptions("dashboard", options);
  const {
    port = 0,
    host = "127.0.0.1",
    keys,
    linger = false,
    onListen = (url: string) => console.log(`fitstream dashboard: ${url}`),
  } = options;
  requireInteger("dashboard", "port", port, 0);
  if (port > 65535) throw new RangeError(`dashboard: port must be at most 65535, got ${port}`);
  requireKey("dashboard", "host", host);
  requireFunction("dashboard", "onListen", onListen);
  if (keys !== undefined && (!Array.isArray(keys) || keys.some((k) => typeof k !== "string"))) {
    throw new TypeError(`dashboard: keys must be an array of key names, got ${describe(keys)}`);
  }

  const history = new History();
  const clients = new Set<Client>();
  const encoder = new TextEncoder();
  let latest: Record<string, unknown> = {};
  let status = "running";
  let reason: string | undefined;

  const message = (event: string, data: unknown) =>
    encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const send = (bytes: Uint8Array) => {
    for (const client of clients) {
      const backlog = -(client.controller.desiredSize ?? 0);
      if (backlog > MAX_BACKLOG) {
        clients.delete(client);
        client.controller.close();
      } else {
        client.controller.enqueue(bytes);
      }
    }
  };

  const app = new Hono();
  app.get("/", (c) => c.html(PAGE_HTML));
  app.get("/app.js", (c) => c.body(PAGE_JS, 200, { "content-type": "text/javascript; charset=utf-8" }));
  app.get("/uplot.js", async (c) => c.body((await uplotAssets()).js, 200, { "content-type": "text/javascript" }));
  app.get("/uplot.css", async (c) => c.body((await uplotAssets()).css, 200, { "content-type": "text/css" }));
  app.get("/config", (c) => c.json({ keys: keys ?? null }));
  app.get("/history", (c) => c.json({ ...history.toJSON(), latest, status }));
  app.get("/events", () => {
    let client: Client;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        client = { controller };
        controller.enqueue(message("history", { ...history.toJSON(), latest, status }));
        if (status === "running") clients.add(client);
        else controller.close();
      },
      cancel() {
        clients.delete(client);
      },
    }, { highWaterMark: 16 });
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" },
    });
  });
  app.notFound((c) => c.text("not found", 404));
  app.use("*", async (c, next) => {
    await next();
    c.header("content-security-policy", "default-src 'self'; style-src 'self' 'unsafe-inline'");
    c.header("x-content-type-options", "nosniff");
  });

  let server: RunningServer;
  try {
    server = serveFetch((request) => app.fetch(request), host, port);
  } catch (error) {
    throw new Error(`dashboard: cannot listen on ${host}:${port}: ${(error as Error).message}`, { cause: error });
  }
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${server.port}/`;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      for (const client of clients) client.controller.close();
      clients.clear();
      await server.close();
      resolveClosed();
    })();
  onListen(url);

  const stage = stepStage<E, E>((event) => {
    history.push(event as Record<string, unknown>);
    latest = jsonRow(event);
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
      if (!linger) await close();
    },
  });
  return Object.assign(stage, { url, closed, close });
}
