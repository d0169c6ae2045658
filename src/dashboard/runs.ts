/**
 * Many runs' JSONL logs, followed as they grow: named files and every
 * `*.jsonl` in named folders (new ones appear), read from where the last
 * read stopped, complete lines only, into compact columnar histories.
 *
 * @module
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, join } from "node:path";
import { History, shownValues } from "./history.ts";
import { lineSplitter } from "../data/lines.ts";

/** What the page shows of a run without its history. */
export interface RunSummary {
  name: string;
  /** Events read so far. */
  length: number;
  /** The newest event's values (numbers, strings, booleans). */
  latest: Record<string, number | string | boolean | null>;
  /** Per numeric key: the lowest value for losses and errors, the highest otherwise. */
  best: Record<string, number>;
  /** Lines that were not JSON objects (skipped). */
  skipped: number;
}

/** Keys where lower is better (losses, errors). */
const LOWER_IS_BETTER = /loss|error|mae|mse|rmse|perplexity/i;

/** Longest line read (bytes); a longer one is skipped, so one bad writer cannot grow memory without bound. */
const MAX_LINE = 1 << 20;

class FollowedRun {
  history = new History();
  latest: Record<string, number | string | boolean | null> = {};
  best: Record<string, number> = {};
  skipped = 0;
  #offset = 0;
  #decoder = new TextDecoder();
  #lines = lineSplitter((line) => this.#line(line)); // complete lines only: the log may still be growing

  constructor(readonly name: string, readonly path: string) {}

  /** Reads what was appended since the last call. */
  async follow(): Promise<void> {
    const size = statSync(this.path, { throwIfNoEntry: false })?.size;
    if (size === undefined || size === this.#offset) return;
    if (size < this.#offset) this.#reset(); // rewritten from the start
    const file = await open(this.path, "r");
    try {
      const buffer = new Uint8Array(64 * 1024);
      while (this.#offset < size) {
        const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, size - this.#offset), this.#offset);
        if (bytesRead === 0) break;
        this.#offset += bytesRead;
        this.#take(this.#decoder.decode(buffer.subarray(0, bytesRead), { stream: true }));
      }
    } finally {
      await file.close();
    }
  }

  #reset(): void {
    this.history = new History();
    this.latest = {};
    this.best = {};
    this.skipped = 0;
    this.#offset = 0;
    this.#decoder = new TextDecoder();
    this.#lines.drop();
  }

  #take(text: string): void {
    this.#lines.push(text);
    if (this.#lines.pending() > MAX_LINE) {
      this.#lines.drop();
      this.skipped++;
    }
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
    this.latest = shownValues(event);
    for (const [key, value] of Object.entries(row)) {
      if (key === "step" || !Number.isFinite(value)) continue;
      const best = this.best[key];
      const lower = LOWER_IS_BETTER.test(key);
      if (best === undefined || (lower ? value < best : value > best)) this.best[key] = value;
    }
  }
}

/** The runs behind a multi-run page: files, and folders whose `*.jsonl` files are runs. Internal. */
export class RunSet {
  #runs = new Map<string, FollowedRun>();
  #files: string[];
  #folders: string[];
  #last: Promise<void> = Promise.resolve();
  #busy = false;

  /** `sources`: JSONL files and folders of them. Throws, naming it, for a source that does not exist. */
  constructor(sources: readonly string[]) {
    this.#files = [];
    this.#folders = [];
    for (const source of sources) {
      const stat = statSync(source, { throwIfNoEntry: false });
      if (!stat) throw new Error(`"${source}" is neither a file nor a folder`);
      (stat.isDirectory() ? this.#folders : this.#files).push(source);
    }
  }

  /** Whether a poll is running or queued. */
  get busy(): boolean {
    return this.#busy;
  }

  /** Finds new files in the folders and reads what every run appended, after any poll already running. */
  poll(): Promise<void> {
    this.#busy = true;
    this.#last = this.#last.then(() => this.#pollOnce()).finally(() => (this.#busy = false));
    return this.#last;
  }

  async #pollOnce(): Promise<void> {
    const paths = [...this.#files];
    for (const folder of this.#folders) {
      if (!existsSync(folder)) continue;
      for (const name of readdirSync(folder).sort()) {
        if (name.endsWith(".jsonl") && !name.startsWith(".")) paths.push(join(folder, name));
      }
    }
    for (const path of paths) {
      if (![...this.#runs.values()].some((run) => run.path === path)) this.#add(path);
    }
    for (const run of this.#runs.values()) await run.follow().catch(() => {});
  }

  #add(path: string): void {
    const stem = basename(path).replace(/\.jsonl$/, "");
    let name = stem;
    for (let k = 2; this.#runs.has(name); k++) name = `${stem} (${k})`;
    this.#runs.set(name, new FollowedRun(name, path));
  }

  /** Every run's summary, in the order they were found. */
  list(): RunSummary[] {
    return [...this.#runs.values()].map((run) => ({
      name: run.name,
      length: run.history.length,
      latest: run.latest,
      best: run.best,
      skipped: run.skipped,
    }));
  }

  /** Events `from` … `from + limit` of run `name`, or `undefined` for an unknown run. */
  history(name: string, from: number, limit: number): ReturnType<History["slice"]> | undefined {
    return this.#runs.get(name)?.history.slice(from, from + limit);
  }
}
