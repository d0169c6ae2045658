// The batch normalization kind's SIMD kernels (src/kernels/simd/batch_norm.ts) give what its JS loops give, bit for
// bit — outputs, the dev and rsqrt scratch, the moving averages, γ's and β's gradients and the input's gradient — on
// random data, channel counts that are not a multiple of four, row counts that are not a power of two, one row,
// large means, constant channels, a tiny epsilon and NaN or infinite values; and the kind runs them only when every
// array lies in the kernels' memory.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "./tf_helpers.ts";
import { batchNormalizationKind } from "../src/engine/layers/batch_normalization.ts";
import type { PlannedLayer } from "../src/engine/layers/kind.ts";
import { type SimdKernels, simdKernels } from "../src/kernels/simd/products.ts";
import { createRandom } from "../src/data/random.ts";
import { collect, epochStream, explainEngine, pipe, take } from "../mod.ts";

const simd = simdKernels()!;
const L = tf.layers;

/** The arrays of one step: input, output gradient, params, state, gradients (before the step). */
interface Step {
  x: Float64Array;
  dy: Float64Array;
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
  grads: Float64Array[];
}

/** What one forward and backward pass through the kind left, and how many passes the kernels ran. */
interface Result {
  arrays: Record<string, Float64Array | Float32Array>;
  forwards: number;
  backwards: number;
}

function plan(shape: number[], epsilon: number, momentum: number): PlannedLayer {
  const layer = L.batchNormalization({ epsilon, momentum, inputShape: shape });
  const model = tf.sequential({ layers: [layer] });
  const planned = batchNormalizationKind.plan({
    layer,
    config: layer.getConfig(),
    input: shape,
    first: false,
    last: true,
    penalty: () => undefined,
  }) as PlannedLayer;
  model.dispose();
  return planned;
}

/** Counts the kernels' runs (the calls that returned true) while `body` runs. */
function counting(body: () => void): { forwards: number; backwards: number } {
  const counts = { forwards: 0, backwards: 0 };
  const k = simd as Partial<Pick<SimdKernels, "batchNormForward" | "batchNormBackward">>;
  const forward = simd.batchNormForward, backward = simd.batchNormBackward;
  k.batchNormForward = (a) => forward.call(simd, a) && ++counts.forwards > 0;
  k.batchNormBackward = (a) => backward.call(simd, a) && ++counts.backwards > 0;
  try {
    body();
  } finally {
    delete k.batchNormForward;
    delete k.batchNormBackward;
  }
  return counts;
}

/** One step through the kind on copies of `s`, in the kernels' memory (`shared`) or in plain arrays. */
function run(planned: PlannedLayer, s: Step, n: number, shared: boolean): Result {
  const held: ArrayBufferView[] = [];
  const f64 = (from: Float64Array | number) => {
    const length = typeof from === "number" ? from : from.length;
    const a = shared ? simd.float64(length)! : new Float64Array(length);
    if (shared) held.push(a);
    if (typeof from !== "number") a.set(from);
    return a;
  };
  const f32 = (from: Float32Array) => {
    const a = shared ? simd.float32(from.length)! : new Float32Array(from.length);
    if (shared) held.push(a);
    a.set(from);
    return a;
  };
  const [devSize, rsqrtSize] = planned.scratch!;
  // Garbage in the scratch and the input gradient: the kind must write, not read, them.
  const dev = f64(Float64Array.from({ length: devSize.perRow! * n }, () => 7));
  const rsqrt = f64(Float64Array.from({ length: rsqrtSize.fixed! }, () => 7));
  const arrays = {
    x: f64(s.x),
    output: f64(s.x.length),
    gamma: f32(s.gamma),
    beta: f32(s.beta),
    mean: f32(s.mean),
    variance: f32(s.variance),
    dev,
    rsqrt,
    dy: f64(s.dy),
    gradInput: f64(Float64Array.from(s.x, () => 5)),
    gammaGrad: f64(s.grads[0]),
    betaGrad: f64(s.grads[1]),
  };
  try {
    const counts = counting(() => {
      const forward = {
        n,
        training: true,
        input: arrays.x,
        output: arrays.output,
        params: [arrays.gamma, arrays.beta],
        state: [arrays.mean, arrays.variance],
        scratch: [dev, rsqrt],
      };
      planned.forward(forward);
      planned.backward({
        ...forward,
        gradOutput: arrays.dy,
        gradInput: arrays.gradInput,
        paramGrads: [arrays.gammaGrad, arrays.betaGrad],
      });
    });
    const copies = Object.fromEntries(Object.entries(arrays).map(([k, v]) => [k, v.slice()]));
    return { arrays: copies, ...counts };
  } finally {
    for (const a of held) simd.free(a);
  }
}

/** Float64 values as their bit patterns, any NaN as "NaN" (a NaN's payload is the runtime's). */
const bits = (values: Float64Array | Float32Array) => {
  const wide = Float64Array.from(values), words = new BigUint64Array(wide.buffer);
  return Array.from(wide, (v, i) => Number.isNaN(v) ? "NaN" : words[i].toString(16));
};

interface Case {
  what: string;
  shape: number[];
  rows: number;
  epsilon?: number;
  momentum?: number;
  /** Input value `i` of `count` (row-major), from a uniform draw `u` in [0, 1). */
  x?: (u: number, i: number) => number;
  dy?: (u: number, i: number) => number;
  /** Whether the backward kernel declines (the JS loops run). */
  declines?: boolean;
}

const cases: Case[] = [
  { what: "128 rows of 256 random channels (the benchmark MLP's)", shape: [256], rows: 128 },
  { what: "37 rows of 10 channels", shape: [10], rows: 37 },
  { what: "5 rows of 3 channels", shape: [3], rows: 5 },
  { what: "100 rows of 257 channels", shape: [257], rows: 100 },
  { what: "one row of 16 channels at epsilon 1e-9", shape: [16], rows: 1, epsilon: 1e-9 },
  { what: "one row of 7 channels", shape: [7], rows: 1 },
  { what: "8 rows of 5 steps × 6 channels (40 rows a pass)", shape: [5, 6], rows: 8 },
  {
    what: "48 rows of 1000 + 0.01·cos in 9 channels",
    shape: [9],
    rows: 48,
    x: (_, i) => 1000 + 0.01 * Math.cos(i * 1.3),
  },
  {
    what: "24 rows of 6 constant channels at epsilon 1e-9",
    shape: [6],
    rows: 24,
    epsilon: 1e-9,
    x: (_, i) => (i % 6) * 0.3 - 1,
  },
  {
    what: "16 rows of 5 constant channels at epsilon 0 (an infinite rsqrt)",
    shape: [5],
    rows: 16,
    epsilon: 0,
    x: (_, i) => (i % 5) * 0.25,
  },
  {
    what: "32 rows of 8 channels with a zero-variance half and a tiny epsilon",
    shape: [8],
    rows: 32,
    epsilon: 1e-9,
    x: (u, i) => (i % 8 < 4 ? 2.5 : u),
  },
  {
    what: "20 rows of 11 channels with NaN and ±Infinity among inputs and gradients",
    shape: [11],
    rows: 20,
    x: (u, i) => i === 13 ? NaN : i === 40 ? Infinity : i === 58 ? -Infinity : u,
    dy: (u, i) => i === 5 ? NaN : i === 71 ? Infinity : u - 0.5,
  },
  {
    what: "16 rows of 4 channels around ±1e13 (a variance whose −½·rsqrt³ is no float32: the JS loops run)",
    shape: [4],
    rows: 16,
    x: (u) => (u - 0.5) * 2e13,
    declines: true,
  },
  {
    what: "64 rows of 5 channels of subnormal and huge float32 values",
    shape: [5],
    rows: 64,
    x: (u, i) => (i % 5 === 0 ? u * 1e-42 : i % 5 === 1 ? (u - 0.5) * 1e38 : u),
  },
];

for (const c of cases) {
  test(`the SIMD batch normalization over ${c.what} equals the JS loops bit for bit`, () => {
    const random = createRandom(c.rows * 131 + c.shape.reduce((a, b) => a * b, 1));
    const u = () => random.next();
    const width = c.shape.reduce((a, b) => a * b, 1), channels = c.shape[c.shape.length - 1];
    const count = c.rows * width;
    const step: Step = {
      x: Float64Array.from({ length: count }, (_, i) => (c.x ?? ((v) => v * 4 - 2))(u(), i)),
      dy: Float64Array.from({ length: count }, (_, i) => (c.dy ?? ((v) => v - 0.5))(u(), i)),
      gamma: Float32Array.from({ length: channels }, () => 0.5 + u()),
      beta: Float32Array.from({ length: channels }, () => u() - 0.5),
      mean: Float32Array.from({ length: channels }, () => u() - 0.5),
      variance: Float32Array.from({ length: channels }, () => 0.5 + u()),
      grads: [0, 1].map(() => Float64Array.from({ length: channels }, () => Math.fround(u() - 0.5))),
    };
    const planned = plan(c.shape, c.epsilon ?? 1e-3, c.momentum ?? 0.99);
    const js = run(planned, step, c.rows, false), kernels = run(planned, step, c.rows, true);
    assert.deepEqual([js.forwards, js.backwards], [0, 0], "plain arrays take the JS loops");
    assert.deepEqual([kernels.forwards, kernels.backwards], [1, c.declines ? 0 : 1], "the kernels ran");
    for (const name of Object.keys(js.arrays)) {
      const want = bits(js.arrays[name]), got = bits(kernels.arrays[name]);
      const i = want.findIndex((w, i) => got[i] !== w);
      assert.equal(i, -1, `${name}[${i}]: ${kernels.arrays[name][i]} by the kernels, ${js.arrays[name][i]} by JS`);
    }
    if (c.what.includes("NaN")) assert.ok(js.arrays.gradInput.some(Number.isNaN), "NaN reaches the gradient");
  });
}

test("the kind keeps to its JS loops when one array lies outside the kernels' memory", () => {
  const planned = plan([4], 1e-3, 0.9);
  const x = simd.float64(8)!, output = new Float64Array(8), dev = simd.float64(8)!, rsqrt = simd.float64(4)!;
  const params = [simd.float32(4)!.fill(1), simd.float32(4)!], state = [simd.float32(4)!, simd.float32(4)!.fill(1)];
  x.set([1, 2, 3, 4, 5, 6, 7, 9]);
  try {
    const counts = counting(() =>
      planned.forward({ n: 2, training: true, input: x, output, params, state, scratch: [dev, rsqrt] })
    );
    assert.equal(counts.forwards, 0);
    assert.deepEqual([...output].map((v) => Math.round(v * 100) / 100), [-1, -1, -1, -1, 1, 1, 1, 1]);
  } finally {
    for (const a of [x, dev, rsqrt, ...params, ...state]) simd.free(a);
  }
});

const mse = (p: tf.Tensor, y: tf.Tensor) => tf.losses.meanSquaredError(y, p);

/** Two epochs of a model with a wide Dense layer (so the batch's arrays lie in the kernels' memory), and its weights. */
async function trainWide(kernels: boolean): Promise<{ weights: string[][]; runs: number; engine: string }> {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const model = tf.sequential({
    layers: [
      L.dense({ units: 64, activation: "relu", inputShape: [64], kernelInitializer: init(1) }),
      L.batchNormalization({ momentum: 0.9 }),
      L.dense({ units: 10, activation: "relu", kernelInitializer: init(2) }),
      L.batchNormalization({ epsilon: 1e-9 }),
      L.dense({ units: 1, kernelInitializer: init(3) }),
    ],
  });
  // 200 rows in batches of 64: a last batch of 8.
  const xs = tf.randomNormal([200, 64], 0, 1, "float32", 5), ys = tf.randomNormal([200, 1], 0, 1, "float32", 6);
  const optimizer = tf.train.adam(1e-2);
  const options = { data: [xs, ys], model, optimizer, loss: mse, batchSize: 64, shuffle: false };
  const proto = Object.getPrototypeOf(simd) as SimdKernels;
  const forward = proto.batchNormForward, backward = proto.batchNormBackward;
  let runs = 0;
  proto.batchNormForward = function (this: SimdKernels, a) {
    return kernels && forward.call(this, a) && ++runs > 0;
  };
  proto.batchNormBackward = function (this: SimdKernels, a) {
    return kernels && backward.call(this, a) && ++runs > 0;
  };
  try {
    await collect(pipe(epochStream(options), take(2)));
    const weights = model.getWeights().map((w) => bits(w.dataSync() as Float32Array));
    return { weights, runs, engine: explainEngine(options).engine };
  } finally {
    proto.batchNormForward = forward;
    proto.batchNormBackward = backward;
    tf.dispose([xs, ys]);
    model.dispose();
    optimizer.dispose();
  }
}

test("a model with a wide Dense layer trains to the same weights, bit for bit, with the BN kernels as with the JS loops", async () => {
  const tensors = tf.memory().numTensors;
  const withKernels = await trainWide(true), withLoops = await trainWide(false);
  assert.equal(withKernels.engine, "host");
  // Two BN layers, forward and backward, 4 steps an epoch, 2 epochs.
  assert.equal(withKernels.runs, 2 * 2 * 4 * 2, "the kernels ran every step");
  assert.equal(withLoops.runs, 0);
  assert.deepEqual(withKernels.weights, withLoops.weights);
  assert.equal(tf.memory().numTensors, tensors);
});
