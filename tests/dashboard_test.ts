import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import process from "node:process";
import { augment, collect, dashboard, pipe, take } from "../mod.ts";
import { History } from "../src/dashboard/history.ts";
import { countingSource } from "./helpers.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Events `delayMs` apart, the first made only once `gate` has resolved (default: at once). */
function slowSource(delayMs: number, gate: Promise<void> = Promise.resolve()) {
  let step = 0;
  return new ReadableStream<Record<string, unknown>>({
    async pull(c) {
      await gate;
      await new Promise((r) => setTimeout(r, delayMs));
      step++;
      c.enqueue({
        step,
        train_loss: 1 / step,
        val_loss: 1.2 / step,
        lr: 0.01,
        "<script>alert(1)</script>": step % 2,
        note: "<img src=x onerror=alert(2)>",
      });
    },
  }, { highWaterMark: 0 });
}

test("dashboard: a page in headless Chromium shows every event live, as text, then the final status", async () => {
  const dir = await mkdtemp(join(tmpdir(), "fitstream-dash-"));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  // The run makes its first event only once the page is connected: it never ends (and closes its server)
  // before a page that a busy machine was slow to open has reached it.
  let pageConnected!: () => void;
  const gate = new Promise<void>((resolve) => (pageConnected = resolve));
  try {
    const board = dashboard<Record<string, unknown>>({ onListen: () => {} });
    assert.match(board.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const run = collect(pipe(slowSource(60, gate), take(14), board));
    const page = await browser.newPage();
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(board.url);
    // The status leaves "connecting" when the page's event stream has opened: the server counts it as a client.
    await page.waitForFunction(() => (globalThis as any).fitstreamDashboard?.status() === "running", null, {
      timeout: 60_000,
    });
    pageConnected();
    await page.waitForFunction(() => (globalThis as any).fitstreamDashboard?.events() >= 5, null, { timeout: 60_000 });
    const seen = await page.evaluate(() => {
      const d = (globalThis as any).fitstreamDashboard;
      const doc = (globalThis as any).document;
      const rows = [...doc.querySelectorAll("#latest tr")].map((tr: any) =>
        [...tr.children].map((td: any) => td.textContent)
      );
      return { events: d.events(), points: d.points(), rows };
    });
    assert.ok(seen.points.length >= 3, "train/val loss, lr and the odd key get charts");
    for (const p of seen.points) assert.equal(p, seen.events, "each chart has a point per event");
    const table = Object.fromEntries(seen.rows);
    assert.equal(table.step, String(seen.events), "the table shows the latest step");
    assert.ok("<script>alert(1)</script>" in table, "an odd key is shown as text");
    assert.equal(table.note, "<img src=x onerror=alert(2)>");
    const shot = join(dir, "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok((await stat(shot)).size > 5000);

    const rows = await run;
    assert.equal(rows.length, 14);
    // The status shows at once; the last row is drawn at the next animation frame (events() counts drawn rows).
    await page.waitForFunction(() => (globalThis as any).fitstreamDashboard.status() === "stopped by take", null, {
      timeout: 60_000,
    });
    await page.waitForFunction(() => (globalThis as any).fitstreamDashboard.events() >= 14, null, { timeout: 60_000 });
    assert.equal(await page.evaluate(() => (globalThis as any).fitstreamDashboard.events()), 14);
    assert.deepEqual(dialogs, [], "no script from event data ran");
    await board.closed;
    await assert.rejects(fetch(board.url), "the server is gone once the stream ended");

    // A page opened late gets the full history.
    const late = dashboard<Record<string, unknown>>({ onListen: () => {} });
    const reader = pipe(slowSource(1), late).getReader();
    for (let i = 0; i < 8; i++) await reader.read();
    const page2 = await browser.newPage();
    await page2.goto(late.url);
    await page2.waitForFunction(() => (globalThis as any).fitstreamDashboard?.events() >= 8, null, { timeout: 60_000 });
    await reader.cancel();
    await late.closed;
  } finally {
    pageConnected(); // a test that failed before the page connected still lets its run end and its server close
    await browser.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("dashboard: a browser that stops reading blocks nothing and is dropped; only its own routes; bounded history", async () => {
  const board = dashboard<Record<string, unknown>>({ onListen: () => {} });
  const notFound = await fetch(new URL("/etc/passwd", board.url));
  assert.equal(notFound.status, 404);
  await notFound.body?.cancel();
  const stuck = await fetch(new URL("/events", board.url)); // connected, never read
  let step = 0;
  const source = new ReadableStream(
    { pull: (c) => c.enqueue({ step: ++step, loss: 1 / step, note: "x".repeat(200) }) },
    { highWaterMark: 0 },
  );
  const rows = await collect(pipe(source, take(5000), board));
  assert.equal(rows.length, 5000, "the run finished although a client never read");
  await board.closed;
  await stuck.body?.cancel().catch(() => {});
  const history = new History();
  for (let i = 1; i <= 10_000; i++) history.push({ step: i, a: i, b: "text is not kept", model: {} });
  assert.ok(history.bytes <= 2 * 16_384 * 8, `history of 10,000 events holds ${history.bytes} bytes`);
  assert.deepEqual(Object.keys(history.toJSON().columns), ["step", "a"]);
});

test("dashboard: closes when the stream is cancelled; bad options are errors", async () => {
  const board = dashboard<Record<string, unknown>>({ onListen: () => {} });
  const reader = pipe(slowSource(1), board).getReader();
  await reader.read();
  await reader.cancel();
  await board.closed;
  await assert.rejects(fetch(board.url));
  // With linger, a finished run stays on view: an error shows as the status.
  const failed = dashboard<Record<string, unknown>>({ onListen: () => {}, linger: true });
  const failing = pipe(
    slowSource(1),
    augment((e) => {
      if (e.step === 3) throw new Error("boom at 3");
      return null;
    }),
    failed,
  );
  await assert.rejects(collect(failing), /boom at 3/);
  const state = await (await fetch(new URL("/history", failed.url))).json();
  assert.equal(state.status, "error: boom at 3");
  assert.equal(state.length, 2);
  await failed.close();
  await failed.closed;
  assert.throws(() => dashboard({ port: 70000 }), {
    name: "RangeError",
    message: /dashboard: port must be at most 65535/,
  });
  assert.throws(() => dashboard({ port: -1 }), { name: "RangeError", message: /dashboard: port/ });
  // @ts-expect-error: keys are names
  assert.throws(() => dashboard({ keys: "loss" }), { name: "TypeError", message: /dashboard: keys must be an array/ });
});

test("dashboard: a run with 300 keys charts eight of them; the picker lists every key and charts the ones picked", async () => {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
  try {
    const board = dashboard<Record<string, unknown>>({ onListen: () => {}, linger: true });
    const wide = (step: number) => {
      const event: Record<string, number> = { step, train_loss: 1 / step };
      for (let k = 0; k < 300; k++) event[`metric_${k}`] = k * step;
      return event;
    };
    await collect(pipe(countingSource(wide).stream, take(5), board));
    const page = await browser.newPage();
    await page.goto(board.url);
    await page.waitForFunction(() => (globalThis as any).fitstreamDashboard?.events() === 5, null, { timeout: 60_000 });
    const charts = await page.evaluate(() => (globalThis as any).fitstreamDashboard.charts());
    assert.equal(charts.length, 8);
    assert.deepEqual(charts[0], ["train_loss"]);
    assert.equal(await page.locator("#keys option").count(), 301);
    await page.selectOption("#keys", ["metric_250", "metric_7"]);
    const picked = await page.evaluate(() => (globalThis as any).fitstreamDashboard.charts());
    assert.deepEqual(picked, [["metric_7"], ["metric_250"]]);
    await board.close();
  } finally {
    await browser.close();
  }
});

test("every documented pipeline places dashboard last, as the README says to", async () => {
  const root = new URL("..", import.meta.url);
  const files = ["README.md", ...(await readdir(new URL("docs/", root))).map((f) => `docs/${f}`)];
  for (const dir of ["src/dashboard/", "examples/"]) {
    files.push(...(await readdir(new URL(dir, root))).filter((f) => f.endsWith(".ts")).map((f) => dir + f));
  }
  let seen = 0;
  for (const file of files) {
    const text = await readFile(new URL(file, root), "utf8");
    // A dashboard(...) call followed by a comma and more arguments has stages after it.
    for (const m of text.matchAll(/dashboard\((\{[^()]*\})?\)\s*,\s*(\S)/g)) {
      assert.equal(m[2], ")", `${file}: a stage follows dashboard(...): ${text.slice(m.index, m.index + 80)}`);
    }
    seen += [...text.matchAll(/pipe\([^;]*dashboard\(/g)].length;
  }
  assert.ok(seen >= 1, "the JSDoc example is among the files read");
});
