// The tutorial's sections 2–5, in TypeScript, on the housing CSVs.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { augment, collect, earlyStop, epochStream, pipe, take, validationLoss } from "../mod.ts";
import { FEATURES, housingModel, housingSources, loadHousing } from "../examples/housing_data.ts";
import "./tf_helpers.ts";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

// The tutorial's CSVs in ../shared when present, else the byte-identical copy in examples/data/.
const shared = fileURLToPath(new URL("../../shared/data/california_housing/", import.meta.url));
const sources = housingSources(existsSync(shared) ? shared : undefined);
const mse = tf.losses.meanSquaredError;

test("tutorial §2: one feature, a linear model, take(10) then collect(take(50))", async () => {
  const data = await loadHousing(sources, ["median_income"], false);
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1], kernelInitializer: "zeros" })] });
  const optimizer = tf.train.adam(0.05);
  const events = epochStream({
    data: [data.xTrain, data.yTrain],
    model,
    optimizer,
    loss: mse,
    batchSize: 256,
    seed: 0,
  });
  const first = await collect(pipe(events, take(10)));
  assert.deepEqual(first.map((e) => e.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.ok(first[9].train_loss < first[0].train_loss, "the loss goes down");
  // A new stream continues training the same live model.
  const history = await collect(pipe(
    epochStream({ data: [data.xTrain, data.yTrain], model, optimizer, loss: mse, batchSize: 256 }),
    take(50),
  ));
  assert.deepEqual(Object.keys(history[49]).sort(), ["step", "train_loss", "train_time_sec"]);
  assert.equal(history[49].step, 50);
  assert.ok(history[49].train_loss < 0.8, `single-feature MSE ${history[49].train_loss}`);
  data.dispose();
  model.dispose();
  optimizer.dispose();
});

test("tutorial §3–5: all features, standardised, MLP; validation; take + earlyStop; val MSE < 0.38 within 50 epochs", async () => {
  const data = await loadHousing(sources, FEATURES, true);
  const mean = data.xTrain.mean(0).abs().max().dataSync()[0];
  assert.ok(mean < 1e-3, "standardised features have mean 0");
  const model = housingModel(8, 0);
  const optimizer = tf.train.adam(1e-2);
  const history = await collect(pipe(
    epochStream({
      data: [data.xTrain, data.yTrain],
      model,
      optimizer,
      loss: mse,
      batchSize: 512,
      shuffle: true,
      seed: 0,
    }),
    augment(validationLoss({ data: [data.xVal, data.yVal], loss: mse, key: "val_loss" })),
    take(500),
    earlyStop({ key: "val_loss", patience: 10, mode: "min", minDelta: 1e-4 }),
  ));
  const last = history.at(-1)!;
  assert.ok(last.step < 500, `stopped at epoch ${last.step}`);
  const bestIn50 = Math.min(...history.slice(0, 50).map((e) => e.val_loss));
  assert.ok(bestIn50 < 0.38, `best val MSE in 50 epochs: ${bestIn50}`);
  assert.ok(history.every((e, i) => e.step === i + 1 && typeof e.val_loss === "number"));
  data.dispose();
  model.dispose();
  optimizer.dispose();
});
