// timeLimit and untilStep (issue 31, item 5). The clock is injected: no test waits on real time.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { checkpoint, collect, epochStream, pipe, stepStream, take, tap, timeLimit, untilStep } from "../mod.ts";
import { countSteps, lineData, mlp } from "./tf_helpers.ts";
import { countingSource, withTempDir } from "./helpers.ts";

const mse = tf.losses.meanSquaredError;

test("timeLimit(300) ends a stream within one epoch of 300 ms, on an injected clock", async () => {
  const { x, y } = lineData(32, 0.2);
  const model = mlp(1, 4, 1);
  const optimizer = tf.train.adam(0.01);
  const steps = countSteps(optimizer);
  let clock = 1000; // the clock starts at the first read, not at zero
  const epochMs = [90, 120, 80, 70, 100]; // the epoch in flight when 300 ms ran out: the 4th (290 → 360)
  const events = await collect(pipe(
    epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 8, seed: 1 }),
    tap((e) => void (clock += epochMs[e.step - 1])),
    timeLimit(300, { now: () => clock }),
    take(100),
  ));
  assert.deepEqual(events.map((e) => e.step), [1, 2, 3, 4]);
  assert.equal(clock - 1000, 360, "ended after the epoch during which time ran out");
  assert.ok(clock - 1000 - 300 < Math.max(...epochMs), "within one epoch of the limit");
  assert.equal(steps.steps, 16, "4 epochs of 4 steps: nothing more trained");
  model.dispose();
  optimizer.dispose();
  tf.dispose([x, y]);
});

test("timeLimit starts its clock at the first read and ends cleanly: sinks close, upstream is cancelled", async () => {
  let clock = 0;
  const source = countingSource((step) => ({ step }));
  const stage = timeLimit<Record<string, unknown>>(50, { now: () => clock });
  clock = 10_000; // time spent between building the pipeline and reading it does not count
  const rows = await collect(pipe(source.stream, tap(() => void (clock += 20)), stage));
  assert.deepEqual(rows.map((r) => r.step), [1, 2, 3]);
  assert.equal(source.pulls, 3);
  assert.ok(source.cancelled);
});

test("timeLimit checks its arguments", () => {
  assert.throws(() => timeLimit(0), { name: "RangeError", message: "timeLimit: ms must be > 0, got 0" });
  assert.throws(() => timeLimit(10, { clock: () => 0 } as never), {
    message: /^timeLimit: options has no key "clock"/,
  });
  assert.throws(() => timeLimit(10, { now: 5 } as never), {
    message: "timeLimit: now must be a function, got number 5",
  });
});

test("untilStep(n) ends at an absolute step, so a resumed run is capped at a total", async () => {
  await withTempDir(async (dir) => {
    const { x, y } = lineData(32, 0.2);
    const run = async (resume: boolean, cap: number) => {
      const model = mlp(1, 4, 1);
      const optimizer = tf.train.adam(0.01);
      const steps = countSteps(optimizer);
      const options = { data: [x, y], model, optimizer, loss: mse, batchSize: 8, seed: 1 };
      const events = await collect(pipe(
        stepStream({ ...options, resumeFrom: resume ? dir : undefined }),
        checkpoint({ dir }),
        untilStep(cap),
      ));
      model.dispose();
      return { steps: events.map((e) => e.step), trained: steps.steps };
    };
    assert.deepEqual(await run(false, 6), { steps: [1, 2, 3, 4, 5, 6], trained: 6 });
    const resumed = await run(true, 10);
    assert.deepEqual(resumed.steps, [7, 8, 9, 10]);
    // Resumed at the cap: nothing is read, nothing trains.
    assert.deepEqual((await run(true, 10)).steps, []);
    tf.dispose([x, y]);
  });
});

test("untilStep on plain events, and an event without a step", async () => {
  const source = countingSource((step) => ({ step: step * 2 }));
  assert.deepEqual((await collect(pipe(source.stream, untilStep(5)))).map((r) => r.step), [2, 4, 6]);
  assert.equal(source.pulls, 3);
  const bad = countingSource(() => ({ loss: 1 }));
  await assert.rejects(collect(pipe(bad.stream, untilStep(5))), {
    name: "TypeError",
    message: /^untilStep: the event has no numeric step/,
  });
  assert.ok(bad.cancelled);
  assert.throws(() => untilStep(0), { name: "RangeError", message: "untilStep: n must be an integer >= 1, got 0" });
});
