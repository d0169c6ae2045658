// The collector and httpSink under attack (issue 29): silent and dying collectors, lost answers, full disks,
// stalled uploads, runs with endless keys, long lines, and folders of many idle runs. Each test bounds its wait
// (`within`) so a regression fails instead of hanging, and none depends on how fast the machine is.
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { httpSink, serveRuns } from "../mod.ts";
import { History } from "../src/dashboard/history.ts";
import { storeIo } from "../src/dashboard/run_store.ts";
import { RunSet } from "../src/dashboard/runs.ts";
import { within, withTempDir } from "./helpers.ts";

const BOUND = 60_000; // what "never" means here: CI machines have run 10-20x slower than a laptop
// A sink whose test asserts that every line is delivered by close() gets closeTimeout: BOUND: the default
// (10 s) would make the assertion a race between delivery and the clock on a busy machine.
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const stepsIn = (path: string) =>
  readFileSync(path, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).step as number);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const line = (step: number) => JSON.stringify({ step }) + "\n";
/** Posts `body` to run `name` of a collector with token "t". */
const post = (server: { url: string }, name: string, body: string) =>
  fetch(new URL(`/runs/${name}`, server.url), { method: "POST", body, headers: { authorization: "Bearer t" } });

/** Waits until `done()` holds, checking every 20 ms, failing after `BOUND`. */
async function until(what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  await within(
    BOUND,
    what,
    (async () => {
      while (!(await done())) await pause(20);
    })(),
  );
}

/** Listens on a free port of 127.0.0.1; `close()` also destroys the connections still open. */
async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<{ port: number; close(): void }> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/**
 * A stand-in collector: reads each request's body, then answers what `answer` says — a status, or
 * `"silent"` to never answer.
 */
async function fakeCollector(answer: (request: IncomingMessage, body: string) => number | "silent") {
  const requests: { headers: IncomingMessage["headers"]; body: string }[] = [];
  const server = createHttpServer((request: IncomingMessage, response: ServerResponse) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (d: string) => (body += d));
    request.on("end", () => {
      requests.push({ headers: request.headers, body });
      const status = answer(request, body);
      if (status === "silent") return;
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify({ written: body.split("\n").filter((l) => l !== "").length }));
    });
  });
  const { port, close } = await listen(server);
  return { url: `http://127.0.0.1:${port}`, requests, close };
}

test("httpSink.close() settles at closeTimeout against a collector that accepts connections but never answers, reporting the held lines as dropped", async () => {
  const silent = createServer(() => {}); // takes the connection, reads nothing, answers nothing
  const { port, close } = await listen(silent);
  try {
    const drops: number[] = [];
    const sink = httpSink(`http://127.0.0.1:${port}`, {
      run: "silent",
      token: "t",
      closeTimeout: 500,
      onDrop: (count) => void drops.push(count),
    });
    const writer = sink.getWriter();
    for (let step = 1; step <= 5; step++) await writer.write({ step });
    await within(BOUND, "httpSink.close against a silent collector", writer.close());
    assert.deepEqual([sink.stats.delivered, sink.stats.dropped, sink.stats.pending], [0, 5, 0]);
    assert.equal(drops.reduce((a, b) => a + b, 0), 5, "onDrop told of every line");
  } finally {
    close();
  }
});

test("httpSink abandons a request that gets no answer within requestTimeout and sends its batch again", async () => {
  let calls = 0;
  const fake = await fakeCollector(() => (++calls === 1 ? "silent" : 200));
  try {
    const sink = httpSink(fake.url, {
      run: "r",
      token: "t",
      requestTimeout: 300,
      flushInterval: 0,
      closeTimeout: BOUND,
    });
    const writer = sink.getWriter();
    for (let step = 1; step <= 3; step++) await writer.write({ step });
    await within(BOUND, "httpSink.close", writer.close());
    assert.deepEqual([sink.stats.delivered, sink.stats.dropped, sink.stats.pending], [3, 0, 0]);
    assert.ok(sink.stats.resent >= 1, `the unanswered batch was sent again (resent ${sink.stats.resent})`);
    assert.throws(() => httpSink(fake.url, { run: "r", token: "t", requestTimeout: 0 }), {
      name: "RangeError",
      message: /httpSink: requestTimeout must be an integer >= 1, got 0/,
    });
  } finally {
    fake.close();
  }
});

/**
 * A proxy in front of a collector: forwards each POST to `target()` and passes its answer on, except
 * where `lose(n, answer)` (n counts POSTs from 1) says the answer is lost: then it answers 503.
 */
async function lossyProxy(target: () => string, lose: (n: number, status: number) => boolean | Promise<boolean>) {
  let n = 0;
  const server = createHttpServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Uint8Array[] = [];
    request.on("data", (d: Uint8Array) => chunks.push(d));
    request.on("end", async () => {
      const headers: Record<string, string> = {};
      for (const name of ["authorization", "content-type", "x-fitstream-batch"]) {
        const value = request.headers[name];
        if (typeof value === "string") headers[name] = value;
      }
      let status = 502, text = "";
      try {
        const answer = await fetch(new URL(request.url!, target()), {
          method: request.method,
          headers,
          body: new Blob(chunks as BlobPart[]),
        });
        status = answer.status;
        text = await answer.text();
      } catch { /* the collector is away: 502 */ }
      if (await lose(++n, status)) status = 503;
      response.writeHead(status, { "content-type": "application/json" });
      response.end(text);
    });
  });
  const { port, close } = await listen(server);
  return { url: `http://127.0.0.1:${port}`, close };
}

test("a batch whose answer is lost after the collector stored it is sent again and stored once", async () => {
  await withTempDir(async (dir) => {
    const server = await serveRuns({ collect: { dir, token: "t" } });
    const proxy = await lossyProxy(() => server.url, (n, status) => status === 200 && n <= 2);
    try {
      const sink = httpSink(proxy.url, { run: "once", token: "t", flushInterval: 0, closeTimeout: BOUND });
      const writer = sink.getWriter();
      for (let step = 1; step <= 40; step++) await writer.write({ step });
      await within(BOUND, "httpSink.close", writer.close());
      assert.deepEqual(stepsIn(join(dir, "once.jsonl")), range(1, 40), "every line once, in order");
      for (const stored of readFileSync(join(dir, "once.jsonl"), "utf8").trim().split("\n")) {
        assert.deepEqual(Object.keys(JSON.parse(stored)), ["step"], "the stored lines are the events alone");
      }
      assert.deepEqual([sink.stats.delivered, sink.stats.dropped, sink.stats.pending], [40, 0, 0]);
      // The first batch was stored and its answer lost twice: sent three times, skipped twice.
      assert.ok(sink.stats.resent >= 2, `resent ${sink.stats.resent}`);
      assert.ok(
        sink.stats.duplicates >= 1,
        `the collector reported the lines it already had (${sink.stats.duplicates})`,
      );
    } finally {
      proxy.close();
      await server.close();
    }
  });
});

test("a collector restarted between storing a batch and answering it still stores each line once", async () => {
  await withTempDir(async (dir) => {
    let server = await serveRuns({ collect: { dir, token: "t" } });
    const proxy = await lossyProxy(() => server.url, async (n, status) => {
      if (n !== 1 || status !== 200) return false;
      await server.close(); // the first batch is stored; the collector goes away before answering
      server = await serveRuns({ collect: { dir, token: "t" } });
      return true;
    });
    try {
      const sink = httpSink(proxy.url, { run: "restarted", token: "t", flushInterval: 0, closeTimeout: BOUND });
      const writer = sink.getWriter();
      for (let step = 1; step <= 30; step++) await writer.write({ step });
      await within(BOUND, "httpSink.close", writer.close());
      assert.deepEqual(stepsIn(join(dir, "restarted.jsonl")), range(1, 30));
      assert.deepEqual([sink.stats.delivered, sink.stats.dropped, sink.stats.pending], [30, 0, 0]);
    } finally {
      proxy.close();
      await server.close();
    }
  });
});

test("the collector's line limit counts bytes: a line of 1.2 MB in 2-byte characters gets 413 and nothing of it is stored", async () => {
  await withTempDir(async (dir) => {
    const server = await serveRuns({ collect: { dir, token: "t" } });
    const post = (body: string) =>
      fetch(new URL("/runs/wide", server.url), { method: "POST", body, headers: { authorization: "Bearer t" } });
    try {
      const fits = JSON.stringify({ step: 1, note: "é".repeat(500_000) }) + "\n"; // ~1.0 MB: under 1 MiB
      const ok = await post(fits);
      assert.equal(ok.status, 200, await ok.text());
      const tooLong = await post(JSON.stringify({ step: 2, note: "é".repeat(600_000) }) + "\n"); // 1.2 MB
      assert.equal(tooLong.status, 413);
      assert.match(await tooLong.text(), /line 1 is longer than 1048576 bytes/);
      const unended = await post(JSON.stringify({ step: 3, note: "é".repeat(600_000) })); // no newline at all
      assert.equal(unended.status, 413);
      await unended.body?.cancel();
      assert.deepEqual(stepsIn(join(dir, "wide.jsonl")), [1]);
    } finally {
      await server.close();
    }
  });
});

test("every line written to httpSink ends as exactly one of delivered, dropped or pending, through outages and a refusal", async () => {
  let status = 503;
  const fake = await fakeCollector(() => status);
  try {
    const drops: number[] = [];
    const sink = httpSink(fake.url, {
      run: "r",
      token: "t",
      maxBuffer: 30,
      flushInterval: 0,
      onDrop: (count) => void drops.push(count),
    });
    const writer = sink.getWriter();
    let written = 0;
    const check = (when: string) => {
      const { delivered, dropped, pending } = sink.stats;
      assert.equal(delivered + dropped + pending, written, `${when}: ${delivered} + ${dropped} + ${pending}`);
      assert.equal(drops.reduce((a, b) => a + b, 0), dropped, `${when}: onDrop was told of every dropped line`);
    };
    for (let step = 1; step <= 100; step++) {
      if (step === 50) status = 500;
      await writer.write({ step });
      written++;
      check(`write ${step} during the outage`);
      if (step % 10 === 0) await pause(5);
    }
    assert.ok(sink.stats.dropped >= 70, "the buffer of 30 overflowed");
    status = 200;
    await until("delivery after the outage", () => sink.stats.pending === 0);
    check("after the outage");
    status = 401;
    await within(
      BOUND,
      "the refusal",
      assert.rejects(
        (async () => {
          for (;;) {
            await writer.write({ step: written + 1 });
            written++;
            check(`write ${written} before the refusal`);
            await pause(20);
          }
        })(),
        /refused run "r": HTTP 401/,
      ),
    );
    check("after the refusal");
    assert.equal(sink.stats.pending, 0, "a refused sink holds nothing");

    // An outage through close(): what close() could not deliver is dropped and nothing stays pending.
    status = 500;
    const closing = httpSink(fake.url, { run: "r", token: "t", closeTimeout: 300, onDrop: () => {} });
    const closingWriter = closing.getWriter();
    for (let step = 1; step <= 100; step++) await closingWriter.write({ step });
    await within(BOUND, "close during an outage", closingWriter.close());
    assert.deepEqual([closing.stats.delivered, closing.stats.dropped, closing.stats.pending], [0, 100, 0]);
  } finally {
    fake.close();
  }
});

test("uploads that stall in their body are cut after the idle timeout, keeping their complete lines, and free their slots", async () => {
  await withTempDir(async (dir) => {
    const server = await serveRuns({ collect: { dir, token: "t", idleTimeout: 1000 } });
    const { port } = new URL(server.url);
    const sockets: Socket[] = [];
    try {
      // 64 authenticated uploads (every slot) send their headers, a line and half of another, then stall.
      const answers = Array.from({ length: 64 }, (_, i) =>
        new Promise<string>((resolve, reject) => {
          const socket = createConnection(Number(port), "127.0.0.1", () => {
            socket.write(
              `POST /runs/stall-${i} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer t\r\n` +
                `Content-Length: 100000\r\n\r\n{"step":1}\n{"step":`,
            );
          });
          sockets.push(socket);
          let text = "";
          socket.on("data", (d) => {
            text += d;
            if (text.includes("\r\n\r\n")) resolve(text);
          });
          socket.on("error", reject);
          socket.on("close", () => resolve(text));
        }));
      const heads = await within(BOUND, "the stalled uploads' answers", Promise.all(answers));
      for (const head of heads) assert.match(head, /^HTTP\/1\.1 408/);
      for (let i = 0; i < 64; i++) assert.deepEqual(stepsIn(join(dir, `stall-${i}.jsonl`)), [1]);
      const after = await fetch(new URL("/runs/after", server.url), {
        method: "POST",
        body: '{"step":1}\n',
        headers: { authorization: "Bearer t" },
      });
      assert.equal(after.status, 200, "a slot is free again");
      await after.body?.cancel();
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });
});

test("a run with more keys than the limit charts the first 256, says how many more it has, and its answers stay small", async () => {
  await withTempDir(async (dir) => {
    const server = await serveRuns({ collect: { dir, token: "t" } });
    try {
      const lines = Array.from({ length: 400 }, (_, i) => {
        const event: Record<string, number> = { step: i + 1 };
        for (let k = 0; k < 20; k++) event[`k${i}_${k}`] = k; // 20 new keys in every line
        return JSON.stringify(event) + "\n";
      });
      const posted = await fetch(new URL("/runs/keys", server.url), {
        method: "POST",
        body: lines.join(""),
        headers: { authorization: "Bearer t" },
      });
      assert.equal(posted.status, 200);
      await posted.body?.cancel();
      assert.equal(readFileSync(join(dir, "keys.jsonl"), "utf8"), lines.join(""), "the file keeps every key");
      await server.poll();
      const [run] = (await (await fetch(new URL("/api/runs", server.url))).json()).runs;
      assert.equal(run.length, 400);
      assert.equal(run.uncharted, 400 * 20 + 1 - 256, "the keys beyond the first 256 are counted");
      assert.ok(Object.keys(run.latest).length <= 256, "latest is bounded too");
      const answer = await (await fetch(new URL("/api/runs/keys/history", server.url))).text();
      const page = JSON.parse(answer);
      assert.equal(Object.keys(page.columns).length, 256);
      assert.ok(answer.length < 2_000_000, `history answer of ${answer.length} bytes`);
      assert.equal(page.columns.step.length, page.length);
    } finally {
      await server.close();
    }
  });
});

test("a collector that dies in the middle of a write leaves no partial line once restarted, and the batch sent again is stored once", async () => {
  await withTempDir(async (dir) => {
    // The first collector's first write stops half way and never returns, as if its process died there;
    // a second collector on the same folder takes its place behind the proxy.
    const write = storeIo.write;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let died!: () => void;
    const death = new Promise<void>((resolve) => (died = resolve));
    storeIo.write = async (file, bytes) => {
      storeIo.write = write;
      await write(file, bytes.subarray(0, bytes.length >> 1));
      died();
      await released;
      throw new Error("the process is gone");
    };
    const first = await serveRuns({ collect: { dir, token: "t" } });
    let second: Awaited<ReturnType<typeof serveRuns>> | undefined;
    const restarted = death.then(async () => (second = await serveRuns({ collect: { dir, token: "t" } })));
    const proxy = await lossyProxy(() => second?.url ?? first.url, () => false);
    try {
      const sink = httpSink(proxy.url, { run: "died", token: "t", requestTimeout: 1000, closeTimeout: BOUND });
      const writer = sink.getWriter();
      for (let step = 1; step <= 30; step++) await writer.write({ step });
      await within(BOUND, "the first collector's death", restarted);
      await within(BOUND, "httpSink.close", writer.close());
      assert.deepEqual(stepsIn(join(dir, "died.jsonl")), range(1, 30), "every line once, none cut");
      assert.deepEqual([sink.stats.delivered, sink.stats.dropped, sink.stats.pending], [30, 0, 0]);
    } finally {
      storeIo.write = () => Promise.reject(new Error("the process is gone")); // the dead collector writes nothing
      release();
      proxy.close();
      await first.close();
      await second?.close();
      storeIo.write = write;
    }
  });
});

test("a partial last line left by a collector killed mid-write is cut off when the run is next posted to", async () => {
  await withTempDir(async (dir) => {
    writeFileSync(join(dir, "cut.jsonl"), line(1) + '{"step":2,"train_lo');
    const server = await serveRuns({ collect: { dir, token: "t" } });
    try {
      const answer = await post(server, "cut", line(2));
      assert.deepEqual(await answer.json(), { written: 1 });
      assert.equal(readFileSync(join(dir, "cut.jsonl"), "utf8"), line(1) + line(2));
    } finally {
      await server.close();
    }
  });
});

test("a failed write (a full disk) answers 500 and leaves no partial line: the next accepted POST starts a line of its own", async () => {
  await withTempDir(async (dir) => {
    const server = await serveRuns({ collect: { dir, token: "t" } });
    const write = storeIo.write;
    /** The next `n` writes store half their bytes, then fail as a full disk does. */
    const fillDisk = (n: number) => {
      let left = n;
      storeIo.write = async (file, bytes) => {
        if (left-- <= 0) return await write(file, bytes);
        await write(file, bytes.subarray(0, Math.max(1, bytes.length >> 1)));
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      };
    };
    try {
      assert.equal((await post(server, "full", line(1))).status, 200);
      fillDisk(1);
      const full = await post(server, "full", line(2) + line(3));
      assert.equal(full.status, 500);
      assert.match(await full.text(), /no space left on device.*\(0 lines written before it\)/);
      const after = await post(server, "full", line(4));
      assert.equal(after.status, 200);
      await after.body?.cancel();
      assert.equal(readFileSync(join(dir, "full.jsonl"), "utf8"), line(1) + line(4), "the acknowledged lines, whole");

      // httpSink sends again what got 500, and each line is stored once.
      fillDisk(3);
      const sink = httpSink(server.url, { run: "sunk", token: "t", flushInterval: 0, closeTimeout: BOUND });
      const writer = sink.getWriter();
      for (let step = 1; step <= 20; step++) await writer.write({ step });
      await within(BOUND, "httpSink.close", writer.close());
      assert.deepEqual(stepsIn(join(dir, "sunk.jsonl")), range(1, 20));
      assert.deepEqual([sink.stats.delivered, sink.stats.dropped, sink.stats.pending], [20, 0, 0]);
    } finally {
      storeIo.write = write;
      await server.close();
    }
  });
});

test("a run's history holds the values logged, not events × keys: 256 keys seen once then 20,000 small events stay small", () => {
  const history = new History(256);
  const first: Record<string, number> = { step: 0 };
  for (let k = 0; k < 300; k++) first[`k${k}`] = k;
  history.push(first);
  for (let step = 1; step <= 20_000; step++) history.push(step % 3 === 0 ? { step, k0: -step } : { step });
  assert.ok(history.bytes < 1_000_000, `${history.bytes} bytes`);
  assert.equal(history.keys, 256);
  assert.equal(history.uncharted, 301 - 256);
  const page = history.slice(2, 7);
  assert.deepEqual(page.columns.step, [2, 3, 4, 5, 6]);
  assert.deepEqual(page.columns.k0, [null, -3, null, null, -6], "a key that comes and goes");
  assert.deepEqual(page.columns.k5, [null, null, null, null, null]);
});

test("an idle tick of a folder of 2,000 idle runs lists no folder, reads no file and stats a tenth of the runs", async () => {
  await withTempDir(async (dir) => {
    const longAgo = new Date(Date.now() - 3_600_000);
    for (let i = 0; i < 2000; i++) {
      writeFileSync(join(dir, `run-${i}.jsonl`), line(1));
      utimesSync(join(dir, `run-${i}.jsonl`), longAgo, longAgo); // last written an hour ago
    }
    utimesSync(dir, longAgo, longAgo); // and the folder last changed then too
    const runs = new RunSet([dir]);
    await runs.poll();
    assert.equal(runs.list().length, 2000);
    const work = () => ({ ...runs.work });
    const counted = async (what: () => Promise<void>) => {
      const before = work();
      await what();
      const after = work();
      return [after.listings - before.listings, after.reads - before.reads, after.stats - before.stats];
    };
    assert.deepEqual(
      await counted(() => runs.tick()),
      [0, 0, 201],
      "a tick: a stat for a tenth of the runs and the folder",
    );
    assert.deepEqual(await counted(() => runs.poll()), [1, 0, 2001], "a full poll: every run, and the listing");
    appendFileSync(join(dir, "run-7.jsonl"), line(2)); // an idle log grows: read within 10 ticks
    let ticks = 0;
    while (runs.list().find((r) => r.name === "run-7")?.length !== 2) {
      assert.ok(++ticks <= 10, "run-7's new line is read within 10 ticks");
      await runs.tick();
    }
    writeFileSync(join(dir, "new.jsonl"), line(1)); // a new file moves the folder's mtime: listed at the next tick
    assert.deepEqual((await counted(() => runs.tick())).slice(0, 2), [1, 1], "the new file, listed and read");
    assert.equal(runs.list().length, 2001);
  });
});
