import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  collect,
  type EngineChoice,
  epochStream,
  explainEngine,
  type LossFunction,
  pipe,
  sigmoidCrossEntropy,
  softmaxCrossEntropy,
  take,
  validationLoss,
} from "../mod.ts";
import { weightsOf } from "./tf_helpers.ts";
import { ACTIVATION_LIST, ACTIVATION_NAMES, erf } from "../src/kernels/activations.ts";
import { activateInPlace, DENSE_ACTIVATIONS, slopeAny, SOFTMAX } from "../src/engine/dense_kernels.ts";

const mse = tf.losses.meanSquaredError;

/** Seeded regression data: `rows` rows of `inputs` features, `outputs` targets. */
function regression(rows: number, inputs: number, outputs: number, seed = 1): [tf.Tensor2D, tf.Tensor2D] {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const x = Array.from({ length: rows * inputs }, rand);
  const y = Array.from({ length: rows }, (_, r) =>
    Array.from({ length: outputs }, (_, o) => {
      let v = 0.3 * o;
      for (let i = 0; i < inputs; i++) v += Math.sin(x[r * inputs + i] * (i + o + 1));
      return v;
    })).flat();
  return [tf.tensor2d(x, [rows, inputs]), tf.tensor2d(y, [rows, outputs])];
}

type Labels = "regression" | "onehot" | "binary" | "sparse" | "none";

/** The labels of `regression` turned into classes: one-hot of the arg-max, its index (int32), or 0/1 per output. */
function classes(y: tf.Tensor2D, kind: Labels): tf.Tensor {
  return tf.tidy(() =>
    kind === "onehot"
      ? tf.oneHot(y.argMax(1), y.shape[1]).cast("float32")
      : kind === "sparse"
      ? y.argMax(1).cast("int32")
      : y.greater(y.mean()).cast("float32")
  );
}

type Activation =
  | "linear"
  | "relu"
  | "sigmoid"
  | "tanh"
  | "elu"
  | "selu"
  | "softplus"
  | "relu6"
  | "softsign"
  | "swish"
  | "mish"
  | "gelu"
  | "gelu_new";
type ModelSpec = { units: number; activation: Activation; useBias?: boolean }[];

function buildModel(inputs: number, spec: ModelSpec, functional = false): tf.LayersModel {
  const layers = spec.map((l, i) =>
    tf.layers.dense({
      ...l,
      ...(i === 0 && !functional ? { inputShape: [inputs] } : {}),
      kernelInitializer: tf.initializers.glorotUniform({ seed: 11 + i }),
      biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 31 + i }),
    })
  );
  if (!functional) return tf.sequential({ layers });
  const input = tf.input({ shape: [inputs] });
  let out: tf.SymbolicTensor = input;
  for (const layer of layers) out = layer.apply(out) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

const OPTIMIZERS: Record<string, () => tf.Optimizer> = {
  sgd: () => tf.train.sgd(0.05),
  momentum: () => tf.train.momentum(0.02, 0.9),
  nesterov: () => tf.train.momentum(0.02, 0.9, true),
  adam: () => tf.train.adam(0.01),
  "adam (own betas)": () => tf.train.adam(0.02, 0.8, 0.99, 1e-5),
  rmsprop: () => tf.train.rmsprop(0.01),
  "rmsprop (momentum)": () => tf.train.rmsprop(0.005, 0.8, 0.5),
  adagrad: () => tf.train.adagrad(0.05),
  // (Adadelta: below, on its own; its losses need not fall in 3 epochs.)
  // (Adamax: tfjs 4.22 has no getWeights() for it, which run() compares; faithfulness_cases.ts tests it.)
  "adagrad (own starting accumulator)": () => tf.train.adagrad(0.05, 0.5),
};

/** An optimizer of the user's own, not a subclass of a tfjs one: steps by the gradients' signs. */
class SignDescent extends tf.Optimizer {
  static className = "SignDescent";
  applyGradients(grads: Parameters<tf.Optimizer["applyGradients"]>[0]): void {
    const list = Array.isArray(grads) ? grads : Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));
    for (const { name, tensor } of list) {
      const v = tf.engine().registeredVariables[name];
      tf.tidy(() => v.assign(v.sub(tensor.sign().mul(0.01))));
    }
  }
  getConfig(): tf.serialization.ConfigDict {
    return {};
  }
}

interface Run {
  losses: number[];
  weights: number[][];
  iterations: number;
  state: number[][];
}

async function run(
  engine: EngineChoice,
  spec: ModelSpec,
  makeOptimizer: () => tf.Optimizer,
  { epochs = 3, batchSize = 7, functional = false, loss = mse as LossFunction, labels = "regression" as Labels } = {},
): Promise<Run> {
  const [x, targets] = regression(30, 5, spec[spec.length - 1].units);
  const y = labels === "regression" ? targets : classes(targets, labels);
  if (y !== targets) targets.dispose();
  const model = buildModel(5, spec, functional);
  const optimizer = makeOptimizer();
  const lastLabel = labels !== "none";
  const options = { data: lastLabel ? [x, y] : [x], model, optimizer, loss, batchSize, seed: 4, engine, lastLabel };
  assert.equal(explainEngine(options).engine, engine === "auto" ? "host" : "tfjs", explainEngine(options).reason);
  const events = await collect(pipe(epochStream(options), take(epochs)));
  const saved = await optimizer.getWeights();
  const result = {
    losses: events.map((e) => e.train_loss),
    weights: weightsOf(model),
    iterations: optimizer.iterations,
    state: saved.slice(1).map((w) => Array.from(w.tensor.dataSync())),
  };
  tf.dispose(saved[0].tensor);
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
  return result;
}

function assertClose(actual: number[], expected: number[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: lengths`);
  actual.forEach((a, i) => {
    const e = expected[i];
    assert.ok(Math.abs(a - e) <= tolerance * Math.max(1, Math.abs(e)), `${what}[${i}]: ${a} vs ${e}`);
  });
}

function assertSameTraining(host: Run, tfjs: Run, tolerance: number): void {
  assertClose(host.losses, tfjs.losses, tolerance, "train_loss");
  host.weights.forEach((w, i) => assertClose(w, tfjs.weights[i], tolerance, `weights ${i}`));
  assert.equal(host.iterations, tfjs.iterations, "optimizer iterations");
  assert.equal(host.state.length, tfjs.state.length, "optimizer state variables");
  host.state.forEach((s, i) => assertClose(s, tfjs.state[i], tolerance, `optimizer state ${i}`));
}

const SPECS: Record<string, ModelSpec> = {
  "relu → linear (the tutorial's shape)": [{ units: 9, activation: "relu" }, { units: 1, activation: "linear" }],
  "tanh → sigmoid (no bias) → linear, two outputs": [
    { units: 6, activation: "tanh" },
    { units: 4, activation: "sigmoid", useBias: false },
    { units: 2, activation: "linear" },
  ],
  "one linear layer": [{ units: 3, activation: "linear" }],
  "elu → selu → softplus → relu6 (no bias) → linear": [
    { units: 6, activation: "elu" },
    { units: 6, activation: "selu" },
    { units: 5, activation: "softplus" },
    { units: 4, activation: "relu6", useBias: false },
    { units: 1, activation: "linear" },
  ],
  "softplus → elu output": [{ units: 4, activation: "softplus" }, { units: 2, activation: "elu" }],
  // The derivative of swish, mish and gelu_new reads the layer's input: the host engine keeps it.
  "softsign → swish → mish (no bias) → gelu_new → linear": [
    { units: 6, activation: "softsign" },
    { units: 6, activation: "swish" },
    { units: 5, activation: "mish", useBias: false },
    { units: 4, activation: "gelu_new" },
    { units: 1, activation: "linear" },
  ],
  "swish → gelu_new output (the loss's gradient through an input-derivative slope)": [
    { units: 4, activation: "swish" },
    { units: 2, activation: "gelu_new" },
  ],
  "mish → softsign output": [{ units: 4, activation: "mish" }, { units: 2, activation: "softsign" }],
  "gelu → gelu output": [{ units: 5, activation: "gelu" }, { units: 2, activation: "gelu" }],
};

for (const [name, spec] of Object.entries(SPECS)) {
  for (const [optName, makeOptimizer] of Object.entries(OPTIMIZERS)) {
    test(`host engine = tfjs path: ${name}, ${optName}`, async () => {
      const host = await run("auto", spec, makeOptimizer);
      const tfjs = await run("tfjs", spec, makeOptimizer);
      assertSameTraining(host, tfjs, 2e-5);
      assert.ok(host.losses[2] < host.losses[0], "it trains");
    });
  }
}

test("host engine = tfjs path: Adadelta (tfjs divides by the accumulated gradient from before the step), state too", async () => {
  for (
    const name of ["relu → linear (the tutorial's shape)", "softsign → swish → mish (no bias) → gelu_new → linear"]
  ) {
    const makeOptimizer = () => tf.train.adadelta(0.2, 0.95, 1e-6);
    const host = await run("auto", SPECS[name], makeOptimizer);
    const tfjs = await run("tfjs", SPECS[name], makeOptimizer);
    assertSameTraining(host, tfjs, 2e-5);
    assert.ok(host.state.flat().some((v) => v !== 0), "it keeps state");
  }
});

const LOSSES: [string, LossFunction, Labels, number][] = [
  ["tf.losses.absoluteDifference", tf.losses.absoluteDifference, "regression", 1],
  ["tf.losses.huberLoss", tf.losses.huberLoss, "regression", 1],
  ["softmaxCrossEntropy", softmaxCrossEntropy, "onehot", 3],
  ["sigmoidCrossEntropy", sigmoidCrossEntropy, "binary", 2],
  // Any other loss: the host engine runs the layers, tfjs the loss and its gradient.
  ["a custom loss (half the MSE, labels first)", (p, y) => tf.losses.meanSquaredError(y, p).mul(0.5), "regression", 2],
  [
    "a sparse softmax cross-entropy on int32 class labels",
    (p, y) => tf.losses.softmaxCrossEntropy(tf.oneHot(y.cast("int32"), 3), p),
    "sparse",
    3,
  ],
  ["a loss without labels", ((p: tf.Tensor) => p.sub(1).square().mean()) as LossFunction, "none", 2],
];
for (const [name, loss, labels, outputs] of LOSSES) {
  for (const optName of ["sgd", "adam"]) {
    test(`host engine = tfjs path: ${name}, tanh → relu → linear, ${optName}`, async () => {
      const spec: ModelSpec = [
        { units: 6, activation: "tanh" },
        { units: 5, activation: "relu" },
        { units: outputs, activation: "linear" },
      ];
      const host = await run("auto", spec, OPTIMIZERS[optName], { loss, labels });
      const tfjs = await run("tfjs", spec, OPTIMIZERS[optName], { loss, labels });
      assertSameTraining(host, tfjs, 2e-5);
      assert.ok(host.losses[2] < host.losses[0], "it trains");
    });
  }
}

test("host engine = tfjs path: a functional chain, one-row batches, one batch per epoch", async () => {
  const spec: ModelSpec = [{ units: 5, activation: "relu" }, { units: 1, activation: "linear" }];
  for (const batchSize of [1, 64]) {
    const host = await run("auto", spec, OPTIMIZERS.adam, { functional: true, batchSize, epochs: 2 });
    const tfjs = await run("tfjs", spec, OPTIMIZERS.adam, { functional: true, batchSize, epochs: 2 });
    assertSameTraining(host, tfjs, 5e-5);
  }
});

test("the two engines hand over: 2 host epochs then 2 tfjs epochs = 4 tfjs epochs", async () => {
  const spec = SPECS["relu → linear (the tutorial's shape)"];
  const [x, y] = regression(30, 5, 1);
  const losses: Record<string, number[]> = {};
  const finals: Record<string, number[][]> = {};
  for (const plan of [["auto", "tfjs"], ["tfjs", "tfjs"]] as const) {
    const model = buildModel(5, spec);
    const optimizer = tf.train.adam(0.01);
    const seen: number[] = [];
    for (const engine of plan) {
      const source = epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 8, shuffle: false, engine });
      seen.push(...(await collect(pipe(source, take(2)))).map((e) => e.train_loss));
    }
    losses[plan[0]] = seen;
    finals[plan[0]] = weightsOf(model);
    model.dispose();
    optimizer.dispose();
  }
  assertClose(losses.auto, losses.tfjs, 2e-5, "train_loss");
  finals.auto.forEach((w, i) => assertClose(w, finals.tfjs[i], 2e-5, `weights ${i}`));
  tf.dispose([x, y]);
});

test("hyperparameters changed between epochs reach the host engine (reduceLrOnPlateau's two ways)", async () => {
  const spec: ModelSpec = [{ units: 1, activation: "linear" }];
  const [x, y] = regression(20, 5, 1);
  for (const kind of ["sgd, setLearningRate", "adam, learningRate property"]) {
    const model = buildModel(5, spec);
    const optimizer = kind.startsWith("sgd") ? tf.train.sgd(0.1) : tf.train.adam(0.1);
    const reader = epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 20, shuffle: false })
      .getReader();
    await reader.read();
    const before = weightsOf(model);
    if (kind.startsWith("sgd")) (optimizer as tf.SGDOptimizer).setLearningRate(0);
    else (optimizer as unknown as { learningRate: number }).learningRate = 0;
    await reader.read();
    assert.deepEqual(weightsOf(model), before, `${kind}: learning rate 0, nothing moves`);
    await reader.cancel();
    model.dispose();
    optimizer.dispose();
  }
  tf.dispose([x, y]);
});

test("explainEngine names what keeps a run off the host engine", () => {
  const [x, y] = regression(4, 5, 1);
  const dense = () => tf.layers.dense({ units: 1, inputShape: [5] });
  const base = { data: [x, y], model: tf.sequential({ layers: [dense()] }), optimizer: tf.train.adam(), loss: mse };
  const kernel = tf.variable(tf.zeros([5, 1]));
  const [a, b] = [tf.input({ shape: [5] }), tf.input({ shape: [1] })];
  const joined = tf.layers.concatenate().apply([a, b]) as tf.SymbolicTensor;
  const twoInputs = tf.model({
    inputs: [a, b],
    outputs: tf.layers.dense({ units: 1 }).apply(joined) as tf.SymbolicTensor,
  });
  const js = "; products in float64 JS loops (no layer has 8,192 multiply-adds a step)";
  assert.deepEqual(explainEngine(base), {
    engine: "host",
    reason: "a chain of 1 Dense layer(s) under meanSquaredError with Adam" + js,
  });
  const custom = "a chain of 1 Dense layer(s) under a custom loss (its gradient through tfjs per batch) with Adam" + js;
  const alsoHost: [object, string][] = [
    [{ loss: (p: tf.Tensor, y: tf.Tensor) => tf.losses.meanSquaredError(y, p) }, custom],
    [{ lastLabel: false, data: [x], loss: (p: tf.Tensor) => p.square().mean() }, custom],
    [{ data: [x, y.cast("int32")] }, custom], // tfjs's MSE on int32 labels: through tfjs
    [{ loss: tf.losses.huberLoss }, "a chain of 1 Dense layer(s) under huberLoss with Adam" + js],
  ];
  for (const [change, reason] of alsoHost) {
    assert.deepEqual(explainEngine({ ...base, ...change } as typeof base), { engine: "host", reason });
  }
  const cases: [object, RegExp][] = [
    [{ engine: "tfjs" }, /engine: "tfjs" was asked for/],
    [
      { optimizer: new SignDescent() },
      /the optimizer is SignDescent \(host rules: SGD, Momentum, Adam, RMSProp, Adagrad, Adadelta, Adamax\)/,
    ],
    [{ model: (t: tf.Tensor) => t.matMul(kernel), variables: [kernel] }, /function, not a tf.LayersModel/],
    [{
      model: tf.sequential({
        layers: [dense(), tf.layers.gaussianNoise({ stddev: 0.5 }), tf.layers.dense({ units: 1 })],
      }),
    }, /is a GaussianNoise, which the host engine does not train/],
    [
      { model: tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [5], activation: "hardSigmoid" })] }) },
      /uses the hardSigmoid activation/,
    ],
    [{ data: [x, y, y], model: twoInputs }, /^the data is not one input tensor and one label tensor$/],
    [{ data: [x, y.cast("bool")] }, /the labels are bool, not float32 or int32/],
    [{ data: [x.cast("int32"), y] }, /the input is not a 2-d float32 tensor/],
  ];
  for (const [change, reason] of cases) {
    const explanation = explainEngine({ ...base, ...change } as typeof base);
    assert.equal(explanation.engine, "tfjs");
    assert.match(explanation.reason, reason);
  }
  // An invalid run is refused as epochStream refuses it.
  assert.throws(() => explainEngine({ ...base, data: [tf.zeros([4, 3]), y] }), {
    name: "RangeError",
    message: /^explainEngine: data\[0\] must have rows shaped \[5\] as the model's input, got \[3\]/,
  });
  const frozen = tf.sequential({ layers: [dense()] });
  frozen.layers[0].trainable = false;
  assert.throws(() => explainEngine({ ...base, model: frozen }), {
    name: "TypeError",
    message: "explainEngine: the model has no trainable variables",
  });
  const partlyFrozen = tf.sequential({
    layers: [tf.layers.dense({ units: 3, inputShape: [5] }), tf.layers.dense({ units: 1 })],
  });
  partlyFrozen.layers[0].trainable = false;
  assert.equal(explainEngine({ ...base, model: partlyFrozen }).engine, "host");
});

test("engine must be auto or tfjs", () => {
  const [x, y] = regression(4, 5, 1);
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [5] })] });
  assert.throws(
    () => epochStream({ data: [x, y], model, optimizer: tf.train.sgd(0.1), loss: mse, engine: "fast" as "auto" }),
    { name: "RangeError", message: 'epochStream: engine must be "auto" or "tfjs", got the string "fast"' },
  );
  tf.dispose([x, y]);
  model.dispose();
});

test("a diverging run stops on both engines, every earlier event delivered", async () => {
  const [x, y] = regression(30, 5, 1);
  const outcomes: Record<string, { seen: number[]; error: string }> = {};
  for (const engine of ["auto", "tfjs"] as const) {
    const model = buildModel(5, [{ units: 8, activation: "relu" }, { units: 1, activation: "linear" }]);
    const optimizer = tf.train.sgd(1);
    const seen: number[] = [];
    let error = "";
    try {
      const events = pipe(
        epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 5, seed: 1, engine }),
        take(50),
      );
      for await (const e of events) seen.push(e.train_loss);
    } catch (e) {
      error = (e as Error).message;
    }
    outcomes[engine] = { seen, error };
    model.dispose();
    optimizer.dispose();
  }
  assert.match(outcomes.auto.error, /^epochStream: step \d+: train_loss is (NaN|Infinity)/);
  assert.ok(outcomes.auto.seen.length >= 2, `diverged after ${outcomes.auto.seen.length} epochs`);
  assert.ok(outcomes.auto.seen.every(Number.isFinite));
  assert.match(outcomes.tfjs.error, /^epochStream: step \d+: train_loss is (NaN|Infinity)/);
  // The host engine computes in float64, whose range is wider than float32's: it may overflow one epoch later.
  assert.ok(Math.abs(outcomes.auto.seen.length - outcomes.tfjs.seen.length) <= 1, JSON.stringify(outcomes));
  tf.dispose([x, y]);
});

test("on a backend with its own device (not wasm or cpu), auto keeps tfjs kernels", async () => {
  const [x, y] = regression(4, 5, 1);
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [5] })] });
  const options = { data: [x, y], model, optimizer: tf.train.adam(), loss: mse };
  const previous = tf.getBackend();
  const cpu = tf.findBackend("cpu") ?? tf.findBackend(previous);
  tf.registerBackend("device-like", () => new (cpu!.constructor as new () => tf.KernelBackend)());
  const kernels = tf.getKernelsForBackend("cpu");
  for (const kernel of kernels) tf.registerKernel({ ...kernel, backendName: "device-like" });
  try {
    await tf.setBackend("device-like");
    assert.deepEqual(explainEngine(options), {
      engine: "tfjs",
      reason: "the device-like backend runs tfjs kernels on its own device",
    });
  } finally {
    await tf.setBackend(previous);
    for (const kernel of kernels) tf.unregisterKernel(kernel.kernelName, "device-like");
    tf.removeBackend("device-like");
  }
  assert.equal(explainEngine(options).engine, "host");
  tf.dispose([x, y]);
  model.dispose();
});

test("tfjs losses that take the labels first are refused: fitstream calls loss(predictions, labels)", () => {
  const [x, y] = regression(4, 5, 2);
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [5] })] });
  const optimizer = tf.train.sgd(0.1);
  for (const name of ["softmaxCrossEntropy", "sigmoidCrossEntropy", "logLoss", "hingeLoss"] as const) {
    const loss = tf.losses[name] as unknown as LossFunction;
    const hint = name.endsWith("CrossEntropy") ? `fitstream's ${name}, or ` : "";
    const message = `loss is tf.losses.${name}, which takes (labels, predictions), but the loss is called as ` +
      `loss(predictions, labels): use ${hint}(p, y) => tf.losses.${name}(y, p)`;
    assert.throws(() => epochStream({ data: [x, y], model, optimizer, loss }), {
      name: "TypeError",
      message: `epochStream: ${message}`,
    });
    assert.throws(() => validationLoss({ data: [x, y], loss }), {
      name: "TypeError",
      message: `validationLoss: ${message}`,
    });
  }
  tf.dispose([x, y]);
  model.dispose();
});

test("fitstream's cross-entropies are tfjs's with the arguments in fitstream's order", () => {
  const logits = tf.tensor2d([[2, -1, 0.5], [0, 3, -2]]);
  const onehot = tf.tensor2d([[0, 0, 1], [0, 1, 0]]);
  const ours = [softmaxCrossEntropy(logits, onehot), sigmoidCrossEntropy(logits, onehot)];
  const theirs = [tf.losses.softmaxCrossEntropy(onehot, logits), tf.losses.sigmoidCrossEntropy(onehot, logits)];
  ours.forEach((t, i) => assert.equal(t.dataSync()[0], theirs[i].dataSync()[0]));
  // Swapped, the value differs: the order matters.
  const swapped = tf.losses.softmaxCrossEntropy(logits, onehot);
  assert.notEqual(swapped.dataSync()[0], ours[0].dataSync()[0]);
  tf.dispose([logits, onehot, ...ours, ...theirs, swapped]);
});

test("a wide Dense layer's products go to the SIMD kernels and train what the tfjs path trains", async () => {
  const { wideProductCount } = await import("../src/engine/wide_layers.ts");
  const make = () =>
    tf.sequential({
      layers: [
        tf.layers.dense({
          units: 48,
          activation: "relu",
          inputShape: [784],
          kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
        }),
        // Wide too (64 × 48 × 96 ≥ 2^13): its gradient to the relu layer below goes through the kernels' epilogue.
        tf.layers.dense({
          units: 96,
          activation: "relu",
          kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
        }),
        tf.layers.dense({
          units: 10,
          activation: "tanh",
          kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
        }),
        tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
      ],
    });
  const x = tf.randomNormal([256, 784], 0, 1, "float32", 5), y = tf.randomNormal([256, 1], 0, 1, "float32", 6);
  const explained = explainEngine({
    data: [x, y],
    model: make(),
    optimizer: tf.train.sgd(0.01),
    loss: mse,
    batchSize: 64,
  });
  assert.match(explained.reason, /; products in float32 on fitstream's WebAssembly SIMD kernels/);
  const weights: number[][] = [], losses: number[][] = [];
  const before = tf.memory().numTensors;
  for (const engine of ["auto", "tfjs"] as const) {
    const model = make(), optimizer = tf.train.sgd(0.01);
    const calls = wideProductCount();
    const rows = await collect(
      epochStream({ data: [x, y], model, optimizer, loss: tf.losses.meanSquaredError, batchSize: 64, seed: 1, engine })
        .pipeThrough(take(2)),
    );
    if (engine === "auto") {
      assert.ok(wideProductCount() - calls >= 2 * 4 * 2, "the 784→48 layer's products went to the SIMD kernels");
    }
    losses.push(rows.map((r) => r.train_loss));
    weights.push(model.getWeights().flatMap((w) => Array.from(w.dataSync())));
    model.dispose();
    optimizer.dispose();
  }
  losses[0].forEach((l, i) => assert.ok(Math.abs(l - losses[1][i]) <= 1e-5 * Math.abs(losses[1][i]), `epoch ${i + 1}`));
  weights[0].forEach((w, i) => assert.ok(Math.abs(w - weights[1][i]) < 1e-5, `weight ${i}: ${w} vs ${weights[1][i]}`));
  tf.dispose([x, y]);
  assert.equal(tf.memory().numTensors, before - 2, "no tensor left by the products");
});

/** inputs → hidden (relu) → outputs, with seeded initializers: the same weights every time. */
function seededMlp(inputs: number, hidden: number, outputs: number): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        units: hidden,
        activation: "relu",
        inputShape: [inputs],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({ units: outputs, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
}

test("a wide Dense chain's kernel gradients, written in float32 by the products in place, train what their float64 copies train, to the bit", async () => {
  const { float32KernelGradients, inPlaceGradientCount } = await import("../src/engine/wide_layers.ts");
  const x = tf.randomNormal([200, 300], 0, 1, "float32", 7), y = tf.randomNormal([200, 3], 0, 1, "float32", 8);
  const before = tf.memory().numTensors;
  const train = async (on: boolean, optimizer: () => tf.Optimizer, extra: Record<string, unknown> = {}) => {
    const model = seededMlp(300, 64, 3);
    const opt = optimizer(), written = inPlaceGradientCount(), was = float32KernelGradients.on;
    float32KernelGradients.on = on;
    try {
      const rows = await collect(
        epochStream({ data: [x, y], model, optimizer: opt, loss: mse, batchSize: 64, seed: 1, ...extra })
          .pipeThrough(take(2)),
      );
      return {
        inPlace: inPlaceGradientCount() - written,
        losses: rows.map((r) => r.train_loss),
        weights: model.getWeights().map((w) => Array.from(w.dataSync())),
      };
    } finally {
      float32KernelGradients.on = was;
      model.dispose();
      opt.dispose();
    }
  };
  for (const optimizer of [() => tf.train.adam(0.01), () => tf.train.sgd(0.05), () => tf.train.rmsprop(0.01)]) {
    const inPlace = await train(true, optimizer), copied = await train(false, optimizer);
    // 200 rows in batches of 64: four steps an epoch, two epochs. Both layers are wide (64 × 64 × 3 ≥ 2^13 too):
    // the 300→64 layer's gradient is written in place, the 64→3 one's (3 columns, not whole tiles) copied in.
    assert.equal(inPlace.inPlace, 8, "the wide layer's kernel gradient written in place every step");
    assert.equal(copied.inPlace, 0);
    assert.deepEqual(inPlace.losses, copied.losses);
    assert.deepEqual(inPlace.weights, copied.weights);
  }
  // A product that finds no room in the kernels' memory (as if it were full): the JS loops' float64 sums, rounded
  // into the float32 gradient — within float32 rounding of the products' own (under SGD: Adam's normalised steps
  // would magnify the rounding of near-zero gradients).
  const { SimdKernels } = await import("../src/kernels/simd/products.ts");
  const multiply = SimdKernels.prototype.multiply;
  SimdKernels.prototype.multiply = function (this: InstanceType<typeof SimdKernels>, ...args) {
    return args[5] ? undefined : multiply.apply(this, args);
  };
  let loops;
  try {
    loops = await train(true, () => tf.train.sgd(0.05));
  } finally {
    SimdKernels.prototype.multiply = multiply;
  }
  const products = await train(true, () => tf.train.sgd(0.05));
  assert.equal(loops.inPlace, 0, "no product wrote a gradient");
  loops.weights.forEach((w, k) =>
    w.forEach((v, i) => assert.ok(Math.abs(v - products.weights[k][i]) <= 1e-5, `weight ${k}[${i}]`))
  );
  assert.notDeepEqual(loops.weights, products.weights, "the loops' sums, not the products'");
  // Where float64 work reads the gradients (clipping, accumulation), they stay float64.
  assert.equal((await train(true, () => tf.train.adam(0.01), { clipNorm: 1 })).inPlace, 0);
  assert.equal((await train(true, () => tf.train.adam(0.01), { accumulate: 2 })).inPlace, 0);
  tf.dispose([x, y]);
  assert.equal(tf.memory().numTensors, before - 2, "no tensor leaks");
});

test("a wide model trains to the same weights, to the bit, in two runs with one seed", async () => {
  const train = async () => {
    const model = seededMlp(300, 200, 10);
    const x = tf.randomNormal([200, 300], 0, 1, "float32", 7);
    const y = tf.oneHot(tf.randomUniform([200], 0, 10, "int32", 8), 10).toFloat();
    const optimizer = tf.train.adam(1e-3);
    const rows = await collect(
      epochStream({ data: [x, y], model, optimizer, loss: softmaxCrossEntropy, batchSize: 50, seed: 3 })
        .pipeThrough(take(3)),
    );
    const weights = model.getWeights().flatMap((w) => Array.from(w.dataSync()));
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
    return { losses: rows.map((r) => r.train_loss), weights };
  };
  const first = await train(), second = await train();
  assert.deepEqual(second.losses, first.losses);
  assert.deepEqual(second.weights, first.weights);
});

test("a wide model's epoch gives back the kernels' memory when it ends and when its loss throws mid-epoch", async () => {
  const { simdKernels } = await import("../src/kernels/simd/products.ts");
  const simd = simdKernels()!;
  // The first free place in the memory: it comes back to the same address once every epoch's arrays are freed.
  const firstFree = () => {
    const probe = simd.float32(1)!;
    simd.free(probe);
    return probe.byteOffset;
  };
  const before = firstFree(), tensors = tf.memory().numTensors;
  const x = tf.randomNormal([128, 300], 0, 1, "float32", 1), y = tf.randomNormal([128, 1], 0, 1, "float32", 2);
  const make = () =>
    tf.sequential({
      layers: [tf.layers.dense({ units: 64, activation: "relu", inputShape: [300] }), tf.layers.dense({ units: 1 })],
    });
  const model = make(), optimizer = tf.train.adam(1e-3);
  await collect(epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 64 }).pipeThrough(take(2)));
  assert.equal(firstFree(), before, "after two epochs");
  let calls = 0;
  // A custom loss (run through tfjs per batch) that throws on the third batch: in the second epoch, mid-way.
  const throwing: LossFunction = (p, labels) => {
    if (++calls === 3) throw new Error("loss failed");
    return mse(labels!, p);
  };
  const other = make(), otherOptimizer = tf.train.adam(1e-3);
  const run = collect(
    epochStream({ data: [x, y], model: other, optimizer: otherOptimizer, loss: throwing, batchSize: 64 }).pipeThrough(
      take(3),
    ),
  );
  await assert.rejects(run, /loss failed/);
  assert.equal(firstFree(), before, "after the failed epoch");
  tf.dispose([x, y]);
  for (const m of [model, other]) m.dispose();
  for (const o of [optimizer, otherOptimizer]) o.dispose();
  assert.equal(tf.memory().numTensors, tensors, "no tensor leaks");
});

test("erf, which JS lacks, is within a few float64 ulps of its tabled values and exactly ±1 far out", () => {
  const table: [number, number][] = [
    [0.01, 0.011283415555849618],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [3, 0.9999779095030014],
    [5, 0.9999999999984626],
  ];
  for (const [x, value] of table) {
    assert.ok(Math.abs(erf(x) - value) <= 1e-15 * value, `erf(${x}) = ${erf(x)}`);
    assert.equal(erf(-x), -erf(x));
  }
  assert.deepEqual([erf(0), erf(6), erf(-40), erf(Infinity), erf(5.9) <= 1], [0, 1, -1, 1, true]);
  assert.ok(Number.isNaN(erf(NaN)));
});

test("the four activations folded into the JS products are their registry entries, value for value", () => {
  const values = [-7, -1.5, -1e-300, -0, 0, 1e-300, 0.25, 1, 3, 6, 40, NaN, Infinity, -Infinity];
  for (let code = 0; code < 4; code++) {
    const entry = ACTIVATION_LIST[code];
    const z = Float64Array.from(values);
    activateInPlace(z, 1, values.length, code);
    assert.deepEqual([...z], values.map(entry.forward), ACTIVATION_NAMES[code]);
    assert.deepEqual(values.map((y) => slopeAny(code, y)), values.map(entry.slope), ACTIVATION_NAMES[code]);
  }
  assert.deepEqual(DENSE_ACTIVATIONS, ACTIVATION_NAMES);
  assert.equal(ACTIVATION_NAMES[SOFTMAX], "softmax");
});

test("an optimizer that kept a frozen layer's state frees it when disposed, on either engine", async () => {
  for (const engine of ["auto", "tfjs"] as const) {
    const before = tf.memory().numTensors;
    const [x, y] = regression(32, 5, 1);
    const model = tf.sequential({
      layers: [tf.layers.dense({ units: 4, inputShape: [5], activation: "tanh" }), tf.layers.dense({ units: 1 })],
    });
    const optimizer = tf.train.adam(0.01);
    const reader = epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 8, engine }).getReader();
    await reader.read();
    // Frozen between epochs: its Adam moments are kept aside for when it trains again.
    model.layers[0].trainable = false;
    await reader.read();
    await reader.cancel();
    optimizer.dispose();
    model.dispose();
    tf.dispose([x, y]);
    assert.equal(tf.memory().numTensors, before, `${engine}: no tensor left`);
  }
});
