// The multi-run page in headless Chromium: runs overlaid, followed live, posted runs appearing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { chromium } from "playwright-core";
import { serveRuns } from "../mod.ts";
import { BEST_VALUE_JS } from "../src/dashboard/best_value.ts";
import { RUNS_JS } from "../src/dashboard/runs_page.ts";
import { withTempDir } from "./helpers.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const log = (run: number, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => {
    const step = from + i;
    return JSON.stringify({ step, train_loss: (run + 1) / step, val_loss: (run + 1.5) / step, lr: 0.01 * (run + 1) });
  }).join("\n") + "\n";

test("runs page: three runs of a folder give three series per chart; appended lines and a posted run show up live", async () => {
  await withTempDir(async (dir) => {
    for (const run of [0, 1, 2]) writeFileSync(join(dir, `seed-${run}.jsonl`), log(run, 1, 5));
    const server = await serveRuns({ sources: [dir], collect: { dir, token: "tok" }, pollMs: 50 });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
    });
    try {
      const page = await browser.newPage();
      const dialogs: string[] = [];
      page.on("dialog", (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(server.url);
      const state = () => page.evaluate(() => (globalThis as any).fitstreamRuns.charts());
      await page.waitForFunction(() => (globalThis as any).fitstreamRuns?.charts().length >= 3, null, {
        timeout: 60_000,
      });
      const charts = await state();
      assert.deepEqual(charts.map((c: { key: string }) => c.key).sort(), ["lr", "train_loss", "val_loss"]);
      for (const chart of charts) {
        assert.deepEqual(chart.series, ["seed-0", "seed-1", "seed-2"], `${chart.key}: a series per run`);
        assert.equal(chart.points, 5);
      }
      const table = await page.locator("#table tbody tr").allTextContents();
      assert.equal(table.length, 3);

      appendFileSync(join(dir, "seed-1.jsonl"), log(1, 6, 9)); // a log that grows
      await page.waitForFunction(() => (globalThis as any).fitstreamRuns.events("seed-1") === 9, null, {
        timeout: 60_000,
      });
      assert.ok((await state()).every((c: { points: number }) => c.points === 9), "the charts reach step 9");

      const refused = await fetch(new URL("/runs/<script>", server.url), {
        method: "POST",
        body: log(3, 1, 3),
        headers: { authorization: "Bearer wrong" },
      });
      assert.equal(refused.status, 401);
      await refused.body?.cancel();
      const posted = await fetch(new URL("/runs/posted-run", server.url), {
        method: "POST",
        body: log(3, 1, 4),
        headers: { authorization: "Bearer tok" },
      });
      assert.equal(posted.status, 200);
      await posted.body?.cancel();
      await page.waitForFunction(() => (globalThis as any).fitstreamRuns.runs().includes("posted-run"), null, {
        timeout: 60_000,
      });
      await page.waitForFunction(
        () => (globalThis as any).fitstreamRuns.charts().every((c: any) => c.series.length === 4),
        null,
        { timeout: 60_000 },
      );
      // Hiding a run takes its series off every chart.
      await page.locator('input[data-run="seed-0"]').uncheck();
      const hidden = await state();
      assert.ok(hidden.every((c: { series: string[] }) => !c.series.includes("seed-0") && c.series.length === 3));
      assert.deepEqual(dialogs, []);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});

test("runs page: the best of a time key is its lowest, as for losses; the highest for others", () => {
  // The script text the page runs, run here.
  const bestValue = new Function(`${BEST_VALUE_JS}; return bestValue;`)() as (k: string, v: unknown[]) => unknown;
  assert.equal(bestValue("train_time_sec", [0.9, 0.4, 1.7]), 0.4, "the fastest epoch, not the slowest");
  assert.equal(bestValue("val_time_sec", [2, 1, null, NaN]), 1);
  assert.equal(bestValue("val_loss", [0.5, 0.2, 0.3]), 0.2);
  assert.equal(bestValue("val_acc", [0.5, 0.9, 0.7]), 0.9);
  assert.equal(bestValue("lr", []), undefined);
  assert.match(RUNS_JS, /bestValue\(k, run\.columns\.get\(k\)\)/, "the table uses it");
  new Function(RUNS_JS); // the page's script still parses (compiled, not run)
});
