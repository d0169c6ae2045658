/**
 * `serveRuns({ sources, collect })`: one page comparing many runs, followed
 * live — and, with `collect`, an HTTP collector that stores runs posted by
 * `httpSink` from any machine (`POST /runs/<name>`, bearer token).
 *
 * @module
 */
import { Hono } from "hono";
import { timingSafeEqual } from "node:crypto";
import { mkdirSync } from "node:fs";
import { open } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe } from "../internal/describe.ts";
import { requireInteger, requireKey, requireOptions } from "../internal/validate.ts";
import { probeWritableFolder } from "../sinks/file.ts";
import { uplotAssets } from "./assets.ts";
import { guard } from "./guard.ts";
import { RUNS_HTML, RUNS_JS } from "./runs_page.ts";
import { RunSet } from "./runs.ts";
import { HISTORY_PAGE } from "./history.ts";
import { lineSplitter } from "../data/lines.ts";
import { serveFetch } from "./serve.ts";

/** Options of {@link serveRuns}. */
export interface ServeRunsOptions {
  /** JSONL logs and folders of them (each `*.jsonl` in a folder is a run; new files appear). */
  sources?: readonly string[];
  /** Accept runs over HTTP into `dir` (which is served too), from requests bearing `token`. */
  collect?: { dir: string; token: string };
  /** Port to listen on (default 0: a free port). */
  port?: number;
  /** Interface to bind (default `"127.0.0.1"`). */
  host?: string;
  /** Extra `Host` header values to answer (see `dashboard`). */
  allowedHosts?: readonly string[];
  /** How often logs are read for new lines and folders for new files (ms, default 500). */
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

/** A run name a collector accepts: a file name of letters, digits, `.`, `_` and `-`, not hidden. */
const RUN_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;
/** Longest line a collector takes (bytes). */
const MAX_LINE = 1 << 20;
/** Most collector requests read at once (more get 503 and are retried by httpSink): bounds the memory they hold. */
const MAX_UPLOADS = 64;

function sameSecret(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given), b = new TextEncoder().encode(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

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
 * for either; a line that is not a JSON object ends the request with 400
 * (the lines before it are kept). Same guards as `dashboard`: `Host` checked,
 * CSP and friends on every response.
 *
 * @example Compare the runs in a folder
 * ```ts ignore
 * const server = await serveRuns({ sources: ["runs/"], port: 8080 });
 * console.log(server.url);
 * ```
 */
export async function serveRuns(options: ServeRunsOptions): Promise<RunsServer> {
  requireOptions("serveRuns", options);
  const { sources = [], collect, port = 0, host = "127.0.0.1", allowedHosts = [], pollMs = 500 } = options;
  if (!Array.isArray(sources) || sources.some((s) => typeof s !== "string")) {
    throw new TypeError(`serveRuns: sources must be an array of paths, got ${describe(sources)}`);
  }
  requireInteger("serveRuns", "port", port, 0);
  requireKey("serveRuns", "host", host);
  requireInteger("serveRuns", "pollMs", pollMs, 10);
  let dir: string | undefined;
  if (collect !== undefined) {
    requireKey("serveRuns", "collect.dir", collect?.dir);
    requireKey("serveRuns", "collect.token", collect.token);
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
    const page = runs.history(c.req.param("name"), from, HISTORY_PAGE);
    return page ? c.json(page) : c.text("no such run", 404);
  });
  if (dir && collect) {
    const folder = dir;
    let uploads = 0;
    app.post("/runs/:name", async (c) => {
      if (uploads >= MAX_UPLOADS) {
        await c.req.raw.body?.cancel().catch(() => {});
        return c.text(`busy: ${MAX_UPLOADS} runs are being received; try again`, 503);
      }
      const auth = c.req.header("authorization") ?? "";
      if (!auth.startsWith("Bearer ") || !sameSecret(auth.slice(7), collect.token)) {
        await c.req.raw.body?.cancel().catch(() => {});
        return c.text("a valid Authorization: Bearer <token> is needed", 401);
      }
      const name = c.req.param("name");
      if (!RUN_NAME.test(name)) {
        await c.req.raw.body?.cancel().catch(() => {});
        return c.text("run names are 1-100 letters, digits, '.', '_' or '-', not starting with '.'", 400);
      }
      uploads++;
      try {
        return await appendRun(join(folder, `${name}.jsonl`), c.req.raw.body);
      } finally {
        uploads--;
      }
    });
  }
  app.notFound((c) => c.text("not found", 404));

  const server = serveFetch((request) => app.fetch(request), host, port);
  guarded.listening(server.port);
  const timer = setInterval(() => runs.busy || void runs.poll(), pollMs);
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

/** Appends the complete JSON-object lines of a streamed body to `path`; answers how many were written. */
async function appendRun(path: string, body: ReadableStream<Uint8Array> | null): Promise<Response> {
  if (!body) return Response.json({ written: 0 });
  const file = await open(path, "a");
  const decoder = new TextDecoder();
  const lines: string[] = []; // completed by the last chunk, not yet checked
  const splitter = lineSplitter((line) => void lines.push(line));
  let written = 0, lineNo = 0;
  const reader = body.getReader();
  const reject = async (status: number, message: string) => {
    await reader.cancel().catch(() => {});
    return new Response(`${message} (${written} lines written before it)`, { status });
  };
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) {
        splitter.push(decoder.decode());
        splitter.end();
      } else {
        splitter.push(decoder.decode(chunk.value, { stream: true }));
      }
      if (splitter.pending() > MAX_LINE) {
        return await reject(413, `line ${lineNo + lines.length + 1} is longer than ${MAX_LINE} bytes`);
      }
      const valid: string[] = [];
      for (const line of lines.splice(0)) {
        lineNo++;
        if (line.trim() === "") continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          value = undefined;
        }
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
          if (valid.length) await file.write(valid.join(""));
          written += valid.length;
          return await reject(400, `line ${lineNo} is not a JSON object`);
        }
        valid.push((line.endsWith("\r") ? line.slice(0, -1) : line) + "\n");
      }
      if (valid.length) await file.write(valid.join(""));
      written += valid.length;
      if (chunk.done) return Response.json({ written });
    }
  } finally {
    await file.close();
  }
}
