/**
 * The collector's upload route, `POST /runs/<name>`: checks the token and the
 * name, reads the JSONL body as it streams in (bounded lines, bounded
 * silence), and stores its lines with a {@link RunStore}.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { byteLines } from "./byte_lines.ts";
import type { RunStore, StoredLine } from "./run_store.ts";

/** A run name a collector accepts: a file name of letters, digits, `.`, `_` and `-`, not hidden. */
const RUN_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;
/** Longest line a collector takes (bytes, UTF-8). */
export const MAX_LINE = 1 << 20;
/** Most uploads read at once (more get 503 and are retried by httpSink): bounds the memory they hold. */
export const MAX_UPLOADS = 64;
/** `X-Fitstream-Batch: <sink id>:<sequence number of the body's first line>`, sent by httpSink. */
const BATCH = /^([A-Za-z0-9_-]{8,64}):([1-9][0-9]{0,15})$/;

function sameSecret(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given), b = new TextEncoder().encode(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The next chunk of `reader`, or `"idle"` if none comes within `ms`. */
function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadableStreamReadResult<Uint8Array> | "idle"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const read = reader.read();
  read.catch(() => {}); // an upload cut for silence may still fail its read later
  const idle = new Promise<"idle">((resolve) => (timer = setTimeout(() => resolve("idle"), ms)));
  return Promise.race([read, idle]).finally(() => clearTimeout(timer));
}

/**
 * The handler of `POST /runs/<name>`: 401 without the token, 400 for a bad
 * name or batch header, 503 when `MAX_UPLOADS` are being read. Uploads that
 * send nothing for `idleTimeout` ms are cut with 408 (their complete lines
 * are kept): 64 uploads that stalled in their bodies held every slot for
 * minutes (issue 29, finding 8). Internal.
 */
export function uploadHandler(
  store: RunStore,
  token: string,
  idleTimeout: number,
): (request: Request, name: string) => Promise<Response> {
  let uploads = 0;
  const refuse = async (request: Request, status: number, message: string) => {
    await request.body?.cancel().catch(() => {});
    return new Response(message, { status });
  };
  return async (request, name) => {
    if (uploads >= MAX_UPLOADS) {
      return await refuse(request, 503, `busy: ${MAX_UPLOADS} runs are being received; try again`);
    }
    const auth = request.headers.get("authorization") ?? "";
    if (!auth.startsWith("Bearer ") || !sameSecret(auth.slice(7), token)) {
      return await refuse(request, 401, "a valid Authorization: Bearer <token> is needed");
    }
    if (!RUN_NAME.test(name)) {
      return await refuse(request, 400, "run names are 1-100 letters, digits, '.', '_' or '-', not starting with '.'");
    }
    const header = request.headers.get("x-fitstream-batch");
    const batch = header === null ? undefined : BATCH.exec(header);
    if (batch === null || (batch && !Number.isSafeInteger(Number(batch[2])))) {
      return await refuse(request, 400, "X-Fitstream-Batch must be <sink id>:<sequence number of the first line>");
    }
    uploads++;
    try {
      const from = batch ? { sink: batch[1], first: Number(batch[2]) } : undefined;
      return await receive(store, name, request.body, from, idleTimeout);
    } finally {
      uploads--;
    }
  };
}

/**
 * Stores the lines of a streamed body as they complete. Line `i` of a batch
 * (counting from 0, blank lines too) has sequence number `first + i`; the
 * store skips those it holds already.
 */
async function receive(
  store: RunStore,
  name: string,
  body: ReadableStream<Uint8Array> | null,
  batch: { sink: string; first: number } | undefined,
  idleTimeout: number,
): Promise<Response> {
  let written = 0, duplicates = 0;
  const answer = () => (batch ? { written, duplicates } : { written });
  if (!body) return Response.json(answer());
  const decoder = new TextDecoder();
  const ready: StoredLine[] = [];
  let lines = 0;
  let refusal: { status: number; message: string } | undefined;
  const splitter = byteLines(MAX_LINE, (bytes) => {
    if (refusal) return;
    const seq = batch ? batch.first + lines : undefined;
    lines++;
    const text = decoder.decode(bytes);
    if (text.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      refusal = { status: 400, message: `line ${lines} is not a JSON object` };
    } else {
      ready.push({ text: text + "\n", seq });
    }
  }, () => {
    lines++;
    refusal ??= { status: 413, message: `line ${lines} is longer than ${MAX_LINE} bytes` };
  });
  const store_ = async () => {
    if (ready.length === 0) return;
    const done = await store.append(name, ready.splice(0), batch?.sink);
    written += done.written;
    duplicates += done.duplicates;
  };
  const reader = body.getReader();
  const stop = (status: number, message: string, headers: Record<string, string> = {}) => {
    void reader.cancel().catch(() => {}); // not awaited: a stalled sender must not hold this answer
    return new Response(`${message} (${written} lines written before it)`, { status, headers });
  };
  for (;;) {
    let next: ReadableStreamReadResult<Uint8Array> | "idle";
    try {
      next = await readWithin(reader, idleTimeout);
    } catch (error) {
      return stop(400, `the upload broke off: ${(error as Error).message}`);
    }
    if (next === "idle") {
      return stop(408, `no data for ${idleTimeout} ms: the upload was cut`, { connection: "close" });
    }
    if (next.done) splitter.end();
    else splitter.push(next.value);
    try {
      await store_(); // the lines before a refused one are kept
    } catch (error) {
      return stop(500, `the lines could not be stored: ${(error as Error).message}`);
    }
    if (refusal) return stop(refusal.status, refusal.message);
    if (next.done) return Response.json(answer());
  }
}
