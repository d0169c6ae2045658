/**
 * The adversarial faithfulness suite: runs a user could write, each trained
 * three ways from the same starting weights and batch order — `epochStream`
 * with the default engine, `epochStream({ engine: "tfjs" })`, and tfjs's own
 * `model.fit` — and compared epoch by epoch. Used by
 * `tests/faithfulness_test.ts` (asserts) and `bench/faithfulness.ts` (prints
 * the gaps).
 */
import * as tf from "@tensorflow/tfjs";
import {
  categoricalCrossentropy,
  type EngineChoice,
  epochStream,
  explainEngine,
  type LossFunction,
  setLearningRate,
  sparseCategoricalCrossentropy,
} from "../mod.ts";

const mse = tf.losses.meanSquaredError as LossFunction;

/** What one case builds, fresh for each of the three runs. */
export interface Setup {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  loss: LossFunction;
  x: tf.Tensor2D;
  y: tf.Tensor2D;
  batchSize: number;
  /** Runs after epoch `epoch` (1-based) and before the next one, on every path. */
  between?: (epoch: number) => void;
  /** For model.fit: recompile after `between` (trainable changes need it in tfjs-layers). */
  recompile?: boolean;
  /** Other tensors the case made, freed with the run. */
  tensors?: tf.Tensor[];
  /** For model.fit: tfjs-layers' own loss by name, instead of `loss` with its arguments swapped. */
  fitLoss?: string;
  /** For model.fit: labels it can take in place of `y` (freed with the run). */
  fitLabels?: tf.Tensor2D;
}

/** One adversarial case. */
export interface FaithCase {
  name: string;
  /** The category. */
  category: string;
  epochs: number;
  build(): Setup;
  /** The engine `explainEngine` must choose by default, and a pattern its reason must match. */
  engine: "host" | "tfjs";
  reason?: RegExp;
  /** Compare with model.fit too (false where tfjs-layers cannot express the run). */
  fit?: boolean;
}

/** What one run produced: the loss and every weight after each epoch. */
export interface Trace {
  losses: number[];
  weights: number[][][];
}

/** Seeded regression data: `rows` × `inputs` in [-1, 1), targets a smooth function of them. */
export function regressionData(rows: number, inputs: number, outputs = 1, seed = 7): [tf.Tensor2D, tf.Tensor2D] {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const x = Array.from({ length: rows * inputs }, rand);
  const y = Array.from({ length: rows * outputs }, (_, k) => {
    const r = Math.floor(k / outputs), o = k % outputs;
    let v = 0.2 * o;
    for (let i = 0; i < inputs; i++) v += Math.sin(x[r * inputs + i] * (i + o + 1));
    return v;
  });
  return [tf.tensor2d(x, [rows, inputs]), tf.tensor2d(y, [rows, outputs])];
}

/**
 * Seeded classification data: `classes` blobs in `inputs` dimensions (each
 * centred on its own corner of [-1, 1]^inputs, `spread` wide, times `scale`),
 * the class ids, and the labels as one-hot rows (float32) and as ids
 * (int32, [rows, 1]).
 */
export function classificationData(
  rows: number,
  inputs: number,
  classes: number,
  { seed = 5, spread = 0.8, scale = 1 } = {},
): { x: tf.Tensor2D; oneHot: tf.Tensor2D; ids: tf.Tensor2D; classIds: number[] } {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const classIds = Array.from({ length: rows }, (_, r) => r % classes);
  const x = classIds.flatMap((c) =>
    Array.from({ length: inputs }, (_, i) => scale * ((((c >> i) & 1) * 2 - 1) * (i < 3 ? 1 : 0.2) + spread * rand()))
  );
  return {
    x: tf.tensor2d(x, [rows, inputs]),
    oneHot: tf.tensor2d(classIds.flatMap((c) => Array.from({ length: classes }, (_, j) => +(j === c))), [
      rows,
      classes,
    ]),
    ids: tf.tensor2d(classIds, [rows, 1], "int32"),
    classIds,
  };
}

/**
 * A softmax classifier's case: `hidden` → `classes` softmax on the blobs of
 * {@link classificationData}, under fitstream's categoricalCrossentropy (one-hot
 * labels) or sparseCategoricalCrossentropy (int32 ids; model.fit gets them as
 * float32, since tfjs-layers 4.22's own sparse loss refuses int32 in tf.floor).
 */
function softmaxSetup(
  sparse: boolean,
  optimizer: tf.Optimizer,
  { rows = 48, inputs = 4, hidden = [8], classes = 3, scale = 1 } = {},
): Setup {
  const data = classificationData(rows, inputs, classes, { scale });
  const model = denseModel(inputs, [
    ...hidden.map((units) => ({ units, activation: "tanh" as const })),
    { units: classes, activation: "softmax" },
  ]);
  const base = { model, optimizer, x: data.x, batchSize: 8 };
  if (!sparse) {
    data.ids.dispose();
    return { ...base, loss: categoricalCrossentropy, y: data.oneHot, fitLoss: "categoricalCrossentropy" };
  }
  data.oneHot.dispose();
  const fitLabels = tf.tensor2d(data.classIds, [rows, 1], "float32");
  return {
    ...base,
    loss: sparseCategoricalCrossentropy,
    y: data.ids,
    fitLoss: "sparseCategoricalCrossentropy",
    fitLabels,
  };
}

interface DenseSpec {
  units: number;
  activation?: "relu" | "tanh" | "linear" | "sigmoid" | "softmax" | "softsign" | "swish" | "mish" | "gelu" | "gelu_new";
  kernelRegularizer?: () => ReturnType<typeof tf.regularizers.l2>;
  biasRegularizer?: () => ReturnType<typeof tf.regularizers.l2>;
  trainable?: boolean;
  kernel?: "glorot" | "zeros" | "oneToTwo";
}

/** A Sequential of Dense layers with seeded starting weights (the same on every call). */
export function denseModel(inputs: number, specs: DenseSpec[]): tf.Sequential {
  return tf.sequential({
    layers: specs.map((spec, i) =>
      tf.layers.dense({
        units: spec.units,
        activation: spec.activation ?? "linear",
        inputShape: i === 0 ? [inputs] : undefined,
        trainable: spec.trainable,
        kernelRegularizer: spec.kernelRegularizer?.(),
        biasRegularizer: spec.biasRegularizer?.(),
        kernelInitializer: spec.kernel === "zeros"
          ? "zeros"
          : spec.kernel === "oneToTwo"
          ? tf.initializers.randomUniform({ minval: 1, maxval: 2, seed: 5 + i })
          : tf.initializers.glorotUniform({ seed: 11 + i }),
        biasInitializer: spec.kernel === "zeros"
          ? "zeros"
          : spec.kernel === "oneToTwo"
          ? tf.initializers.randomUniform({ minval: 1, maxval: 2, seed: 25 + i })
          : tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 31 + i }),
      })
    ),
  });
}

const mlp = (extra: Partial<DenseSpec> = {}) =>
  denseModel(4, [{ units: 8, activation: "tanh", ...extra }, { units: 1, ...extra }]);

/** An SGD that clips every gradient to [-0.05, 0.05] before the update. */
class ClippingSGD extends tf.SGDOptimizer {
  override applyGradients(grads: Parameters<tf.Optimizer["applyGradients"]>[0]): void {
    const list = Array.isArray(grads) ? grads : Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));
    const clipped = list.map(({ name, tensor }) => ({ name, tensor: tf.clipByValue(tensor, -0.05, 0.05) }));
    super.applyGradients(clipped);
    tf.dispose(clipped.map((c) => c.tensor));
  }
}

/** An Adamax of the user's own (no change): a subclass, so the default path leaves it to tfjs. */
class OwnAdamax extends tf.AdamaxOptimizer {}

/** Replaces `optimizer.applyGradients` on the instance with one that first maps every gradient. */
function patchGradients(optimizer: tf.Optimizer, map: (g: tf.Tensor) => tf.Tensor): tf.Optimizer {
  const original = optimizer.applyGradients.bind(optimizer);
  optimizer.applyGradients = (grads: Parameters<tf.Optimizer["applyGradients"]>[0]) => {
    const list = Array.isArray(grads) ? grads : Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));
    const mapped = list.map(({ name, tensor }) => ({ name, tensor: map(tensor) }));
    original(mapped);
    tf.dispose(mapped.map((m) => m.tensor));
  };
  return optimizer;
}

/**
 * The activations added through the registry (src/kernels/activations.ts), each in a hidden layer and some at the
 * output, against model.fit: rows of one table, not repeated logic.
 */
function activationCases(): FaithCase[] {
  const rows: [DenseSpec["activation"], "hidden" | "output", () => tf.Optimizer][] = [
    ["softsign", "hidden", () => tf.train.sgd(0.2)],
    ["softsign", "output", () => tf.train.adam(0.02)],
    ["swish", "hidden", () => tf.train.adam(0.02)],
    ["swish", "output", () => tf.train.sgd(0.1)],
    ["mish", "hidden", () => tf.train.momentum(0.05, 0.9)],
    ["mish", "output", () => tf.train.adam(0.02)],
    ["gelu", "hidden", () => tf.train.adam(0.02)],
    ["gelu", "output", () => tf.train.sgd(0.1)],
    ["gelu_new", "hidden", () => tf.train.adam(0.02)],
    ["gelu_new", "output", () => tf.train.momentum(0.05, 0.9, true)],
  ];
  return rows.map(([activation, where, makeOptimizer]) => ({
    name: `${activation} in ${
      where === "hidden" ? "a hidden layer" : "the output layer"
    } (${makeOptimizer().getClassName()})`,
    category: "activations",
    epochs: 8,
    engine: "host",
    build() {
      const [x, y] = regressionData(40, 4);
      const model = where === "hidden"
        ? denseModel(4, [{ units: 8, activation }, { units: 6, activation }, { units: 1 }])
        : denseModel(4, [{ units: 8, activation: "tanh" }, { units: 1, activation }]);
      return { model, optimizer: makeOptimizer(), loss: mse, x, y, batchSize: 8 };
    },
  }));
}

// The four schedule cases below are rows of the case table (same shape, different data), not repeated logic.
/** A case that changes the optimizer between epochs (`change` runs after each epoch); the host engine keeps it. */
function scheduleCase(
  name: string,
  makeOptimizer: () => tf.Optimizer,
  change: (optimizer: tf.Optimizer, epoch: number) => unknown,
): FaithCase {
  return {
    name,
    category: "rate or momentum changed between epochs",
    epochs: 8,
    engine: "host",
    build() {
      const [x, y] = regressionData(40, 4);
      const optimizer = makeOptimizer();
      return {
        model: mlp(),
        optimizer,
        loss: mse,
        x,
        y,
        batchSize: 8,
        between: (epoch) => void change(optimizer, epoch),
      };
    },
  };
}

/** The adversarial cases (at least one for every finding of the engine issue). */
export const CASES: FaithCase[] = [
  {
    name: "weight decay written in the loss (mse + 0.01·ΣW²)",
    category: "loss reads the model",
    epochs: 10,
    engine: "tfjs",
    reason: /the loss depends on the model's weights/,
    build() {
      const model = mlp();
      const kernel = model.layers[0].trainableWeights[0].read() as tf.Variable;
      const [x, y] = regressionData(40, 4);
      const loss: LossFunction = (p, t) => tf.add(mse(p, t), tf.mul(0.01, tf.sum(tf.square(kernel))));
      return { model, optimizer: tf.train.adam(0.05), loss, x, y, batchSize: 8 };
    },
  },
  {
    name: "a loss that also runs model.apply on anchor points",
    category: "loss reads the model",
    epochs: 10,
    engine: "tfjs",
    reason: /the loss depends on the model's weights/,
    build() {
      const model = mlp();
      const anchors = tf.tensor2d([[0, 0, 0, 0], [1, 1, 1, 1]]);
      const [x, y] = regressionData(40, 4);
      const loss: LossFunction = (p, t) =>
        tf.add(mse(p, t), tf.mul(0.1, tf.mean(tf.square(model.apply(anchors) as tf.Tensor))));
      return { model, optimizer: tf.train.sgd(0.1), loss, x, y, batchSize: 8, tensors: [anchors] };
    },
  },
  {
    name: "a loss that reads the weights' values (model.getWeights)",
    category: "loss reads the model",
    epochs: 6,
    engine: "tfjs",
    reason: /the loss reads the model's weights/,
    build() {
      const model = mlp();
      const [x, y] = regressionData(40, 4);
      const loss: LossFunction = (p, t) => {
        const kernel = model.getWeights()[0].dataSync();
        return tf.mul(mse(p, t), 1 + 0.1 * Math.abs(kernel[0]));
      };
      return { model, optimizer: tf.train.sgd(0.1), loss, x, y, batchSize: 8 };
    },
  },
  {
    name: "an SGD subclass that clips gradients in applyGradients",
    category: "customised optimizer",
    epochs: 10,
    engine: "tfjs",
    reason: /subclass of SGD/,
    build() {
      const [x, y] = regressionData(40, 4);
      return { model: mlp(), optimizer: new ClippingSGD(0.5), loss: mse, x, y, batchSize: 8 };
    },
  },
  {
    name: "an SGD instance with a patched applyGradients (×0.1)",
    category: "customised optimizer",
    epochs: 10,
    engine: "tfjs",
    reason: /has its own applyGradients/,
    build() {
      const [x, y] = regressionData(40, 4);
      const optimizer = patchGradients(tf.train.sgd(0.5), (g) => tf.mul(g, 0.1));
      return { model: mlp(), optimizer, loss: mse, x, y, batchSize: 8 };
    },
  },
  {
    name: "an Adam instance with a patched applyGradients (clip)",
    category: "customised optimizer",
    epochs: 10,
    engine: "tfjs",
    reason: /has its own applyGradients/,
    build() {
      const [x, y] = regressionData(40, 4);
      const optimizer = patchGradients(tf.train.adam(0.05), (g) => tf.clipByValue(g, -0.01, 0.01));
      return { model: mlp(), optimizer, loss: mse, x, y, batchSize: 8 };
    },
  },
  scheduleCase(
    "SGD's learningRate property written between epochs (tfjs keeps its cached rate)",
    () => tf.train.sgd(0.1),
    (o, epoch) => epoch === 3 && void ((o as unknown as { learningRate: number }).learningRate = 0.9),
  ),
  scheduleCase(
    "Momentum's setMomentum between epochs (tfjs keeps its cached momentum)",
    () => tf.train.momentum(0.05, 0.5),
    (o, epoch) => epoch === 3 && (o as tf.MomentumOptimizer).setMomentum(0.99),
  ),
  scheduleCase(
    "Adam's learningRate property written between epochs",
    () => tf.train.adam(0.01),
    (o, epoch) => epoch === 3 && void ((o as unknown as { learningRate: number }).learningRate = 0.1),
  ),
  scheduleCase(
    "setLearningRate on Momentum between epochs (a warm-up)",
    () => tf.train.momentum(0.01, 0.9, true),
    (o, epoch) => setLearningRate(o, 0.01 * Math.min(epoch + 1, 4)),
  ),
  {
    name: "kernelRegularizer l2 on every layer (Adam)",
    category: "regularizers",
    epochs: 10,
    engine: "host",
    build() {
      const [x, y] = regressionData(40, 4);
      const model = mlp({ kernelRegularizer: () => tf.regularizers.l2({ l2: 0.05 }) });
      return { model, optimizer: tf.train.adam(0.05), loss: mse, x, y, batchSize: 8 };
    },
  },
  {
    name: "kernel l1 and bias l1l2 regularizers (SGD)",
    category: "regularizers",
    epochs: 10,
    engine: "host",
    build() {
      const [x, y] = regressionData(40, 4);
      const model = mlp({
        kernelRegularizer: () => tf.regularizers.l1({ l1: 0.02 }),
        biasRegularizer: () => tf.regularizers.l1l2({ l1: 0.01, l2: 0.1 }),
      });
      return { model, optimizer: tf.train.sgd(0.1), loss: mse, x, y, batchSize: 8 };
    },
  },
  {
    name: "a regularizer whose apply is patched",
    category: "regularizers",
    epochs: 6,
    engine: "tfjs",
    reason: /regularizer that has its own apply/,
    build() {
      const [x, y] = regressionData(40, 4);
      const regularizer = tf.regularizers.l2({ l2: 0.05 });
      regularizer.apply = (w: tf.Tensor) => tf.mul(0.2, tf.sum(tf.abs(w))) as tf.Scalar;
      const model = mlp({ kernelRegularizer: () => regularizer });
      return { model, optimizer: tf.train.sgd(0.1), loss: mse, x, y, batchSize: 8 };
    },
  },
  {
    name: "one Dense layer object used twice in a Sequential",
    category: "shared layer",
    epochs: 10,
    engine: "tfjs",
    reason: /used more than once/,
    build() {
      const [x, y] = regressionData(40, 4, 4);
      const shared = tf.layers.dense({
        units: 4,
        activation: "tanh",
        inputShape: [4],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
      });
      const model = tf.sequential({ layers: [shared, shared] });
      return { model, optimizer: tf.train.sgd(0.1), loss: mse, x, y, batchSize: 8 };
    },
  },
  {
    name: "a layer frozen at build, unfrozen after epoch 3 (SGD)",
    category: "freezing between reads",
    epochs: 8,
    engine: "host",
    build() {
      const [x, y] = regressionData(40, 4);
      const model = denseModel(4, [{ units: 8, activation: "tanh", trainable: false }, { units: 1 }]);
      const between = (epoch: number) => {
        if (epoch === 3) model.layers[0].trainable = true;
      };
      return { model, optimizer: tf.train.sgd(0.1), loss: mse, x, y, batchSize: 8, between, recompile: true };
    },
  },
  {
    name: "a layer frozen after epoch 3, unfrozen after epoch 6 (Adam keeps each variable's moments)",
    category: "freezing between reads",
    epochs: 9,
    engine: "host",
    fit: false, // tfjs's Adam indexes its moments by position: model.fit would hand one variable another's
    build() {
      const [x, y] = regressionData(40, 4);
      const model = denseModel(4, [{ units: 8, activation: "tanh" }, { units: 1 }]);
      const between = (epoch: number) => {
        if (epoch === 3) model.layers[0].trainable = false;
        if (epoch === 6) model.layers[0].trainable = true;
      };
      return { model, optimizer: tf.train.adam(0.05), loss: mse, x, y, batchSize: 8, between };
    },
  },
  {
    name: "absoluteDifference at exact ties (zero weights, zero labels)",
    category: "absoluteDifference ties",
    epochs: 4,
    engine: "host",
    build() {
      const [x, values] = regressionData(16, 4);
      values.dispose();
      const y = tf.tensor2d(Array.from({ length: 16 }, (_, i) => (i % 2 ? 0 : 1)), [16, 1]);
      const model = denseModel(4, [{ units: 1, kernel: "zeros" }]);
      return {
        model,
        optimizer: tf.train.sgd(0.1),
        loss: tf.losses.absoluteDifference as LossFunction,
        x,
        y,
        batchSize: 4,
      };
    },
  },
  {
    name: "Adam at lr 5e-8 on weights in [1, 2): every update is below half an ulp",
    category: "float32",
    epochs: 5,
    engine: "host",
    build() {
      const [x, y] = regressionData(32, 4);
      const model = denseModel(4, [{ units: 3, activation: "relu", kernel: "oneToTwo" }, {
        units: 1,
        kernel: "oneToTwo",
      }]);
      return { model, optimizer: tf.train.adam(5e-8), loss: mse, x, y, batchSize: 8 };
    },
  },
  ...activationCases(),
  ...[
    ["RMSProp", () => tf.train.rmsprop(0.01)],
    ["RMSProp with momentum, centered", () => tf.train.rmsprop(0.005, 0.8, 0.5, 1e-12, true)],
    ["Adagrad", () => tf.train.adagrad(0.1)],
    ["Adagrad from its own starting accumulator", () => tf.train.adagrad(0.1, 0.3)],
    ["Adadelta", () => tf.train.adadelta(0.1, 0.95, 1e-6)],
    ["Adamax with a decaying rate", () => tf.train.adamax(0.02, 0.9, 0.99, 1e-7, 0.05)],
  ].map(([name, makeOptimizer]): FaithCase => ({
    name: `${name} on the host engine (tanh → linear)`,
    category: "optimizer rules",
    epochs: 8,
    engine: "host",
    build() {
      const [x, y] = regressionData(40, 4);
      return { model: mlp(), optimizer: (makeOptimizer as () => tf.Optimizer)(), loss: mse, x, y, batchSize: 8 };
    },
  })),
  {
    name: "a wide swish MLP on the SIMD kernels (16→512 swish→1, Adam: pre-activations kept in the kernels' memory)",
    category: "SIMD kernels",
    epochs: 4,
    engine: "host",
    build() {
      const [x, y] = regressionData(256, 16);
      const model = denseModel(16, [{ units: 512, activation: "swish" }, { units: 1 }]);
      return { model, optimizer: tf.train.adam(0.003), loss: mse, x, y, batchSize: 64 };
    },
  },
  {
    name: "a wide MLP on the SIMD kernels (16→512 relu→64 relu→1, l2 on the wide layer, Adam, both cores)",
    category: "SIMD kernels",
    epochs: 6,
    engine: "host",
    build() {
      // 64 rows × 16 × 512 = 2^19 multiply-adds a step: the whole model goes to the kernels.
      const [x, y] = regressionData(256, 16);
      const model = denseModel(16, [
        { units: 512, activation: "relu", kernelRegularizer: () => tf.regularizers.l2({ l2: 1e-3 }) },
        { units: 64, activation: "relu" },
        { units: 1 },
      ]);
      return { model, optimizer: tf.train.adam(0.003), loss: mse, x, y, batchSize: 64 };
    },
  },
  {
    name: "softmax output under categoricalCrossentropy, one-hot labels (SGD)",
    category: "classification",
    epochs: 10,
    engine: "host",
    reason: /under categoricalCrossentropy/,
    build: () => softmaxSetup(false, tf.train.sgd(0.5)),
  },
  {
    name: "softmax output under sparseCategoricalCrossentropy, int32 class ids [rows, 1] (Momentum)",
    category: "classification",
    epochs: 10,
    engine: "host",
    reason: /under sparseCategoricalCrossentropy/,
    build: () => softmaxSetup(true, tf.train.momentum(0.2, 0.9)),
  },
  {
    name: "softmax classifier under categoricalCrossentropy with Adam, two hidden layers",
    category: "classification",
    epochs: 12,
    engine: "host",
    build: () => softmaxSetup(false, tf.train.adam(0.02), { hidden: [16, 8], classes: 4 }),
  },
  {
    name: "saturated logits: in 30 of 48 rows a probability is past 1 − ε or under ε, where the clip passes no " +
      "gradient (categorical, SGD)",
    category: "classification",
    epochs: 8,
    engine: "host",
    build: () => softmaxSetup(false, tf.train.sgd(0.05), { scale: 8, hidden: [] }),
  },
  {
    name: "saturated logits under sparseCategoricalCrossentropy (clipped twice), Adam",
    category: "classification",
    epochs: 8,
    engine: "host",
    build: () => softmaxSetup(true, tf.train.adam(0.05), { scale: 8, hidden: [] }),
  },
  {
    name: "a wide softmax classifier on the SIMD kernels (16→512 relu→10 softmax, Adam)",
    category: "classification",
    epochs: 4,
    engine: "host",
    reason: /SIMD kernels/,
    build() {
      // 64 rows × 16 × 512 = 2^19 multiply-adds a step: the whole model goes to the kernels, softmax in JS after.
      const setup = softmaxSetup(false, tf.train.adam(0.003), { rows: 256, inputs: 16, hidden: [], classes: 10 });
      setup.model.dispose();
      setup.model = denseModel(16, [{ units: 512, activation: "relu" }, { units: 10, activation: "softmax" }]);
      setup.batchSize = 64;
      return setup;
    },
  },
  {
    name: "softmax under a loss that does not differentiate through it (meanSquaredError)",
    category: "classification",
    epochs: 6,
    engine: "tfjs",
    reason: /softmax activation, which the host engine trains only under/,
    build() {
      const setup = softmaxSetup(false, tf.train.sgd(0.5));
      return { ...setup, loss: mse, fitLoss: undefined };
    },
  },
  {
    name: "softmax in a hidden layer",
    category: "classification",
    epochs: 6,
    engine: "tfjs",
    reason: /softmax activation below the last layer/,
    build() {
      const setup = softmaxSetup(false, tf.train.sgd(0.5));
      setup.model.dispose();
      setup.model = denseModel(4, [{ units: 8, activation: "softmax" }, { units: 3, activation: "softmax" }]);
      return setup;
    },
  },
  {
    name: "200 epochs of Adam",
    category: "float32",
    epochs: 200,
    engine: "host",
    fit: false, // the three-way comparison of the shorter cases covers model.fit; this one measures drift
    build() {
      const [x, y] = regressionData(24, 4);
      return { model: mlp(), optimizer: tf.train.adam(0.02), loss: mse, x, y, batchSize: 8 };
    },
  },
];

function snapshot(model: tf.LayersModel): number[][] {
  return model.getWeights().map((w) => Array.from(w.dataSync()));
}

function dispose(setup: Setup): void {
  tf.dispose([setup.x, setup.y, ...setup.tensors ?? [], ...setup.fitLabels ? [setup.fitLabels] : []]);
  setup.model.dispose();
  setup.optimizer.dispose();
  // tfjs 4.22's MomentumOptimizer.dispose forgets the learning-rate tensor it inherits from SGD.
  if (Object.getPrototypeOf(setup.optimizer) === tf.MomentumOptimizer.prototype) {
    (setup.optimizer as unknown as { c: tf.Tensor }).c.dispose();
  }
}

/** Trains `c` through `epochStream` on `engine`, epoch by epoch, without shuffling. */
export async function streamTrace(c: FaithCase, engine: EngineChoice): Promise<Trace> {
  const setup = c.build();
  const { model, optimizer, loss, x, y, batchSize, between } = setup;
  const reader = epochStream({ data: [x, y], model, optimizer, loss, batchSize, shuffle: false, engine }).getReader();
  const trace: Trace = { losses: [], weights: [] };
  try {
    for (let epoch = 1; epoch <= c.epochs; epoch++) {
      const { value } = await reader.read();
      trace.losses.push(value!.train_loss);
      trace.weights.push(snapshot(model));
      between?.(epoch);
    }
  } finally {
    await reader.cancel();
    dispose(setup);
  }
  return trace;
}

/** Trains `c` with tfjs's own `model.fit`, one epoch per call, batches in order. */
export async function fitTrace(c: FaithCase): Promise<Trace> {
  const setup = c.build();
  const { model, optimizer, loss, x, y, batchSize, between } = setup;
  const compile = () =>
    model.compile({ optimizer, loss: setup.fitLoss ?? ((labels, predictions) => loss(predictions, labels)) });
  compile();
  const trace: Trace = { losses: [], weights: [] };
  try {
    for (let epoch = 1; epoch <= c.epochs; epoch++) {
      const labels = setup.fitLabels ?? y;
      const history = await model.fit(x, labels, { batchSize, epochs: 1, shuffle: false, verbose: 0 });
      trace.losses.push(history.history.loss[0] as number);
      trace.weights.push(snapshot(model));
      between?.(epoch);
      if (setup.recompile) compile();
    }
  } finally {
    dispose(setup);
  }
  return trace;
}

/** The engine explainEngine picks for `c` by default, and why. */
export function explainCase(c: FaithCase): { engine: string; reason: string } {
  const setup = c.build();
  try {
    const { model, optimizer, loss, x, y, batchSize } = setup;
    return explainEngine({ data: [x, y], model, optimizer, loss, batchSize, shuffle: false });
  } finally {
    dispose(setup);
  }
}

/** The largest gap between two traces: in any weight (absolute, relative to max(1, |w|)) and in any loss. */
export function gap(a: Trace, b: Trace): { weights: number; loss: number } {
  let weights = 0, loss = 0;
  a.weights.forEach((epoch, e) =>
    epoch.forEach((w, i) =>
      w.forEach((v, k) => {
        const u = b.weights[e][i][k];
        weights = Math.max(weights, Math.abs(v - u) / Math.max(1, Math.abs(u)));
      })
    )
  );
  a.losses.forEach((v, e) => {
    const u = b.losses[e];
    loss = Math.max(loss, Math.abs(v - u) / Math.max(1, Math.abs(u)));
  });
  if (Number.isNaN(weights) || Number.isNaN(loss)) return { weights: Infinity, loss: Infinity };
  return { weights, loss };
}

// ---- Accumulation and clipping (issue 31): each case against a loop written by hand in tfjs. ----

/** The gradient options of `epochStream` a case sets. */
export interface GradientOptions {
  accumulate?: number;
  clipNorm?: number;
  clipValue?: number;
}

/** A run with accumulation or clipping, trained by epochStream on both engines and by {@link handTrace}. */
export interface GradientCase {
  name: string;
  epochs: number;
  gradients: GradientOptions;
  /** The engine explainEngine must choose by default. */
  engine: "host" | "tfjs";
  /** The L2 factor on every kernel, written out by hand in the reference loop (0: none). */
  l2: number;
  build(): Setup;
}

const l2Model = (l2: number) =>
  l2 > 0 ? mlp({ kernelRegularizer: () => tf.regularizers.l2({ l2 }) }) : denseModel(4, [
    { units: 8, activation: "tanh" },
    { units: 1 },
  ]);

/** The cases: every option alone and together, on the host engine and on the tfjs path. */
export const GRADIENT_CASES: GradientCase[] = [
  {
    name: "accumulate 3 over 10 batches (groups of 3, 3, 3, 1), Adam, l2 on the kernels",
    epochs: 5,
    gradients: { accumulate: 3 },
    engine: "host",
    l2: 0.01,
    build() {
      const [x, y] = regressionData(38, 4); // batches of 4: the tenth holds 2 rows
      return { model: l2Model(0.01), optimizer: tf.train.adam(0.05), loss: mse, x, y, batchSize: 4 };
    },
  },
  {
    name: "clipNorm 0.05 with Momentum at a rate that needs it",
    epochs: 6,
    gradients: { clipNorm: 0.05 },
    engine: "host",
    l2: 0,
    build() {
      const [x, y] = regressionData(40, 4);
      return { model: l2Model(0), optimizer: tf.train.momentum(0.5, 0.9), loss: mse, x, y, batchSize: 8 };
    },
  },
  {
    name: "clipValue 0.01 with Adam",
    epochs: 6,
    gradients: { clipValue: 0.01 },
    engine: "host",
    l2: 0,
    build() {
      const [x, y] = regressionData(40, 4);
      return { model: l2Model(0), optimizer: tf.train.adam(0.05), loss: mse, x, y, batchSize: 8 };
    },
  },
  {
    name: "accumulate 2, clipNorm 0.1 and clipValue 0.03 together (SGD, a custom loss through tfjs)",
    epochs: 6,
    gradients: { accumulate: 2, clipNorm: 0.1, clipValue: 0.03 },
    engine: "host",
    l2: 0,
    build() {
      const [x, y] = regressionData(40, 4);
      const loss: LossFunction = (p, t) => tf.mean(tf.pow(tf.abs(tf.sub(p, t)), 1.5));
      return { model: l2Model(0), optimizer: tf.train.sgd(0.5), loss, x, y, batchSize: 6 };
    },
  },
  {
    name: "accumulate 2 and clipNorm 0.2 on the tfjs path (a subclass of Adamax)",
    epochs: 6,
    gradients: { accumulate: 2, clipNorm: 0.2 },
    engine: "tfjs",
    l2: 0.01,
    build() {
      const [x, y] = regressionData(40, 4);
      return { model: l2Model(0.01), optimizer: new OwnAdamax(0.02, 0.9, 0.999), loss: mse, x, y, batchSize: 8 };
    },
  },
];

/** Trains `c` through `epochStream` on `engine`, epoch by epoch, without shuffling. */
export async function gradientStreamTrace(c: GradientCase, engine: EngineChoice): Promise<Trace> {
  const setup = c.build();
  const { model, optimizer, loss, x, y, batchSize } = setup;
  const options = { data: [x, y], model, optimizer, loss, batchSize, shuffle: false, engine, ...c.gradients };
  const reader = epochStream(options).getReader();
  const trace: Trace = { losses: [], weights: [] };
  try {
    for (let epoch = 1; epoch <= c.epochs; epoch++) {
      const { value } = await reader.read();
      trace.losses.push(value!.train_loss);
      trace.weights.push(snapshot(model));
    }
  } finally {
    await reader.cancel();
    dispose(setup);
  }
  return trace;
}

/** The engine explainEngine picks for `c`, and why. */
export function explainGradientCase(c: GradientCase): { engine: string; reason: string } {
  const setup = c.build();
  try {
    const { model, optimizer, loss, x, y, batchSize } = setup;
    return explainEngine({ data: [x, y], model, optimizer, loss, batchSize, shuffle: false, ...c.gradients });
  } finally {
    dispose(setup);
  }
}

/**
 * Trains `c` with a loop written here from the definitions, not with
 * fitstream's code: per batch the loss (plus l2·ΣW² per kernel) and its
 * gradients, summed weighted by rows over `accumulate` batches and divided
 * by their rows; then the global norm scaled to `clipNorm` (factor
 * min(1, c / (norm + 1e-6)), as clip_grad_norm_), then every value clamped;
 * then one applyGradients.
 */
export function handTrace(c: GradientCase): Trace {
  const setup = c.build();
  const { model, optimizer, loss, x, y, batchSize } = setup;
  const { accumulate = 1, clipNorm, clipValue } = c.gradients;
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const kernels = model.layers.map((l) => l.getWeights()[0] && (l.trainableWeights[0].read() as tf.Variable));
  const rows = x.shape[0];
  const trace: Trace = { losses: [], weights: [] };
  try {
    for (let epoch = 1; epoch <= c.epochs; epoch++) {
      let lossSum = 0;
      const starts = Array.from({ length: Math.ceil(rows / batchSize) }, (_, i) => i * batchSize);
      for (let g = 0; g < starts.length; g += accumulate) {
        const group = starts.slice(g, g + accumulate);
        let sums: tf.Tensor[] = variables.map((v) => tf.zerosLike(v));
        let groupRows = 0;
        for (const start of group) {
          const n = Math.min(batchSize, rows - start);
          tf.tidy(() => {
            const xb = x.slice([start, 0], [n, -1]), yb = y.slice([start, 0], [n, -1]);
            const { value, grads } = tf.variableGrads(() => {
              let l = loss(model.apply(xb, { training: true }) as tf.Tensor, yb) as tf.Scalar;
              if (c.l2 > 0) { for (const k of kernels) l = tf.add(l, tf.mul(c.l2, tf.sum(tf.square(k)))) as tf.Scalar; }
              return l;
            }, variables);
            lossSum += value.dataSync()[0] * n;
            const next = variables.map((v, i) => tf.add(sums[i], tf.mul(grads[v.name], n)));
            tf.dispose(sums);
            sums = next.map((t) => tf.keep(t));
          });
          groupRows += n;
        }
        tf.tidy(() => {
          let grads = sums.map((s) => tf.div(s, groupRows));
          if (clipNorm !== undefined) {
            const norm = Math.sqrt(grads.reduce((acc, g) => acc + tf.sum(tf.square(g)).dataSync()[0], 0));
            const factor = Math.min(1, clipNorm / (norm + 1e-6));
            grads = grads.map((g) => tf.mul(g, factor));
          }
          if (clipValue !== undefined) grads = grads.map((g) => tf.clipByValue(g, -clipValue, clipValue));
          optimizer.applyGradients(variables.map((v, i) => ({ name: v.name, tensor: grads[i] })));
        });
        tf.dispose(sums);
      }
      trace.losses.push(lossSum / rows);
      trace.weights.push(snapshot(model));
    }
  } finally {
    dispose(setup);
  }
  return trace;
}
