/**
 * `serveRuns({ sources, collect })`: one page comparing many runs, followed
 * live — and, with `collect`, an HTTP collector that stores runs posted by
 * `httpSink` from any machine (`POST /runs/<name>`, bearer token).
 *
 * @module
 */
import { Hono } from "hono";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireInteger, requireKey, requireOptions } from "../internal/validate.ts";
import { probeWritableFolder } from "../sinks/file.ts";
import { uplotAssets } from "./assets.ts";
import { guard } from "./guard.ts";
import { RUNS_HTML, RUNS_JS } from "./runs_page.ts";
import { RunSet } from "./runs.ts";
import { HISTORY_PAGE } from "./history.ts";
import { serveFetch } from "./serve.ts";
import { uploadHandler } from "./collect.ts";
import { RunStore } from "./run_store.ts";

/** Where and how {@link serveRuns} collects runs. */
export interface CollectOptions {
  /** The folder runs are stored in (`<dir>/<name>.jsonl`; what deduplicates them in `<dir>/.fitstream/`). */
  dir: string;
  /** The bearer token uploads must carry. */
  token: string;
  /** An upload that sends nothing for this long (ms, default 10,000) is cut with 408, its complete lines kept. */
  idleTimeout?: number;
}

/** Options of {@link serveRuns}. */
export interface ServeRunsOptions {
  /** JSONL logs and folders of them (each `*.jsonl` in a folder is a run; new files appear). */
  sources?: readonly string[];
  /** Accept runs over HTTP into `dir` (which is served too), from requests bearing `token`. */
  collect?: CollectOptions;
  /** Port to listen on (default 0: a free port). */
  port?: number;
  /** Interface to bind (default `"127.0.0.1"`). */
  host?: string;
  /** Extra `Host` header values to answer (see `dashboard`). */
  allowedHosts?: readonly string[];
  /**
   * How often logs are read for new lines and folders for new files (ms, default 500); a log unchanged
   * for 30 s is checked every 10th time only (one the collector writes to, the next time).
   */
  pollMs?: number;
}

/** A running multi-run server. */
export interface RunsServer {
  /** The page's address. */
  readonly url: string;
  /** Reads every log now (the server also does so every `pollMs`). */
  poll(): Promise<void>;
  /** Stops serving. */
  close(): Promise<void>;
}

const OPTION_KEYS = keysOf<ServeRunsOptions>({
  sources: true,
  collect: true,
  port: true,
  host: true,
  allowedHosts: true,
  pollMs: true,
});
const COLLECT_KEYS = keysOf<CollectOptions>({ dir: true, token: true, idleTimeout: true });

/** Most values one history answer holds (rows × keys): a run with hundreds of keys gets fewer rows an answer. */
const MAX_ANSWER_VALUES = 1 << 18;

/**
 * Serves a page that overlays many runs: every numeric key charted with one
 * series per run (one colour each), a run list to show or hide runs, and a
 * table of each run's latest and best values. Logs that grow are followed,
 * and new `*.jsonl` files in a folder appear. The page polls small JSON
 * answers, so a slow browser holds no buffer on the server.
 *
 * With `collect: { dir, token }` it is also a collector: `POST /runs/<name>`
 * with `Authorization: Bearer <token>` and a JSONL body (streamed; several
 * requests append) writes the complete lines to `<dir>/<name>.jsonl`. A
 * missing or wrong token gets 401 and a bad name 400, and nothing is written
 * for either; a line that is not a JSON object ends the request with 400,
 * one over 1 MiB (in UTF-8 bytes) with 413, `idleTimeout` ms of silence
 * with 408, and a failed write (a full disk) with 500 — the lines before it
 * are kept, and the file never keeps a partial line. An `httpSink`'s lines
 * are stored once however often they are sent (its `X-Fitstream-Batch`
 * header numbers them; the highest number stored per sink is kept in
 * `<dir>/.fitstream/`, so a restarted collector remembers). Same guards as
 * `dashboard`: `Host` checked, CSP and friends on every response. Each run
 * charts its first 256 numeric keys; further keys stay in the file, counted
 * in `/api/runs` as `uncharted`.
 *
 * @example Compare the runs in a folder
 * ```ts ignore
 * const server = await serveRuns({ sources: ["runs/"], port: 8080 });
 * console.log(server.url);
 * ```
 */
export async function serveRuns(options: ServeRunsOptions): Promise<RunsServer> {
  requireOptions("serveRuns", options);
  checkKeys("serveRuns", options, OPTION_KEYS);
  const { sources = [], collect, port = 0, host = "127.0.0.1", allowedHosts = [], pollMs = 500 } = options;
  if (!Array.isArray(sources) || sources.some((s) => typeof s !== "string")) {
    throw new TypeError(`serveRuns: sources must be an array of paths, got ${describe(sources)}`);
  }
  requireInteger("serveRuns", "port", port, 0);
  requireKey("serveRuns", "host", host);
  requireInteger("serveRuns", "pollMs", pollMs, 10);
  let dir: string | undefined;
  let idleTimeout = 10_000;
  if (collect !== undefined) {
    if (typeof collect !== "object" || collect === null || Array.isArray(collect)) {
      throw new TypeError(`serveRuns: collect must be an object with dir and token, got ${describe(collect)}`);
    }
    checkKeys("serveRuns: collect", collect, COLLECT_KEYS);
    requireKey("serveRuns", "collect.dir", collect.dir);
    requireKey("serveRuns", "collect.token", collect.token);
    idleTimeout = collect.idleTimeout ?? idleTimeout;
    requireInteger("serveRuns", "collect.idleTimeout", idleTimeout, 1);
    dir = resolve(collect.dir);
    try {
      mkdirSync(dir, { recursive: true });
      probeWritableFolder(dir);
    } catch (error) {
      throw new Error(`serveRuns: cannot write runs to "${dir}": ${(error as Error).message}`, { cause: error });
    }
  }
  if (sources.length === 0 && !dir) throw new TypeError("serveRuns: give sources, a collect folder, or both");
  let runs: RunSet;
  try {
    runs = new RunSet(dir ? [...sources, dir] : sources);
  } catch (error) {
    throw new Error(`serveRuns: ${(error as Error).message}`, { cause: error });
  }
  await runs.poll();

  const guarded = guard(host, allowedHosts);
  const app = new Hono();
  app.use("*", guarded.middleware);
  app.get("/", (c) => c.html(RUNS_HTML));
  app.get("/runs.js", (c) => c.body(RUNS_JS, 200, { "content-type": "text/javascript; charset=utf-8" }));
  app.get("/uplot.js", async (c) => c.body((await uplotAssets()).js, 200, { "content-type": "text/javascript" }));
  app.get("/uplot.css", async (c) => c.body((await uplotAssets()).css, 200, { "content-type": "text/css" }));
  app.get("/favicon.ico", (c) => c.body(null, 204));
  app.get("/api/runs", (c) => c.json({ runs: runs.list() }));
  app.get("/api/runs/:name/history", (c) => {
    const from = Number(c.req.query("from") ?? 0);
    if (!Number.isSafeInteger(from) || from < 0) return c.text("from must be an integer >= 0", 400);
    const page = runs.history(c.req.param("name"), from, HISTORY_PAGE, MAX_ANSWER_VALUES);
    return page ? c.json(page) : c.text("no such run", 404);
  });
  if (dir && collect) {
    const store = new RunStore(dir, (path) => runs.rewind(path), (path) => runs.touch(path));
    const upload = uploadHandler(store, collect.token, idleTimeout);
    app.post("/runs/:name", (c) => upload(c.req.raw, c.req.param("name")));
  }
  app.notFound((c) => c.text("not found", 404));

  const server = serveFetch((request) => app.fetch(request), host, port);
  guarded.listening(server.port);
  const timer = setInterval(() => runs.busy || void runs.tick(), pollMs);
  (timer as unknown as { unref?: () => void }).unref?.();
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${server.port}/`;
  let closing: Promise<void> | undefined;
  return {
    url,
    poll: () => runs.poll(),
    close: () =>
      closing ??= (async () => {
        clearInterval(timer);
        await server.close(2000);
      })(),
  };
}
