// Every trainable layer kind of tfjs-layers, and the weightless layers that sit between trainable ones, trains on the
// default backend (wasm where it loads) to the weights and per-epoch losses it reaches on the cpu backend, through
// epochStream, without leaking tensors. One table entry per layer kind; each builds a tiny functional model (the
// layer, then a flatten where needed and a dense(1) head), sets every weight from a seeded LCG, and trains 2 epochs
// of SGD on 16 LCG rows in batches of 8, shuffled with a fixed seed, once per backend.
//
// The cpu backend is the reference: where both backends run the same wrong kernel, these tests cannot tell.
//
// Not in the table (tfjs-layers 4.22 cannot run them inside a model on any backend): resizing, centerCrop to a larger
// size (their call hands tf.image the layer's input list: "x must be rank 3 or 4, but got rank 1"), and randomWidth
// (its output shape is [undefined, -1, width], so no layer after it accepts it).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { collect, epochStream, take, useBackend } from "../mod.ts";
import { backend } from "./tf_helpers.ts";

type Sym = tf.SymbolicTensor;
/** The backend under test: wasm where it loads, else cpu (then cpu is compared with itself). */
const defaultBackend = backend as "cpu" | "wasm";

/** One layer kind: the inputs its model reads, and the layers between those inputs and the shared head. */
interface Case {
  name: string;
  /** Input shapes without the batch dimension (one per model input). */
  inputs: number[][];
  /** The body of the model; a flatten (where the output has rank > 2) and a `dense(1)` head follow it. */
  build: (inputs: Sym[]) => Sym;
  /** Integer inputs in [0, ints) instead of floats in [-1, 1) (embedding, categoryEncoding). */
  ints?: number;
  /** Inputs whose last time steps are 0 (for masking). */
  zeroTail?: boolean;
  /** `"auto"` (the default: what users get) or `"tfjs"`. */
  engine?: "auto" | "tfjs";
  /**
   * tfjs 4.22 itself cannot train this model, on any backend (a gradient it does not define): the error both
   * backends must raise. Such a case checks that the default backend fails as the cpu backend does, and that the two
   * compute the same forward pass. When tfjs learns the gradient, the test fails: drop the field.
   */
  tfjsCannotTrain?: RegExp;
}

const ROWS = 16, BATCH = 8, EPOCHS = 2, SEED = 7, LEARNING_RATE = 0.05;
/**
 * Tolerance, entry by entry, relative to max(1, |cpu value|): every final weight w (default backend) against c (cpu)
 * within 1e-3 · max(1, |c|), and each epoch's train_loss likewise. That is absolute 1e-3 for the small weights and
 * losses here (a relative test would fail on weights near 0, where float32 rounding is all the difference) and
 * relative beyond 1. The backends sum in other orders: correct kernels agree to ~1e-7 here, while a wrong gradient
 * moves a weight by ~lr·|g|, 1e-2 or more after 4 steps.
 */
const TOLERANCE = 1e-3;

/** A small LCG (the one tests/tf_helpers.ts uses) of floats in [0, 1). */
function lcg(seed: number): () => number {
  let s = (seed * 7919 + 12345) % 2 ** 31;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

/** Applies `layers` one after another to `x`. */
function chain(x: Sym, ...layers: tf.layers.Layer[]): Sym {
  return layers.reduce((t, layer) => layer.apply(t) as Sym, x);
}

const seq = [6, 3], image = [6, 6, 2], volume = [4, 4, 4, 2];
const conv1x1 = () => tf.layers.conv2d({ filters: 2, kernelSize: 1 });
const conv3x1 = () => tf.layers.conv3d({ filters: 2, kernelSize: 1 });
const conv1d1 = () => tf.layers.conv1d({ filters: 3, kernelSize: 1 });
/** `sigmoid` then `minusOne` map a conv's outputs into (-1, 0). */
const sigmoid = () => tf.layers.activation({ activation: "sigmoid" });
const minusOne = () => tf.layers.rescaling({ scale: 1, offset: -1 });
const dense = (units = 5) => tf.layers.dense({ units });
/** A case on one input: `layers` in a row. */
const one = (name: string, shape: number[], ...layers: (() => tf.layers.Layer)[]): Case => ({
  name,
  inputs: [shape],
  build: ([x]) => chain(x, ...layers.map((make) => make())),
});
/** A merge layer over two dense branches of two inputs (the functional API). */
const merge = (name: string, make: () => tf.layers.Layer): Case => ({
  name,
  inputs: [[4], [5]],
  build: ([a, b]) => make().apply([chain(a, dense(3)), chain(b, dense(3))]) as Sym,
});

const CASES: Case[] = [
  one("dense", [6], () => dense()),
  { ...one("dense (tfjs path)", [6], () => tf.layers.dense({ units: 5, activation: "relu" })), engine: "tfjs" },
  one("conv1d", seq, () => tf.layers.conv1d({ filters: 4, kernelSize: 3 })),
  one("conv1d after conv1d (the input gradient)", seq, conv1d1, () => tf.layers.conv1d({ filters: 4, kernelSize: 3 })),
  one(
    "conv1d with strides 2 and 'same' padding",
    [7, 3],
    () => tf.layers.conv1d({ filters: 4, kernelSize: 3, strides: 2, padding: "same" }),
  ),
  one("conv2d with 'valid' padding", image, () => tf.layers.conv2d({ filters: 3, kernelSize: 3 })),
  one("conv2d with 'same' padding", image, () => tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: "same" })),
  one(
    "conv2d with strides 2 and 'valid' padding",
    [7, 7, 2],
    () => tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2 }),
  ),
  one(
    "conv2d with strides 2 and 'same' padding",
    [7, 7, 2],
    () => tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: "same" }),
  ),
  one(
    "conv2d after conv2d with strides 2 and 'same' padding (the input gradient)",
    [7, 7, 2],
    conv1x1,
    () => tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: "same" }),
  ),
  {
    ...one(
      "conv2d with dilation 2 and 'valid' padding",
      [7, 7, 2],
      () => tf.layers.conv2d({ filters: 3, kernelSize: 2, dilationRate: 2 }),
    ),
    tfjsCannotTrain: /dilation rates greater than 1 are not yet supported in gradients/,
  },
  {
    ...one(
      "conv2d with dilation 2 and 'same' padding",
      image,
      () => tf.layers.conv2d({ filters: 3, kernelSize: 3, dilationRate: 2, padding: "same" }),
    ),
    tfjsCannotTrain: /dilation rates greater than 1 are not yet supported in gradients/,
  },
  // tfjs-backend-wasm 4.22 gave zeros for 'same' at a stride above 1 with a filter one pixel wide (FusedConv2D).
  one(
    "conv2d with a 3×1 filter, strides [1, 2] and 'same' padding",
    [7, 8, 2],
    () => tf.layers.conv2d({ filters: 3, kernelSize: [3, 1], strides: [1, 2], padding: "same" }),
  ),
  one("conv3d", volume, () => tf.layers.conv3d({ filters: 2, kernelSize: 2 })),
  one(
    "conv3d with strides 2 and 'same' padding",
    [5, 5, 5, 2],
    () => tf.layers.conv3d({ filters: 2, kernelSize: 3, strides: 2, padding: "same" }),
  ),
  one(
    "conv3d after conv3d (the input gradient)",
    volume,
    conv3x1,
    () => tf.layers.conv3d({ filters: 2, kernelSize: 2 }),
  ),
  one(
    "conv2dTranspose with strides 2 and 'same' padding",
    [4, 4, 2],
    () => tf.layers.conv2dTranspose({ filters: 3, kernelSize: 3, strides: 2, padding: "same" }),
  ),
  one(
    "conv2dTranspose with 'valid' padding",
    [4, 4, 2],
    () => tf.layers.conv2dTranspose({ filters: 3, kernelSize: 3 }),
  ),
  one(
    "conv2dTranspose after conv2d (the input gradient)",
    [4, 4, 2],
    conv1x1,
    () => tf.layers.conv2dTranspose({ filters: 3, kernelSize: 3, strides: 2, padding: "same" }),
  ),
  {
    ...one("conv3dTranspose", [3, 3, 3, 2], () => tf.layers.conv3dTranspose({ filters: 2, kernelSize: 2, strides: 2 })),
    tfjsCannotTrain: /gradient function not found for Conv3DBackpropInputV2/,
  },
  one("separableConv2d", image, () => tf.layers.separableConv2d({ filters: 3, kernelSize: 3, depthMultiplier: 2 })),
  one(
    "separableConv2d with strides 2 and 'same' padding",
    [7, 7, 2],
    () => tf.layers.separableConv2d({ filters: 3, kernelSize: 3, strides: 2, padding: "same" }),
  ),
  one("depthwiseConv2d", image, () => tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2 })),
  one(
    "depthwiseConv2d with strides 2 and 'same' padding",
    [7, 7, 2],
    () => tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: "same" }),
  ),
  one(
    "depthwiseConv2d after conv2d (the input gradient)",
    image,
    conv1x1,
    () => tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2 }),
  ),
  one("maxPooling1d", seq, conv1d1, () => tf.layers.maxPooling1d({ poolSize: 2 })),
  one("maxPooling2d", image, conv1x1, () => tf.layers.maxPooling2d({ poolSize: 2 })),
  one(
    "maxPooling2d with strides 1 and 'same' padding",
    [5, 5, 2],
    conv1x1,
    () => tf.layers.maxPooling2d({ poolSize: 3, strides: 1, padding: "same" }),
  ),
  one("maxPooling3d", volume, conv3x1, () => tf.layers.maxPooling3d({ poolSize: 2 })),
  // Max pooling where every window's values are negative (a linear conv's outputs often are): a max that starts
  // from 0 instead of -∞ (tfjs-backend-wasm 4.22's MaxPool3D and MaxPool3DGrad) is wrong only there.
  one(
    "maxPooling1d of negative activations",
    seq,
    conv1d1,
    sigmoid,
    minusOne,
    () => tf.layers.maxPooling1d({ poolSize: 2 }),
  ),
  one(
    "maxPooling2d of negative activations",
    image,
    conv1x1,
    sigmoid,
    minusOne,
    () => tf.layers.maxPooling2d({ poolSize: 2 }),
  ),
  one(
    "maxPooling3d of negative activations",
    volume,
    conv3x1,
    sigmoid,
    minusOne,
    () => tf.layers.maxPooling3d({ poolSize: 2 }),
  ),
  one("averagePooling1d", seq, conv1d1, () => tf.layers.averagePooling1d({ poolSize: 2 })),
  one("averagePooling2d", image, conv1x1, () => tf.layers.averagePooling2d({ poolSize: 2 })),
  one(
    "averagePooling2d with strides 1 and 'same' padding",
    [5, 5, 2],
    conv1x1,
    () => tf.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: "same" }),
  ),
  one("averagePooling3d", volume, conv3x1, () => tf.layers.averagePooling3d({ poolSize: 2 })),
  one("globalMaxPooling1d", seq, conv1d1, () => tf.layers.globalMaxPooling1d({})),
  one("globalMaxPooling2d", image, conv1x1, () => tf.layers.globalMaxPooling2d({})),
  one(
    "globalMaxPooling1d of negative activations",
    seq,
    conv1d1,
    sigmoid,
    minusOne,
    () => tf.layers.globalMaxPooling1d({}),
  ),
  one(
    "globalMaxPooling2d of negative activations",
    image,
    conv1x1,
    sigmoid,
    minusOne,
    () => tf.layers.globalMaxPooling2d({}),
  ),
  one("globalAveragePooling1d", seq, conv1d1, () => tf.layers.globalAveragePooling1d({})),
  one("globalAveragePooling2d", image, conv1x1, () => tf.layers.globalAveragePooling2d({})),
  // Batches of 8 matter here: tfjs-backend-cpu 4.22's own ResizeNearestNeighborGrad is wrong for more than one image.
  one(
    "upSampling2d with nearest interpolation",
    [3, 3, 2],
    conv1x1,
    () => tf.layers.upSampling2d({ size: [2, 2], interpolation: "nearest" }),
    conv1x1,
  ),
  one(
    "upSampling2d with bilinear interpolation",
    [3, 3, 2],
    conv1x1,
    () => tf.layers.upSampling2d({ size: [2, 2], interpolation: "bilinear" }),
    conv1x1,
  ),
  // tfjs-backend-cpu 4.22's ResizeBilinearGrad returns [batch, width, height, channels]: a non-square image failed there.
  one(
    "upSampling2d with bilinear interpolation on a non-square image",
    [3, 2, 2],
    conv1x1,
    () => tf.layers.upSampling2d({ size: [2, 3], interpolation: "bilinear" }),
    conv1x1,
  ),
  {
    ...one("embedding", [5], () => tf.layers.embedding({ inputDim: 10, outputDim: 3 }), () => tf.layers.flatten()),
    ints: 10,
  },
  one("simpleRNN", seq, () => tf.layers.simpleRNN({ units: 4 })),
  one("simpleRNN with returnSequences", seq, () => tf.layers.simpleRNN({ units: 4, returnSequences: true })),
  one("gru", seq, () => tf.layers.gru({ units: 4 })),
  one("gru with returnSequences", seq, () => tf.layers.gru({ units: 4, returnSequences: true })),
  one("lstm", seq, () => tf.layers.lstm({ units: 4 })),
  one("lstm with returnSequences", seq, () => tf.layers.lstm({ units: 4, returnSequences: true })),
  one("bidirectional(lstm)", seq, () => tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3 }) })),
  one("rnn of stacked simpleRNN and lstm cells", seq, () =>
    tf.layers.rnn({
      cell: tf.layers.stackedRNNCells({
        cells: [tf.layers.simpleRNNCell({ units: 3 }), tf.layers.lstmCell({ units: 3 })],
      }),
    })),
  one("convLstm2d", [3, 4, 4, 2], () => tf.layers.convLstm2d({ filters: 2, kernelSize: 3, padding: "same" })),
  one("timeDistributed(dense)", seq, () => tf.layers.timeDistributed({ layer: dense(4) })),
  one("batchNormalization", [6], () => dense(4), () => tf.layers.batchNormalization({})),
  one("batchNormalization on conv2d channels", image, conv1x1, () => tf.layers.batchNormalization({ axis: -1 })),
  one("layerNormalization", [6], () => dense(4), () => tf.layers.layerNormalization({})),
  one("reLU", [6], () => dense(), () => tf.layers.reLU({})),
  one("leakyReLU", [6], () => dense(), () => tf.layers.leakyReLU({ alpha: 0.2 })),
  one("prelu", [6], () => dense(), () => tf.layers.prelu({})),
  one("elu", [6], () => dense(), () => tf.layers.elu({})),
  // tfjs 4.22 has no gradient for Greater; fitstream registers comparisons' zero gradients.
  one("thresholdedReLU", [6], () => dense(), () => tf.layers.thresholdedReLU({ theta: 0.1 })),
  one("prelu with shared axes", image, conv1x1, () => tf.layers.prelu({ sharedAxes: [1] })),
  one("prelu with alpha per row", image, conv1x1, () => tf.layers.prelu({ sharedAxes: [2, 3] })),
  one("softmax", [6], () => dense(), () => tf.layers.softmax({})),
  ...([
    "elu",
    "hardSigmoid",
    "linear",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "softmax",
    "softplus",
    "softsign",
    "tanh",
    "swish",
    "mish",
    "gelu",
    "gelu_new",
  ] as const).map((activation) =>
    one(`activation '${activation}'`, [6], () => dense(), () => tf.layers.activation({ activation }))
  ),
  // Random layers. dropout and spatialDropout1d take a seed (tf.dropout draws its mask from it). gaussianNoise,
  // gaussianDropout and alphaDropout take none: tfjs seeds their draws from Math.random, which every run below
  // replaces with a seeded generator, so both backends draw the same numbers and are compared like the others.
  one("dropout", [6], () => dense(), () => tf.layers.dropout({ rate: 0.3, seed: 11 })),
  one("spatialDropout1d", seq, conv1d1, () => tf.layers.spatialDropout1d({ rate: 0.3, seed: 11 })),
  one("gaussianNoise", [6], () => dense(), () => tf.layers.gaussianNoise({ stddev: 0.2 })),
  one("gaussianDropout", [6], () => dense(), () => tf.layers.gaussianDropout({ rate: 0.3 })),
  one("alphaDropout", [6], () => dense(), () => tf.layers.alphaDropout({ rate: 0.3 })),
  // Weightless layers between trainable ones: their gradients reach the layer before them.
  one("zeroPadding2d", image, conv1x1, () => tf.layers.zeroPadding2d({ padding: [[1, 2], [2, 1]] }), conv1x1),
  one("cropping2D", image, conv1x1, () => tf.layers.cropping2D({ cropping: [[1, 0], [0, 2]] }), conv1x1),
  one("flatten", image, conv1x1, () => tf.layers.flatten(), () => dense(3)),
  one("reshape", [6], () => dense(6), () => tf.layers.reshape({ targetShape: [3, 2] }), conv1d1),
  one("permute", seq, conv1d1, () => tf.layers.permute({ dims: [2, 1] }), conv1d1),
  one(
    "repeatVector",
    [6],
    () => dense(3),
    () => tf.layers.repeatVector({ n: 4 }),
    () => tf.layers.simpleRNN({ units: 3 }),
  ),
  one(
    "masking with no masked time step",
    seq,
    () => tf.layers.masking({ maskValue: 0 }),
    () => tf.layers.lstm({ units: 4 }),
  ),
  {
    ...one(
      "masking (inputs with masked time steps)",
      seq,
      () => tf.layers.masking({ maskValue: 0 }),
      () => tf.layers.lstm({ units: 4 }),
    ),
    zeroTail: true,
  },
  // resizing and centerCrop to a larger size are not in the table (see the top); their gradients
  // (ResizeBilinearGrad, ResizeNearestNeighborGrad) are upSampling2d's, above.
  {
    ...one("centerCrop cropping", image, conv1x1, () => tf.layers.centerCrop({ height: 4, width: 3 }), conv1x1),
    tfjsCannotTrain: /gradient function not found for CropAndResize/, // the crop is a CropAndResize
  },
  one("rescaling", [6], () => dense(), () => tf.layers.rescaling({ scale: 0.5, offset: 0.1 }), () => dense(3)),
  {
    // Rows as wide as numTokens: tfjs-layers 4.22's CategoryEncoding.computeOutputShape overwrites its input's
    // shape with the output's, so the model declares rows of numTokens ids, and model.fit (as epochStream) refuses
    // rows of any other width.
    ...one(
      "categoryEncoding",
      [6],
      () => tf.layers.categoryEncoding({ numTokens: 6, outputMode: "multiHot" }),
      () => dense(3),
    ),
    ints: 6,
  },
  merge("concatenate", () => tf.layers.concatenate()),
  merge("add", () => tf.layers.add()),
  merge("multiply", () => tf.layers.multiply()),
  merge("average", () => tf.layers.average()),
  merge("maximum", () => tf.layers.maximum()),
  merge("minimum", () => tf.layers.minimum()),
  merge("dot", () => tf.layers.dot({ axes: 1 })),
  merge("dot with normalize", () => tf.layers.dot({ axes: 1, normalize: true })),
];

/** The case's model: its body, a flatten where needed, and a dense(1) head. */
function buildModel(c: Case): tf.LayersModel {
  const inputs = c.inputs.map((shape) => tf.input({ shape, dtype: c.ints ? "int32" : "float32" }));
  let out = c.build(inputs);
  if (out.shape.length > 2) out = chain(out, tf.layers.flatten());
  out = chain(out, tf.layers.dense({ units: 1 }));
  return tf.model({ inputs, outputs: out });
}

/**
 * Sets every weight (trainable or not) from a seeded generator, whatever the layer's initializers: uniform in
 * ±1.5/√fan-in for kernels, small values for biases, and around 1 for scales and variances.
 */
function seedWeights(model: tf.LayersModel, seed: number): void {
  const rand = lcg(seed);
  const values = model.weights.map((w) => {
    const shape = w.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const kind = w.name.split("/").pop()!.replace(/_\d+$/, "");
    const fanIn = shape.length >= 2 ? size / shape[shape.length - 1] : 1;
    const u = () => rand() * 2 - 1;
    const value = kind === "gamma" || kind === "moving_variance"
      ? () => 1 + 0.3 * u()
      : kind === "alpha"
      ? () => 0.25 + 0.1 * u()
      : shape.length < 2
      ? () => 0.1 * u()
      : () => (1.5 / Math.sqrt(fanIn)) * u();
    return tf.tensor(Array.from({ length: size }, value), shape, w.dtype);
  });
  model.setWeights(values);
  tf.dispose(values);
}

/** The case's data: inputs and a [ROWS, 1] target, from a seeded generator. */
function makeData(c: Case): tf.Tensor[] {
  const rand = lcg(1000 + c.inputs.length);
  const xs = c.inputs.map((shape) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = Array.from({ length: ROWS * size }, () => c.ints ? Math.floor(rand() * c.ints) : rand() * 2 - 1);
    if (c.zeroTail) {
      // Rows zero their last k time steps (k = row mod 3): masked steps.
      const step = shape.slice(1).reduce((a, b) => a * b, 1);
      for (let r = 0; r < ROWS; r++) {
        for (let k = shape[0] - (r % 3); k < shape[0]; k++) {
          values.fill(0, r * size + k * step, r * size + (k + 1) * step);
        }
      }
    }
    return tf.tensor(values, [ROWS, ...shape], c.ints ? "int32" : "float32");
  });
  return [...xs, tf.tensor2d(Array.from({ length: ROWS }, () => rand() * 2 - 1), [ROWS, 1])];
}

/** `fn` with Math.random replaced by a seeded generator (tfjs seeds its unseeded random ops from it). */
async function withSeededMathRandom<T>(seed: number, fn: () => Promise<T>): Promise<T> {
  const original = Math.random;
  Math.random = lcg(seed);
  try {
    return await fn();
  } finally {
    Math.random = original;
  }
}

interface Run {
  losses: number[];
  initial: number[][];
  weights: number[][];
  /** Tensors left after the run and its disposal (0 when nothing leaks). */
  leaked: number;
}

/** `fn` on the named backend; the backend is restored afterwards. */
async function on<T>(name: "cpu" | "wasm", fn: () => Promise<T>): Promise<T> {
  const before = tf.getBackend();
  await useBackend(name);
  try {
    return await fn();
  } finally {
    await tf.setBackend(before);
  }
}

/**
 * Trains the case's model for EPOCHS epochs on the named backend: model, optimizer and data are created there, from
 * the same seeds, and freed afterwards.
 */
function train(c: Case, name: "cpu" | "wasm"): Promise<Run> {
  return on(name, async () => {
    const tensors = tf.memory().numTensors;
    const run = await withSeededMathRandom(SEED, async () => {
      const model = buildModel(c);
      const data = makeData(c);
      const optimizer = tf.train.sgd(LEARNING_RATE);
      try {
        seedWeights(model, SEED);
        const initial = model.getWeights().map((w) => Array.from(w.dataSync()));
        const events = await collect(
          epochStream({
            data,
            model,
            optimizer,
            loss: tf.losses.meanSquaredError,
            batchSize: BATCH,
            seed: SEED,
            engine: c.engine,
          }).pipeThrough(take(EPOCHS)),
        );
        const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
        return { losses: events.map((e) => e.train_loss), initial, weights };
      } finally {
        tf.dispose(data);
        model.dispose();
        optimizer.dispose();
      }
    });
    return { ...run, leaked: tf.memory().numTensors - tensors };
  });
}

/** The seeded model's predictions for the case's inputs on the named backend (no training). */
function predict(c: Case, name: "cpu" | "wasm"): Promise<number[]> {
  return on(name, () => {
    const model = buildModel(c);
    const data = makeData(c);
    try {
      seedWeights(model, SEED);
      const inputs = data.slice(0, -1);
      const out = tf.tidy(() => (model.predict(inputs.length === 1 ? inputs[0] : inputs) as tf.Tensor).dataSync());
      return Promise.resolve(Array.from(out));
    } finally {
      tf.dispose(data);
      model.dispose();
    }
  });
}

/** The largest |a - b| / max(1, |b|) over paired entries. */
function gap(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]) / Math.max(1, Math.abs(b[i]))), 0);
}

for (const c of CASES) {
  if (c.tfjsCannotTrain) {
    const error = c.tfjsCannotTrain;
    const name =
      `${c.name} fails to train on the default backend as on the cpu backend (tfjs has no gradient for it), ` +
      "and predicts as on the cpu backend";
    test(name, async () => {
      await assert.rejects(train(c, "cpu"), error);
      await assert.rejects(train(c, defaultBackend), error);
      const forward = gap(await predict(c, defaultBackend), await predict(c, "cpu"));
      assert.ok(forward <= TOLERANCE, `the forward passes differ by ${forward}`);
    });
    continue;
  }
  test(`${c.name} trains on the default backend as on the cpu backend`, async () => {
    const cpu = await train(c, "cpu");
    const other = await train(c, defaultBackend);
    assert.equal(other.leaked, 0, `${backend}: no tensor left after the run`);
    assert.equal(other.losses.length, EPOCHS);
    assert.ok(other.losses.every(Number.isFinite), `finite losses: ${other.losses}`);
    assert.ok(cpu.weights.some((w, i) => gap(w, cpu.initial[i]) > 0), "training moved the weights");
    assert.deepEqual(other.initial, cpu.initial, "both backends start from the same weights");
    const lossGap = gap(other.losses, cpu.losses);
    assert.ok(lossGap <= TOLERANCE, `train_loss ${other.losses} on ${backend}, ${cpu.losses} on cpu: gap ${lossGap}`);
    const gaps = other.weights.map((w, i) => gap(w, cpu.weights[i]));
    const worst = Math.max(...gaps);
    assert.ok(
      worst <= TOLERANCE,
      `final weights differ by ${worst} (per weight: ${gaps.map((g) => g.toPrecision(2))})`,
    );
  });
}

test("a model tfjs cannot differentiate fails its run on the default backend without leaving a tensor behind", async () => {
  const c = CASES.find((c) => c.tfjsCannotTrain)!;
  const tensors = tf.memory().numTensors;
  await assert.rejects(train(c, defaultBackend), c.tfjsCannotTrain!);
  assert.equal(tf.memory().numTensors, tensors, `${backend}: ${c.name}'s failed run left no tensor`);
});
