// validationLoss checks its data as epochStream checks training data: rows
// shared by inputs and labels, no NaN or Infinity, and shapes that fit the
// model (at the first event, where the model arrives), each refused with an
// error that names validationLoss.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { augment, collect, epochStream, pipe, take, validationLoss } from "../mod.ts";
import { linearModel } from "./tf_helpers.ts";

const mse = tf.losses.meanSquaredError;

test("validationLoss refuses inputs and labels with different row counts when it is built", () => {
  assert.throws(() => validationLoss({ data: [tf.zeros([4, 1]), tf.zeros([3, 1])], loss: mse }), {
    name: "RangeError",
    message: "validationLoss: all tensors in data must share their first dimension: data[0] has 4 rows, data[1] has 3",
  });
});

test("validationLoss refuses NaN and Infinity in the data when it is built, naming tensor and row", () => {
  const x = tf.tensor2d([[0], [1], [NaN]]), y = tf.tensor2d([[0], [Infinity], [2]]);
  assert.throws(() => validationLoss({ data: [x, tf.zeros([3, 1])], loss: mse }), {
    name: "RangeError",
    message: "validationLoss: data[0] contains NaN or Infinity (first at row 2)",
  });
  assert.throws(() => validationLoss({ data: [tf.zeros([3, 1]), y], loss: mse, batchSize: 2 }), {
    name: "RangeError",
    message: "validationLoss: data[1] contains NaN or Infinity (first at row 1)",
  });
});

test("validationLoss checks the data against the model at the first event, naming itself", async () => {
  const model = linearModel(); // 1 input, 1 output
  const wide = validationLoss({ data: [tf.zeros([5, 2]), tf.zeros([5, 1])], loss: mse });
  await assert.rejects(wide({ model }), (e: Error) => {
    assert.equal(e.name, "RangeError");
    assert.match(e.message, /^validationLoss: data\[0\] must have rows shaped \[1\] as the model's input, got \[2\]/);
    return true;
  });
  const labels = validationLoss({ data: [tf.zeros([5, 1]), tf.zeros([5, 2])], loss: mse });
  await assert.rejects(labels({ model }), {
    name: "TypeError",
    message: /^validationLoss: loss failed on model output \[1, 1\] and labels \[1, 2\]: /,
  });
  const flat = validationLoss({ data: [tf.zeros([5, 1]), tf.zeros([5])], loss: mse });
  await assert.rejects(flat({ model }), {
    name: "TypeError",
    message: /^validationLoss: model output shape \[1, 1\] does not match labels shape \[1\] \(per row\)/,
  });
  const fine = validationLoss({ data: [tf.ones([5, 1]), tf.ones([5, 1])], loss: mse });
  const before = tf.memory().numTensors;
  assert.equal(typeof (await fine({ model })).val_loss, "number");
  assert.equal(tf.memory().numTensors, before, "the check leaves no tensors");
  model.dispose();
});

test("in a pipeline, validation data that does not fit the model fails the first event with validationLoss's error", async () => {
  const x = tf.randomUniform([8, 1], -1, 1, "float32", 1), y = x.mul(2);
  const model = linearModel();
  const events = pipe(
    epochStream({ data: [x, y], model, optimizer: tf.train.sgd(0.1), loss: mse, batchSize: 4, seed: 1 }),
    augment(validationLoss({ data: [tf.zeros([3, 4]), tf.zeros([3, 1])], loss: mse })),
    take(3),
  );
  await assert.rejects(collect(events), {
    name: "RangeError",
    message: /^validationLoss: data\[0\] must have rows shaped \[1\] as the model's input, got \[4\]/,
  });
  model.dispose();
});

test("validationLoss on a dataset: the first batch is checked against the model; a batch with NaN is named", async () => {
  const model = linearModel();
  const batches = (second: number[]) =>
    tf.data.generator(function* () {
      yield { xs: tf.tensor2d([[1], [2]]), ys: tf.tensor2d([[2], [4]]) };
      yield { xs: tf.tensor2d(second, [2, 1]), ys: tf.tensor2d([[2], [4]]) };
    });
  const withNaN = validationLoss({ data: batches([1, NaN]), loss: mse });
  await assert.rejects(withNaN({ model }), {
    name: "RangeError",
    message: "validationLoss: dataset element 2 of pass 1: batch[0] contains NaN or Infinity (first at row 1)",
  });
  const wide = validationLoss({
    data: tf.data.generator(function* () {
      yield { xs: tf.zeros([2, 3]), ys: tf.zeros([2, 1]) };
    }),
    loss: mse,
  });
  await assert.rejects(wide({ model }), {
    name: "RangeError",
    message: /^validationLoss: the dataset's xs must have rows shaped \[1\] as the model's input, got \[3\]/,
  });
  const fine = validationLoss({ data: batches([3, 4]), loss: mse });
  assert.equal(typeof (await fine({ model })).val_loss, "number");
  model.dispose();
});
