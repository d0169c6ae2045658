/**
 * The collector under attack, end to end (issue 29): a `cli.ts serve
 * --collect` child process is killed (SIGKILL) and restarted while httpSinks
 * post to it; 64 uploads stall in their bodies; writes fail part way as on a
 * full disk; one run posts tens of thousands of distinct keys. Prints lines
 * lost, lines doubled, unparsable lines and the collector's peak memory
 * (goal: 0, 0, 0, bounded). Everything stays on 127.0.0.1; it stops by
 * itself in about a minute (a watchdog ends it at 150 s).
 *
 *   deno run -A bench/collector_stress.ts [--kills 6] [--lines 4000] [--seed 1] [--quick]
 *   bun bench/collector_stress.ts …
 *
 * `--quick` (2 kills, 1,000 lines, about 20 s) is what the test suite runs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { httpSink, serveRuns } from "../mod.ts";
import { storeIo } from "../src/dashboard/run_store.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    kills: { type: "string", default: "6" },
    lines: { type: "string", default: "4000" },
    seed: { type: "string", default: "1" },
    quick: { type: "boolean", default: false },
  },
  strict: true,
});
const KILLS = values.quick ? 2 : Number(values.kills);
const LINES = values.quick ? 1000 : Number(values.lines);
const SINKS = 4;
const TOKEN = "stress-token";
const IDLE_MS = 2000;
const root = fileURLToPath(new URL("..", import.meta.url));
const runtime = "Deno" in globalThis ? "deno" : "bun";

/** A small seeded generator (mulberry32): the kill times are the same from run to run for a seed. */
let state = Number(values.seed) >>> 0;
function random(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port of 127.0.0.1 nothing listens on (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resident and peak memory of a process (MB), from /proc (Linux); undefined elsewhere or once it is gone. */
function memoryOf(pid: number | undefined): { rss: number; peak: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

/** The collector as a child process on a fixed port, killed and restarted at will; its peak memory tracked. */
class Collector {
  child: ChildProcess | undefined;
  peakMb = 0;
  starts = 0;
  #sampler: ReturnType<typeof setInterval> | undefined;
  constructor(readonly dir: string, readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Starts it and waits until it listens (the port of a killed one may take a moment to be free). */
  async start(): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const args = ["cli.ts", "serve", "--collect", this.dir, "--token", TOKEN, "--port", String(this.port)];
      args.push("--idle-timeout", String(IDLE_MS));
      const child = spawn(process.execPath, runtime === "deno" ? ["run", "-A", ...args] : args, {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"],
      });
      const listening = await new Promise<boolean>((resolve) => {
        let text = "";
        child.stdout!.on("data", (d) => {
          text += d;
          if (text.includes(" at http://")) resolve(true);
        });
        child.stderr!.on("data", () => {});
        child.on("close", () => resolve(false));
      });
      if (listening) {
        this.child = child;
        this.starts++;
        this.#sampler = setInterval(() => this.#sample(), 100);
        return;
      }
      await pause(100);
    }
    throw new Error(`the collector did not start on port ${this.port}`);
  }

  #sample(): void {
    const memory = memoryOf(this.child?.pid);
    if (memory) this.peakMb = Math.max(this.peakMb, memory.peak);
  }

  /** SIGKILL: no handler runs, writes stop wherever they are. */
  async kill(signal: "SIGKILL" | "SIGINT" = "SIGKILL"): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.#sample();
    clearInterval(this.#sampler);
    this.child = undefined;
    const exited = new Promise((resolve) => child.on("close", resolve));
    child.kill(signal);
    await exited;
  }

  rssMb(): number {
    return memoryOf(this.child?.pid)?.rss ?? NaN;
  }
}

/** Steps stored per run file of `dir` (`prefix`…): lines that parse, and those that do not. */
function stored(dir: string, prefix: string): { steps: Map<string, number[]>; unparsable: number } {
  const steps = new Map<string, number[]>();
  let unparsable = 0;
  for (const name of readdirSync(dir).filter((n) => n.startsWith(prefix) && n.endsWith(".jsonl"))) {
    const list: number[] = [];
    for (const text of readFileSync(join(dir, name), "utf8").split("\n")) {
      if (text === "") continue;
      try {
        const event = JSON.parse(text);
        if (typeof event.step === "number") list.push(event.step);
      } catch {
        unparsable++;
      }
    }
    steps.set(name.replace(/\.jsonl$/, ""), list);
  }
  return { steps, unparsable };
}

/** Lines lost and doubled of runs that each sent steps 1…`sent`. */
function tally(steps: Map<string, number[]>, runs: string[], sent: number): { lost: number; doubled: number } {
  let lost = 0, doubled = 0;
  for (const run of runs) {
    const list = steps.get(run) ?? [];
    const unique = new Set(list);
    doubled += list.length - unique.size;
    for (let step = 1; step <= sent; step++) if (!unique.has(step)) lost++;
  }
  return { lost, doubled };
}

/** Phase 1: sinks post while the collector is killed `KILLS` times. */
async function kills(collector: Collector) {
  const perSink = Math.ceil(LINES / SINKS);
  const runs = Array.from({ length: SINKS }, (_, i) => `killed-${i}`);
  let dropped = 0, resent = 0, duplicates = 0;
  const sinks = runs.map((run) =>
    httpSink(collector.url, {
      run,
      token: TOKEN,
      requestTimeout: 2000,
      closeTimeout: 60_000,
      onDrop: (count) => void (dropped += count),
    })
  );
  const writers = sinks.map((s) => s.getWriter());
  const writing = (async () => {
    // Bursts of 40 lines of ~1.5 KB every 300 ms for about 8 s: each burst goes as one batch of ~60 KB,
    // which reaches the collector in several reads, so a kill can fall in the middle of one.
    for (let step = 1; step <= perSink; step++) {
      for (const writer of writers) await writer.write({ step, train_loss: 1 / step, note: "x".repeat(1500) });
      if (step % 40 === 0) await pause(300);
    }
  })();
  for (let k = 0; k < KILLS; k++) {
    // Up briefly, down for a second or so: lines pile up meanwhile and go in big batches when it is back,
    // so the next kill is likely to fall while one is being read and stored.
    await pause(150 + random() * 500);
    await collector.kill("SIGKILL");
    await pause(800 + random() * 700);
    await collector.start();
  }
  await writing;
  await Promise.all(writers.map((w) => w.close()));
  for (const sink of sinks) {
    resent += sink.stats.resent;
    duplicates += sink.stats.duplicates;
  }
  const { steps, unparsable } = stored(collector.dir, "killed-");
  return { sent: perSink * SINKS, ...tally(steps, runs, perSink), unparsable, dropped, resent, duplicates };
}

/** Phase 2: 64 uploads stall in their bodies; how long until a new poster gets through, and how many were cut. */
async function stalls(collector: Collector) {
  const sockets: Socket[] = [];
  const answers = Array.from({ length: 64 }, (_, i) =>
    new Promise<string>((resolve) => {
      const socket = createConnection(collector.port, "127.0.0.1", () => {
        socket.write(
          `POST /runs/stalled-${i} HTTP/1.1\r\nHost: 127.0.0.1:${collector.port}\r\n` +
            `Authorization: Bearer ${TOKEN}\r\nContent-Length: 100000\r\n\r\n{"step":1}\n{"step":`,
        );
      });
      sockets.push(socket);
      let text = "";
      socket.on("data", (d) => (text += d));
      socket.on("error", () => resolve(text));
      socket.on("close", () => resolve(text));
      setTimeout(() => resolve(text), 20_000); // bounded: an upload never cut counts as not cut
    }));
  await pause(200); // the stalled uploads take their slots
  const started = performance.now();
  const sink = httpSink(collector.url, { run: "after-stall", token: TOKEN, closeTimeout: 30_000 });
  const writer = sink.getWriter();
  for (let step = 1; step <= 100; step++) await writer.write({ step });
  await writer.close();
  const through = (performance.now() - started) / 1000;
  const heads = await Promise.all(answers);
  for (const socket of sockets) socket.destroy();
  return { cut: heads.filter((h) => h.startsWith("HTTP/1.1 408")).length, through, delivered: sink.stats.delivered };
}

/** Phase 3: writes fail part way (a full disk) for a while, in a collector in this process. */
async function fullDisk(dir: string) {
  const server = await serveRuns({ collect: { dir, token: TOKEN } });
  const write = storeIo.write;
  let failures = 0;
  let full = true;
  storeIo.write = async (file, bytes) => {
    if (!full || random() < 0.5) return await write(file, bytes);
    failures++;
    await write(file, bytes.subarray(0, Math.max(1, bytes.length >> 1))); // what fitted
    throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  };
  try {
    const runs = ["full-0", "full-1"];
    const sinks = runs.map((run) =>
      httpSink(server.url, { run, token: TOKEN, flushInterval: 5, closeTimeout: 60_000 })
    );
    const writers = sinks.map((s) => s.getWriter());
    const sent = 1000;
    for (let step = 1; step <= sent; step++) {
      for (const writer of writers) await writer.write({ step, train_loss: 1 / step });
      if (step === sent / 2) full = false; // space freed half way
      if (step % 5 === 0) await pause(5);
    }
    full = false;
    await Promise.all(writers.map((w) => w.close()));
    const { steps, unparsable } = stored(dir, "full-");
    return { sent: sent * runs.length, ...tally(steps, runs, sent), unparsable, failures };
  } finally {
    storeIo.write = write;
    await server.close();
  }
}

/** Phase 4: one upload of about 1 MB whose every line brings 20 new keys; the collector's memory and answers. */
async function manyKeys(collector: Collector) {
  const before = collector.rssMb();
  const lines: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < 1_000_000; i++) {
    const event: Record<string, number> = { step: i + 1 };
    for (let k = 0; k < 20; k++) event[`m${i}_${k}`] = k + i / 7;
    const text = JSON.stringify(event) + "\n";
    lines.push(text);
    bytes += text.length;
  }
  const posted = await fetch(new URL("runs/keys", collector.url), {
    method: "POST",
    body: lines.join(""),
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  await posted.body?.cancel();
  const until = Date.now() + 30_000;
  let run: { length: number; uncharted: number } | undefined;
  while (Date.now() < until) {
    const list = (await (await fetch(new URL("api/runs", collector.url))).json()).runs;
    run = list.find((r: { name: string }) => r.name === "keys");
    if (run?.length === lines.length) break;
    await pause(100);
  }
  const started = performance.now();
  const answer = await (await fetch(new URL("api/runs/keys/history", collector.url))).text();
  return {
    status: posted.status,
    lines: lines.length,
    keys: lines.length * 20 + 1,
    uncharted: run?.uncharted ?? NaN,
    growthMb: collector.rssMb() - before,
    answerMb: answer.length / 1e6,
    answerMs: performance.now() - started,
  };
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "fitstream-stress-"));
  const collector = new Collector(dir, await freePort());
  const watchdog = setTimeout(() => {
    console.error("collector_stress: still running after 150 s: stopped");
    collector.child?.kill("SIGKILL");
    process.exit(2);
  }, 150_000);
  try {
    const t0 = performance.now();
    await collector.start();
    const killed = await kills(collector);
    const stalled = await stalls(collector);
    const keys = await manyKeys(collector);
    const full = await fullDisk(dir);
    const lost = killed.lost + full.lost, doubled = killed.doubled + full.doubled;
    const unparsable = killed.unparsable + full.unparsable;
    const rows: [string, string | number][] = [
      [`lines sent through ${KILLS} collector kills (${SINKS} sinks)`, killed.sent],
      ["  lost / doubled / unparsable", `${killed.lost} / ${killed.doubled} / ${killed.unparsable}`],
      [
        "  dropped (reported) / resent / duplicates skipped",
        `${killed.dropped} / ${killed.resent} / ${killed.duplicates}`,
      ],
      ["stalled uploads cut (of 64)", stalled.cut],
      [`a new poster's 100 lines through after (s; idle timeout ${IDLE_MS / 1000} s)`, stalled.through.toFixed(1)],
      [`many keys: ${keys.lines} lines, ${keys.keys} keys posted (HTTP ${keys.status})`, `${keys.uncharted} uncharted`],
      ["  collector memory growth (MB)", keys.growthMb.toFixed(0)],
      ["  history answer (MB, ms)", `${keys.answerMb.toFixed(2)}, ${keys.answerMs.toFixed(0)}`],
      [`lines sent through a full disk (${full.failures} failed writes)`, full.sent],
      ["  lost / doubled / unparsable", `${full.lost} / ${full.doubled} / ${full.unparsable}`],
      ["lines lost (all phases)", lost],
      ["lines doubled (all phases)", doubled],
      ["collector peak memory (MB, VmHWM over its runs)", collector.peakMb.toFixed(0)],
      ["seconds", ((performance.now() - t0) / 1000).toFixed(0)],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
    const met = lost === 0 && doubled === 0 && unparsable === 0 && stalled.cut === 64;
    console.log(`no line lost, doubled or cut; stalls cut: ${met ? "met" : "MISSED"}`);
    console.log(JSON.stringify({
      bench: "collector_stress",
      runtime,
      lines_lost: lost,
      lines_doubled: doubled,
      unparsable,
      stalls_cut: stalled.cut,
      through_after_stall_s: stalled.through,
      many_keys_growth_mb: keys.growthMb,
      history_answer_mb: keys.answerMb,
      collector_peak_mb: collector.peakMb,
    }));
    return met ? 0 : 1;
  } finally {
    clearTimeout(watchdog);
    await collector.kill("SIGINT");
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
