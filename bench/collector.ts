/**
 * Many runs into one collector: 8 processes each post 1,000 events/s with
 * `httpSink` to one `cli.ts serve --collect` process, while this process
 * trains the housing model with its events either posted to the same
 * collector (`httpSink`) or dropped (no sink), the two arms interleaved
 * round by round under the same load. Prints events lost (target 0) and the
 * training slowdown of posting (median over rounds of ms per epoch, sink / none; target
 * ≤ 1.03).
 *
 *   deno run -A bench/collector.ts [--seconds 12] [--posters 8] [--rate 1000] [--quick]
 *   bun bench/collector.ts …
 */
import * as tf from "@tensorflow/tfjs";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { epochStream, httpSink, useBackend } from "../mod.ts";
import { housingModel, loadHousing } from "../examples/housing_data.ts";
import { jsonLine, median, runtime, table } from "./common.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    seconds: { type: "string", default: "12" },
    posters: { type: "string", default: "8" },
    rate: { type: "string", default: "1000" },
    quick: { type: "boolean", default: false },
    poster: { type: "string" },
    url: { type: "string" },
  },
  strict: true,
});
const seconds = values.quick ? 3 : Number(values.seconds);
const posters = values.quick ? 2 : Number(values.posters);
const rate = Number(values.rate);
const TOKEN = "bench-token";
const EPOCHS_PER_ROUND = 10;
const root = fileURLToPath(new URL("..", import.meta.url));

/** Runs this runtime on `args` in the repository. */
function start(args: string[]): ChildProcess {
  const full = runtime === "deno" ? ["run", "-A", ...args] : args;
  return spawn(process.execPath, full, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
}

/** A poster: `rate` events/s for `seconds`, then closes its sink and prints what it sent. */
async function poster(name: string, url: string): Promise<void> {
  const sink = httpSink(url, { run: name, token: TOKEN, closeTimeout: 120_000 });
  const writer = sink.getWriter();
  const started = performance.now();
  let sent = 0;
  while (performance.now() - started < seconds * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (sent < due) {
      sent++;
      await writer.write({
        step: sent,
        train_loss: 1 / sent,
        val_loss: 1.1 / sent,
        lr: 1e-3,
        grad_norm: Math.sqrt(sent),
      });
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await writer.close();
  console.log(JSON.stringify({ sent, delivered: sink.stats.delivered, dropped: sink.stats.dropped }));
}

/** Reads a child's stdout until `pattern` matches; returns the match. */
function waitFor(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = "";
    child.stdout!.on("data", (d) => {
      text += d;
      const match = pattern.exec(text);
      if (match) resolve(match);
    });
    child.on("close", () => reject(new Error(`exited before printing ${pattern}: ${text}`)));
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "fitstream-collector-"));
  const collector = start(["cli.ts", "serve", "--collect", dir, "--token", TOKEN]);
  try {
    const url = (await waitFor(collector, /(http:\/\/127\.0\.0\.1:\d+\/)/))[1];
    await useBackend();
    const data = await loadHousing();
    const loss = tf.losses.meanSquaredError;
    const arms = { sink: [] as number[], none: [] as number[] };
    let round = 0;
    const trainRound = async (arm: "sink" | "none") => {
      const model = housingModel(8, 0);
      const optimizer = tf.train.adam(1e-2);
      const stream = epochStream({ data: [data.xTrain, data.yTrain], model, optimizer, loss, batchSize: 512, seed: 0 });
      const reader = stream.getReader();
      const writer = arm === "sink"
        ? httpSink(url, { run: `trainer-${round++}`, token: TOKEN }).getWriter()
        : undefined;
      const t = performance.now();
      for (let epoch = 0; epoch < EPOCHS_PER_ROUND; epoch++) {
        const { value } = await reader.read();
        if (writer) await writer.write(value!);
      }
      arms[arm].push((performance.now() - t) / EPOCHS_PER_ROUND); // a round's mean: timers here may tick by 1 ms
      await reader.cancel();
      await writer?.close();
      model.dispose();
      optimizer.dispose();
    };
    const children = Array.from({ length: posters }, (_, i) => {
      const child = start([
        "bench/collector.ts",
        "--poster",
        `poster-${i}`,
        "--url",
        url,
        "--seconds",
        String(seconds),
      ]);
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      return new Promise<{ sent: number; delivered: number; dropped: number }>((resolve, reject) =>
        child.on(
          "close",
          (code) =>
            code === 0
              ? resolve(JSON.parse(out.trim().split("\n").at(-1)!))
              : reject(new Error(`poster ${i}: ${code}`)),
        )
      );
    });
    await new Promise((r) => setTimeout(r, 1500)); // the posters start (a runtime each)
    const until = performance.now() + (seconds - 2.5) * 1000;
    do {
      await trainRound("none");
      await trainRound("sink");
    } while (performance.now() < until);
    const reports = await Promise.all(children);
    await new Promise((r) => setTimeout(r, 1000)); // the collector writes the last requests
    let received = 0;
    for (const name of readdirSync(dir).filter((n) => n.startsWith("poster-"))) {
      received += readFileSync(join(dir, name), "utf8").split("\n").filter((l) => l.startsWith('{"step"')).length;
    }
    const sent = reports.reduce((a, r) => a + r.sent, 0);
    const dropped = reports.reduce((a, r) => a + r.dropped, 0);
    const lost = sent - received;
    const ratio = median(arms.sink) / median(arms.none);
    table([
      ["", "value"],
      ["posters × events/s", `${posters} × ${rate}`],
      ["events sent", sent],
      ["events stored by the collector", received],
      ["events lost", lost],
      ["events dropped by httpSink", dropped],
      ["training ms/epoch, no sink (median)", median(arms.none)],
      ["training ms/epoch, httpSink (median)", median(arms.sink)],
      ["slowdown (httpSink / none)", ratio],
    ]);
    console.log(
      `no event lost: ${lost === 0 ? "met" : "MISSED"}; slowdown <= 1.03: ${ratio <= 1.03 ? "met" : "MISSED"}`,
    );
    jsonLine("collector", {
      posters,
      rate,
      events_sent: sent,
      events_stored: received,
      events_lost: lost,
      events_dropped: dropped,
      rounds_per_arm: arms.none.length,
      slowdown: ratio,
    });
  } finally {
    collector.kill("SIGINT");
    await new Promise((r) => collector.on("close", r));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (values.poster) await poster(values.poster, values.url!);
else await main();
