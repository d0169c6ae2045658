import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collect, collectJsonl, jsonlSink, pipe, plotSvg, take } from "../mod.ts";
import { countingSource, failingSource, fromEvents, waitFor } from "./helpers.ts";

const model = { weights: [1, 2, 3], toString: () => "model" };
const events = () => [
  { step: 1, train_loss: 0.5, train_time_sec: 0.01, model, note: "a" },
  { step: 2, train_loss: 0.25, train_time_sec: 0.02, model, note: "b" },
  { step: 3, train_loss: 0.125, train_time_sec: 0.03, model, note: "c" },
];
const withoutModel = events().map(({ model: _m, ...rest }) => rest);

async function tempDir(): Promise<string> {
  return await mkdtemp(join(tmpdir(), "fitstream-test-"));
}

function parseLines(text: string): unknown[] {
  assert.ok(text.endsWith("\n"), "every line is newline-terminated");
  return text.slice(0, -1).split("\n").map((l) => JSON.parse(l));
}

/** A WritableStream<Uint8Array> that records the decoded text. */
function memorySink() {
  const decoder = new TextDecoder();
  const state = { text: "", closed: false, aborted: false };
  const stream = new WritableStream<Uint8Array>({
    write(chunk) {
      state.text += decoder.decode(chunk, { stream: true });
    },
    close() {
      state.closed = true;
    },
    abort() {
      state.aborted = true;
    },
  });
  return { stream, state };
}

test("collect drops model; include/exclude select keys", async () => {
  assert.deepEqual(await collect(fromEvents(events())), withoutModel);
  assert.deepEqual(
    await collect(fromEvents(events()), { include: ["step", "model", "missing"] }),
    [{ step: 1 }, { step: 2 }, { step: 3 }],
  );
  assert.deepEqual(
    await collect(fromEvents(events()), { exclude: ["note", "train_time_sec"] }),
    withoutModel.map(({ step, train_loss }) => ({ step, train_loss })),
  );
});

test("collect: include and exclude together is a TypeError; bad lists too", async () => {
  await assert.rejects(collect(fromEvents(events()), { include: ["a"], exclude: ["b"] }), {
    name: "TypeError",
    message: "collect: pass include or exclude, not both",
  });
  await assert.rejects(
    // @ts-expect-error: include must be a list
    collect(fromEvents(events()), { include: "step" }),
    /collect: include must be an array of key names/,
  );
  assert.throws(
    () => jsonlSink("x.jsonl", { include: ["a"], exclude: ["b"] }),
    /jsonlSink: pass include or exclude, not both/,
  );
  // @ts-expect-error: not a stream
  await assert.rejects(collect([1, 2]), /collect: stream must be a ReadableStream, got an array/);
});

test("jsonlSink writes to a file path (overwriting it) and parses back", async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, "run.jsonl");
    await writeFile(path, "old content that must disappear\n".repeat(10));
    await fromEvents(events()).pipeTo(jsonlSink(path));
    assert.deepEqual(parseLines(await readFile(path, "utf8")), withoutModel);
    const url = new URL(`file://${join(dir, "url.jsonl")}`);
    await collectJsonl(fromEvents(events()), url, { include: ["step"] });
    assert.equal(await readFile(url, "utf8"), '{"step":1}\n{"step":2}\n{"step":3}\n');
  } finally {
    await rm(dir, { recursive: true });
  }
});

test("jsonlSink writes to an in-memory WritableStream; include/exclude apply", async () => {
  const mem = memorySink();
  await fromEvents(events()).pipeTo(jsonlSink(mem.stream, { exclude: ["note"] }));
  assert.equal(mem.state.closed, true);
  assert.deepEqual(parseLines(mem.state.text), withoutModel.map(({ note: _n, ...r }) => r));
  const mem2 = memorySink();
  await collectJsonl(fromEvents(events()), mem2.stream, { include: ["train_loss", "model"] });
  assert.deepEqual(parseLines(mem2.state.text), [{ train_loss: 0.5 }, { train_loss: 0.25 }, { train_loss: 0.125 }]);
});

test("jsonlSink streams to a local HTTP server through a fetch request body", async () => {
  let received = "";
  const server = createServer((req, res) => {
    req.setEncoding("utf8");
    req.on("data", (d: string) => (received += d));
    req.on("end", () => res.end("ok"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  try {
    const pipeThrough = new TransformStream<Uint8Array, Uint8Array>();
    const response = fetch(`http://127.0.0.1:${port}/log`, {
      method: "POST",
      body: pipeThrough.readable,
      headers: { "content-type": "application/x-ndjson" },
      duplex: "half",
    } as RequestInit);
    await pipe(fromEvents(events()), take(3)).pipeTo(jsonlSink(pipeThrough.writable));
    const res = await response;
    assert.equal(await res.text(), "ok");
    assert.deepEqual(parseLines(received), withoutModel);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test("a non-serialisable value fails with the key's name after earlier lines are flushed", async () => {
  const bad = [
    ...events().slice(0, 2),
    { step: 3, train_loss: 1, scheduler: { step() {} } },
    { step: 4, train_loss: 1 },
  ];
  for (
    const [value, pattern] of [
      [() => 1, /key "scheduler" holds a function/],
      [10n, /key "scheduler" holds bigint 10/],
      [new Map(), /key "scheduler" holds a Map/],
      [{ nested: { fn: () => 1 } }, /key "scheduler\.nested\.fn" holds a function/],
      [undefined, /key "scheduler" holds undefined/],
    ] as const
  ) {
    bad[2] = { step: 3, train_loss: 1, scheduler: value as never };
    const dir = await tempDir();
    try {
      const path = join(dir, "run.jsonl");
      const src = countingSource((step) => bad[step - 1]);
      await assert.rejects(src.stream.pipeTo(jsonlSink(path)), { name: "TypeError", message: pattern });
      assert.deepEqual(parseLines(await readFile(path, "utf8")), withoutModel.slice(0, 2));
      assert.equal(src.cancelled, true);
      const mem = memorySink();
      await assert.rejects(collectJsonl(fromEvents(bad), mem.stream), pattern);
      assert.deepEqual(parseLines(mem.state.text), withoutModel.slice(0, 2));
      assert.equal(mem.state.closed, true, "the destination is closed cleanly");
    } finally {
      await rm(dir, { recursive: true });
    }
  }
});

test("a circular value names its key; NaN is written as null; Dates use toJSON", async () => {
  const cyc: Record<string, unknown> = {};
  cyc.self = cyc;
  const mem = memorySink();
  await assert.rejects(
    collectJsonl(fromEvents([{ step: 1, cyc }]), mem.stream),
    /key "cyc\.self" holds a circular reference/,
  );
  const mem2 = memorySink();
  await collectJsonl(fromEvents([{ step: 1, loss: NaN, at: new Date(0) }]), mem2.stream);
  assert.deepEqual(parseLines(mem2.state.text), [{ step: 1, loss: null, at: "1970-01-01T00:00:00.000Z" }]);
});

test("an upstream error keeps the lines already written and closes the file", async () => {
  const boom = new Error("training failed");
  const mem = memorySink();
  await assert.rejects(failingSource(3, boom).pipeTo(jsonlSink(mem.stream, { include: ["step"] })), boom);
  await waitFor("the file's close", () => mem.state.closed); // the sink's abort closes it on its own time
  assert.deepEqual(parseLines(mem.state.text), [{ step: 1 }, { step: 2 }]);
  const mem2 = memorySink();
  await assert.rejects(collectJsonl(failingSource(2, boom), mem2.stream, { include: ["step"] }), boom);
  assert.deepEqual(parseLines(mem2.state.text), [{ step: 1 }]);
  assert.equal(mem2.state.closed, true);
});

test("jsonlSink creates a missing folder, as checkpoint does; one it cannot create fails with the path", async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, "runs", "today", "run.jsonl");
    await collectJsonl(fromEvents([{ step: 1 }]), path);
    assert.equal(await readFile(path, "utf8"), '{"step":1}\n');
    const svg = join(dir, "plots", "run.svg");
    await fromEvents([{ step: 1, train_loss: 1 }]).pipeTo(plotSvg(svg));
    assert.match(await readFile(svg, "utf8"), /^<svg/);
    // A file where a folder should be: refused when the sink is built, before a single event is pulled.
    await writeFile(join(dir, "file"), "");
    const blocked = join(dir, "file", "sub", "run.jsonl");
    assert.throws(
      () => jsonlSink(blocked),
      (e: Error) => e.message.startsWith("jsonlSink: ") && e.message.includes(blocked),
    );
    const src = countingSource();
    await assert.rejects(collectJsonl(src.stream, blocked), (e: Error) => e.message.includes(blocked));
    assert.equal(src.pulls, 0);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test("jsonlSink: a bad dest is a TypeError", () => {
  // @ts-expect-error: a number is no destination
  assert.throws(() => jsonlSink(42), {
    name: "TypeError",
    message: /jsonlSink: dest must be a file path, a file URL or a WritableStream, got number 42/,
  });
  assert.throws(() => jsonlSink(""), { name: "TypeError", message: /jsonlSink: dest must not be an empty path/ });
});

test("collectJsonl writes line by line: each line is on disk before the next event is pulled", async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, "live.jsonl");
    const seenOnDisk: number[] = [];
    let step = 0;
    const src = new ReadableStream({
      async pull(c) {
        if (step > 0) seenOnDisk.push((await readFile(path, "utf8")).split("\n").length - 1);
        if (++step > 4) c.close();
        else c.enqueue({ step });
      },
    }, { highWaterMark: 0 });
    await collectJsonl(src, path);
    assert.deepEqual(seenOnDisk, [1, 2, 3, 4]);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test("sinks reject unknown options; append is a jsonlSink option only", async () => {
  // @ts-expect-error: not an option
  await assert.rejects(collect(fromEvents(events()), { incude: ["step"] }), {
    name: "TypeError",
    message: 'collect: options has no key "incude"; did you mean "include"?',
  });
  // @ts-expect-error: collect does not append
  await assert.rejects(collect(fromEvents(events()), { append: true }), {
    message: 'collect: options has no key "append"; the options are include, exclude',
  });
  const dir = await tempDir();
  try {
    const path = join(dir, "a.jsonl");
    await collectJsonl(fromEvents(events().slice(0, 1)), path, { include: ["step"] });
    await collectJsonl(fromEvents(events().slice(1, 2)), path, { include: ["step"], append: true });
    assert.equal(await readFile(path, "utf8"), '{"step":1}\n{"step":2}\n');
  } finally {
    await rm(dir, { recursive: true });
  }
});
