import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  augment,
  collect,
  earlyStop,
  ema,
  type EngineChoice,
  epochStream,
  pipe,
  type Stage,
  take,
  tap,
  tick,
} from "../mod.ts";
import { createRandom, permutation } from "../src/data/random.ts";
import { countSteps, linearModel, lineData, mlp, weightsOf } from "./tf_helpers.ts";
import { settle } from "./helpers.ts";

const mse = tf.losses.meanSquaredError;

function setup(rows = 50, batchSize = 8, engine: EngineChoice = "auto") {
  const { x, y } = lineData(rows, 0.1);
  const model = linearModel();
  const optimizer = tf.train.adam(0.05);
  const counter = countSteps(optimizer);
  const stream = epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize, seed: 7, engine });
  const perEpoch = Math.ceil(rows / batchSize);
  const dispose = () => {
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
  };
  return { x, y, model, optimizer, counter, stream, perEpoch, dispose };
}

type Snapshot = { step: number; weights: number[][]; steps: number };

function sevenStages(model: tf.LayersModel, counter: { steps: number }, first: Snapshot[], last: Snapshot[]) {
  return [
    tap((e: { step: number }) => void first.push({ step: e.step, weights: weightsOf(model), steps: counter.steps })),
    augment(() => ({ metric: 1 })),
    ema("train_loss", { halfLife: 2 }),
    tick(() => {}),
    take(1000),
    earlyStop({ key: "train_loss", patience: 1000 }),
    augment((e: { step: number }) => {
      last.push({ step: e.step, weights: weightsOf(model), steps: counter.steps });
      return null;
    }),
  ] as Stage<any, any>[];
}

for (const [style, engine] of [["pipe", "auto"], ["pipeThrough", "auto"], ["pipe", "tfjs"]] as const) {
  test(`exactness (${style}, 7 stages, engine ${engine}): nothing trains before the first read; each stage sees its epoch's weights`, async () => {
    const s = setup(50, 8, engine);
    const first: Snapshot[] = [], last: Snapshot[] = [];
    const st = sevenStages(s.model, s.counter, first, last);
    const out = style === "pipe"
      ? pipe(s.stream, st[0], st[1], st[2], st[3], st[4], st[5], st[6])
      : s.stream.pipeThrough(st[0]).pipeThrough(st[1]).pipeThrough(st[2]).pipeThrough(st[3])
        .pipeThrough(st[4]).pipeThrough(st[5]).pipeThrough(st[6]);
    await settle(20);
    assert.equal(s.counter.steps, 0, "nothing trains before the first read");
    const reader = out.getReader();
    for (let i = 1; i <= 3; i++) {
      const { value } = await reader.read();
      assert.equal(value!.step, i);
      await settle(5);
      assert.equal(s.counter.steps, i * s.perEpoch, `after read ${i}, exactly ${i} epochs trained`);
    }
    await reader.cancel();
    assert.deepEqual(last, first, "the last stage saw the same weights as the first, for every event");
    assert.deepEqual(first.map((f) => f.steps), [1, 2, 3].map((i) => i * s.perEpoch));
    s.dispose();
  });
}

test("take(n) trains exactly n epochs (n × ceil(rows / batchSize) optimizer steps)", async () => {
  const s = setup(50, 8);
  const rows = await collect(pipe(s.stream, take(4)));
  assert.equal(rows.length, 4);
  assert.equal(s.counter.steps, 4 * 7);
  s.dispose();
});

test("after earlyStop triggers, the weights are those of the last event's epoch", async () => {
  const s = setup();
  const seen: number[][][] = [];
  const rows = await collect(pipe(
    s.stream,
    augment(() => ({ flat: 1 })),
    tap(() => void seen.push(weightsOf(s.model))),
    earlyStop({ key: "flat", patience: 2 }),
  ));
  assert.equal(rows.length, 3);
  assert.equal(s.counter.steps, 3 * s.perEpoch);
  assert.deepEqual(weightsOf(s.model), seen[2]);
  s.dispose();
});

test("a linear model on y = 3x + 2 with Adam recovers both weights to 1e-2", async () => {
  const { x, y } = lineData(256);
  const model = linearModel();
  const optimizer = tf.train.adam(0.1);
  await collect(pipe(epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 32, seed: 3 }), take(60)));
  const [w, b] = weightsOf(model);
  assert.ok(Math.abs(w[0] - 3) < 1e-2, `w = ${w[0]}`);
  assert.ok(Math.abs(b[0] - 2) < 1e-2, `b = ${b[0]}`);
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
});

/** SGD on y ≈ w·x + b by hand, over a fixed row order: the sample-weighted mean loss of one epoch. */
function handEpoch(xs: number[], ys: number[], order: ArrayLike<number>, batch: number, lr: number, wb: number[]) {
  let [w, b] = wb;
  let weighted = 0;
  for (let start = 0; start < order.length; start += batch) {
    const idx = Array.from(order).slice(start, start + batch);
    const n = idx.length;
    let loss = 0, dw = 0, db = 0;
    for (const i of idx) {
      const err = w * xs[i] + b - ys[i];
      loss += err * err / n;
      dw += 2 * err * xs[i] / n;
      db += 2 * err / n;
    }
    weighted += loss * n;
    w -= lr * dw;
    b -= lr * db;
  }
  return { loss: weighted / order.length, wb: [w, b] };
}

test("train_loss is the sample-weighted mean of the batch losses (uneven last batch, fixed permutation)", async () => {
  const { x, y, xs, ys } = lineData(10, 0.5);
  for (const [shuffle, engine] of [[false, "auto"], [true, "auto"], [false, "tfjs"], [true, "tfjs"]] as const) {
    const model = linearModel(0.5, -0.25);
    const optimizer = tf.train.sgd(0.1);
    const events = await collect(pipe(
      epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 4, shuffle, seed: 99, engine }),
      take(2),
    ));
    const random = createRandom(99);
    let wb = [0.5, -0.25];
    for (const event of events) {
      const order = shuffle ? permutation(10, random) : Array.from({ length: 10 }, (_, i) => i);
      const hand = handEpoch(xs, ys, order, 4, 0.1, wb);
      wb = hand.wb;
      assert.ok(
        Math.abs(event.train_loss - hand.loss) < 1e-5,
        `shuffle=${shuffle}, engine ${engine}: ${event.train_loss} vs ${hand.loss}`,
      );
    }
    // An unweighted mean of the three batch losses would differ: make sure the test can tell.
    model.dispose();
    optimizer.dispose();
  }
  tf.dispose([x, y]);
});

test("step counts 1, 2, 3…; extra keys on every event; train_time_sec is a duration", async () => {
  const { x, y } = lineData(20);
  const model = linearModel();
  const optimizer = tf.train.sgd(0.01);
  const tag = { run: "a" };
  const started = performance.now();
  const events = await collect(pipe(
    epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 5, extra: { lr: 0.01, tag } }),
    take(3),
  ));
  const wall = (performance.now() - started) / 1000;
  assert.deepEqual(events.map((e) => e.step), [1, 2, 3]);
  for (const e of events) {
    assert.equal(e.lr, 0.01);
    assert.equal(e.tag, tag);
    assert.ok(e.train_time_sec >= 0, `train_time_sec ${e.train_time_sec}`);
    assert.equal(typeof e.train_loss, "number");
  }
  // Seconds of the epochs themselves: together no more than the wall time around the run, however slow the machine.
  const trained = events.reduce((sum, e) => sum + e.train_time_sec, 0);
  assert.ok(trained <= wall, `${trained} s of epochs in ${wall} s of run`);
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
});

test("the event carries the live model", async () => {
  const s = setup();
  const [event] = await collect(pipe(s.stream, take(1)), { include: [] });
  assert.deepEqual(event, {});
  const reader = pipe(setup().stream, take(1)).getReader();
  const { value } = await reader.read();
  assert.ok(value!.model instanceof tf.LayersModel);
  await reader.cancel();
  s.dispose();
});

async function lossesFor(seed: number, engine: EngineChoice = "auto"): Promise<number[]> {
  const { x, y } = lineData(40, 0.3);
  const model = linearModel();
  const optimizer = tf.train.adam(0.05);
  const events = await collect(
    pipe(epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 7, seed, engine }), take(4)),
  );
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
  return events.map((e) => e.train_loss);
}

test("same seed, identical loss sequence; different seed, different", async () => {
  for (const engine of ["auto", "tfjs"] as const) {
    const a = await lossesFor(5, engine), b = await lossesFor(5, engine), c = await lossesFor(6, engine);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  }
});

test("a function model with its variables, and a model of two inputs", async () => {
  const { x, y } = lineData(64);
  const w = tf.variable(tf.scalar(0)), b = tf.variable(tf.scalar(0));
  const fn = (input: tf.Tensor) => input.mul(w).add(b);
  const optimizer = tf.train.adam(0.1);
  const events = await collect(pipe(
    epochStream({ data: [x, y], model: fn, variables: [w, b], optimizer, loss: mse, batchSize: 16, seed: 1 }),
    take(40),
  ));
  assert.ok(events[39].train_loss < events[0].train_loss / 10);
  assert.ok(Math.abs(w.dataSync()[0] - 3) < 0.1);

  const in1 = tf.input({ shape: [1] }), in2 = tf.input({ shape: [1] });
  const joined = tf.layers.concatenate().apply([in1, in2]) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.zeros() }).apply(
    joined,
  ) as tf.SymbolicTensor;
  const twoInputs = tf.model({ inputs: [in1, in2], outputs: out });
  const x2 = x.mul(-1);
  const opt2 = tf.train.adam(0.1);
  const ev2 = await collect(pipe(
    epochStream({ data: [x, x2, y], model: twoInputs, optimizer: opt2, loss: mse, batchSize: 16, seed: 2 }),
    take(30),
  ));
  assert.ok(ev2[29].train_loss < ev2[0].train_loss / 5, `${ev2[0].train_loss} → ${ev2[29].train_loss}`);
  tf.dispose([x, y, x2, w, b]);
  twoInputs.dispose();
  optimizer.dispose();
  opt2.dispose();
});

test("without lastLabel the loss gets the predictions alone", async () => {
  const x = tf.randomUniform([32, 2], -1, 1, "float32", 4);
  const model = mlp(2, 4, 3);
  const optimizer = tf.train.adam(0.05);
  const events = await collect(pipe(
    epochStream({
      data: [x],
      model,
      optimizer,
      lastLabel: false,
      loss: ((pred: tf.Tensor) => pred.sub(5).square().mean()) as never,
      batchSize: 8,
    }),
    take(20),
  ));
  assert.ok(events[19].train_loss < events[0].train_loss / 2);
  x.dispose();
  model.dispose();
  optimizer.dispose();
});

test("bad inputs fail at construction, before anything trains", () => {
  const { x, y } = lineData(10);
  const model = linearModel();
  const optimizer = tf.train.sgd(0.1);
  const counter = countSteps(optimizer);
  const base = { data: [x, y], model, optimizer, loss: mse };
  const cases: [Record<string, unknown>, { name: string; message: RegExp }][] = [
    [{ batchSize: 0 }, { name: "RangeError", message: /epochStream: batchSize must be an integer >= 1, got 0/ }],
    [{ batchSize: 1.5 }, {
      name: "RangeError",
      message: /epochStream: batchSize must be an integer >= 1, got number 1.5/,
    }],
    [{ data: [] }, { name: "TypeError", message: /epochStream: data must hold at least 2 tensors/ }],
    [{ data: [], lastLabel: false }, { name: "TypeError", message: /epochStream: data is empty/ }],
    [{ data: [x] }, {
      name: "TypeError",
      message: /epochStream: data must hold at least 2 tensors \(inputs and labels\) with lastLabel, got 1/,
    }],
    [{ data: [x, tf.zeros([9, 1])] }, {
      name: "RangeError",
      message: /share their first dimension: data\[0\] has 10 rows, data\[1\] has 9/,
    }],
    [{ data: [tf.zeros([0, 1]), tf.zeros([0, 1])] }, {
      name: "RangeError",
      message: /epochStream: data is empty: its tensors have 0 rows/,
    }],
    [{ data: [x, tf.zeros([10])] }, {
      name: "TypeError",
      message: /model output shape \[1, 1\] does not match labels shape \[1\]/,
    }],
    [{ data: [x, tf.zeros([10, 3])] }, {
      name: "TypeError",
      message: /loss failed on model output \[1, 1\] and labels \[1, 3\]/,
    }],
    [{ data: [tf.zeros([10, 2]), y] }, {
      name: "RangeError",
      message: /epochStream: data\[0\] must have rows shaped \[1\] as the model's input, got \[2\]/,
    }],
    [{ data: [x.where(tf.range(0, 10).reshape([10, 1]).notEqual(6), tf.scalar(NaN)), y] }, {
      name: "RangeError",
      message: /data\[0\] contains NaN or Infinity \(first at row 6\)/,
    }],
    [{ model: {} }, { name: "TypeError", message: /epochStream: model must be a tf.LayersModel or a function/ }],
    [{ model: (t: tf.Tensor) => t }, { name: "TypeError", message: /a function model needs variables/ }],
    [{ optimizer: {} }, { name: "TypeError", message: /epochStream: optimizer must be a tf.train optimizer/ }],
    [{ loss: "mse" }, { name: "TypeError", message: /epochStream: loss must be a function/ }],
    [{ loss: () => tf.ones([2]) }, { name: "TypeError", message: /epochStream: loss must return a scalar tf.Tensor/ }],
    [{ seed: -1 }, { name: "RangeError", message: /epochStream: seed must be an integer in \[0, 2\^32\)/ }],
    [{ shuffle: "yes" }, { name: "TypeError", message: /epochStream: shuffle must be a boolean/ }],
    [{ data: [x, [1, 2]] }, { name: "TypeError", message: /epochStream: data\[1\] must be a tf.Tensor, got an array/ }],
  ];
  const before = tf.memory().numTensors;
  for (const [patch, expected] of cases) {
    assert.throws(() => epochStream({ ...base, ...patch } as never), expected, JSON.stringify(Object.keys(patch)));
  }
  assert.equal(counter.steps, 0);
  assert.deepEqual(weightsOf(model), [[0.5], [-0.25]]);
  // The probes leave nothing behind (the tensors built for the cases above aside).
  assert.ok(tf.memory().numTensors - before <= 8);
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
});

for (const engine of ["auto", "tfjs"] as const) {
  test(`an error thrown by the loss during training reaches the consumer, no tensor left (engine ${engine})`, async () => {
    const { x, y } = lineData(10);
    const model = linearModel();
    const optimizer = tf.train.sgd(0.1);
    let calls = 0;
    const loss = (p: tf.Tensor, l: tf.Tensor) => {
      const squared = p.sub(l).square(); // on the gradient tape before the throw
      if (++calls === 4) throw new Error("loss exploded");
      return squared.mean();
    };
    const before = tf.memory().numTensors;
    await assert.rejects(
      collect(pipe(epochStream({ data: [x, y], model, optimizer, loss, batchSize: 5, engine }), take(5))),
      /loss exploded/,
    );
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
  });
}

test("epochStream refuses tensors whose rows differ from the model's declared input shape, as model.fit does", () => {
  const cases: [string, () => tf.layers.Layer[], number[], string][] = [
    [
      "an LSTM over 4 steps declared with 6",
      () => [tf.layers.lstm({ units: 2, inputShape: [6, 3] }), tf.layers.dense({ units: 1 })],
      [8, 4, 3],
      "epochStream: data[0] must have rows shaped [6, 3] as the model's input, got [4, 3]: " +
      "reshape the data, or build the model with this input shape",
    ],
    [
      "an embedding of 12 ids fed 10",
      () => [
        tf.layers.embedding({ inputDim: 20, outputDim: 2, inputShape: [12] }),
        tf.layers.globalAveragePooling1d(),
        tf.layers.dense({ units: 1 }),
      ],
      [8, 10],
      "epochStream: data[0] must have rows shaped [12] as the model's input, got [10]: " +
      "reshape the data, or build the model with this input shape",
    ],
    [
      "a Dense layer of 4 inputs fed rows of [2, 2]",
      () => [tf.layers.dense({ units: 1, inputShape: [4] })],
      [8, 2, 2],
      "epochStream: data[0] must have rows shaped [4] as the model's input, got [2, 2]: " +
      "give the data 2 dimensions (rows first), or build the model with this input shape",
    ],
  ];
  for (const [what, layers, shape, message] of cases) {
    for (const engine of ["auto", "tfjs"] as const) {
      const model = tf.sequential({ layers: layers() });
      const x = tf.zeros(shape), y = tf.zeros([8, 1]), optimizer = tf.train.sgd(0.1);
      const before = tf.memory().numTensors;
      assert.throws(() => epochStream({ data: [x, y], model, optimizer, loss: mse, engine }), {
        name: "RangeError",
        message,
      }, `${what} (${engine})`);
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([x, y]);
      model.dispose();
      optimizer.dispose();
    }
  }
});

test("epochStream refuses a dataset whose batches' rows differ from the model's declared input shape", async () => {
  const model = tf.sequential({
    layers: [tf.layers.lstm({ units: 2, inputShape: [6, 3] }), tf.layers.dense({ units: 1 })],
  });
  const optimizer = tf.train.sgd(0.1);
  const data = tf.data.generator(function* () {
    for (let b = 0; b < 2; b++) yield { xs: tf.zeros([4, 4, 3]), ys: tf.zeros([4, 1]) };
  });
  const before = tf.memory().numTensors;
  await assert.rejects(collect(pipe(epochStream({ data, model, optimizer, loss: mse }), take(1))), {
    name: "RangeError",
    message: /^epochStream: the dataset's xs must have rows shaped \[6, 3\] as the model's input, got \[4, 3\]/,
  });
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
  optimizer.dispose();
});

for (const engine of ["auto", "tfjs"] as const) {
  test(`epochStream (${engine}) trains rows of any size along a dimension the model's input leaves free`, async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.lstm({ units: 2, inputShape: [null, 3] as unknown as number[] }),
        tf.layers.dense({ units: 1 }),
      ],
    });
    const x = tf.randomUniform([8, 4, 3], -1, 1, "float32", 5), y = tf.zeros([8, 1]), optimizer = tf.train.sgd(0.1);
    const events = await collect(pipe(epochStream({ data: [x, y], model, optimizer, loss: mse, engine }), take(1)));
    assert.equal(events.length, 1);
    assert.ok(Number.isFinite(events[0].train_loss));
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
  });
}
