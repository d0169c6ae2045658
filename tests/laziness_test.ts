import { test } from "node:test";
import assert from "node:assert/strict";
import { augment, earlyStop, ema, pipe, take, tap, tick } from "../mod.ts";
import { countingSource, failingSource, readN, settle, waitFor } from "./helpers.ts";

type Ev = { step: number; loss: number };

function sevenStages() {
  return [
    augment((e: Ev) => ({ val_loss: e.loss * 2 })),
    ema("val_loss", { decay: 0.5 }),
    tap(() => {}),
    tick(() => {}),
    take(100),
    earlyStop({ key: "val_loss", patience: 1000 }),
    augment(() => ({ extra: 1 })),
  ] as const;
}

test("pipe with 7 library stages, read 3 times: the source was pulled exactly 3 times", async () => {
  const src = countingSource();
  const s = sevenStages();
  const out = pipe(src.stream, s[0], s[1], s[2], s[3], s[4], s[5], s[6]);
  await settle();
  assert.equal(src.pulls, 0, "nothing is pulled before the first read");
  const events = await readN(out, 3);
  await settle();
  assert.deepEqual(events.map((e) => (e as unknown as Ev).step), [1, 2, 3]);
  assert.equal(src.pulls, 3);
});

test(".pipeThrough chain of 7 library stages, read 3 times: exactly 3 pulls", async () => {
  const src = countingSource();
  const s = sevenStages();
  const out = src.stream
    .pipeThrough(s[0]).pipeThrough(s[1]).pipeThrough(s[2]).pipeThrough(s[3])
    .pipeThrough(s[4]).pipeThrough(s[5]).pipeThrough(s[6]);
  const events = await readN(out, 3);
  await settle();
  assert.deepEqual(events.map((e) => (e as unknown as Ev).step), [1, 2, 3]);
  assert.equal(src.pulls, 3);
});

test("a stage sees each event before the next is pulled", async () => {
  const src = countingSource();
  const pullsSeen: number[] = [];
  const out = pipe(
    src.stream,
    tap(() => {}),
    tap(() => {}),
    tap((e) => void pullsSeen.push(src.pulls - (e.step as number))),
  );
  await readN(out, 4);
  assert.deepEqual(pullsSeen, [0, 0, 0, 0]);
});

test("a foreign TransformStream mixed in still works (with its own read-ahead)", async () => {
  const src = countingSource();
  const double = new TransformStream<Record<string, unknown>, Record<string, unknown>>({
    transform: (e, c) => c.enqueue({ ...e, twice: (e.step as number) * 2 }),
  });
  const out = pipe(src.stream, take(5), double, augment((e) => ({ thrice: (e.step as number) * 3 })));
  const events = await readN(out, 10);
  assert.deepEqual(events.map((e) => [e.twice, e.thrice]), [[2, 3], [4, 6], [6, 9], [8, 12], [10, 15]]);
  assert.equal(src.pulls, 5);
});

test("take cancels the source and pulls no further event", async () => {
  for (
    const build of [
      (s: ReadableStream<Record<string, unknown>>) => pipe(s, tap(() => {}), take(2), tap(() => {})),
      (s: ReadableStream<Record<string, unknown>>) => s.pipeThrough(tap(() => {})).pipeThrough(take(2)),
    ]
  ) {
    const src = countingSource();
    const events = await readN(build(src.stream), 5);
    // The cancel travels up the chain on its own time; once the source has it, no pull can follow.
    await waitFor("the source's cancellation", () => src.cancelled);
    assert.equal(events.length, 2);
    assert.equal(src.pulls, 2);
  }
});

test("earlyStop cancels the source and pulls no further event", async () => {
  const src = countingSource((step) => ({ step, loss: 1 }));
  const events = await readN(pipe(src.stream, earlyStop({ key: "loss", patience: 3 })), 10);
  await waitFor("the source's cancellation", () => src.cancelled);
  assert.equal(events.length, 4);
  assert.equal(src.pulls, 4);
});

test("breaking out of for await cancels the source", async () => {
  for (const viaPipeThrough of [false, true]) {
    const src = countingSource();
    const out = viaPipeThrough
      ? src.stream.pipeThrough(tap(() => {})).pipeThrough(augment(() => ({ x: 1 })))
      : pipe(src.stream, tap(() => {}), augment(() => ({ x: 1 })));
    let n = 0;
    for await (const _ of out) if (++n === 3) break;
    await waitFor("the source's cancellation", () => src.cancelled);
    assert.equal(src.pulls, 3);
  }
});

test("cancel with a reason reaches the source", async () => {
  const src = countingSource();
  const out = pipe(src.stream, tap(() => {}), take(10));
  await readN(out, 1);
  await out.cancel("enough");
  assert.equal(src.cancelReason, "enough");
});

test("pipe: a non-stage is a TypeError at call time naming its position", () => {
  const src = countingSource();
  // @ts-expect-error: 42 is not a stage
  assert.throws(() => pipe(src.stream, take(1), 42), { name: "TypeError", message: /pipe: stage 2 is not a stage/ });
  // @ts-expect-error: a function is not a stage
  assert.throws(() => pipe(src.stream, () => {}), {
    name: "TypeError",
    message:
      /pipe: stage 1 is not a stage: expected a TransformStream or a \{ writable, readable \} pair, got a function/,
  });
  // @ts-expect-error: the source must be a stream
  assert.throws(() => pipe([1, 2], take(1)), {
    name: "TypeError",
    message: /pipe: source must be a ReadableStream, got an array/,
  });
  assert.equal(src.stream.locked, false, "a failed pipe leaves the source untouched");
});

test("a stage can be used once", () => {
  const stage = take(1);
  pipe(countingSource().stream, stage);
  assert.throws(() => pipe(countingSource().stream, stage), { name: "TypeError", message: /stage is already in use/ });
});

test("an upstream error reaches the consumer through every stage", async () => {
  const boom = new Error("source failed");
  const out = pipe(failingSource(3, boom), tap(() => {}), ema("loss", { decay: 0.5 }), take(10));
  const reader = out.getReader();
  assert.equal((await reader.read()).value?.step, 1);
  assert.equal((await reader.read()).value?.step, 2);
  await assert.rejects(reader.read(), boom);
  const chained = new ReadableStream({ pull: () => Promise.reject(boom) }).pipeThrough(tap(() => {})).pipeThrough(
    take(2),
  );
  await assert.rejects(chained.getReader().read(), boom);
});
