/**
 * The host engine's LSTM: its arithmetic against tfjs's own gradients on the
 * cpu backend, and the benchmark model trained through the stream against
 * `model.fit` on the cpu backend.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { type LstmActivation, LstmMath, type LstmProducts, tanh } from "../src/engine/layers/lstm_math.ts";
import { jsProducts, simdProducts } from "../src/engine/layers/lstm_products.ts";
import { simdKernels } from "../src/kernels/simd/products.ts";
import { collect, epochStream, explainEngine, pipe, stepStream, take, useBackend } from "../mod.ts";
import { backend as defaultBackend } from "./tf_helpers.ts"; // selects the backend

/** `fn` on the cpu backend (the referee); the backend is restored afterwards. */
async function onCpu<T>(fn: () => T | Promise<T>): Promise<T> {
  const before = tf.getBackend();
  await useBackend("cpu");
  try {
    return await fn();
  } finally {
    await tf.setBackend(before);
  }
}

/** Seeded values in [-scale, scale). */
function values(length: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}

interface MathCase {
  rows: number;
  steps: number;
  features: number;
  units: number;
  useBias: boolean;
  activation: LstmActivation;
  recurrentActivation: LstmActivation;
  /** The weights' scale: large ones saturate the gates. */
  scale: number;
  goBackwards?: boolean;
  returnSequences?: boolean;
}

interface Pass {
  output: number[];
  kernel: number[];
  recurrent: number[];
  bias: number[] | undefined;
  input: number[];
}

/** The case's layer on the cpu backend: its output and the gradients of Σ output · dOut. */
function tfjsPass(c: MathCase, x: Float32Array, w: Float32Array[], dOut: Float32Array): Promise<Pass> {
  return onCpu(() => {
    const layer = tf.layers.lstm({
      units: c.units,
      useBias: c.useBias,
      activation: c.activation,
      recurrentActivation: c.recurrentActivation,
      goBackwards: c.goBackwards,
      returnSequences: c.returnSequences,
      recurrentInitializer: "glorotUniform", // the weights are set below; orthogonal is slow and warns
      inputShape: [c.steps, c.features],
    });
    const xv = tf.variable(tf.tensor3d(x, [c.rows, c.steps, c.features]));
    const weight = tf.tensor(dOut, c.returnSequences ? [c.rows, c.steps, c.units] : [c.rows, c.units]);
    try {
      layer.apply(xv); // builds it
      const start = layer.getWeights().map((t, i) => tf.tensor(w[i], t.shape));
      layer.setWeights(start);
      tf.dispose(start);
      const out = layer.apply(xv) as tf.Tensor;
      const output = Array.from(out.dataSync());
      out.dispose();
      const vars = [xv, ...layer.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val)];
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(xv) as tf.Tensor, weight)), vars);
      const read = (v: tf.Variable) => Array.from(grads[v.name].dataSync());
      const pass = {
        output,
        input: read(vars[0]),
        kernel: read(vars[1]),
        recurrent: read(vars[2]),
        bias: c.useBias ? read(vars[3]) : undefined,
      };
      tf.dispose(Object.values(grads));
      return pass;
    } finally {
      tf.dispose([xv, weight]);
      layer.dispose();
    }
  });
}

/** The same pass on LstmMath. */
function mathPass(
  c: MathCase,
  x: Float32Array,
  w: Float32Array[],
  dOut: Float32Array,
  products: LstmProducts = jsProducts(),
): Pass {
  const math = new LstmMath(
    { steps: c.steps, features: c.features, units: c.units, maxRows: c.rows + 3 },
    c,
    products,
  );
  const weights = { kernel: w[0], recurrent: w[1], bias: c.useBias ? w[2] : undefined };
  const sequences = c.returnSequences ? new Float64Array(c.rows * c.steps * c.units) : undefined;
  const last = math.forward(x, c.rows, weights, sequences);
  const output = Array.from(sequences ?? last.subarray(0, c.rows * c.units));
  const grads = {
    kernel: new Float64Array(w[0].length),
    recurrent: new Float64Array(w[1].length),
    bias: c.useBias ? new Float64Array(w[2].length) : undefined,
    input: new Float64Array(x.length),
  };
  math.backward(dOut, grads);
  math.release();
  return {
    output,
    kernel: Array.from(grads.kernel),
    recurrent: Array.from(grads.recurrent),
    bias: grads.bias && Array.from(grads.bias),
    input: Array.from(grads.input),
  };
}

/** The largest gap between two arrays, relative to max(1, |reference|). */
function gap(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}

/** float32 rounding over a few dozen ops a step and the steps of a sequence. */
const MATH_TOLERANCE = 1e-5;

const MATH_CASES: MathCase[] = [
  {
    rows: 4,
    steps: 5,
    features: 3,
    units: 2,
    useBias: true,
    activation: "tanh",
    recurrentActivation: "hardSigmoid",
    scale: 0.5,
  },
  {
    rows: 7,
    steps: 12,
    features: 8,
    units: 6,
    useBias: true,
    activation: "tanh",
    recurrentActivation: "hardSigmoid",
    scale: 1.5,
  },
  {
    rows: 3,
    steps: 9,
    features: 2,
    units: 5,
    useBias: false,
    activation: "tanh",
    recurrentActivation: "sigmoid",
    scale: 1,
  },
  {
    rows: 5,
    steps: 2,
    features: 4,
    units: 3,
    useBias: true,
    activation: "relu",
    recurrentActivation: "sigmoid",
    scale: 0.7,
  },
  {
    rows: 2,
    steps: 6,
    features: 3,
    units: 4,
    useBias: true,
    activation: "linear",
    recurrentActivation: "hardSigmoid",
    scale: 0.4,
  },
  {
    rows: 6,
    steps: 8,
    features: 5,
    units: 3,
    useBias: false,
    activation: "sigmoid",
    recurrentActivation: "tanh",
    scale: 1,
  },
  {
    rows: 4,
    steps: 7,
    features: 3,
    units: 4,
    useBias: true,
    activation: "hardSigmoid",
    recurrentActivation: "relu",
    scale: 1,
  },
  {
    rows: 8,
    steps: 20,
    features: 8,
    units: 32,
    useBias: true,
    activation: "tanh",
    recurrentActivation: "hardSigmoid",
    scale: 0.3,
  },
  {
    rows: 3,
    steps: 6,
    features: 2,
    units: 3,
    useBias: true,
    activation: "tanh",
    recurrentActivation: "hardSigmoid",
    scale: 1,
    goBackwards: true,
  },
  {
    rows: 4,
    steps: 5,
    features: 3,
    units: 2,
    useBias: true,
    activation: "tanh",
    recurrentActivation: "sigmoid",
    scale: 1,
    returnSequences: true,
  },
  {
    rows: 3,
    steps: 7,
    features: 2,
    units: 4,
    useBias: false,
    activation: "relu",
    recurrentActivation: "hardSigmoid",
    scale: 0.8,
    goBackwards: true,
    returnSequences: true,
  },
  // 70 rows of 32 units: the per-step products are shared with the kernels' helper threads where there are any.
  {
    rows: 70,
    steps: 6,
    features: 3,
    units: 32,
    useBias: true,
    activation: "tanh",
    recurrentActivation: "hardSigmoid",
    scale: 0.5,
    goBackwards: true,
    returnSequences: true,
  },
  {
    rows: 70,
    steps: 5,
    features: 4,
    units: 32,
    useBias: true,
    activation: "tanh",
    recurrentActivation: "sigmoid",
    scale: 0.5,
  },
];

for (const c of MATH_CASES) {
  const name = `${c.rows} rows × ${c.steps} steps × ${c.features} features, ${c.units} units, ` +
    `${c.activation}/${c.recurrentActivation}${c.useBias ? "" : ", no bias"}` +
    `${c.goBackwards ? ", backwards" : ""}${c.returnSequences ? ", sequences" : ""}`;
  test(`the LSTM arithmetic gives tfjs's output and gradients: ${name}`, async () => {
    const x = values(c.rows * c.steps * c.features, 1, 1);
    const u4 = 4 * c.units;
    const w = [values(c.features * u4, 2, c.scale), values(c.units * u4, 3, c.scale), values(u4, 4, c.scale)];
    const dOut = values(c.rows * (c.returnSequences ? c.steps : 1) * c.units, 5, 1);
    const ref = await tfjsPass(c, x, w, dOut);
    const simd = simdProducts();
    for (const [arm, products] of [["js", jsProducts()], ["simd", simd]] as const) {
      if (!products) continue;
      const got = mathPass(c, x, w, dOut, products);
      for (const key of ["output", "kernel", "recurrent", "input"] as const) {
        assert.ok(gap(got[key], ref[key]) <= MATH_TOLERANCE, `${arm} ${key}: ${gap(got[key], ref[key])}`);
      }
      if (c.useBias) {
        assert.ok(gap(got.bias!, ref.bias!) <= MATH_TOLERANCE, `${arm} bias: ${gap(got.bias!, ref.bias!)}`);
      }
      assert.ok(got.kernel.some((v) => v !== 0) && got.recurrent.some((v) => v !== 0), "gradients flow");
    }
  });
}

test("the LSTM's hardSigmoid gates pass their gradient at the clip's edges and not beyond, as tfjs's", async () => {
  // Zero weights and a bias of ±2.5 put every gate exactly on an edge (0.5 ± 0.2·2.5 rounds to 1 or 0 in float32).
  const c: MathCase = {
    rows: 2,
    steps: 3,
    features: 2,
    units: 2,
    useBias: true,
    activation: "tanh",
    recurrentActivation: "hardSigmoid",
    scale: 0,
  };
  const x = values(c.rows * c.steps * c.features, 1, 1);
  const kernel = new Float32Array(c.features * 8), recurrent = new Float32Array(c.units * 8);
  for (const b of [2.5, -2.5, 2.6, -2.6]) {
    const bias = new Float32Array(8).fill(b);
    bias[4] = bias[5] = 0.3; // the cell gate, so that something flows
    const dOut = values(c.rows * c.units, 5, 1);
    const ref = await tfjsPass(c, x, [kernel, recurrent, bias], dOut);
    const got = mathPass(c, x, [kernel, recurrent, bias], dOut);
    assert.ok(gap(got.bias!, ref.bias!) <= MATH_TOLERANCE, `bias ${b}: ${got.bias} vs ${ref.bias}`);
    assert.ok(gap(got.kernel, ref.kernel) <= MATH_TOLERANCE, `kernel ${b}`);
  }
});

test("the LSTM's tanh rounds to float32 as Math.tanh (tfjs's cpu kernel) does, and keeps its special values", () => {
  let worst = 0;
  for (let i = -100_000; i <= 100_000; i++) {
    const x = i * 2.1e-4 * (1 + 1e-7 * i);
    assert.equal(Math.fround(tanh(x)), Math.fround(Math.tanh(x)), `at ${x}`);
    worst = Math.max(worst, Math.abs(tanh(x) - Math.tanh(x)) / Math.max(Math.abs(Math.tanh(x)), 1e-300));
  }
  assert.ok(worst < 1e-13, `relative gap ${worst}`);
  for (const x of [0, -0, 1e-300, 0.0625, -0.0625, 20, -20, 1e300, Infinity, -Infinity, NaN]) {
    assert.ok(Object.is(tanh(x), Math.tanh(x)) || Math.abs(tanh(x) - Math.tanh(x)) < 1e-16, `at ${x}: ${tanh(x)}`);
  }
});

/** The options of `tf.layers.lstm`. */
type LstmArgs = Parameters<typeof tf.layers.lstm>[0];

/** The benchmark model's shape (bench/issue_models.ts, "lstm"), on fewer rows: two batches of 64 and one of 32. */
const STEPS = 50, FEATURES = 8, UNITS = 32, ROWS = 160, BATCH = 64, EPOCHS = 2;
/** float32 rounding over the 50 steps of a sequence and a few Adam steps (relative to max(1, |w|)). */
const TOLERANCE = 2e-5;

interface LstmSetup {
  model: tf.Sequential;
  x: tf.Tensor3D;
  y: tf.Tensor2D;
  optimizer: tf.Optimizer;
  free(): void;
}

/** The benchmark model's LSTM, with `options` changed. */
const benchmarkLstm = (options: Partial<LstmArgs> = {}, steps = STEPS) =>
  tf.layers.lstm({ units: UNITS, inputShape: [steps, FEATURES], recurrentInitializer: "glorotUniform", ...options });

/** Steps of the other models' sequences (tfjs's cpu backend runs ~140 kernels a step of a sequence: keep them short). */
const SHORT = 12;

/** Models of LSTMs: the benchmark's, and others the host engine trains too. */
const MODELS: Record<string, () => tf.layers.Layer[]> = {
  "the benchmark LSTM": () => [benchmarkLstm(), tf.layers.dense({ units: 1 })],
  "an LSTM going backwards, sigmoid gates": () => [
    benchmarkLstm({ goBackwards: true, recurrentActivation: "sigmoid", units: 8 }, SHORT),
    tf.layers.dense({ units: 1 }),
  ],
  "two stacked LSTMs (the first returns sequences)": () => [
    benchmarkLstm({ units: 8, returnSequences: true }, SHORT),
    tf.layers.lstm({ units: 6, recurrentInitializer: "glorotUniform" }),
    tf.layers.dense({ units: 1 }),
  ],
  "an LSTM over sequences of one step": () => [benchmarkLstm({ units: 5 }, 1), tf.layers.dense({ units: 1 })],
  "a frozen LSTM under a dense layer": () => {
    const lstm = benchmarkLstm({ units: 6 }, SHORT);
    lstm.trainable = false;
    return [lstm, tf.layers.dense({ units: 1 })];
  },
  "an LSTM's sequences flattened into a dense layer": () => [
    benchmarkLstm({ units: 4, returnSequences: true, useBias: false }, SHORT),
    tf.layers.flatten(),
    tf.layers.dense({ units: 1 }),
  ],
};

/** A model of `layers` with seeded weights and data, on the current backend. */
function lstmSetup(layers: () => tf.layers.Layer[] = MODELS["the benchmark LSTM"]): LstmSetup {
  const model = tf.sequential({ layers: layers() });
  const start = model.getWeights().map((w, i) => tf.tensor(values(w.size, 11 + i, 0.3), w.shape));
  model.setWeights(start);
  tf.dispose(start);
  const steps = model.inputs[0].shape[1] as number;
  const x = tf.tensor3d(values(ROWS * steps * FEATURES, 21, 1), [ROWS, steps, FEATURES]);
  const y = tf.tensor2d(values(ROWS, 22, 1), [ROWS, 1]);
  const optimizer = tf.train.adam(0.01);
  return {
    model,
    x,
    y,
    optimizer,
    free() {
      tf.dispose([x, y]);
      model.dispose();
      optimizer.dispose();
    },
  };
}

const options = (s: LstmSetup) => ({
  data: [s.x, s.y] as [tf.Tensor, tf.Tensor],
  model: s.model,
  optimizer: s.optimizer,
  loss: tf.losses.meanSquaredError,
  batchSize: BATCH,
  shuffle: false,
});

interface Trace {
  losses: number[];
  weights: number[][];
}

/** `model.fit` on the cpu backend, one epoch a call, batches in order. */
function fitTrace(layers: () => tf.layers.Layer[]): Promise<Trace> {
  return onCpu(async () => {
    const s = lstmSetup(layers);
    try {
      s.model.compile({ optimizer: s.optimizer, loss: "meanSquaredError" });
      const losses: number[] = [];
      for (let e = 0; e < EPOCHS; e++) {
        const history = await s.model.fit(s.x, s.y, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
        losses.push(history.history.loss[0] as number);
      }
      return { losses, weights: s.model.getWeights().map((w) => Array.from(w.dataSync())) };
    } finally {
      s.free();
    }
  });
}

function traceGap(a: Trace, b: Trace): { loss: number; weights: number } {
  return { loss: gap(a.losses, b.losses), weights: Math.max(...a.weights.map((w, i) => gap(w, b.weights[i]))) };
}

for (const [name, layers] of Object.entries(MODELS)) {
  test(`${name} trains on the host engine through epochStream as model.fit trains it on the cpu backend`, async () => {
    const before = tf.memory().numTensors;
    const s = lstmSetup(layers);
    const explained = explainEngine(options(s));
    assert.equal(explained.engine, "host", explained.reason);
    assert.match(explained.reason, /LSTM, Dense|LSTM, LSTM, Dense|LSTM, Flatten, Dense/);
    assert.match(explained.reason, /the LSTM's products in float(32|64)/);
    const events = await collect(pipe(epochStream(options(s)), take(EPOCHS)));
    const trace = {
      losses: events.map((e) => e.train_loss),
      weights: s.model.getWeights().map((w) => Array.from(w.dataSync())),
    };
    s.free();
    assert.equal(tf.memory().numTensors, before, "no tensor leaks");
    const fit = await fitTrace(layers);
    const { loss, weights } = traceGap(trace, fit);
    assert.ok(
      loss <= TOLERANCE && weights <= TOLERANCE,
      `on ${defaultBackend}: loss gap ${loss}, weight gap ${weights}`,
    );
    assert.ok(fit.losses[EPOCHS - 1] < fit.losses[0], `it learns: ${fit.losses}`);
  });
}

test("the benchmark LSTM trains through stepStream what epochStream trains, step by step on the host engine", async () => {
  const before = tf.memory().numTensors;
  const a = lstmSetup(), b = lstmSetup();
  const steps = await collect(pipe(stepStream(options(a)), take(6)));
  const epochs = await collect(pipe(epochStream(options(b)), take(2)));
  assert.deepEqual(steps.map((e) => e.epoch), [1, 1, 1, 2, 2, 2]);
  const wa = a.model.getWeights().map((w) => Array.from(w.dataSync()));
  const wb = b.model.getWeights().map((w) => Array.from(w.dataSync()));
  assert.ok(Math.max(...wa.map((w, i) => gap(w, wb[i]))) <= 1e-6, "the same weights");
  // The epoch's loss is the row-weighted mean of its steps' (64, 64 and 32 rows).
  const mean = (64 * steps[3].train_loss + 64 * steps[4].train_loss + 32 * steps[5].train_loss) / ROWS;
  assert.ok(Math.abs(mean - epochs[1].train_loss) <= 1e-6, `${mean} vs ${epochs[1].train_loss}`);
  a.free();
  b.free();
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
});

/** Bytes of the SIMD kernels' memory in use (0 where the runtime lacks them). */
const kernelBytes = () => simdKernels()?.bytesInUse ?? 0;

test("explainEngine describes an LSTM model's products layer by layer: the LSTM's, then the Dense layers'", () => {
  const s = lstmSetup();
  try {
    const { engine, reason } = explainEngine(options(s));
    assert.equal(engine, "host");
    assert.match(
      reason,
      /; the LSTM's products in float(32|64) [^;]*; the Dense layers' products in float64 JS loops \(no Dense layer has 8,192 multiply-adds a step\)$/,
    );
    assert.doesNotMatch(reason, /no layer has/);
  } finally {
    s.free();
  }
});

test("the LSTM gives the kernels' memory back after every epoch, so what it holds does not grow with epochs", async () => {
  const s = lstmSetup();
  try {
    const before = kernelBytes();
    const held: number[] = [];
    for await (const _ of pipe(epochStream(options(s)), take(6))) held.push(kernelBytes());
    assert.deepEqual(held, held.map(() => before), `bytes in use after each epoch: ${held} (before: ${before})`);
    assert.equal(kernelBytes(), before);
  } finally {
    s.free();
  }
});

test("the LSTM gives the kernels' memory back when a step stream is cancelled mid-epoch", async () => {
  const s = lstmSetup();
  try {
    const before = kernelBytes();
    assert.equal((await collect(pipe(stepStream(options(s)), take(2)))).length, 2);
    assert.equal(kernelBytes(), before);
  } finally {
    s.free();
  }
});

test("the LSTM gives the kernels' memory back when its data fails mid-pass", async () => {
  const s = lstmSetup();
  try {
    const xs = s.x.arraySync(), ys = s.y.arraySync();
    const dataset = tf.data.generator(function* () {
      yield { xs: tf.tensor3d(xs.slice(0, BATCH)), ys: tf.tensor2d(ys.slice(0, BATCH)) };
      throw new Error("the source broke");
    });
    const failing = { ...options(s), batchSize: undefined, shuffle: undefined, data: dataset };
    assert.equal(explainEngine(failing).engine, "host");
    const before = kernelBytes();
    await assert.rejects(collect(pipe(epochStream(failing), take(2))), /the source broke/);
    assert.equal(kernelBytes(), before);
  } finally {
    s.free();
  }
});

const DECLINED: [string, Partial<LstmArgs>, RegExp][] = [
  ["dropout 0.2", { dropout: 0.2 }, /dropout 0.2/],
  ["recurrentDropout 0.1", { recurrentDropout: 0.1 }, /recurrentDropout 0.1/],
  ["the elu activation", { activation: "elu" }, /activation elu/],
  ["the softsign recurrentActivation", { recurrentActivation: "softsign" }, /recurrentActivation softsign/],
  ["a kernel regularizer", { kernelRegularizer: tf.regularizers.l2({ l2: 0.01 }) }, /kernel regularizer/],
  ["a bias regularizer", { biasRegularizer: tf.regularizers.l1({ l1: 0.01 }) }, /bias regularizer/],
  ["a recurrent constraint", { recurrentConstraint: tf.constraints.maxNorm({ maxValue: 2 }) }, /recurrent constraint/],
];

for (const [name, change, reason] of DECLINED) {
  test(`an LSTM with ${name} takes the tfjs path, and explainEngine says why`, () => {
    const s = lstmSetup(() => [benchmarkLstm(change), tf.layers.dense({ units: 1 })]);
    try {
      const explained = explainEngine(options(s));
      assert.equal(explained.engine, "tfjs");
      assert.match(explained.reason, reason);
    } finally {
      s.free();
    }
  });
}

test("an LSTM whose cell has a patched method takes the tfjs path, and explainEngine says why", () => {
  const s = lstmSetup();
  try {
    const cell = (s.model.layers[0] as unknown as { cell: { call: (...args: unknown[]) => unknown } }).cell;
    const call = cell.call;
    cell.call = (...args) => call.apply(cell, args); // an own method on the instance
    const explained = explainEngine(options(s));
    assert.equal(explained.engine, "tfjs");
    assert.match(explained.reason, /cell has its own call/);
  } finally {
    s.free();
  }
});
