// Comparing runs: a server that follows many logs, a collector that stores posted runs, and httpSink.
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { join } from "node:path";
import { httpSink, serveRuns } from "../mod.ts";
import { waitFor, within, withTempDir } from "./helpers.ts";

const line = (step: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ step, train_loss: 1 / step, ...extra });
const runsOf = async (url: string) => (await (await fetch(new URL("/api/runs", url))).json()).runs;

/** A port nothing listens on (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("serveRuns follows every log of a folder as it grows, and new files in it, with latest and best values", async () => {
  await withTempDir(async (dir) => {
    writeFileSync(
      join(dir, "a.jsonl"),
      [1, 2, 3].map((s) => line(s, { val_loss: 2 / s, acc: s / 10 })).join("\n") + "\n",
    );
    writeFileSync(join(dir, "notes.txt"), "not a run");
    const server = await serveRuns({ sources: [dir], pollMs: 50 });
    try {
      let runs = await runsOf(server.url);
      assert.deepEqual(runs.map((r: { name: string }) => r.name), ["a"]);
      assert.deepEqual(
        runs[0].best,
        { train_loss: 1 / 3, val_loss: 2 / 3, acc: 0.3 },
        "losses: lowest; others: highest",
      );
      appendFileSync(join(dir, "a.jsonl"), line(4) + "\n" + '{"step":5,"train_lo'); // and half a line
      writeFileSync(join(dir, "b.jsonl"), line(1) + "\n");
      await server.poll();
      runs = await runsOf(server.url);
      assert.deepEqual(runs.map((r: { name: string; length: number }) => [r.name, r.length]), [["a", 4], ["b", 1]]);
      appendFileSync(join(dir, "a.jsonl"), 'ss":0.2}\n');
      await server.poll();
      const history = await (await fetch(new URL("/api/runs/a/history?from=3", server.url))).json();
      assert.deepEqual(history.columns.step, [4, 5]);
      assert.equal((await fetch(new URL("/api/runs/zz/history", server.url))).status, 404);
    } finally {
      await server.close();
    }
    await assert.rejects(
      serveRuns({ sources: [join(dir, "missing")] }),
      /serveRuns: ".*missing" is neither a file nor a folder/,
    );
  });
});

test("the collector stores posted runs; a wrong or missing token gets 401, a bad name 400, and nothing is written", async () => {
  await withTempDir(async (dir) => {
    const server = await serveRuns({ collect: { dir, token: "s3cret" } });
    const post = (name: string, body: string, token?: string) =>
      fetch(new URL(`/runs/${name}`, server.url), {
        method: "POST",
        body,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    try {
      for (
        const [name, token, status] of [["r1", "wrong", 401], ["r1", undefined, 401], [
          ".hidden",
          "s3cret",
          400,
        ]] as const
      ) {
        const response = await post(name, line(1) + "\n", token);
        assert.equal(response.status, status, `${name} with ${token}`);
        await response.body?.cancel();
      }
      assert.deepEqual(readdirSync(dir), [], "nothing written for a refused request");
      const ok = await post("r1", line(1) + "\n" + line(2) + "\n", "s3cret");
      assert.deepEqual(await ok.json(), { written: 2 });
      const again = await post("r1", line(3) + "\n" + "not json\n" + line(4) + "\n", "s3cret");
      assert.equal(again.status, 400);
      assert.match(await again.text(), /line 2 is not a JSON object \(1 lines written before it\)/);
      assert.deepEqual(readFileSync(join(dir, "r1.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).step), [
        1,
        2,
        3,
      ]);
      await server.poll();
      assert.equal((await runsOf(server.url))[0].length, 3);
      assert.equal((await fetch(new URL("/runs/r1", server.url), { method: "GET" })).status, 404);
    } finally {
      await server.close();
    }
  });
});

test("a run streamed in one long request is stored and shown while it is still being sent", async () => {
  await withTempDir(async (dir) => {
    // The upload idles while the test waits for its first lines: idleTimeout is above that wait's bound.
    const server = await serveRuns({ collect: { dir, token: "t", idleTimeout: 120_000 }, pollMs: 20 });
    try {
      let push!: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({ start: (c) => void (push = c) });
      const encoder = new TextEncoder();
      const sending = fetch(new URL("/runs/live", server.url), {
        method: "POST",
        body,
        headers: { authorization: "Bearer t" },
        duplex: "half",
      } as RequestInit);
      push.enqueue(encoder.encode(line(1) + "\n" + line(2) + "\n"));
      // The request cannot end before the third line is pushed below: the wait's bound only guards against a hang.
      await waitFor(
        "the first lines shown before the request ends",
        async () => (await runsOf(server.url)).find((r: { name: string }) => r.name === "live")?.length === 2,
        { ms: 60_000 },
      );
      push.enqueue(encoder.encode(line(3) + "\n"));
      push.close();
      assert.deepEqual(await (await sending).json(), { written: 3 });
    } finally {
      await server.close();
    }
  });
});

test("httpSink never waits on the collector: lines wait while it restarts and are delivered once it is back", async () => {
  await withTempDir(async (dir) => {
    const port = await freePort();
    let server = await serveRuns({ collect: { dir, token: "t" }, port });
    // closeTimeout: a bound on close(), not a race with the delivery this test asserts (default 10 s).
    const sink = httpSink(server.url, { run: "resumed", token: "t", closeTimeout: 60_000 });
    const writer = sink.getWriter();
    for (let s = 1; s <= 50; s++) await writer.write({ step: s, train_loss: 1 / s });
    await waitFor("first delivery", () => sink.stats.delivered === 50);
    await server.close();
    for (let s = 51; s <= 100; s++) await writer.write({ step: s, train_loss: 1 / s }); // the collector is away
    assert.ok(sink.stats.pending > 0, "held while the collector is away");
    server = await serveRuns({ collect: { dir, token: "t" }, port });
    try {
      await within(60_000, "httpSink.close", writer.close());
      assert.deepEqual([sink.stats.delivered, sink.stats.dropped, sink.stats.pending], [100, 0, 0]);
      const steps = readFileSync(join(dir, "resumed.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).step);
      assert.deepEqual(steps, Array.from({ length: 100 }, (_, i) => i + 1));
    } finally {
      await server.close();
    }
  });
});

test("httpSink drops the oldest lines when its buffer is full, reports them, and tells the collector of the gap", async () => {
  await withTempDir(async (dir) => {
    const port = await freePort();
    const drops: number[] = [];
    const sink = httpSink(`http://127.0.0.1:${port}`, {
      run: "gappy",
      token: "t",
      maxBuffer: 3,
      closeTimeout: 60_000,
      onDrop: (count) => void drops.push(count),
    });
    const writer = sink.getWriter();
    for (let s = 1; s <= 10; s++) await writer.write({ step: s });
    assert.equal(sink.stats.dropped, 7);
    assert.equal(drops.reduce((a, b) => a + b, 0), 7);
    const server = await serveRuns({ collect: { dir, token: "t" }, port });
    try {
      await within(60_000, "httpSink.close", writer.close());
      const lines = readFileSync(join(dir, "gappy.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      // Three lines survive: the newest ones, unless the sender had already taken the first line into a request
      // when the buffer overflowed (then 1, 9, 10). Either way the gap is marked where it is, with its size.
      const steps = lines.filter((l) => "step" in l).map((l) => l.step as number);
      assert.equal(steps.length, 3);
      assert.deepEqual(steps.slice(-2), [9, 10]);
      assert.ok(steps[0] === 1 || steps[0] === 8, `first kept line: ${steps[0]}`);
      const gapAt = steps[0] === 1 ? 1 : 0;
      assert.deepEqual(lines[gapAt], { fitstream_dropped: 7 });
      assert.equal(lines.length, 4);
    } finally {
      await server.close();
    }
    assert.throws(() => httpSink("ftp://x", { run: "r", token: "t" }), /httpSink: url must be http\(s\)/);
    assert.throws(() => httpSink("http://x", { run: "../etc", token: "t" }), {
      name: "RangeError",
      message: /httpSink: run/,
    });
  });
});

test("httpSink with a refused token errors the stream at the next write, naming the run", async () => {
  await withTempDir(async (dir) => {
    const server = await serveRuns({ collect: { dir, token: "right" } });
    try {
      const writer = httpSink(server.url, { run: "r", token: "wrong" }).getWriter();
      await writer.write({ step: 1 });
      await assert.rejects(
        within(
          60_000,
          "refusal",
          (async () => {
            for (let s = 2;; s++) {
              await writer.write({ step: s });
              await new Promise((r) => setTimeout(r, 20));
            }
          })(),
        ),
        /httpSink: the collector at .*runs\/r refused run "r": HTTP 401/,
      );
      assert.equal(existsSync(join(dir, "r.jsonl")), false);
    } finally {
      await server.close();
    }
  });
});

test("the runs server has the dashboard's guards: headers on every response, other Host names get 421", async () => {
  await withTempDir(async (dir) => {
    const server = await serveRuns({ collect: { dir, token: "t" } });
    try {
      for (const path of ["/", "/runs.js", "/api/runs", "/nope"]) {
        const response = await fetch(new URL(path, server.url));
        await response.body?.cancel();
        assert.match(response.headers.get("content-security-policy") ?? "", /default-src 'self'/, path);
        assert.equal(response.headers.get("x-content-type-options"), "nosniff", path);
      }
      const { port } = new URL(server.url);
      const status = await new Promise<number>((resolve, reject) => {
        const socket = createConnection(Number(port), "127.0.0.1", () => {
          socket.write(`GET /api/runs HTTP/1.1\r\nHost: evil.example:${port}\r\nConnection: close\r\n\r\n`);
        });
        socket.once("data", (d) => {
          resolve(Number(String(d).split(" ")[1]));
          socket.destroy();
        });
        socket.on("error", reject);
      });
      assert.equal(status, 421);
    } finally {
      await server.close();
    }
  });
});
