// Logs and loaders: nothing waits forever on a peer, nothing is lost silently, every error names its file or URL.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { createServer, type Socket } from "node:net";
import { appendFileSync, existsSync, readFileSync, type Stats, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { collect, csvDataset, epochStream, fromJsonl, jsonlSink, loadCsv, toSvg } from "../mod.ts";
import { within, withTempDir } from "./helpers.ts";
import { runScript, startScript } from "./spawn.ts";
import "./tf_helpers.ts";

/**
 * A TCP server on 127.0.0.1 that answers each connection with `reply` (maybe nothing) and then goes silent;
 * `answered` resolves once it has sent its reply to a first request.
 */
async function silentPeer(reply = ""): Promise<{ url: string; answered: Promise<void>; close(): void }> {
  const sockets: Socket[] = [];
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on("data", () => {
      if (reply) socket.write(reply, () => answer());
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/data`,
    answered,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const halfABody = (body: string) =>
  `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\n${body}`;

test("a URL that never answers, or stalls mid-body, fails after `timeout` ms of silence, naming the URL", async () => {
  for (const [csv, jsonl] of [["", ""], [halfABody("x,y\n1,2\n"), halfABody('{"step":1}\n')]]) {
    const csvPeer = await silentPeer(csv), jsonlPeer = await silentPeer(jsonl);
    try {
      await assert.rejects(within(60_000, "loadCsv", loadCsv(csvPeer.url, { timeout: 200 })), (e: Error) => {
        assert.match(e.message, /^loadCsv: http:\/\/127\.0\.0\.1:\d+\/data sent nothing for 200 ms/);
        return true;
      });
      await assert.rejects(
        within(60_000, "fromJsonl", collect(fromJsonl(jsonlPeer.url, { timeout: 200 }))),
        /fromJsonl: http:\/\/127\.0\.0\.1:\d+\/data sent nothing for 200 ms/,
      );
    } finally {
      csvPeer.close();
      jsonlPeer.close();
    }
  }
});

test("an AbortSignal cancels a load that is waiting on a peer, with the signal's reason", async () => {
  const peer = await silentPeer(halfABody("x,y\n1,2\n"));
  try {
    const controller = new AbortController();
    const loading = loadCsv(peer.url, { signal: controller.signal });
    loading.catch(() => {}); // awaited below
    await within(60_000, "the peer's half answer", peer.answered); // the load now waits on the rest of the body
    controller.abort(new Error("stop: user pressed Ctrl-C"));
    await assert.rejects(within(60_000, "loadCsv", loading), /stop: user pressed Ctrl-C/);
    await assert.rejects(loadCsv(peer.url, { timeout: 0 }), /loadCsv: timeout must be a number of milliseconds > 0/);
    assert.throws(() => fromJsonl(peer.url, { signal: "soon" as never }), /fromJsonl: signal must be an AbortSignal/);
  } finally {
    peer.close();
  }
});

test(
  "a URL stalled mid-body fails on its timeout or signal, naming the URL, even when garbage is collected meanwhile",
  { timeout: 300_000 },
  async () => {
    // In a child that can force collections (Deno: --expose-gc). Deno's fetch reaches the body through the
    // request's signal, which followed ours only weakly: once the Response was collected, neither the timer
    // nor the signal reached the read, and every loader waited forever.
    const child = startScript("tests/fixtures/stalled_url_gc.ts", [], { DENO_V8_FLAGS: "--expose-gc" });
    const { code, stdout, stderr } = await within(240_000, "stalled_url_gc.ts", child.done).catch((error) => {
      child.kill("SIGKILL");
      throw error;
    });
    assert.equal(code, 0, stderr);
    const results = stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(results.map((r) => [r.load, r.how, r.settled]), [
      ["loadCsv", "timeout", true],
      ["loadCsv", "signal", true],
      ["csvDataset", "timeout", true],
      ["csvDataset", "signal", true],
      ["fromJsonl", "timeout", true],
      ["fromJsonl", "signal", true],
    ]);
    for (const { load, how, message } of results) {
      const url = load === "fromJsonl" ? "run\\.jsonl" : "data\\.csv";
      const why = how === "timeout" ? `sent nothing for 300 ms` : `was aborted`;
      assert.match(message, new RegExp(`^rejected: ${load}: (reading )?http://127\\.0\\.0\\.1:\\d+/${url} ${why}`));
    }
  },
);

test(
  "a 400,000-column header loads in loadCsv and csvDataset in well under 2 minutes, and a missing column's error stays short",
  { timeout: 300_000 },
  async () => {
    // In a child, killed at the bound: a search of the header per column (quadratic) blocked the event loop
    // for 30-40 s at 100,000 columns, so ~10 minutes at 400,000; a linear reader takes seconds even on a busy machine.
    const n = 400_000;
    const child = startScript("tests/fixtures/wide_header.ts", [String(n)]);
    const { code, stdout, stderr } = await within(120_000, "wide_header.ts", child.done).catch((error) => {
      child.kill("SIGKILL");
      throw error;
    });
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout.split("\n").find((line) => line.startsWith("{"))!);
    assert.deepEqual(
      [result.columns, result.rows, result.last, result.shape, result.datasetLast],
      [n, 2, [9, 0], [2, n], [9, 0]],
    );
    assert.match(
      result.missing,
      /^loadCsv: .*wide\.csv: column "nope" is not in the header \(c0, c1, .*c19, … 400000 columns in all\)$/,
    );
    assert.ok(result.missingLength < 1000, `the error is ${result.missingLength} characters long`);
  },
);

test("fromJsonl: a cut-off last line is an error that says so, or skipped when asked; complete lines all come back", async () => {
  await withTempDir(async (dir) => {
    const log = join(dir, "run.jsonl");
    writeFileSync(log, '{"step":1,"loss":0.5}\n{"step":2,"loss":0.25}\n{"step":3,"lo');
    await assert.rejects(
      collect(fromJsonl(log)),
      /line 3 is not JSON: .*the last line has no newline: a cut-off write/,
    );
    assert.deepEqual((await collect(fromJsonl(log, { partialLastLine: "skip" }))).map((e) => e.step), [1, 2]);
    writeFileSync(log, '{"step":1}\n{"step":2\n{"step":3}\n');
    await assert.rejects(collect(fromJsonl(log, { partialLastLine: "skip" })), /line 2 is not JSON/);
  });
});

test("a read cut short by a rewrite that has restored the file's size by the end is named a rewrite, a smaller file a shrink", async () => {
  const { changedWhileRead } = await import("../src/data/open_input.ts");
  const stats = (size: number, mtimeMs: number) =>
    ({ size, mtimeMs, mtime: new Date(mtimeMs), isFile: () => true }) as unknown as Stats;
  const opened = stats(600, 1000);
  assert.match(
    changedWhileRead(opened, stats(600, 2000), 64)!,
    /^was rewritten while it was read \(600 bytes when opened, 600 now, 64 read\)/,
  );
  assert.match(
    changedWhileRead(opened, stats(300, 2000), 64)!,
    /^shrank while it was read \(600 bytes when opened, 300 now/,
  );
  assert.match(changedWhileRead(opened, stats(300, 2000), 600)!, /^shrank while it was read/);
  assert.match(
    changedWhileRead(opened, stats(600, 2000), 600)!,
    /^was rewritten while it was read \(same size, modified at /,
  );
  assert.equal(changedWhileRead(opened, stats(900, 2000), 600), undefined, "a log that grew");
  assert.equal(changedWhileRead(opened, stats(600, 1000), 600), undefined, "unchanged");
});

test(
  "a file rewritten while csvDataset or fromJsonl reads it fails the read naming the file, instead of ending with a cut row",
  { timeout: 120_000 },
  async () => {
    await withTempDir(async (dir) => {
      const csv = join(dir, "rows.csv");
      // Rows of 6 bytes after a 6-byte header: the first 64 KiB read ends 4 bytes into a row ("12,3"), a row
      // that a read ending there took for whole.
      const rows = (n: number, row: string) => "xyz,y\n" + row.repeat(n);
      // Drains a pass after its first batch, once `rewrite` has changed the file under it (one 64 KiB read and
      // the streams' small buffers are all that is read ahead of the first batch).
      const pass = async (rewrite: () => void) => {
        writeFileSync(csv, rows(100_000, "12,34\n"));
        const iterator = await csvDataset(csv, { label: "y", batchSize: 10 }).iterator();
        let next = await iterator.next();
        rewrite();
        for (; !next.done; next = await iterator.next()) tf.dispose([next.value.xs, next.value.ys!]);
      };
      const shrank = {
        message: /^csvDataset: .*rows\.csv shrank while it was read \(600006 bytes when opened, \d+ now/,
      };
      await assert.rejects(pass(() => writeFileSync(csv, rows(1, "1,2\n"))), shrank); // cut short: the last row "12,3"
      await assert.rejects(pass(() => writeFileSync(csv, rows(50_000, "56,78\n"))), shrank); // a row "12,38", then new rows
      await assert.rejects(
        pass(() => {
          const { mtime } = statSync(csv);
          writeFileSync(csv, rows(100_000, "56,78\n")); // the same size
          utimesSync(csv, mtime, new Date(mtime.getTime() + 10_000)); // a new mtime, however coarse the file system's clock
        }),
        // Seen at the end (a new mtime) or, when a read in flight met the file truncated half-way, as a read cut short.
        {
          message:
            /^csvDataset: .*rows\.csv was rewritten while it was read \((same size, modified at |600006 bytes when opened, 600006 now, \d+ read\))/,
        },
      );

      const log = join(dir, "run.jsonl");
      const lines = (from: number, n: number) =>
        Array.from({ length: n }, (_, i) => JSON.stringify({ step: from + i })).join("\n") + "\n";
      writeFileSync(log, lines(1, 100_000));
      const reader = fromJsonl(log, { partialLastLine: "skip" }).getReader();
      assert.deepEqual((await reader.read()).value, { step: 1 });
      writeFileSync(log, lines(1, 10) + '{"step":11'); // rewritten, cut mid-line
      await assert.rejects(
        (async () => {
          while (!(await reader.read()).done);
        })(),
        { message: /^fromJsonl: .*run\.jsonl shrank while it was read/ },
      );

      // A log that grows while it is read (a run still writing it) is read without complaint.
      writeFileSync(log, lines(1, 100_000));
      const growing = fromJsonl(log).getReader();
      await growing.read();
      appendFileSync(log, lines(100_001, 5));
      let last: unknown;
      for (let r = await growing.read(); !r.done; r = await growing.read()) last = r.value;
      assert.ok([{ step: 100_000 }, { step: 100_005 }].some((s) => JSON.stringify(s) === JSON.stringify(last)));
    });
  },
);

test("jsonlSink append: a cut-off last line is removed, a complete one gets its newline, and a warning says which", async () => {
  await withTempDir(async (dir) => {
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (message: string) => void warnings.push(message);
    try {
      const log = join(dir, "run.jsonl");
      writeFileSync(log, '{"step":1}\n{"step":2,"lo');
      await ReadableStream.from([{ step: 2 }, { step: 3 }]).pipeTo(jsonlSink(log, { append: true }));
      assert.equal(readFileSync(log, "utf8"), '{"step":1}\n{"step":2}\n{"step":3}\n');
      assert.match(
        warnings[0],
        /jsonlSink: appending to ".*run\.jsonl": its last line was cut off mid-write \(13 bytes/,
      );

      writeFileSync(log, '{"step":1}');
      await ReadableStream.from([{ step: 2 }]).pipeTo(jsonlSink(log, { append: true }));
      assert.equal(readFileSync(log, "utf8"), '{"step":1}\n{"step":2}\n');
      assert.match(warnings[1], /its last line had no newline; one was added/);
      assert.equal(warnings.length, 2);
    } finally {
      console.warn = warn;
    }
  });
});

test("jsonlSink: a full disk errors the stream with the path in the message", async () => {
  if (!existsSync("/dev/full")) return; // Linux's always-full device
  const writing = ReadableStream.from([{ step: 1, note: "x".repeat(100) }]).pipeTo(jsonlSink("/dev/full"));
  await assert.rejects(writing, /jsonlSink: cannot write to "\/dev\/full": .*(ENOSPC|space)/i);
});

test("jsonlSink: a second sink on a file another sink is writing is refused; after the first closes it is fine", async () => {
  await withTempDir(async (dir) => {
    const log = join(dir, "run.jsonl");
    const first = jsonlSink(log);
    assert.throws(() => jsonlSink(log), /jsonlSink: ".*run\.jsonl" is already being written by another jsonlSink/);
    assert.throws(() => jsonlSink(pathToFileURL(log)), /already being written/);
    const writer = first.getWriter();
    await writer.write({ step: 1 });
    await writer.close();
    await ReadableStream.from([{ step: 2 }]).pipeTo(jsonlSink(log, { append: true }));
    assert.equal(readFileSync(log, "utf8"), '{"step":1}\n{"step":2}\n');
  });
});

test("jsonlSink: undefined and a value nested 100,000 deep are clear TypeErrors naming the key", async () => {
  await withTempDir(async (dir) => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    await assert.rejects(
      ReadableStream.from([{ step: 1, tree: deep }]).pipeTo(jsonlSink(join(dir, "a.jsonl"))),
      { name: "TypeError", message: /jsonlSink: key "tree" is nested more than 1000 levels deep/ },
    );
    await assert.rejects(
      ReadableStream.from([{ step: 1, lr: undefined }]).pipeTo(jsonlSink(join(dir, "b.jsonl"))),
      { name: "TypeError", message: /jsonlSink: key "lr" holds undefined, which JSON cannot represent/ },
    );
  });
});

test("fromJsonl reads a 4 MB line in 4 KB pieces with work linear in its length", async () => {
  const line = JSON.stringify({ step: 1, blob: "y".repeat(4 * 1024 * 1024) }) + "\n";
  const bytes = new TextEncoder().encode(line);
  const pieces = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let at = 0; at < bytes.length; at += 4096) controller.enqueue(bytes.slice(at, at + 4096));
      controller.close();
    },
  });
  // Counts the characters the line splitter scans: appending to one string and splitting it again
  // at every piece scanned ~2 GB here (quadratic); a linear splitter scans each piece once.
  const split = String.prototype.split;
  let scanned = 0;
  String.prototype.split = function (this: string, ...args: unknown[]) {
    scanned += this.length;
    return (split as (...a: unknown[]) => string[]).apply(this, args);
  } as typeof split;
  let events;
  try {
    events = await collect(fromJsonl(pieces));
  } finally {
    String.prototype.split = split;
  }
  assert.equal(events.length, 1);
  assert.equal((events[0].blob as string).length, 4 * 1024 * 1024);
  assert.ok(scanned < 3 * bytes.length, `scanned ${scanned} characters for a line of ${bytes.length}`);
});

test("toSvg and cli.ts plot draw logs longer than the call stack allows to spread (1,100,000 events)", async () => {
  const events = Array.from({ length: 1_100_000 }, (_, i) => ({ step: i + 1 }));
  const svg = toSvg(events, { keys: [] });
  assert.match(svg, /^<svg /);
  await withTempDir(async (dir) => {
    const log = join(dir, "long.jsonl");
    const lines = Array.from({ length: 70_000 }, (_, i) => `{"step":${i + 1},"train_loss":${1 / (i + 1)}}`);
    writeFileSync(log, lines.join("\n") + '\n{"step":70001,"train_lo'); // and a cut-off last line
    const { code, stderr } = await runScript("cli.ts", ["plot", log, "-o", join(dir, "long.svg")]);
    assert.equal(code, 0, stderr);
    assert.match(readFileSync(join(dir, "long.svg"), "utf8"), /^<svg /);
  });
});

test("loadCsv: an unterminated quote names the file; a header naming a column twice is an error; file:// strings are paths", async () => {
  await withTempDir(async (dir) => {
    const bad = join(dir, "bad.csv");
    writeFileSync(bad, 'x,y\n1,"2\n3,4\n');
    await assert.rejects(
      loadCsv(bad),
      (e: Error) => e.message.startsWith(`loadCsv: ${bad}: `) && /quote/i.test(e.message),
    );
    const twice = join(dir, "twice.csv");
    writeFileSync(twice, "x,y,x\n1,2,3\n");
    await assert.rejects(loadCsv(twice), { name: "RangeError", message: /the header names column "x" twice/ });
    const good = join(dir, "good.csv");
    writeFileSync(good, "x,y\n1,2\n");
    const table = await loadCsv(pathToFileURL(good).href);
    assert.deepEqual(Array.from(table.column("y")), [2]);
  });
});

test("a disposed model or variable is named as such when the stream is built", () => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
  const x = tf.zeros([4, 1]);
  model.dispose();
  assert.throws(
    () => epochStream({ data: [x, x], model, optimizer: tf.train.sgd(0.1), loss: tf.losses.meanSquaredError }),
    { name: "TypeError", message: /epochStream: model has been disposed/ },
  );
  const w = tf.variable(tf.zeros([1, 1]));
  w.dispose();
  assert.throws(
    () =>
      epochStream({
        data: [x, x],
        model: (input: tf.Tensor) => input.matMul(w),
        variables: [w],
        optimizer: tf.train.sgd(0.1),
        loss: tf.losses.meanSquaredError,
      }),
    { name: "TypeError", message: /epochStream: variables\[0\] has been disposed/ },
  );
  x.dispose();
});

test("cli.ts serve of a missing file says so and exits 1 instead of serving", async () => {
  const child = startScript("cli.ts", ["serve", "/no/such/run.jsonl"]);
  const { code, stderr } = await within(60_000, "cli.ts serve", child.done).catch((error) => {
    child.kill("SIGKILL");
    throw error;
  });
  assert.equal(code, 1);
  assert.match(stderr, /serve: "\/no\/such\/run\.jsonl" is not a file/);
});
