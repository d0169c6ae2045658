import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { chromium } from "playwright-core";
import { collect, fromJsonl, plotSvg, progress, stage, take, toSvg } from "../mod.ts";
import { progressStage } from "../src/stages/progress.ts";
import { root, runScript, startScript } from "./spawn.ts";
import { waitFor, within } from "./helpers.ts";
import { createServer } from "node:http";

const fixture = Array.from({ length: 100 }, (_, i) => ({
  step: i + 1,
  train_loss: 1 / (i + 1),
  val_loss: i === 40 || i === 41 ? NaN : 1.1 / (i + 1) + 0.01,
}));

test("toSvg: one path per key, axis labels, NaN points skipped, keys escaped; renders to a PNG", async () => {
  const svg = toSvg(fixture, { keys: ["train_loss", "val_loss", "<b>odd</b>"] });
  const paths = [...svg.matchAll(/<path data-key="([^"]*)" d="([^"]*)"/g)];
  assert.deepEqual(paths.map((p) => p[1]), ["train_loss", "val_loss", "&#60;b&#62;odd&#60;/b&#62;"]);
  assert.equal(paths[0][2].match(/[ML]/g)!.length, 100);
  assert.equal(paths[1][2].match(/L/g)!.length + paths[1][2].match(/M/g)!.length, 98, "two NaN points left out");
  assert.equal(paths[1][2].match(/M/g)!.length, 2, "the line breaks at the gap");
  assert.equal(paths[2][2], "", "a key with no values draws nothing");
  assert.match(svg, /class="axis-label"[^>]*>step</);
  assert.match(svg, />value</);
  assert.ok(!svg.includes("<b>"));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  const dir = await mkdtemp(join(tmpdir(), "fitstream-svg-"));
  try {
    const page = await browser.newPage({ viewport: { width: 640, height: 360 } });
    await page.setContent(svg);
    const png = join(dir, "plot.png");
    await page.screenshot({ path: png });
    const bytes = await readFile(png);
    assert.deepEqual([...bytes.subarray(1, 4)], [80, 78, 71], "a PNG");
    assert.ok(bytes.length > 3000);
  } finally {
    await browser.close();
    await rm(dir, { recursive: true });
  }
});

test("fromJsonl replays a log lazily; plotSvg writes the chart; bad lines name their number", async () => {
  const dir = await mkdtemp(join(tmpdir(), "fitstream-replay-"));
  try {
    const log = join(dir, "run.jsonl");
    await writeFile(log, fixture.map((r) => JSON.stringify(r)).join("\n") + "\n\n");
    const rows = await collect(fromJsonl(log).pipeThrough(take(3)));
    assert.deepEqual(rows.map((r) => r.step), [1, 2, 3]);
    assert.equal((await collect(fromJsonl(log))).length, 100);
    const svgPath = join(dir, "run.svg");
    await fromJsonl(log).pipeTo(plotSvg(svgPath));
    assert.equal([...(await readFile(svgPath, "utf8")).matchAll(/<path /g)].length, 2);
    const bad = new Blob(['{"step":1}\n', "not json\n"]).stream();
    await assert.rejects(collect(fromJsonl(bad)), {
      name: "SyntaxError",
      message: /fromJsonl: stream: line 2 is not JSON/,
    });
    await assert.rejects(collect(fromJsonl(new Blob(["[1]\n"]).stream())), /line 1 is not a JSON object/);
    // A missing folder is made (as jsonlSink makes one); one that cannot be made fails when built, naming the path.
    assert.throws(
      () => plotSvg(join(svgPath, "inside-a-file", "x.svg")),
      (e: Error) => e.message.includes("inside-a-file"),
    );
  } finally {
    await rm(dir, { recursive: true });
  }
});

test("cli.ts plot writes an SVG of a log; serve shows it on the runs page", async () => {
  const dir = await mkdtemp(join(tmpdir(), "fitstream-cli-"));
  try {
    const log = join(dir, "run.jsonl");
    await writeFile(log, fixture.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const out = join(dir, "run.svg");
    const plotted = await runScript("cli.ts", ["plot", log, "-o", out, "--keys", "train_loss"]);
    assert.equal(plotted.code, 0, plotted.stderr);
    assert.equal([...(await readFile(out, "utf8")).matchAll(/<path /g)].length, 1);
    const bad = await runScript("cli.ts", ["plot", join(dir, "nope.jsonl"), "-o", out]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr.trim(), /^fitstream: fromJsonl: cannot read /);

    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    const server = startScript("cli.ts", ["serve", log, "--port", String(port)]);
    // Asked until the child listens and has read the whole log, however long a busy machine takes to start it.
    let runs: { name: string; length: number }[] | undefined;
    await waitFor("cli.ts serve: the whole log on /api/runs", async () => {
      runs = await fetch(`http://127.0.0.1:${port}/api/runs`).then((r) => r.json()).then((j) => j.runs).catch(() =>
        undefined
      );
      return runs?.[0]?.length === 100;
    }, { every: 50 }).catch((error) => {
      server.kill("SIGKILL");
      throw error;
    });
    assert.deepEqual(runs?.map((r) => [r.name, r.length]), [["run", 100]], "the whole log is read");
    server.kill("SIGINT");
    const { code, stdout } = await server.done;
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`serving .* at http://127\\.0\\.0\\.1:${port}/`));
  } finally {
    await rm(dir, { recursive: true });
  }
});

test("progress off a terminal: the first epoch's line, then at most one per interval, and a summary", async () => {
  // A clock the test moves: epoch n ends at 7n seconds, whatever the machine's speed.
  let now = 0;
  const lines: string[] = [];
  let step = 0;
  const source = new ReadableStream({
    pull: (c) => {
      now = 7 * ++step;
      c.enqueue({ step, train_loss: 1 / step, val_loss: 2 / step });
    },
  }, { highWaterMark: 0 });
  const output = { write: (t: string) => void lines.push(t), isTTY: false };
  await collect(source.pipeThrough(take(10)).pipeThrough(progressStage({ total: 10, output }, () => now)));
  assert.deepEqual(lines, [
    "epoch 1/10 00:07 elapsed, ETA 01:03  0.14 epochs/s  train_loss=1.0000  val_loss=2.0000\n",
    "epoch 6/10 00:42 elapsed, ETA 00:28  0.14 epochs/s  train_loss=0.1667  val_loss=0.3333\n", // 35 s after the first
    "done: 10/10 epochs in 01:10, 0.14 epochs/s  train_loss=0.1000  val_loss=0.2000\n",
  ]);
});

test("progress off a terminal: a short run still ends with a summary; an error says so", async () => {
  const lines: string[] = [];
  const output = { write: (t: string) => void lines.push(t), isTTY: false };
  const events = () => ReadableStream.from([1, 2, 3, 4, 5, 6, 7].map((step) => ({ step, train_loss: 1 / step })));
  await collect(events().pipeThrough(progress({ total: 7, output })));
  assert.match(lines[0], /^epoch 1\/7 /);
  assert.match(lines.at(-1)!, /^done: 7\/7 epochs in \d\d:\d\d, [\d.]+ epochs\/s {2}train_loss=0\.1429\n$/);
  assert.ok(lines.every((l) => !l.includes("\x1b") && !l.includes("\r")));

  lines.length = 0;
  const failing = events().pipeThrough(stage((e: { step: number }) => {
    if (e.step === 3) throw new Error("boom");
    return e;
  }));
  await assert.rejects(collect(failing.pipeThrough(progress({ output, every: 0 }))), /boom/);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^stopped by an error after 2 epochs in /);

  const piped = await runScript("tests/fixtures/progress_run.ts", []);
  assert.equal(piped.code, 0, piped.stderr);
  assert.ok(!piped.stdout.includes("\x1b") && !piped.stdout.includes("\r"), "a pipe gets no control codes");
  const out = piped.stdout.trim().split("\n");
  assert.deepEqual(out.map((l) => l.split(" ")[0] + " " + l.split(" ")[1]), [
    "epoch 4/12",
    "epoch 8/12",
    "epoch 12/12",
    "done: 12/12",
  ], "every: 4 counts events");
  assert.throws(() => progress({ every: 2, interval: 5 }), { name: "TypeError", message: /pass every or interval/ });
});

test("progress: on a pseudo-terminal one line is redrawn in place", () => {
  const runtime = process.execPath;
  const cmd = "Deno" in globalThis
    ? `${runtime} run -A tests/fixtures/progress_run.ts`
    : `${runtime} tests/fixtures/progress_run.ts`;
  const result = spawnSync("script", ["-qefc", cmd, "/dev/null"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  assert.equal(result.status, 0, result.stderr);
  const out = result.stdout;
  assert.equal(out.split("\r\x1b[2K").length - 1, 12, "one redraw per event");
  assert.match(out, /epoch 12\/12 \[#{20}\]/);
  assert.equal(out.replace(/\r\n/g, "\n").trim().split("\n").length, 1, "a single line, ended once");
});

test("the housing example writes its chart next to the log", async () => {
  const dir = await mkdtemp(join(tmpdir(), "fitstream-chart-"));
  try {
    const log = join(dir, "h.jsonl");
    const { code, stderr, stdout } = await runScript("examples/housing.ts", ["--out", log, "--epochs", "3"]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /chart: .*h\.svg/);
    assert.ok((await stat(join(dir, "h.svg"))).size > 500);
  } finally {
    await rm(dir, { recursive: true });
  }
});

/** `toSvg(events)` drawn in a worker, so a drawing that never ends fails after `ms` instead of hanging. */
async function svgWithin(ms: number, what: string, events: object[]): Promise<string> {
  const worker = new Worker(new URL("./fixtures/svg_worker.ts", import.meta.url).href, { type: "module" });
  try {
    const drawn = new Promise<string>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(`${what}: ${event.message}`));
    });
    worker.postMessage(events);
    return await within(ms, what, drawn);
  } finally {
    worker.terminate();
  }
}

test("toSvg writes only finite coordinates for values near ±1e308, a constant huge value, neighbouring doubles and non-finite steps", async () => {
  const max = Number.MAX_VALUE;
  const cases: [string, object[], number][] = [
    ["±1e308", [{ step: 1, train_loss: -1e308 }, { step: 2, train_loss: 1e308 }, { step: 3, train_loss: 0 }], 3],
    ["±MAX_VALUE", [{ step: 1, train_loss: -max }, { step: 2, train_loss: max }], 2],
    ["constant 1e308", [{ step: 1, train_loss: 1e308 }, { step: 2, train_loss: 1e308 }], 2],
    ["constant MAX_VALUE", [{ step: 1, train_loss: max }, { step: 2, train_loss: max }], 2],
    ["constant 1e17", [{ step: 1, train_loss: 1e17 }, { step: 2, train_loss: 1e17 }], 2],
    // One double apart: the tick step was below their resolution and the tick loop never ended.
    ["1e17 and the next double", [{ step: 1, train_loss: 1e17 }, { step: 2, train_loss: 1e17 + 16 }], 2],
    ["0 and the smallest double", [{ step: 1, train_loss: 0 }, { step: 2, train_loss: 5e-324 }], 2],
    ["steps ±1e308", [{ step: -1e308, train_loss: 1 }, { step: 1e308, train_loss: 2 }], 2],
    ["NaN and infinite steps", [{ step: NaN, train_loss: 1 }, { step: 2, train_loss: 2 }, {
      step: Infinity,
      train_loss: 3,
    }], 1],
  ];
  for (const [name, events, points] of cases) {
    const svg = await svgWithin(120_000, `toSvg(${name})`, events);
    const coordinates = [...svg.matchAll(/ (x|y|x1|x2|y1|y2|d|transform|viewBox|width|height)="([^"]*)"/g)]
      .filter(([, attribute, value]) => attribute !== "width" && attribute !== "height" || value !== "100%");
    for (const [, attribute, value] of coordinates) {
      for (const token of value.match(/NaN|[-+]?Infinity|[-+]?\d*\.?\d+(e[-+]?\d+)?/g) ?? []) {
        assert.ok(Number.isFinite(Number(token)), `${name}: ${attribute}="${value}" holds ${token}`);
      }
    }
    const path = /<path data-key="train_loss" d="([^"]*)"/.exec(svg)![1];
    assert.equal(path.match(/[ML]/g)?.length ?? 0, points, `${name}: every point with a finite step is drawn`);
  }
});
