// Training from tf.data datasets and streamed CSV: lazy to the batch, exact, seeded, resumable, leak-free.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  augment,
  checkpoint,
  collect,
  csvDataset,
  epochStream,
  explainEngine,
  loadCsv,
  pipe,
  take,
  tap,
  validationLoss,
} from "../mod.ts";
import { withTempDir } from "./helpers.ts";
import { lineData, mlp } from "./tf_helpers.ts";

const mse = tf.losses.meanSquaredError;
const HOUSING = new URL("../../shared/data/california_housing/california_housing_train.csv", import.meta.url);

/** A generator dataset of `batches` batches of 4 rows that counts passes started and batches pulled. */
function countingDataset(batches = 3) {
  const counts = { passes: 0, pulled: 0 };
  const { x, y } = lineData(4 * batches, 0.1);
  const xs = x.arraySync(), ys = y.arraySync();
  x.dispose();
  y.dispose();
  const dataset = tf.data.generator(function* () {
    counts.passes++;
    for (let b = 0; b < batches; b++) {
      counts.pulled++;
      yield { xs: tf.tensor2d(xs.slice(4 * b, 4 * b + 4)), ys: tf.tensor2d(ys.slice(4 * b, 4 * b + 4)) };
    }
  });
  return { dataset, counts, xs, ys };
}

test("a dataset is read lazily: nothing before the first read, one pass per event, nothing of the next pass", async () => {
  const { dataset, counts } = countingDataset(3);
  const model = mlp(1, 4, 1);
  const optimizer = tf.train.adam(0.05);
  const reader = epochStream({ data: dataset, model, optimizer, loss: mse }).getReader();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(counts, { passes: 0, pulled: 0 }, "building the stream reads nothing");
  for (let i = 1; i <= 3; i++) {
    const { value } = await reader.read();
    assert.equal(value!.step, i);
    assert.deepEqual(counts, { passes: i, pulled: 3 * i }, `after event ${i}`);
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(counts, { passes: 3, pulled: 9 }, "no batch of pass 4 is read ahead");
  await reader.cancel();
  // With tf.data's own prefetching, the next pass still starts only when its event is asked for.
  const prefetched = countingDataset(3);
  const reader2 = epochStream({ data: prefetched.dataset.prefetch(2), model, optimizer, loss: mse }).getReader();
  await reader2.read();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(prefetched.counts.passes, 1);
  assert.equal(prefetched.counts.pulled, 3);
  await reader2.cancel();
  model.dispose();
  optimizer.dispose();
});

test("a dataset trains what the same batches as tensors train, on the default path and the tfjs path, leak-free", async () => {
  for (const engine of ["auto", "tfjs"] as const) {
    const { dataset, xs, ys } = countingDataset(3);
    const fromDataset = mlp(1, 4, 2), fromTensors = mlp(1, 4, 2);
    const before = tf.memory().numTensors;
    const opts = [tf.train.adam(0.05), tf.train.adam(0.05)];
    const x = tf.tensor2d(xs), y = tf.tensor2d(ys);
    const a = await collect(
      epochStream({ data: dataset, model: fromDataset, optimizer: opts[0], loss: mse, engine }).pipeThrough(take(4)),
    );
    const b = await collect(
      epochStream({
        data: [x, y],
        model: fromTensors,
        optimizer: opts[1],
        loss: mse,
        batchSize: 4,
        shuffle: false,
        engine,
      })
        .pipeThrough(take(4)),
    );
    a.forEach((e, i) => assert.ok(Math.abs(e.train_loss - b[i].train_loss) < 1e-6, `${engine}: epoch ${i + 1} loss`));
    const wa = fromDataset.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = fromTensors.getWeights().map((w) => Array.from(w.dataSync()));
    wa.flat().forEach((v, i) => assert.ok(Math.abs(v - wb.flat()[i]) < 1e-6, `${engine}: weight ${i}`));
    opts.forEach((o) => o.dispose());
    tf.dispose([x, y]);
    assert.equal(tf.memory().numTensors, before, `${engine}: no tensor left by the dataset's passes`);
    fromDataset.dispose();
    fromTensors.dispose();
  }
});

test("dataset errors: options that do not apply, a pass with no batch, a malformed element, a batch of another shape", async () => {
  const model = mlp(1, 4, 1);
  const optimizer = tf.train.sgd(0.1);
  const { dataset } = countingDataset(1);
  assert.throws(() => epochStream({ data: dataset, model, optimizer, loss: mse, batchSize: 8 }), {
    name: "TypeError",
    message: /epochStream: batchSize does not apply to a dataset/,
  });
  assert.throws(() => epochStream({ data: dataset, model, optimizer, loss: mse, seed: 1 }), /seed does not apply/);
  const empty = tf.data.array<tf.TensorContainer>([]);
  await assert.rejects(collect(epochStream({ data: empty, model, optimizer, loss: mse }).pipeThrough(take(1))), {
    name: "RangeError",
    message: /epochStream: the dataset gave no batch in pass 1/,
  });
  const noLabels = tf.data.generator(function* () {
    yield { xs: tf.ones([2, 1]) };
  });
  await assert.rejects(
    collect(epochStream({ data: noLabels, model, optimizer, loss: mse }).pipeThrough(take(1))),
    /dataset element 1 of pass 1 has no labels \(ys\)/,
  );
  const ragged = tf.data.generator(function* () {
    yield { xs: tf.ones([2, 1]), ys: tf.ones([2, 1]) };
    yield { xs: tf.ones([2, 3]), ys: tf.ones([2, 1]) };
  });
  const before = tf.memory().numTensors;
  await assert.rejects(
    collect(epochStream({ data: ragged, model, optimizer, loss: mse }).pipeThrough(take(1))),
    /dataset element 2 of pass 1 has rows \[3\] float32; \[1\] float32, the first had \[1\] float32; \[1\] float32/,
  );
  assert.ok(tf.memory().numTensors - before <= 2, "the failing batch was disposed (sgd keeps no state)");
  model.dispose();
  optimizer.dispose();
});

test("csvDataset reads the numbers loadCsv reads, in file order without a shuffle buffer", async () => {
  const label = "median_house_value";
  const table = await loadCsv(HOUSING);
  const features = table.columns.filter((c) => c !== label);
  const dataset = csvDataset(HOUSING, { label, batchSize: 5000 });
  const xs: number[] = [], ys: number[] = [];
  const iterator = await dataset.iterator();
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    xs.push(...next.value.xs.dataSync());
    ys.push(...next.value.ys!.dataSync());
    tf.dispose([next.value.xs, next.value.ys!]);
  }
  assert.equal(ys.length, table.rows);
  assert.deepEqual(Float32Array.from(ys), table.column(label));
  const expected = table.tensor(features);
  assert.deepEqual(Float32Array.from(xs), expected.dataSync());
  expected.dispose();
});

test("csvDataset shuffles within its buffer, the same seed giving the same passes and each pass its own order", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "rows.csv");
    writeFileSync(path, "a,b\n" + Array.from({ length: 50 }, (_, i) => `${i},${-i}`).join("\n") + "\n");
    const order = async (seed: number, passes: number) => {
      const dataset = csvDataset(path, { label: "b", batchSize: 7, shuffleBuffer: 16, seed });
      const out: number[][] = [];
      for (let p = 0; p < passes; p++) {
        const rows: number[] = [];
        const iterator = await dataset.iterator();
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
          rows.push(...next.value.xs.dataSync());
          tf.dispose([next.value.xs, next.value.ys!]);
        }
        out.push(rows);
      }
      return out;
    };
    const [first, second] = await order(5, 2);
    assert.deepEqual([...first].sort((p, q) => p - q), Array.from({ length: 50 }, (_, i) => i), "every row once");
    assert.notDeepEqual(first, Array.from({ length: 50 }, (_, i) => i), "shuffled");
    assert.notDeepEqual(first, second, "each pass draws its own order");
    assert.deepEqual(await order(5, 2), [first, second], "the same seed, the same passes");
    assert.notDeepEqual((await order(6, 1))[0], first);
  });
});

test("csvDataset errors name the file, line and column; construction checks the options and the path", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "bad.csv");
    writeFileSync(path, "x,y\n1,2\n3,oops\n");
    const dataset = csvDataset(path, { label: "y", batchSize: 1 });
    await assert.rejects(
      dataset.iterator().then(async (it) => {
        for (let n = await it.next(); !n.done; n = await it.next()) tf.dispose(n.value.xs);
      }),
      (e: Error) => e.message === `csvDataset: ${path}: line 3, column "y": "oops" is not a number`,
    );
    assert.throws(() => csvDataset(join(dir, "missing.csv")), /csvDataset: cannot read .*missing\.csv: no such file/);
    assert.throws(() => csvDataset(path, { batchSize: 0 }), { name: "RangeError", message: /csvDataset: batchSize/ });
    assert.throws(() => csvDataset(path, { seed: -1 }), /csvDataset: seed must be an integer/);
    const wrong = csvDataset(path, { label: "z" });
    await assert.rejects(wrong.iterator().then((it) => it.next()), /column "z" is not in the header \(x, y\)/);
  });
});

test("validationLoss over a dataset is the row-weighted mean of its batches' losses", async () => {
  const { dataset, xs, ys } = countingDataset(3);
  const model = mlp(1, 4, 3);
  const fromDataset = await validationLoss({ data: dataset, loss: mse })({ model });
  const x = tf.tensor2d(xs), y = tf.tensor2d(ys);
  const whole = await validationLoss({ data: [x, y], loss: mse })({ model });
  assert.ok(
    Math.abs(fromDataset.val_loss - whole.val_loss) <= 1e-5 * whole.val_loss,
    `${fromDataset.val_loss} vs ${whole.val_loss}`,
  );
  tf.dispose([x, y]);
  model.dispose();
});

test("checkpoint and resumeFrom with a csvDataset: the resumed run reads the passes the straight run read", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "line.csv");
    writeFileSync(
      path,
      "x,y\n" + Array.from({ length: 40 }, (_, i) => `${i / 40},${(3 * i) / 40 + 1}`).join("\n") + "\n",
    );
    const run = async (epochs: number, options: { save?: string; resume?: string }) => {
      const data = csvDataset(path, { label: "y", batchSize: 8, shuffleBuffer: 20, seed: 9 });
      const model = mlp(1, 4, 5);
      const optimizer = tf.train.adam(0.05);
      const rows = await collect(pipe(
        epochStream({ data, model, optimizer, loss: mse, resumeFrom: options.resume }),
        augment(validationLoss({ data: csvDataset(path, { label: "y", batchSize: 40 }), loss: mse })),
        options.save ? checkpoint({ dir: options.save }) : tap(() => {}),
        take(epochs),
      ));
      const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
      model.dispose();
      optimizer.dispose();
      return { rows, weights };
    };
    const straight = await run(6, {});
    const ckpt = join(dir, "ckpt");
    await run(3, { save: ckpt });
    assert.ok(readdirSync(ckpt).includes("step-000003"));
    const resumed = await run(3, { resume: ckpt });
    assert.deepEqual(resumed.rows.map((r) => r.step), [4, 5, 6]);
    resumed.rows.forEach((r, i) => assert.ok(Math.abs(r.train_loss - straight.rows[i + 3].train_loss) < 1e-6));
    resumed.weights.flat().forEach((v, i) => assert.ok(Math.abs(v - straight.weights.flat()[i]) < 1e-6));
  });
});

test("explainEngine on a dataset says the engine is decided on each pass's first batch", () => {
  const { dataset } = countingDataset(1);
  const model = mlp(1, 4, 1);
  const explained = explainEngine({ data: dataset, model, optimizer: tf.train.adam(0.01), loss: mse });
  assert.equal(explained.engine, "host");
  assert.match(explained.reason, /decided on each pass's first batch/);
  model.dispose();
});

test("csvDataset reads every spelling of a number exactly as loadCsv (plain decimals, exponents, signs, spaces, quotes)", async () => {
  await withTempDir(async (dir) => {
    const cells = [
      "0.1",
      "-0.1",
      "+3.5",
      "007.250",
      ".5",
      "5.",
      "-0",
      "123456789012345",
      "1234567890123456789",
      "0.30000000000000004",
      "1e-7",
      "-2.5E3",
      " 4.25 ",
      '"6.5"',
      "0.000001234",
      "999999999999999.9",
    ];
    const path = join(dir, "numbers.csv");
    writeFileSync(path, "a,b\n" + cells.map((c, i) => `${c},${i}`).join("\n") + "\n");
    const table = await loadCsv(path);
    const iterator = await csvDataset(path, { label: "b", batchSize: 100 }).iterator();
    const { value } = await iterator.next();
    assert.deepEqual(value.xs.dataSync(), table.column("a"));
    assert.deepEqual(value.ys!.dataSync(), table.column("b"));
    tf.dispose([value.xs, value.ys!]);
  });
});

test("the tfjs path trains a dataset as model.fitDataset does", async () => {
  const { dataset } = countingDataset(3);
  const ours = mlp(1, 4, 7), theirs = mlp(1, 4, 7);
  const optimizers = [tf.train.sgd(0.05), tf.train.sgd(0.05)];
  await collect(
    epochStream({ data: dataset, model: ours, optimizer: optimizers[0], loss: mse, engine: "tfjs" }).pipeThrough(
      take(3),
    ),
  );
  theirs.compile({ optimizer: optimizers[1], loss: "meanSquaredError" });
  await theirs.fitDataset(dataset as tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }>, { epochs: 3, verbose: 0 });
  const a = ours.getWeights().flatMap((w) => Array.from(w.dataSync()));
  const b = theirs.getWeights().flatMap((w) => Array.from(w.dataSync()));
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-6, `weight ${i}: ${v} vs ${b[i]}`));
  optimizers.forEach((o) => o.dispose());
  ours.dispose();
  theirs.dispose();
});

test("a csvDataset run leaves no tensor behind when cancelled mid-run or failing on a bad line", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "rows.csv");
    const lines = Array.from({ length: 300 }, (_, i) => `${i / 300},${i / 100}`);
    writeFileSync(path, "x,y\n" + lines.join("\n") + "\n");
    const bad = join(dir, "bad.csv");
    writeFileSync(bad, "x,y\n" + lines.slice(0, 150).join("\n") + "\n0.5,oops\n" + lines.slice(150).join("\n") + "\n");
    const model = mlp(1, 4, 2);
    const before = tf.memory().numTensors;
    const optimizer = tf.train.sgd(0.05);
    const reader = epochStream({ data: csvDataset(path, { label: "y", batchSize: 32 }), model, optimizer, loss: mse })
      .getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    await assert.rejects(
      collect(
        epochStream({ data: csvDataset(bad, { label: "y", batchSize: 32 }), model, optimizer, loss: mse })
          .pipeThrough(take(1)),
      ),
      /line 152, column "y": "oops" is not a number/,
    );
    optimizer.dispose();
    assert.equal(tf.memory().numTensors, before);
    model.dispose();
  });
});

test("explainEngine on a dataset agrees with epochStream when the labels are not shaped like the output", async () => {
  const classes = 3;
  const batches = (ys: () => tf.Tensor) =>
    tf.data.generator(function* () {
      for (let i = 0; i < 2; i++) yield { xs: tf.randomUniform([4, 2], -1, 1, "float32", i), ys: ys() };
    });
  const model = tf.sequential({ layers: [tf.layers.dense({ units: classes, inputShape: [2] })] });
  // Sparse labels: one class index per row, as int32.
  const sparse = batches(() => tf.tensor1d([0, 1, 2, 1], "int32"));
  const sparseLoss = (p: tf.Tensor, y: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(y.cast("int32"), 3), p);
  const explained = explainEngine({ data: sparse, model, optimizer: tf.train.adam(0.01), loss: sparseLoss });
  assert.equal(explained.engine, "host");
  assert.match(explained.reason, /a custom loss .*decided on each pass's first batch\)$/);
  const trained = await collect(
    pipe(epochStream({ data: sparse, model, optimizer: tf.train.adam(0.01), loss: sparseLoss }), take(2)),
  );
  assert.equal(trained.length, 2);
  // Labels no made-up form fits: explained without the probe, not refused (epochStream trains it).
  const odd = batches(() => tf.ones([4, 5]));
  const oddLoss = (p: tf.Tensor, y: tf.Tensor) => mse(y.reshape([-1, 5]).sum(1, true), p.sum(1, true));
  const oddly = explainEngine({ data: odd, model, optimizer: tf.train.adam(0.01), loss: oddLoss });
  assert.match(oddly.reason, /the loss failed on every label form tried without reading a batch/);
  const trainedOdd = await collect(
    pipe(epochStream({ data: odd, model, optimizer: tf.train.adam(0.01), loss: oddLoss }), take(1)),
  );
  assert.equal(trainedOdd.length, 1);
  model.dispose();
});

test("csvDataset is typed with tf.data's methods: a mapped, capped dataset trains without a cast", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "xy.csv");
    writeFileSync(path, "x,y\n" + Array.from({ length: 12 }, (_, i) => `${i / 12},${(2 * i) / 12}`).join("\n") + "\n");
    const data = csvDataset(path, { label: "y", batchSize: 4 }).map((b) => ({ xs: b.xs.mul(2), ys: b.ys! })).take(2);
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
    let rows = 0;
    const counted = data.map((b) => {
      rows += b.xs.shape[0];
      return b;
    });
    const events = await collect(
      pipe(epochStream({ data: counted, model, optimizer: tf.train.sgd(0.1), loss: mse }), take(1)),
    );
    assert.equal(events.length, 1);
    assert.equal(rows, 8, "two batches of four rows: take(2) of the mapped CSV");
    model.dispose();
  });
});
