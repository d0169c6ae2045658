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
import { closeSync, mkdirSync, openSync, statSync, unlinkSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** A path given as a string or a `file:` URL, as a string. Internal. */
export function toPath(path: string | URL): string {
  return path instanceof URL ? fileURLToPath(path) : path;
}

/**
 * Throws unless a file can be created in `folder`. It creates one and removes
 * it: `access(W_OK)` is not enough, as on Deno a read-only mount passes it and
 * the first real write failed only after an epoch had trained. Internal.
 */
export function probeWritableFolder(folder: string): void {
  if (!statSync(folder).isDirectory()) throw new Error(`"${folder}" is not a folder`);
  const probe = resolve(folder, `.fitstream-probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
  closeSync(openSync(probe, "wx"));
  unlinkSync(probe);
}

/**
 * Throws (synchronously, before anything runs) unless the folder that would
 * hold `path` exists and is writable; the message names the path.
 */
export function checkWritableFolder(path: string | URL): void {
  const file = toPath(path);
  try {
    probeWritableFolder(dirname(resolve(file)));
  } catch (error) {
    throw new Error(`cannot write "${file}": ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Creates the folder that will hold `path` (and its parents) when missing, as
 * `checkpoint` creates its folder, then checks it as
 * {@link checkWritableFolder} does: a log under `runs/today/` needs no
 * `mkdir` first.
 */
export function makeWritableFolder(path: string | URL): void {
  const file = toPath(path);
  try {
    mkdirSync(dirname(resolve(file)), { recursive: true });
  } catch (error) {
    throw new Error(`cannot create the folder of "${file}": ${(error as Error).message}`, { cause: error });
  }
  checkWritableFolder(path);
}

const NEWLINE = 0x0a;

/**
 * Before appending lines to `file`: a last line without its newline (what a
 * killed writer or a full disk leaves) is completed if it is a whole JSON
 * value, and cut off otherwise, so the next line starts on a line of its own.
 * Returns what was done, or `undefined` when the file already ended cleanly.
 */
async function repairLastLine(fh: FileHandle): Promise<string | undefined> {
  const { size } = await fh.stat();
  if (size === 0) return undefined;
  const last = new Uint8Array(1);
  await fh.read(last, 0, 1, size - 1);
  if (last[0] === NEWLINE) return undefined;
  // Find the start of the partial line, reading backwards a block at a time.
  const block = new Uint8Array(64 * 1024);
  let start = 0;
  for (let end = size; end > 0 && start === 0;) {
    const from = Math.max(0, end - block.length);
    const { bytesRead } = await fh.read(block, 0, end - from, from);
    const at = block.subarray(0, bytesRead).lastIndexOf(NEWLINE);
    if (at >= 0) start = from + at + 1;
    end = from;
  }
  const tail = new Uint8Array(size - start);
  await fh.read(tail, 0, tail.length, start);
  try {
    JSON.parse(new TextDecoder().decode(tail));
    await fh.write(new Uint8Array([NEWLINE]), 0, 1, size);
    return "its last line had no newline; one was added";
  } catch {
    await fh.truncate(start);
    return `its last line was cut off mid-write (${tail.length} bytes that are not JSON); they were removed`;
  }
}

/**
 * Opens `path` for writing (truncating it, or appending to it) and returns a byte stream into it.
 * The file is opened before the returned promise resolves, so a bad path
 * fails here, with the path in the message. When appending, a partial last
 * line is repaired first and `onRepair` is told how. Write errors (a full
 * disk) name the path.
 */
export async function openFileWritable(
  path: string | URL,
  append = false,
  onRepair: (what: string) => void = () => {},
): Promise<WritableStream<Uint8Array>> {
  const file = toPath(path);
  let handle;
  try {
    if (append) {
      handle = await open(file, "a+");
      const repaired = await repairLastLine(handle).catch((error) => {
        void handle!.close();
        throw error;
      });
      if (repaired) onRepair(repaired);
    } else {
      handle = await open(file, "w");
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot open "${file}" for writing: ${reason}`, { cause: error });
  }
  const fh = handle;
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      let offset = 0;
      try {
        while (offset < chunk.byteLength) {
          const { bytesWritten } = await fh.write(chunk, offset, chunk.byteLength - offset);
          offset += bytesWritten;
        }
      } catch (error) {
        await fh.close().catch(() => {});
        throw new Error(`cannot write to "${file}": ${(error as Error).message}`, { cause: error });
      }
    },
    close: () => fh.close(),
    abort: () => fh.close().catch(() => {}),
  });
}
