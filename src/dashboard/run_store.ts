/**
 * Where a collector keeps posted runs: `<dir>/<name>.jsonl`, appended to one
 * write at a time per run, never leaving a partial line, and storing each
 * line of an `httpSink` once however often it is sent.
 *
 * @module
 */
import { mkdir, open, readFile, rename, stat, truncate, writeFile } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";

/**
 * The file writes of the store, replaceable by tests: a full disk is hard to
 * come by in a test, so one puts a `write` here that fails part way. Internal.
 */
export const storeIo = {
  /** Writes some of `bytes` at the end of `file` and answers how many it wrote (it may write fewer, or throw). */
  write: async (file: FileHandle, bytes: Uint8Array): Promise<number> => (await file.write(bytes)).bytesWritten,
};

/** Sinks remembered per run (least recently used forgotten first): a sink is one `httpSink`, so one per process run. */
const MAX_SINKS = 256;

/** A line to store; `seq` is its sequence number from its sink, when the request carried one. */
export interface StoredLine {
  text: string;
  seq?: number;
}

/** What the store did with one `append`. */
export interface Appended {
  /** Lines appended to the file. */
  written: number;
  /** Lines skipped because the run already held them (a batch sent again). */
  duplicates: number;
}

/**
 * A write about to happen, recorded before it in the run's sidecar: if the
 * collector dies during it, the next one to open the run finds out whether it
 * completed (the file is `size + bytes` long) or not (then the file is cut
 * back to `size` and `sink` sends the lines again).
 */
interface Intent {
  sink: string | null;
  through: number;
  size: number;
  bytes: number;
}

/**
 * `<dir>/.fitstream/<name>.json`: per sink, the highest sequence number
 * stored, and the write in progress. Kept beside the run, not in it, so the
 * stored JSONL holds the events only.
 */
interface Sidecar {
  sinks: [string, number][];
  intent: Intent | null;
}

class StoredRun {
  /** The end of the last operation on this run: each waits for the one before. */
  tail: Promise<unknown> = Promise.resolve();
  /** Sink id → highest sequence number stored, least recently used first. */
  sinks = new Map<string, number>();
  /** Whether the run has a sidecar (once a sink's batch came): every later write records its intent. */
  tracked = false;
  /** Whether a failed write could not be cut back: the next operation cuts the file back first. */
  unsettled = false;
  constructor(readonly path: string, readonly sidecar: string) {}
}

/** The sidecar in `text`, or `undefined` if it is not one. */
function parseSidecar(text: string): Sidecar | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const { sinks, intent } = (value ?? {}) as Partial<Sidecar>;
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  if (!Array.isArray(sinks) || !sinks.every((e) => Array.isArray(e) && typeof e[0] === "string" && count(e[1]))) {
    return undefined;
  }
  if (intent !== null) {
    if (typeof intent !== "object" || !count(intent.through) || !count(intent.size) || !count(intent.bytes)) {
      return undefined;
    }
    if (intent.sink !== null && typeof intent.sink !== "string") return undefined;
  }
  return { sinks, intent };
}

/** Bytes before the last newline of `path` (0 without one); reads backwards in blocks. */
async function endOfLastLine(path: string, size: number): Promise<number> {
  const file = await open(path, "r");
  try {
    const block = new Uint8Array(64 * 1024);
    for (let end = size; end > 0;) {
      const start = Math.max(0, end - block.length);
      const { bytesRead } = await file.read(block, 0, end - start, start);
      const newline = block.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (newline >= 0) return start + newline + 1;
      end = start;
    }
    return 0;
  } finally {
    await file.close();
  }
}

/** The posted runs of a collector folder. Internal. */
export class RunStore {
  #runs = new Map<string, Promise<StoredRun>>();

  /**
   * `onRewind(path)` is told when a run's file was cut back (a failed or interrupted write removed),
   * so a reader that followed it reads it again; `onWrite(path)` after each write.
   */
  constructor(
    readonly dir: string,
    readonly onRewind: (path: string) => void = () => {},
    readonly onWrite: (path: string) => void = () => {},
  ) {}

  /**
   * Appends `lines` (each ending in a newline) to run `name`, skipping those whose sink already stored
   * their sequence number. A failed write is cut back to the file's size before it, so the file never
   * keeps a partial line for the next write to be appended onto; the error is thrown.
   */
  append(name: string, lines: readonly StoredLine[], sink?: string): Promise<Appended> {
    return this.#locked(name, async (run) => {
      const stored = sink === undefined ? 0 : run.sinks.get(sink) ?? 0;
      let last = stored;
      const fresh: string[] = [];
      let duplicates = 0;
      for (const { text, seq } of lines) {
        if (sink !== undefined && seq !== undefined) {
          if (seq <= last) {
            duplicates++;
            continue;
          }
          last = seq;
        }
        fresh.push(text);
      }
      if (fresh.length > 0) {
        await this.#write(run, new TextEncoder().encode(fresh.join("")), sink ?? null, last);
        this.onWrite(run.path);
      }
      if (sink !== undefined) {
        run.sinks.delete(sink); // re-inserted: the map's order is least recently used first
        run.sinks.set(sink, last);
        while (run.sinks.size > MAX_SINKS) run.sinks.delete(run.sinks.keys().next().value!);
      }
      return { written: fresh.length, duplicates };
    });
  }

  /**
   * Appends `bytes` whole, or leaves the file as it was: the intent goes to the sidecar first (for a run
   * that has one), and a write that fails part way is cut back.
   */
  async #write(run: StoredRun, bytes: Uint8Array, sink: string | null, through: number): Promise<void> {
    const file = await open(run.path, "a");
    try {
      const size = (await file.stat()).size;
      if (sink !== null || run.tracked) {
        // Recorded with the sequence numbers stored before this write: it counts only once it completed.
        await this.#saveSidecar(run, { sink, through, size, bytes: bytes.length });
        run.tracked = true;
      }
      try {
        for (let done = 0; done < bytes.length;) {
          const wrote = await storeIo.write(file, bytes.subarray(done));
          if (!(wrote > 0)) throw new Error(`no bytes were written to ${run.path}`);
          done += wrote;
        }
      } catch (error) {
        // Some bytes may be on disk though the write failed (a full disk takes what fits): cut them off.
        // A full disk still lets a file shrink; if even that fails, the next operation settles the file.
        const now = await file.stat().then((s) => s.size, () => Infinity);
        if (now > size) {
          await truncate(run.path, size).catch(() => (run.unsettled = true));
          this.onRewind(run.path);
        }
        throw error;
      }
    } finally {
      await file.close();
    }
  }

  /** Runs `action` on run `name` once the operations before it on that run have ended. */
  #locked<T>(name: string, action: (run: StoredRun) => Promise<T>): Promise<T> {
    let loading = this.#runs.get(name);
    if (!loading) {
      loading = this.#load(name);
      this.#runs.set(name, loading);
      loading.catch(() => this.#runs.delete(name)); // a failed load is tried again by the next request
    }
    return loading.then((run) => {
      const result = run.tail.then(async () => {
        if (run.unsettled) await this.#settle(run, null);
        return action(run);
      });
      run.tail = result.catch(() => {});
      return result;
    });
  }

  /**
   * Opens run `name` as this collector first sees it: what a collector that died left is settled — a
   * recorded write that did not complete is cut off, as is a partial last line — and the sinks' sequence
   * numbers are read back, so a restarted collector still stores each line once.
   */
  async #load(name: string): Promise<StoredRun> {
    const folder = join(this.dir, ".fitstream");
    await mkdir(folder, { recursive: true });
    const run = new StoredRun(join(this.dir, `${name}.jsonl`), join(folder, `${name}.json`));
    let text: string | undefined;
    try {
      text = await readFile(run.sidecar, "utf8");
    } catch (error) {
      if ((error as { code?: string }).code !== "ENOENT") {
        throw new Error(`the record of run "${name}" (${run.sidecar}) cannot be read: ${(error as Error).message}`);
      }
    }
    const sidecar = text === undefined ? undefined : parseSidecar(text);
    if (text !== undefined && !sidecar) {
      // Written by rename, so never half: someone edited it. Refusing the run for good would be worse
      // than forgetting what its sinks sent (a batch sent again may then be stored twice): say so.
      console.warn(`collector: the record ${run.sidecar} is not one this collector wrote; it starts afresh`);
    }
    if (sidecar) {
      run.tracked = true;
      for (const [id, seq] of sidecar.sinks) run.sinks.set(id, seq);
    }
    await this.#settle(run, sidecar?.intent ?? null);
    return run;
  }

  /**
   * Leaves the run's file ending with a complete line: the write `intent` records is kept if it completed
   * (then its sink's lines count as stored) and cut off if not; then any partial last line is cut off
   * too. Cut-off lines were never acknowledged: their senders send them again.
   */
  async #settle(run: StoredRun, intent: Intent | null): Promise<void> {
    let size = (await stat(run.path).catch(() => undefined))?.size ?? 0;
    if (intent && size >= intent.size + intent.bytes) {
      if (intent.sink !== null) {
        const through = Math.max(intent.through, run.sinks.get(intent.sink) ?? 0);
        run.sinks.delete(intent.sink);
        run.sinks.set(intent.sink, through);
      }
    } else if (intent && size > intent.size) {
      await truncate(run.path, intent.size);
      size = intent.size;
      this.onRewind(run.path);
    }
    if (size > 0) {
      const end = await endOfLastLine(run.path, size);
      if (end < size) {
        await truncate(run.path, end);
        this.onRewind(run.path);
      }
    }
    run.unsettled = false;
  }

  /** Writes the sidecar whole or not at all (a temporary file renamed over it). */
  async #saveSidecar(run: StoredRun, intent: Intent): Promise<void> {
    const record: Sidecar = { sinks: [...run.sinks], intent };
    const temporary = `${run.sidecar}.tmp`;
    await writeFile(temporary, JSON.stringify(record));
    await rename(temporary, run.sidecar);
  }
}
