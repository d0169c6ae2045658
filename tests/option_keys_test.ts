// Every public function that takes an options object refuses a key it does not
// know, naming the function, the key and the nearest known key. One row per
// function; a test below fails when a public function is in neither the table
// nor the list of those that take no options object.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import * as fitstream from "../mod.ts";
import {
  checkpoint,
  collect,
  collectJsonl,
  csvDataset,
  dashboard,
  earlyStop,
  ema,
  emaWeights,
  epochStream,
  explainEngine,
  exponentialDecay,
  fromJsonl,
  httpSink,
  iterBatches,
  jsonlSink,
  loadCsv,
  lrFinder,
  oneCycle,
  piecewise,
  plotSvg,
  printKeys,
  progress,
  reduceLrOnPlateau,
  serveRuns,
  stage,
  stepDecay,
  stepStream,
  tap,
  timeLimit,
  toSvg,
  useBackend,
  validationLoss,
  validationMetrics,
  warmupCosine,
} from "../mod.ts";
import { linearModel } from "./tf_helpers.ts";

const x = tf.tensor2d([[0], [1], [2], [3]]);
const y = x.mul(2);
const mse = tf.losses.meanSquaredError;
const run = () => ({ data: [x, y], model: linearModel(), optimizer: tf.train.sgd(0.1), loss: mse });
const events = () => ReadableStream.from([{ step: 1, loss: 1 }]);
const bytes = () => new Blob(['{"step":1}\n']).stream();
const nowhere = () => new WritableStream<Uint8Array>();

/** [function, a call with `extra` merged into valid options, a misspelt key, the key it should suggest]. */
type Row = [string, (extra: Record<string, unknown>) => unknown, string, string];

// Options are passed as `never`: the misspelt keys are type errors too, and the point here is the run-time check.
const ROWS: Row[] = [
  ["epochStream", (o) => epochStream({ ...run(), ...o } as never), "batch_size", "batchSize"],
  ["explainEngine", (o) => explainEngine({ ...run(), ...o } as never), "stop_on_nan", "stopOnNaN"],
  ["stepStream", (o) => stepStream({ ...run(), ...o } as never), "clip_norm", "clipNorm"],
  ["lrFinder", (o) => lrFinder({ ...run(), ...o } as never), "max_lr", "maxLr"],
  ["emaWeights", (o) => emaWeights({ decay: 0.9, ...o } as never), "at_end", "atEnd"],
  ["timeLimit", (o) => timeLimit(10, o as never), "nwo", "now"],
  ["warmupCosine", (o) => warmupCosine({ peak: 1, warmup: 1, total: 2, ...o } as never), "flor", "floor"],
  ["oneCycle", (o) => oneCycle({ peak: 1, total: 10, ...o } as never), "pct_start", "pctStart"],
  ["stepDecay", (o) => stepDecay({ initial: 1, factor: 0.5, every: 1, ...o } as never), "evry", "every"],
  ["exponentialDecay", (o) => exponentialDecay({ initial: 1, decay: 0.5, ...o } as never), "decy", "decay"],
  ["piecewise", (o) => piecewise({ boundaries: [], values: [1], ...o } as never), "boundary", "boundaries"],
  ["validationLoss", (o) => validationLoss({ data: [x, y], loss: mse, ...o } as never), "batch_size", "batchSize"],
  [
    "validationMetrics",
    (o) => validationMetrics({ data: [x, y], metrics: { mae: "mae" }, ...o } as never),
    "metric",
    "metrics",
  ],
  ["iterBatches", (o) => iterBatches([x], o as never), "batchsize", "batchSize"],
  ["csvDataset", (o) => csvDataset("no-such.csv", o as never), "shuffle_buffer", "shuffleBuffer"],
  ["loadCsv", (o) => loadCsv(bytes(), o as never), "colums", "columns"],
  ["fromJsonl", (o) => fromJsonl(bytes(), o as never), "partial_last_line", "partialLastLine"],
  ["jsonlSink", (o) => jsonlSink(nowhere(), o as never), "exlude", "exclude"],
  ["collectJsonl", (o) => collectJsonl(events(), nowhere(), o as never), "apend", "append"],
  ["collect", (o) => collect(events(), o as never), "incude", "include"],
  [
    "httpSink",
    (o) => httpSink("http://127.0.0.1:9", { run: "r", token: "t", ...o } as never),
    "max_buffer",
    "maxBuffer",
  ],
  ["checkpoint", (o) => checkpoint({ dir: "never-created", ...o } as never), "keepLast", "keep"],
  ["earlyStop", (o) => earlyStop({ key: "loss", ...o } as never), "min_delta", "minDelta"],
  ["ema", (o) => ema("loss", { decay: 0.5, ...o } as never), "bias_correction", "biasCorrection"],
  ["tap", (o) => tap(() => {}, o as never), "evry", "every"],
  ["stage", (o) => stage((e) => e, o as never), "stop_when", "stopWhen"],
  ["printKeys", (o) => printKeys("loss", o as never), "precison", "precision"],
  ["progress", (o) => progress(o as never), "totl", "total"],
  ["dashboard", (o) => dashboard(o as never), "max_clients", "maxClients"],
  ["toSvg", (o) => toSvg([], o as never), "log_y", "logY"],
  ["plotSvg", (o) => plotSvg(nowhere(), o as never), "widht", "width"],
  ["reduceLrOnPlateau", (o) => reduceLrOnPlateau({ key: "loss", ...o } as never), "min_lr", "minLr"],
  ["useBackend", (o) => useBackend("cpu", o as never), "kernel", "kernels"],
  ["serveRuns", (o) => serveRuns(o as never), "poll_ms", "pollMs"],
];

/** Public functions that take no options object (a new one must be added to a list: here or the table). */
const NO_OPTIONS = [
  "EventStream",
  "Stage",
  "augment",
  "categoricalCrossentropy",
  "checkpointModel",
  "getLearningRate",
  "loadCheckpoint",
  "lrSchedule",
  "pipe",
  "setLearningRate",
  "sigmoidCrossEntropy",
  "softmaxCrossEntropy",
  "sparseCategoricalCrossentropy",
  "take",
  "terminateOnNaN",
  "tick",
  "untilAborted",
  "untilStep",
];

/** Runs `call` and returns what it threw or rejected with. */
async function failure(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  assert.fail("it did not throw");
}

for (const [name, call, typo, meant] of ROWS) {
  test(`${name} refuses the misspelt option "${typo}" and suggests "${meant}"`, async () => {
    const error = await failure(() => call({ [typo]: 1 }));
    assert.ok(error instanceof TypeError, `a TypeError, got ${error}`);
    assert.equal(error.message, `${name}: options has no key "${typo}"; did you mean "${meant}"?`);
  });
}

test("every public function is in the table of options-taking functions or takes no options object", () => {
  const listed = new Set([...ROWS.map(([name]) => name), ...NO_OPTIONS]);
  const functions = Object.entries(fitstream).filter(([, value]) => typeof value === "function").map(([k]) => k);
  assert.deepEqual(functions.filter((name) => !listed.has(name)), [], "add a row to ROWS (or the name to NO_OPTIONS)");
});

test("the suggestions the issue asks for", async () => {
  const message = async (call: () => unknown) => ((await failure(call)) as Error).message;
  assert.equal(
    await message(() => earlyStop({ key: "loss", restore_best: true } as never)),
    'earlyStop: options has no key "restore_best"; did you mean "restoreBest"?',
  );
  assert.equal(
    await message(() => epochStream({ ...run(), epochs: 3 } as never)),
    'epochStream: options has no key "epochs": use take(n) to train n epochs (the stream itself never ends)',
  );
  assert.equal(
    await message(() => epochStream({ ...run(), gradient_accumulation_steps: 2 } as never)),
    'epochStream: options has no key "gradient_accumulation_steps": use accumulate: k (k batches\' mean gradient ' +
      "per optimizer step)",
  );
  // Several at once: each named, with its own advice.
  assert.equal(
    await message(() => epochStream({ ...run(), batch_size: 8, epochs: 3, max_grad_norm: 1 } as never)),
    'epochStream: options has no keys "batch_size" (did you mean "batchSize"?), "epochs" (use take(n) to train n ' +
      'epochs (the stream itself never ends)), "max_grad_norm" (use clipNorm: c (the global norm of the ' +
      "gradients, as clip_grad_norm_))",
  );
  // Nothing near: the known keys are listed.
  assert.equal(
    await message(() => tap(() => {}, { zzz: 1 } as never)),
    'tap: options has no key "zzz"; the options are every, start',
  );
});

test("explainEngine gives epochStream's advice for keys from model.fit", () => {
  assert.throws(() => explainEngine({ ...run(), validationData: [x, y] } as never), {
    name: "TypeError",
    message: /^explainEngine: options has no key "validationData": add a validation loss with augment\(validationLoss/,
  });
});

test("earlyStop defaults patience to 10, as reduceLrOnPlateau does", async () => {
  const losses = [1, ...Array.from({ length: 20 }, () => 2)];
  const rows = await collect(
    ReadableStream.from(losses.map((loss) => ({ loss }))).pipeThrough(earlyStop({ key: "loss" })),
  );
  assert.equal(rows.length, 11, "the first event, then 10 without improvement");
});
