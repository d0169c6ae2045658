// emaWeights: an average of the weights, validated, swapped in at the end, checkpointed (issue 31, item 4).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  augment,
  checkpoint,
  collect,
  emaWeights,
  type EngineChoice,
  epochStream,
  pipe,
  type StepEvent,
  stepStream,
  take,
  tap,
  validationLoss,
} from "../mod.ts";
import { lineData, mlp, weightsOf } from "./tf_helpers.ts";
import { withTempDir } from "./helpers.ts";

const mse = tf.losses.meanSquaredError;

function setup() {
  const { x, y } = lineData(24, 0.3);
  const model = mlp(1, 6, 7);
  const optimizer = tf.train.adam(0.05);
  return {
    x,
    y,
    model,
    optimizer,
    options: { data: [x, y], model, optimizer, loss: mse, batchSize: 6, seed: 2 },
    free() {
      tf.dispose([x, y]);
      model.dispose();
      optimizer.dispose();
    },
  };
}

/** The average computed here from the weights each event saw: m1 = w1, then m = d·m + (1 − d)·w. */
function expectedAverage(seen: number[][][], decay: number): number[][] {
  let m = seen[0].map((w) => [...w]);
  for (const w of seen.slice(1)) m = m.map((a, i) => a.map((v, k) => decay * v + (1 - decay) * w[i][k]));
  return m;
}

function maxGap(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((w, i) => w.map((v, k) => Math.abs(v - b[i][k]))));
}

for (const engine of ["auto", "tfjs"] as EngineChoice[]) {
  test(`emaWeights averages the weights per step and swaps the average in when the stream ends (engine ${engine})`, async () => {
    const before = tf.memory().numTensors;
    const s = setup();
    const seen: number[][][] = [];
    const average = emaWeights({ decay: 0.8 });
    await collect(pipe(
      stepStream({ ...s.options, engine }),
      tap((e) => void seen.push(weightsOf(e.model))),
      average,
      take(9),
    ));
    assert.ok(maxGap(weightsOf(s.model), expectedAverage(seen, 0.8)) <= 1e-6, "the model holds the average");
    assert.ok(maxGap(weightsOf(s.model), seen[8]) > 1e-4, "which is not the last step's weights");
    s.free();
    assert.equal(tf.memory().numTensors, before, "no tensor leaks");
  });
}

test("emaWeights per epoch, behind epochStream; atEnd: 'keep' leaves the trained weights and keeps the average", async () => {
  const before = tf.memory().numTensors;
  const s = setup();
  const seen: number[][][] = [];
  const average = emaWeights({ decay: 0.5, atEnd: "keep" });
  await collect(pipe(epochStream(s.options), tap((e) => void seen.push(weightsOf(e.model))), average, take(4)));
  assert.deepEqual(weightsOf(s.model), seen[3], "the trained weights stay");
  const copies = average.averaged();
  const values = copies.map((t) => Array.from(t.dataSync()));
  assert.ok(maxGap(values, expectedAverage(seen, 0.5)) <= 1e-6);
  tf.dispose(copies);
  average.dispose();
  s.free();
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
});

test("withAveraged validates the average and puts the trained weights back", async () => {
  const s = setup();
  // Made before the pipeline: typed with the events it passes, so the stages after it keep their types.
  const average = emaWeights<StepEvent<tf.Sequential>>({ decay: 0.7, atEnd: "keep" });
  const trainedAt: number[][][] = [];
  const events = await collect(pipe(
    stepStream(s.options),
    average,
    augment(validationLoss({ data: [s.x, s.y], loss: mse })),
    augment(average.withAveraged(validationLoss({ data: [s.x, s.y], loss: mse, key: "val_loss_ema" }))),
    tap((e) => void trainedAt.push(weightsOf(e.model))),
    take(8),
  ));
  // The average's validation loss, computed here from averaged(): the stage ran it on the average.
  const copies = average.averaged();
  const expected = tf.tidy(() => {
    const kept = s.model.getWeights().map((w) => w.clone());
    s.model.setWeights(copies);
    const value = mse(s.y, s.model.predict(s.x) as tf.Tensor).dataSync()[0];
    s.model.setWeights(kept);
    return value;
  });
  assert.ok(Math.abs(events[7].val_loss_ema - expected) <= 1e-6, `${events[7].val_loss_ema} vs ${expected}`);
  assert.notEqual(events[7].val_loss_ema, events[7].val_loss);
  assert.deepEqual(weightsOf(s.model), trainedAt[7], "the trained weights were put back");
  tf.dispose(copies);
  average.dispose();
  s.free();
});

for (const engine of ["auto", "tfjs"] as EngineChoice[]) {
  test(`checkpoint saves the average, and a resumed run carries on from it exactly (engine ${engine})`, async () => {
    await withTempDir(async (dir) => {
      const straight = setup();
      const full = emaWeights({ decay: 0.9, atEnd: "keep" });
      await collect(pipe(stepStream({ ...straight.options, engine }), full, take(10)));
      const first = setup();
      await collect(pipe(
        stepStream({ ...first.options, engine }),
        emaWeights({ decay: 0.9 }),
        checkpoint({ dir, every: 3 }),
        take(6),
      ));
      const resumed = setup();
      const rest = emaWeights({ decay: 0.9, atEnd: "keep" });
      const events = await collect(pipe(stepStream({ ...resumed.options, engine, resumeFrom: dir }), rest, take(4)));
      assert.deepEqual(events.map((e) => e.step), [7, 8, 9, 10]);
      const [a, b] = [full.averaged(), rest.averaged()];
      assert.deepEqual(a.map((t) => Array.from(t.dataSync())), b.map((t) => Array.from(t.dataSync())));
      tf.dispose([...a, ...b]);
      full.dispose();
      rest.dispose();
      for (const s of [straight, first, resumed]) s.free();
    });
  });
}

test("checkpoint placed before emaWeights is refused: it would save the average a step behind", async () => {
  await withTempDir(async (dir) => {
    const s = setup();
    const events = pipe(stepStream(s.options), checkpoint({ dir }), emaWeights({ decay: 0.9 }), take(5));
    await assert.rejects(collect(events), {
      message: /^checkpoint: the stage keeping "ema" has taken in step 1, not this event's step 2: place checkpoint/,
    });
    s.free();
  });
});

test("no tensor leaks when a stream with emaWeights is cancelled or errors; an error swaps nothing in", async () => {
  const before = tf.memory().numTensors;
  const s = setup();
  const reader = pipe(stepStream(s.options), emaWeights({ decay: 0.9 })).getReader();
  await reader.read();
  await reader.read();
  await reader.cancel();
  const seen: number[][][] = [];
  const failing = pipe(
    stepStream(s.options),
    emaWeights({ decay: 0.9 }),
    tap((e) => {
      seen.push(weightsOf(e.model));
      if (e.step === 3) throw new Error("boom");
    }),
  );
  await assert.rejects(collect(failing), /boom/);
  assert.deepEqual(weightsOf(s.model), seen[2], "the trained weights stay after an error");
  s.free();
  assert.equal(tf.memory().numTensors, before);
});

test("emaWeights checks its options", () => {
  assert.throws(() => emaWeights({ decay: 1 }), {
    name: "RangeError",
    message: "emaWeights: decay must lie strictly between 0 and 1, got 1",
  });
  assert.throws(() => emaWeights({ decay: 0.9, atEnd: "both" } as never), {
    message: /atEnd must be "swap" or "keep"/,
  });
  assert.throws(() => emaWeights({ decay: 0.9, at_end: "keep" } as never), {
    message: 'emaWeights: options has no key "at_end"; did you mean "atEnd"?',
  });
  const average = emaWeights({ decay: 0.9 });
  assert.throws(() => average.averaged(), { message: /no event has passed/ });
});
