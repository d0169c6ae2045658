/**
 * Many runs' JSONL logs, followed as they grow: named files and every
 * `*.jsonl` in named folders (new ones appear), read from where the last
 * read stopped, complete lines only, into compact columnar histories.
 *
 * @module
 */
import { readdirSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, join } from "node:path";
import { History, shownValues } from "./history.ts";
import { byteLines } from "./byte_lines.ts";

/** What the page shows of a run without its history. */
export interface RunSummary {
  name: string;
  /** Events read so far. */
  length: number;
  /** The newest event's values (numbers, strings, booleans; charted keys first, at most `MAX_KEYS`). */
  latest: Record<string, number | string | boolean | null>;
  /** Per numeric key: the lowest value for losses and errors, the highest otherwise. */
  best: Record<string, number>;
  /** Lines that were not JSON objects, or longer than 1 MiB (skipped). */
  skipped: number;
  /** Numeric keys beyond the first `MAX_KEYS`: in the file, not charted (counted up to 65,536). */
  uncharted: number;
}

/** Keys where lower is better (losses, errors). */
const LOWER_IS_BETTER = /loss|error|mae|mse|rmse|perplexity/i;

/** Longest line read (bytes); a longer one is skipped, so one bad writer cannot grow memory without bound. */
const MAX_LINE = 1 << 20;

/**
 * Most numeric keys charted per run: a writer that adds keys on every line would otherwise grow the
 * server's memory, its answers and the page without bound (issue 29: 650 MB for a 560 KB upload).
 */
export const MAX_KEYS = 256;

/** A folder is listed again at least every this many polls, even when its mtime says nothing changed. */
const RELIST_EVERY = 20;

/** A log unchanged for this long (ms, by its mtime) is idle: a tick checks it only every `IDLE_EVERY` ticks. */
const IDLE_AFTER_MS = 30_000;
const IDLE_EVERY = 10;

/** A folder changed less than this long ago (ms) is listed at every poll: its mtime may not show a change yet. */
const RECENT_MS = 2000;

/** What polls have done, for tests and for counting the cost of an idle poll. Internal. */
export interface PollWork {
  /** Folder listings made. */
  listings: number;
  /** Files and folders whose size or mtime was read. */
  stats: number;
  /** Files opened to read new lines. */
  reads: number;
}

class FollowedRun {
  history = new History(MAX_KEYS);
  latest: Record<string, number | string | boolean | null> = {};
  best: Record<string, number> = {};
  skipped = 0;
  /** The log's mtime at the last check (ms; Infinity before the first: a new run is read at once). */
  mtimeMs = Infinity;
  #offset = 0;
  #decoder = new TextDecoder();
  // complete lines only: the log may still be growing
  #lines = byteLines(MAX_LINE, (bytes) => this.#line(this.#decoder.decode(bytes)), () => this.skipped++);

  /** `slot`: which of the `IDLE_EVERY` ticks checks this run while it is idle (runs are spread evenly). */
  constructor(readonly name: string, readonly path: string, readonly work: PollWork, readonly slot: number) {}

  /** Reads what was appended since the last call. */
  async follow(): Promise<void> {
    this.work.stats++;
    const stat = statSync(this.path, { throwIfNoEntry: false });
    if (stat) this.mtimeMs = stat.mtimeMs;
    const size = stat?.size;
    if (size === undefined || size === this.#offset) return;
    if (size < this.#offset) this.reset(); // rewritten from the start
    this.work.reads++;
    const file = await open(this.path, "r");
    try {
      const buffer = new Uint8Array(64 * 1024);
      while (this.#offset < size) {
        const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, size - this.#offset), this.#offset);
        if (bytesRead === 0) break;
        this.#offset += bytesRead;
        this.#lines.push(buffer.subarray(0, bytesRead));
      }
    } finally {
      await file.close();
    }
  }

  /** Forgets what was read: the next `follow` reads the file from its start. */
  reset(): void {
    this.history = new History(MAX_KEYS);
    this.latest = {};
    this.best = {};
    this.skipped = 0;
    this.#offset = 0;
    this.#lines.drop();
  }

  #line(line: string): void {
    if (line.trim() === "") return;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      this.skipped++;
      return;
    }
    if (typeof event !== "object" || event === null || Array.isArray(event)) {
      this.skipped++;
      return;
    }
    const row = this.history.push(event as Record<string, unknown>);
    this.latest = shownValues(event, MAX_KEYS, this.history);
    for (const [key, value] of Object.entries(row)) {
      if (key === "step" || !Number.isFinite(value)) continue;
      const best = this.best[key];
      const lower = LOWER_IS_BETTER.test(key);
      if (best === undefined || (lower ? value < best : value > best)) this.best[key] = value;
    }
  }
}

interface Folder {
  path: string;
  /** The folder's mtime at its last listing (NaN: never listed). */
  mtimeMs: number;
  /** The poll of its last listing. */
  listedAt: number;
}

/** The runs behind a multi-run page: files, and folders whose `*.jsonl` files are runs. Internal. */
export class RunSet {
  #runs = new Map<string, FollowedRun>();
  #byPath = new Map<string, FollowedRun>();
  #files: string[];
  #folders: Folder[];
  #polls = 0;
  #last: Promise<void> = Promise.resolve();
  #busy = false;
  /** Work done by polls so far. */
  readonly work: PollWork = { listings: 0, stats: 0, reads: 0 };

  /** `sources`: JSONL files and folders of them. Throws, naming it, for a source that does not exist. */
  constructor(sources: readonly string[]) {
    this.#files = [];
    this.#folders = [];
    for (const source of sources) {
      const stat = statSync(source, { throwIfNoEntry: false });
      if (!stat) throw new Error(`"${source}" is neither a file nor a folder`);
      if (stat.isDirectory()) this.#folders.push({ path: source, mtimeMs: NaN, listedAt: 0 });
      else this.#files.push(source);
    }
  }

  /** Whether a poll is running or queued. */
  get busy(): boolean {
    return this.#busy;
  }

  /** Finds new files in the folders and reads what every run appended, after any poll already running. */
  poll(): Promise<void> {
    return this.#queue(true);
  }

  /**
   * What a server does every `pollMs`: like `poll`, but a run whose log has not changed for 30 s is
   * checked only at every 10th tick (runs spread over the ticks), and a folder is listed only when its
   * mtime moved (or moved recently, or at every 20th tick). For 8,000 idle runs that is 800 stats a tick
   * and no listing.
   */
  tick(): Promise<void> {
    return this.#queue(false);
  }

  /** A run's log was just written (by the collector): the next tick checks it whatever its age. */
  touch(path: string): void {
    const run = this.#byPath.get(path);
    if (run) run.mtimeMs = Date.now();
  }

  #queue(full: boolean): Promise<void> {
    this.#busy = true;
    this.#last = this.#last.then(() => this.#pollOnce(full)).finally(() => (this.#busy = false));
    return this.#last;
  }

  /**
   * One poll, linear in the runs at most and cheap when nothing changed. It was quadratic — every listed
   * path compared with every run at every poll — and took a core for 8,000 idle runs (issue 29, finding 14).
   */
  async #pollOnce(full: boolean): Promise<void> {
    const polls = ++this.#polls;
    for (const path of this.#files) if (!this.#byPath.has(path)) this.#add(path);
    for (const folder of this.#folders) {
      this.work.stats++;
      const stat = statSync(folder.path, { throwIfNoEntry: false });
      if (!stat) continue;
      const moved = stat.mtimeMs !== folder.mtimeMs || Date.now() - stat.mtimeMs < RECENT_MS;
      if (!full && !moved && polls - folder.listedAt < RELIST_EVERY) continue;
      folder.mtimeMs = stat.mtimeMs; // read before the listing: a file added during it moves the mtime again
      folder.listedAt = polls;
      this.work.listings++;
      const added: string[] = [];
      for (const name of readdirSync(folder.path)) {
        if (!name.endsWith(".jsonl") || name.startsWith(".")) continue;
        const path = join(folder.path, name);
        if (!this.#byPath.has(path)) added.push(path);
      }
      for (const path of added.sort()) this.#add(path);
    }
    const now = Date.now();
    for (const run of this.#runs.values()) {
      const idle = now - run.mtimeMs >= IDLE_AFTER_MS;
      if (!full && idle && (polls + run.slot) % IDLE_EVERY !== 0) continue;
      await run.follow().catch(() => {});
    }
  }

  #add(path: string): void {
    const stem = basename(path).replace(/\.jsonl$/, "");
    let name = stem;
    for (let k = 2; this.#runs.has(name); k++) name = `${stem} (${k})`;
    const run = new FollowedRun(name, path, this.work, this.#runs.size % IDLE_EVERY);
    this.#runs.set(name, run);
    this.#byPath.set(path, run);
  }

  /** The run read from `path` forgets what it read (its file was cut back) and reads it again at the next poll. */
  rewind(path: string): void {
    this.#byPath.get(path)?.reset();
  }

  /** Every run's summary, in the order they were found. */
  list(): RunSummary[] {
    return [...this.#runs.values()].map((run) => ({
      name: run.name,
      length: run.history.length,
      latest: run.latest,
      best: run.best,
      skipped: run.skipped,
      uncharted: run.history.uncharted,
    }));
  }

  /**
   * Events `from` … `from + limit` of run `name` (fewer when the run has many keys: an answer holds at
   * most `maxValues` values, so its size is bounded too), or `undefined` for an unknown run.
   */
  history(name: string, from: number, limit: number, maxValues = Infinity): ReturnType<History["slice"]> | undefined {
    const history = this.#runs.get(name)?.history;
    if (!history) return undefined;
    const rows = Math.max(1, Math.min(limit, Math.floor(maxValues / Math.max(1, history.keys))));
    return history.slice(from, from + rows);
  }
}
