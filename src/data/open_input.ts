/**
 * Opening a byte source by kind: an `http(s)` URL through `fetch`, a file
 * through `node:fs`, or a stream as is. Shared by `loadCsv` and `fromJsonl`.
 *
 * @module
 */
import { open } from "node:fs/promises";
import { describe } from "../internal/describe.ts";
import { toPath } from "../sinks/file.ts";

function isUrl(source: string | URL): boolean {
  const text = String(source);
  return /^https?:\/\//i.test(text);
}

/** Opens a URL (`fetch`), a file path or `file:` URL, or passes a byte stream through. Internal. */
export async function openReadable(
  where: string,
  source: string | URL | ReadableStream<Uint8Array>,
): Promise<{ stream: ReadableStream<Uint8Array>; name: string }> {
  if (source instanceof ReadableStream) return { stream: source, name: "stream" };
  if (typeof source !== "string" && !(source instanceof URL)) {
    throw new TypeError(`${where}: source must be a URL, a file path or a ReadableStream, got ${describe(source)}`);
  }
  const name = String(source);
  if (isUrl(source)) {
    let response: Response;
    try {
      response = await fetch(source);
    } catch (error) {
      throw new Error(`${where}: cannot fetch ${name}: ${(error as Error).message}`, { cause: error });
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new Error(`${where}: cannot fetch ${name}: HTTP ${response.status} ${response.statusText}`);
    }
    return { stream: response.body, name };
  }
  const path = toPath(source);
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw new Error(`${where}: cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  const file = handle;
  const buffer = new Uint8Array(64 * 1024);
  return {
    name: path,
    stream: new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) {
          await file.close();
          controller.close();
        } else {
          controller.enqueue(buffer.slice(0, bytesRead));
        }
      },
      cancel: () => file.close(),
    }),
  };
}
