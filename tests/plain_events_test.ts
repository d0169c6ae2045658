import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  augment,
  checkpoint,
  earlyStop,
  ema,
  epochStream,
  loadCheckpoint,
  pipe,
  printKeys,
  stage,
  take,
  tap,
  tick,
} from "../mod.ts";
import { stopReasonOf } from "../src/stream/stop_reason.ts";
import { linearModel, lineData } from "./tf_helpers.ts";

async function readAll<T>(stream: ReadableStream<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

test("a source event without its model prints only its fields", async () => {
  const { x, y } = lineData(8);
  const model = linearModel();
  const optimizer = tf.train.sgd(0.1);
  const reader = epochStream({ data: [x, y], model, optimizer, loss: tf.losses.meanSquaredError, extra: { run: "a" } })
    .getReader();
  const { value } = await reader.read();
  await reader.cancel();
  const { model: _model, ...fields } = value!;
  assert.deepEqual(Object.getOwnPropertySymbols(value), []);
  assert.deepStrictEqual(Object.keys(fields).sort(), ["run", "step", "train_loss", "train_time_sec"]);
  const printed = inspect(fields);
  assert.ok(!printed.includes("Symbol"), printed);
  assert.ok(printed.split("\n").length <= 6, printed);
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
});

test("every library stage's output deep-equals plain objects", async () => {
  const source = () => ReadableStream.from([1, 2, 3, 4].map((step) => ({ step, loss: 10 * step })));
  const lines: string[] = [];
  const events = await readAll(pipe(
    source(),
    augment((e) => ({ double: e.loss * 2 })),
    ema("loss", { decay: 0.5, biasCorrection: false }),
    tap(printKeys("loss", { write: (l) => lines.push(l) }), { every: 2 }),
    tick(() => {}),
    stage(<E>(e: E) => e),
    take(3),
    earlyStop({ key: "loss", patience: 1 }),
  ));
  assert.deepStrictEqual(events, [
    { step: 1, loss: 10, double: 20, loss_ema: 5 },
    { step: 2, loss: 20, double: 40, loss_ema: 12.5 },
  ]);
  assert.equal(lines.length, 1);
});

test("the stop reason and the training state survive a user's own stage that rebuilds each event", async () => {
  const rebuild = <E>() =>
    new TransformStream<E, E & { seen: boolean }>({
      transform: (e, c) => c.enqueue({ ...e, seen: true }),
    });
  const stopped = await readAll(pipe(ReadableStream.from([{ step: 1 }, { step: 2 }, { step: 3 }]), take(2)));
  assert.equal(stopReasonOf(stopped[1]), "take");
  assert.equal(stopReasonOf(stopped[0]), undefined);

  const dir = await mkdtemp(join(tmpdir(), "fitstream-plain-"));
  const { x, y } = lineData(8);
  const model = linearModel();
  const optimizer = tf.train.adam(0.1);
  try {
    const events = await readAll(pipe(
      epochStream({ data: [x, y], model, optimizer, loss: tf.losses.meanSquaredError, seed: 1 }),
      rebuild(),
      checkpoint({ dir }),
      take(2),
      rebuild(),
    ));
    assert.equal(stopReasonOf(events[1]), "take", "found through the event's model and step");
    const saved = await loadCheckpoint(dir);
    assert.equal(saved.step, 2);
    tf.dispose([...saved.modelWeights, ...saved.optimizerWeights].map((w) => w.tensor));
  } finally {
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test("stage() reads one event upstream per event read downstream, and checks its arguments", async () => {
  let pulls = 0;
  const source = new ReadableStream({ pull: (c) => c.enqueue({ step: ++pulls }) }, { highWaterMark: 0 });
  const ends: string[] = [];
  const events = pipe(
    source,
    stage((e: { step: number }) => ({ ...e, odd: e.step % 2 === 1 }), {
      limit: 3,
      onEnd: (end) => void ends.push(end.how),
    }),
  );
  const reader = events.getReader();
  await reader.read();
  assert.equal(pulls, 1);
  await reader.read();
  await reader.read();
  assert.equal(pulls, 3);
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
  assert.equal(pulls, 3, "the limit ends the stream without reading on");
  assert.deepEqual(ends, ["stopped"]);
  assert.throws(() => stage(3 as never), {
    name: "TypeError",
    message: "stage: handler must be a function, got number 3",
  });
  assert.throws(() => stage((e) => e, { limit: -1 }), {
    name: "RangeError",
    message: /^stage: limit must be an integer >= 0/,
  });
  assert.throws(() => stage((e) => e, { stopWhen: 1 as never }), /^TypeError: stage: stopWhen must be a function/);
});

test("pipe skips stages given as false, null or undefined", async () => {
  const verbose = false;
  const seen: number[] = [];
  const rows = await readAll(pipe(
    ReadableStream.from([{ step: 1 }, { step: 2 }, { step: 3 }]),
    verbose && tap((e) => seen.push(e.step)),
    undefined,
    take(2),
    null,
  ));
  assert.deepStrictEqual(rows, [{ step: 1 }, { step: 2 }]);
  assert.deepEqual(seen, []);
  assert.throws(() => pipe(ReadableStream.from([]), false, 0 as never), /^TypeError: pipe: stage 2 is not a stage/);
});
