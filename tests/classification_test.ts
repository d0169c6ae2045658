// Classification (issue 30, item 4): the categorical cross-entropies are tfjs-layers' own, their host gradient
// is tfjs's autograd's (clip and normalization included), a softmax classifier trains on the host engine where it
// can and says why where it cannot, tfjs losses and metrics passed the wrong way round are refused with advice,
// and validationMetrics measures a classifier (or a regressor) in one forward pass.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  augment,
  categoricalCrossentropy,
  collect,
  earlyStop,
  epochStream,
  explainEngine,
  type LossFunction,
  pipe,
  sparseCategoricalCrossentropy,
  take,
  validationLoss,
  validationMetrics,
} from "../mod.ts";
import { categoricalBackward } from "../src/engine/categorical_kernels.ts";
import { softmaxRows } from "../src/engine/dense_kernels.ts";
import { classificationData, denseModel } from "./faithfulness_cases.ts";
import "./tf_helpers.ts"; // selects the backend

/** Seeded uniform values in [-1, 1). */
function uniform(count: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: count }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1);
}

test("categoricalCrossentropy and sparseCategoricalCrossentropy are tfjs-layers' losses, values and gradients", () => {
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const probs = tf.softmax(tf.tensor2d(uniform(24, 3).map((v) => 4 * v), [6, 4]));
    const ids = [0, 3, 1, 2, 2, 0];
    const oneHot = tf.oneHot(tf.tensor1d(ids, "int32"), 4).cast("float32");
    // tfjs-layers' own (tf.metrics holds its categorical loss), reduced as model.fit reduces it.
    const theirs = tf.mean(tf.metrics.categoricalCrossentropy(oneHot, probs));
    assert.equal(categoricalCrossentropy(probs, oneHot).dataSync()[0], theirs.dataSync()[0]);
    const gradOurs = tf.grad((p: tf.Tensor) => categoricalCrossentropy(p, oneHot))(probs);
    const gradTheirs = tf.grad((p: tf.Tensor) => tf.mean(tf.metrics.categoricalCrossentropy(oneHot, p)))(probs);
    assert.deepEqual(gradOurs.dataSync(), gradTheirs.dataSync());
    // The sparse one: int32 or float32 ids, [rows] or [rows, 1], all the same value.
    const values = [
      tf.tensor1d(ids, "int32"),
      tf.tensor2d(ids, [6, 1], "int32"),
      tf.tensor1d(ids, "float32"),
      tf.tensor2d(ids, [6, 1], "float32"),
    ].map((y) => sparseCategoricalCrossentropy(probs, y).dataSync()[0]);
    assert.equal(new Set(values).size, 1);
    // It clips before normalizing, so it is the categorical loss of the clipped probabilities.
    const clipped = tf.clipByValue(probs, 1e-7, 1 - 1e-7);
    assert.equal(values[0], tf.mean(tf.metrics.categoricalCrossentropy(oneHot, clipped)).dataSync()[0]);
    // An id outside [0, classes) is a row of zeros, as tf.oneHot makes it: it costs nothing.
    const outside = sparseCategoricalCrossentropy(probs.slice([0, 0], [2, 4]), tf.tensor1d([0, 7], "int32"));
    const firstAlone = sparseCategoricalCrossentropy(probs.slice([0, 0], [1, 4]), tf.tensor1d([0], "int32"));
    assert.ok(Math.abs(outside.dataSync()[0] - firstAlone.dataSync()[0] / 2) < 1e-7);
  });
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
});

test("the categorical losses refuse labels of the wrong shape, pointing at the other loss", () => {
  const probs = tf.fill([4, 3], 1 / 3);
  assert.throws(() => categoricalCrossentropy(probs, tf.tensor1d([0, 1, 2, 0])), {
    name: "TypeError",
    message: "categoricalCrossentropy: labels must be shaped like probabilities [4, 3], got [4]: class ids? use " +
      "sparseCategoricalCrossentropy(predictions, classIds)",
  });
  assert.throws(() => sparseCategoricalCrossentropy(probs, tf.zeros([4, 3])), {
    name: "TypeError",
    message: "sparseCategoricalCrossentropy: classIds must hold one class id per row of probabilities [4, 3] " +
      "([4] or [4, 1]), got [4, 3]: one-hot labels? use categoricalCrossentropy(predictions, labels)",
  });
  tf.dispose(probs);
});

/**
 * The host gradient of `loss(softmax(z), labels)` with respect to `z`, and
 * tfjs's autograd of the same (on the cpu backend's float32 arithmetic).
 */
function bothGradients(z: number[], n: number, cols: number, ids: number[], sparse: boolean) {
  const labels = sparse ? ids : ids.flatMap((id) => Array.from({ length: cols }, (_, j) => +(j === id)));
  const probs = new Float64Array(z);
  softmaxRows(probs, n, cols);
  const host = new Float64Array(n * cols), bias = new Float64Array(cols);
  const sum = categoricalBackward(
    probs,
    new Float64Array(labels),
    n,
    cols,
    sparse,
    1e-7,
    bias,
    host,
    new Float64Array(2 * cols),
  );
  const [value, grad] = tf.tidy(() => {
    const y = sparse ? tf.tensor1d(ids, "int32") : tf.tensor2d(labels, [n, cols]);
    const loss = sparse ? sparseCategoricalCrossentropy : categoricalCrossentropy;
    const { value, grad } = tf.valueAndGrad((q: tf.Tensor) => loss(tf.softmax(q), y) as tf.Scalar)(
      tf.tensor2d(z, [n, cols]),
    );
    return [value.dataSync()[0], Array.from(grad.dataSync())];
  });
  return { host, bias, loss: sum / n, tfjs: { value, grad }, probs };
}

test("the host engine's softmax + categorical gradient is tfjs's autograd, clip included (extreme logits)", () => {
  const before = tf.memory().numTensors;
  const n = 16, cols = 5, ids = Array.from({ length: n }, (_, r) => (r * 3) % cols);
  // Logits of spread 1 (nothing clipped) to 60 (most rows saturated: the clip passes no gradient there).
  for (const spread of [1, 6, 20, 60]) {
    for (const sparse of [false, true]) {
      const z = uniform(n * cols, 11 + spread).map((v) => v * spread);
      const { host, bias, loss, tfjs, probs } = bothGradients(z, n, cols, ids, sparse);
      const what = `${sparse ? "sparse" : "categorical"}, spread ${spread}`;
      assert.ok(
        Math.abs(loss - tfjs.value) <= 1e-6 * Math.max(1, tfjs.value),
        `${what}: loss ${loss} vs ${tfjs.value}`,
      );
      // float32 against float64: 1e-7 of a gradient whose largest entry is ~1/n.
      host.forEach((g, i) => assert.ok(Math.abs(g - tfjs.grad[i]) <= 1e-7, `${what}: [${i}] ${g} vs ${tfjs.grad[i]}`));
      for (let j = 0; j < cols; j++) {
        let column = 0;
        for (let r = 0; r < n; r++) column += host[r * cols + j];
        assert.ok(Math.abs(bias[j] - column) < 1e-15, "bias gradient = column sums");
      }
      if (spread === 60) {
        // The clip is active: rows with a probability past 1 − ε pass no gradient, in tfjs and here.
        const hi = Math.fround(1 - 1e-7);
        const saturated = Array.from({ length: n }, (_, r) => r).filter((r) =>
          Array.from(probs.subarray(r * cols, (r + 1) * cols)).some((p) => p > hi)
        );
        assert.ok(saturated.length >= n / 2, `${saturated.length} saturated rows`);
        for (const r of saturated) {
          for (let j = 0; j < cols; j++) {
            assert.equal(host[r * cols + j], 0);
            assert.ok(Math.abs(tfjs.grad[r * cols + j]) < 1e-12);
          }
        }
      }
    }
  }
  // Labels that are not one-hot (rows summing to 0.5 and 2): the normalization's effect is tfjs's too.
  const z = uniform(12, 5), labels = [0.5, 0, 0, 0, 1, 1, 0.25, 0.25, 0, 0, 0, 0];
  const probs = new Float64Array(z);
  softmaxRows(probs, 3, 4);
  const host = new Float64Array(12);
  categoricalBackward(probs, new Float64Array(labels), 3, 4, false, 1e-7, undefined, host, new Float64Array(8));
  const grad = tf.tidy(() =>
    Array.from(
      tf.grad((q: tf.Tensor) => categoricalCrossentropy(tf.softmax(q), tf.tensor2d(labels, [3, 4])))(
        tf.tensor2d(z, [3, 4]),
      ).dataSync(),
    )
  );
  host.forEach((g, i) => assert.ok(Math.abs(g - grad[i]) <= 1e-7, `[${i}] ${g} vs ${grad[i]}`));
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
});

/** A softmax classifier with its data: one-hot labels, int32 ids [rows] and [rows, 1]. */
function classifier(
  hiddenActivation: "tanh" | "softmax" = "tanh",
  outputActivation: "softmax" | "sigmoid" = "softmax",
) {
  const data = classificationData(60, 4, 3);
  const ids1d = data.ids.reshape([60]);
  const model = denseModel(4, [{ units: 8, activation: hiddenActivation }, { units: 3, activation: outputActivation }]);
  const dispose = () => {
    tf.dispose([data.x, data.oneHot, data.ids, ids1d]);
    model.dispose();
  };
  return { ...data, ids1d, model, dispose };
}

test("explainEngine: a softmax output trains on the host under the categorical losses, and says why not elsewhere", () => {
  const before = tf.memory().numTensors;
  const c = classifier();
  const optimizer = tf.train.adam(0.01);
  const explain = (loss: unknown, y: tf.Tensor, model: tf.LayersModel = c.model) =>
    explainEngine({ data: [c.x, y], model, optimizer, loss: loss as LossFunction, batchSize: 16 });
  for (
    const [loss, y, name] of [
      [categoricalCrossentropy, c.oneHot, "categoricalCrossentropy"],
      [sparseCategoricalCrossentropy, c.ids, "sparseCategoricalCrossentropy"],
      [sparseCategoricalCrossentropy, c.ids1d, "sparseCategoricalCrossentropy"],
    ] as const
  ) {
    const { engine, reason } = explain(loss, y);
    assert.equal(engine, "host", reason);
    assert.match(reason, new RegExp(`^a chain of 2 Dense layer\\(s\\) under ${name} with Adam`));
  }
  const softmaxOnly = /has a softmax activation, which the host engine trains only under fitstream's categorical/;
  assert.match(explain(tf.losses.meanSquaredError, c.oneHot).reason, softmaxOnly);
  assert.match(
    explain((p: tf.Tensor, y: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p), c.oneHot).reason,
    softmaxOnly,
  );
  const hidden = classifier("softmax");
  assert.deepEqual(explain(categoricalCrossentropy, hidden.oneHot, hidden.model), {
    engine: "tfjs",
    reason: `layer "${hidden.model.layers[0].name}" has a softmax activation below the last layer (the host ` +
      "engine takes softmax only as the output of the last layer)",
  });
  // Under another last activation, the categorical loss runs through tfjs on the batch's predictions alone.
  const sigmoid = classifier("tanh", "sigmoid");
  assert.match(
    explain(categoricalCrossentropy, sigmoid.oneHot, sigmoid.model).reason,
    /^a chain of 2 Dense layer\(s\) under a custom loss/,
  );
  // A dataset: decided on its first batch; explainEngine tries int32 ids for the sparse loss.
  const rows = c.x.arraySync().map((xs, r) => ({ xs, ys: c.classIds[r] }));
  const dataset = tf.data.array(rows).batch(16);
  const fromDataset = explainEngine({ data: dataset, model: c.model, optimizer, loss: sparseCategoricalCrossentropy });
  assert.equal(fromDataset.engine, "host", fromDataset.reason);
  for (const k of [c, hidden, sigmoid]) k.dispose();
  optimizer.dispose();
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
});

test("a softmax classifier trains on the host engine with int32 ids [rows], as on the tfjs path", async () => {
  const before = tf.memory().numTensors;
  const trace = async (engine: "auto" | "tfjs") => {
    const c = classifier();
    const optimizer = tf.train.adam(0.02);
    const events = await collect(pipe(
      epochStream({
        data: [c.x, c.ids1d],
        model: c.model,
        optimizer,
        loss: sparseCategoricalCrossentropy,
        batchSize: 16,
        seed: 1,
        engine,
      }),
      take(8),
    ));
    const weights = c.model.getWeights().flatMap((w) => Array.from(w.dataSync()));
    c.dispose();
    optimizer.dispose();
    return { losses: events.map((e) => e.train_loss), weights };
  };
  const host = await trace("auto"), tfjs = await trace("tfjs");
  host.losses.forEach((l, i) =>
    assert.ok(Math.abs(l - tfjs.losses[i]) < 2e-5, `epoch ${i + 1}: ${l} vs ${tfjs.losses[i]}`)
  );
  host.weights.forEach((w, i) => assert.ok(Math.abs(w - tfjs.weights[i]) < 2e-5));
  assert.ok(host.losses[7] < host.losses[0] / 2, `it learns: ${host.losses.join(", ")}`);
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
});

test("tfjs metrics and per-row losses passed as the loss are refused, with shapes and what to pass instead", () => {
  const c = classifier();
  const optimizer = tf.train.sgd(0.1);
  const run = (loss: unknown) => () =>
    epochStream({ data: [c.x, c.oneHot], model: c.model, optimizer, loss: loss as LossFunction });
  assert.throws(run(tf.metrics.categoricalCrossentropy), {
    name: "TypeError",
    message: "epochStream: loss is tf.metrics.categoricalCrossentropy, which takes (labels, predictions) and " +
      "returns one value per row, but the loss is called as loss(predictions, labels) and must return a scalar: " +
      "use fitstream's categoricalCrossentropy(predictions, labels) (the same loss, averaged over rows)",
  });
  assert.throws(() => validationLoss({ data: [c.x, c.oneHot], loss: tf.metrics.meanSquaredError }), {
    message: /^validationLoss: loss is tf\.metrics\.meanSquaredError, .*: use tf\.losses\.meanSquaredError$/,
  });
  assert.throws(run(tf.metrics.categoricalAccuracy), {
    message: /no gradient to train on: measure it with validationMetrics$/,
  });
  assert.throws(run(tf.metrics.r2Score), {
    message: "epochStream: loss is tf.metrics.r2Score, which takes (labels, predictions), but the loss is called as " +
      "loss(predictions, labels): use (p, y) => tf.neg(tf.metrics.r2Score(y, p)) to maximise it, or measure it " +
      "with validationMetrics",
  });
  // A loss written without its mean: the probe's one row gives one value.
  assert.throws(run((p: tf.Tensor, y: tf.Tensor) => tf.metrics.categoricalCrossentropy(y, p)), {
    name: "TypeError",
    message: "epochStream: loss must return a scalar tf.Tensor, got a Tensor of shape [1] for 1 row — a per-row " +
      "loss? take its mean (tf.mean) or use fitstream's categoricalCrossentropy(predictions, labels)",
  });
  assert.throws(run((p: tf.Tensor) => tf.sum(p, 0)), {
    message: "epochStream: loss must return a scalar tf.Tensor, got a Tensor of shape [3] for 1 row: reduce it to " +
      "one number (tf.mean or tf.sum)",
  });
  c.dispose();
  optimizer.dispose();
});

/** A fixed 3-class scorer: its outputs are the input row itself. */
const identity = (x: tf.Tensor) => x.clone();

// Scores of 6 rows over 3 classes, their true classes, and what scikit-learn says of them (hand-checked):
// predicted 0, 1, 2, 1, 0, 2; true 0, 1, 1, 1, 2, 2.
const SCORES = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.3, 0.6, 0.1], [0.5, 0.1, 0.4], [0.1, 0.2, 0.7]];
const TRUE = [0, 1, 1, 1, 2, 2];

test("validationMetrics: accuracy, top-k, macro precision/recall/F1 and the confusion matrix, for ids and one-hot", async () => {
  const before = tf.memory().numTensors;
  const x = tf.tensor2d(SCORES);
  const ids = tf.tensor1d(TRUE, "int32"), oneHot = tf.tidy(() => tf.oneHot(ids, 3).cast("float32"));
  const metrics = {
    val_acc: "accuracy",
    val_top2: { topK: 2 },
    val_precision: "precision",
    val_recall: "recall",
    val_f1: "f1",
    val_p2: { precision: 2 },
    val_confusion: "confusion",
  } as const;
  const expected = {
    val_acc: 4 / 6,
    val_top2: 1,
    // precision per class: 1/2, 2/2, 1/2; recall: 1/1, 2/3, 1/2; F1: 2/3, 4/5, 1/2.
    val_precision: (0.5 + 1 + 0.5) / 3,
    val_recall: (1 + 2 / 3 + 0.5) / 3,
    val_f1: (2 / 3 + 0.8 + 0.5) / 3,
    val_p2: 0.5,
    val_confusion: [[1, 0, 0], [0, 2, 1], [1, 0, 1]],
  };
  const forms = [ids, ids.reshape([6, 1]), ids.cast("float32"), oneHot];
  for (const labels of forms) {
    for (const batchSize of [undefined, 4, 1]) {
      const values = await validationMetrics({ data: [x, labels], metrics, batchSize })({ model: identity });
      for (const [key, value] of Object.entries(expected)) {
        if (typeof value === "number") {
          assert.ok(
            Math.abs(((values as Record<string, unknown>)[key] as number) - value) < 1e-12,
            `${key}: ${JSON.stringify(values)}`,
          );
        }
      }
      assert.deepEqual(values.val_confusion, expected.val_confusion);
      // The types carry the keys: a number, and a number[][].
      const acc: number = values.val_acc, confusion: number[][] = values.val_confusion;
      assert.ok(acc >= 0 && confusion.length === 3);
    }
  }
  // A dataset: one pass per event, the same values.
  const dataset = tf.data.array(SCORES.map((xs, r) => ({ xs, ys: TRUE[r] }))).batch(4);
  const fromDataset = await validationMetrics({ data: dataset, metrics })({ model: identity });
  assert.deepEqual(fromDataset.val_confusion, expected.val_confusion);
  assert.ok(Math.abs(fromDataset.val_f1 - expected.val_f1) < 1e-12);
  tf.dispose([x, ...forms]);
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
});

test("validationMetrics: a single sigmoid output is thresholded at 0.5; mae, rmse, r2 and your own function", async () => {
  const before = tf.memory().numTensors;
  const p = tf.tensor2d([[0.9], [0.4], [0.6], [0.2], [0.5]]);
  const y = tf.tensor2d([[1], [1], [0], [0], [0]]);
  const values = await validationMetrics({
    data: [p, y],
    metrics: {
      acc: "accuracy",
      confusion: "confusion",
      precision1: { precision: 1 },
      recall1: { recall: 1 },
      mae: "mae",
      rmse: "rmse",
      r2: "r2",
      mine: (pred, labels) => tf.mean(tf.abs(tf.sub(pred, labels))),
      count: (pred) => pred.shape[0],
    },
  })({ model: identity });
  const mae = (0.1 + 0.6 + 0.6 + 0.2 + 0.5) / 5;
  const squares = 0.01 + 0.36 + 0.36 + 0.04 + 0.25;
  assert.deepEqual(values.confusion, [[2, 1], [1, 1]]); // 0.5 is not above 0.5: class 0
  assert.equal(values.acc, 3 / 5);
  assert.equal(values.precision1, 1 / 2);
  assert.equal(values.recall1, 1 / 2);
  assert.ok(Math.abs(values.mae - mae) < 1e-7);
  assert.ok(Math.abs(values.mine - mae) < 1e-7);
  assert.ok(Math.abs(values.rmse - Math.sqrt(squares / 5)) < 1e-7);
  assert.ok(Math.abs(values.r2 - (1 - squares / (5 * 0.4 * 0.6))) < 1e-7);
  assert.equal(values.count, 5);
  tf.dispose([p, y]);
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
});

test("validationMetrics runs the model once per batch, in inference mode, whatever the number of metrics", async () => {
  const x = tf.tensor2d(SCORES), ids = tf.tensor1d(TRUE, "int32");
  let calls = 0;
  const counted = (t: tf.Tensor) => (calls++, t.clone());
  const all = { a: "accuracy", b: "f1", c: "confusion", d: { topK: 2 }, e: () => 1 } as const;
  await validationMetrics({ data: [x, ids], metrics: all, batchSize: 4 })({ model: counted });
  assert.equal(calls, 2);
  // A layers model with dropout: inference mode, so two events agree.
  const model = tf.sequential({
    layers: [tf.layers.dropout({ rate: 0.9, inputShape: [3] }), tf.layers.dense({ units: 3, activation: "softmax" })],
  });
  const measure = validationMetrics({ data: [x, ids], metrics: { acc: "accuracy", c: "confusion" } });
  assert.deepEqual(await measure({ model }), await measure({ model }));
  tf.dispose([x, ids]);
  model.dispose();
});

test("validationMetrics refuses bad options when built and mismatched shapes at the first event, naming the metric", async () => {
  const x = tf.tensor2d(SCORES), ids = tf.tensor1d(TRUE, "int32");
  const build = (options: unknown) => () => validationMetrics(options as never);
  assert.throws(build({ data: [x, ids], metrics: { a: "accuracy" }, batch_size: 2 }), {
    name: "TypeError",
    message: 'validationMetrics: options has no key "batch_size"; did you mean "batchSize"?',
  });
  assert.throws(build({ data: [x, ids], metrics: { a: "acuracy" } }), {
    message:
      /^validationMetrics: metrics\.a must be one of accuracy, .* got the string "acuracy"; did you mean "accuracy"\?$/,
  });
  assert.throws(build({ data: [x, ids], metrics: { a: { topk: 3 } } }), {
    message:
      'validationMetrics: metrics.a must hold one of topK, precision, recall or f1, got { topk }; did you mean "topK"?',
  });
  assert.throws(build({ data: [x, ids], metrics: { a: { topK: 0 } } }), {
    name: "RangeError",
    message: "validationMetrics: metrics.a.topK must be an integer >= 1, got number 0",
  });
  assert.throws(build({ data: [x, ids], metrics: {} }), {
    message: "validationMetrics: metrics is empty: name at least one",
  });
  assert.throws(build({ data: [x, ids], metrics: { step: "accuracy" } }), {
    message: `validationMetrics: metrics key "step" would replace the event's own step: name it otherwise`,
  });
  assert.throws(build({ data: [x], metrics: { a: "accuracy" } }), {
    message: /^validationMetrics: data must hold at least 2/,
  });
  const bad = tf.tensor2d([[0, 1, 0], [NaN, 0, 0]]);
  assert.throws(build({ data: [bad, tf.tensor1d([1, 0])], metrics: { a: "accuracy" } }), {
    name: "RangeError",
    message: "validationMetrics: data[0] contains NaN or Infinity (first at row 1)",
  });
  const wrong = tf.zeros([6, 5]);
  await assert.rejects(validationMetrics({ data: [x, wrong], metrics: { val_acc: "accuracy" } })({ model: identity }), {
    name: "TypeError",
    message: 'validationMetrics: metrics.val_acc ("accuracy") needs labels of one class id per row ([rows] or ' +
      "[rows, 1]) or one-hot rows ([rows, 3]) for predictions [rows, 3], got labels [rows, 5]",
  });
  await assert.rejects(validationMetrics({ data: [x, ids], metrics: { val_mae: "mae" } })({ model: identity }), {
    message: 'validationMetrics: metrics.val_mae ("mae") needs labels shaped like the predictions [rows, 3], got ' +
      "labels [rows]",
  });
  const outside = tf.tensor1d([0, 1, 2, 3, 0, 1], "int32");
  await assert.rejects(validationMetrics({ data: [x, outside], metrics: { a: "accuracy" } })({ model: identity }), {
    name: "RangeError",
    message: "validationMetrics: labels row 3 holds 3, not a class id in [0, 3) (the model predicts 3 classes)",
  });
  tf.dispose([x, ids, bad, wrong, outside]);
});

test("a classifier pipeline: val_acc from validationMetrics, earlyStop on it with mode max", async () => {
  const before = tf.memory().numTensors;
  const c = classifier();
  const optimizer = tf.train.adam(0.05);
  const events = await collect(pipe(
    epochStream({ data: [c.x, c.oneHot], model: c.model, optimizer, loss: categoricalCrossentropy, batchSize: 16 }),
    augment(validationMetrics({ data: [c.x, c.oneHot], metrics: { val_acc: "accuracy", val_f1: "f1" } })),
    take(60),
    earlyStop({ key: "val_acc", mode: "max", patience: 3 }),
  ));
  assert.ok(events.length < 60, `stopped early after ${events.length}`);
  assert.ok(Math.max(...events.map((e) => e.val_acc)) >= 0.9, events.map((e) => e.val_acc).join(", "));
  c.dispose();
  optimizer.dispose();
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
});
