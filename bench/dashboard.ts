/**
 * Does the dashboard slow training? Events per second of a synthetic run
 * (about 1 ms of work per event) with (a) no dashboard, (b) a dashboard and
 * no browser, (c) a dashboard and a browser that connected and then stopped
 * reading. Arms alternate round by round. Also reports the history's size.
 *
 *   deno run -A bench/dashboard.ts [--quick]
 */
import process from "node:process";
import { collect, dashboard, pipe, take } from "../mod.ts";
import { jsonLine, median, runtime, table } from "./common.ts";

const quick = process.argv.includes("--quick");
const EVENTS = quick ? 100 : 1000, ROUNDS = quick ? 1 : 5;

function source(): ReadableStream<Record<string, number>> {
  let step = 0;
  return new ReadableStream({
    pull(c) {
      const until = performance.now() + 1; // stand-in for an epoch's work
      let x = 0;
      while (performance.now() < until) x += Math.sqrt(x + step);
      step++;
      c.enqueue({ step, train_loss: 1 / step, val_loss: 1 / step + 0.01, lr: 0.01, work: x % 1 });
    },
  }, { highWaterMark: 0 });
}

async function arm(kind: "none" | "idle" | "stuck"): Promise<number> {
  const start = performance.now();
  if (kind === "none") {
    await collect(pipe(source(), take(EVENTS)));
  } else {
    const board = dashboard<Record<string, number>>({ onListen: () => {} });
    const stuck = kind === "stuck" ? await fetch(new URL("/events", board.url)) : undefined; // never read
    await collect(pipe(source(), take(EVENTS), board));
    await board.closed;
    await stuck?.body?.cancel().catch(() => {});
  }
  return EVENTS / ((performance.now() - start) / 1000);
}

const rates: Record<string, number[]> = { none: [], idle: [], stuck: [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of ["none", "idle", "stuck"] as const) rates[kind].push(await arm(kind));
}
const med = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)]));
console.log(`${EVENTS} events of ~1 ms each, median of ${ROUNDS} rounds (${runtime})`);
table([
  ["arm", "events/s", "vs none"],
  ["(a) no dashboard", med.none, 1],
  ["(b) dashboard, no browser", med.idle, med.idle / med.none],
  ["(c) dashboard, browser stopped reading", med.stuck, med.stuck / med.none],
]);
jsonLine("dashboard", {
  events: EVENTS,
  events_per_s: med,
  idle_ratio: med.idle / med.none,
  stuck_ratio: med.stuck / med.none,
});
