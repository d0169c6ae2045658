/**
 * The file seam: a `WritableStream<Uint8Array>` over a path, on Deno and Bun.
 *
 * It uses `node:fs/promises`, which both runtimes implement; swapping in
 * `Deno.open(...).writable` or `Bun.file(...).writer()` is a change to this
 * file alone. Every chunk is written to the OS as it arrives, so a completed
 * line is never held back in a buffer.
 *
 * @module
 */
import { accessSync, constants, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** A path given as a string or a `file:` URL, as a string. Internal. */
export function toPath(path: string | URL): string {
  return path instanceof URL ? fileURLToPath(path) : path;
}

/**
 * Throws (synchronously, before anything runs) unless the folder that would
 * hold `path` exists and is writable; the message names the path.
 */
export function checkWritableFolder(path: string | URL): void {
  const file = toPath(path);
  const folder = dirname(file);
  try {
    if (!statSync(folder).isDirectory()) throw new Error(`"${folder}" is not a folder`);
    accessSync(folder, constants.W_OK);
  } catch (error) {
    throw new Error(`cannot write "${file}": ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Opens `path` for writing (truncating it, or appending to it) and returns a byte stream into it.
 * The file is opened before the returned promise resolves, so a bad path
 * fails here, with the path in the message.
 */
export async function openFileWritable(path: string | URL, append = false): Promise<WritableStream<Uint8Array>> {
  const file = toPath(path);
  let handle;
  try {
    handle = await open(file, append ? "a" : "w");
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot open "${file}" for writing: ${reason}`, { cause: error });
  }
  const fh = handle;
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      let offset = 0;
      while (offset < chunk.byteLength) {
        const { bytesWritten } = await fh.write(chunk, offset, chunk.byteLength - offset);
        offset += bytesWritten;
      }
    },
    close: () => fh.close(),
    abort: () => fh.close(),
  });
}
