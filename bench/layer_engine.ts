/**
 * The layer engine (issue 28) against the tfjs path, in one process: per-epoch
 * ms of `epochStream` with `engine: "tfjs"` and with the default engine (the
 * layer engine), in interleaved rounds (the arms' order alternating), medians
 * and the ratio; for the two MLPs also the same Dense layers without their
 * dropout / batch-norm layers on the default engine (the Dense engine), the
 * figure the layer engine should come close to.
 *
 * - `dropout`, `batchnorm`: the models of `tfjs_models.ts` (batch 128) on
 *   4,096 random rows (1,024 with --quick).
 * - `embedding`: the IMDB classifier of `issue_models.ts` (batch 512) on its
 *   4,096 rows (1,024 with --quick).
 *
 *   deno run -A bench/layer_engine.ts [--quick] [--backend wasm|cpu] [--only=dropout,batchnorm,embedding]
 *   bun bench/layer_engine.ts [--quick] [--backend wasm|cpu] [--only=…]
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { epochStream, explainEngine, useBackend } from "../mod.ts";
import { benchArgs, jsonLine, median, runtime, table, timedReads } from "./common.ts";
import { loss as mlpLoss, makeModel } from "./tfjs_models.ts";
import { issueWorkload } from "./issue_models.ts";
import type { LossFunction } from "../src/engine/model.ts";

const { backend, quick, only } = benchArgs();
await useBackend(backend);
const rounds = quick ? 1 : 7, rows = quick ? 1024 : 4096;

/** The MLP's Dense layers alone (784 → units relu → units relu → 10), seeded as `makeModel` seeds them. */
function plainMlp(units: number): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  return tf.sequential({
    layers: [
      tf.layers.dense({ units, activation: "relu", inputShape: [784], kernelInitializer: init(1) }),
      tf.layers.dense({ units, activation: "relu", kernelInitializer: init(2) }),
      tf.layers.dense({ units: 10, kernelInitializer: init(3) }),
    ],
  });
}

interface Arm {
  name: "tfjs" | "default" | "plain";
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  reads: (n: number) => Promise<number[]>;
  times: number[];
}

const summary: (string | number)[][] = [[
  "model",
  "tfjs path ms",
  "default ms",
  "plain Dense ms",
  "tfjs / default",
  "default / plain",
]];
const results: Record<string, unknown>[] = [];
for (const name of ["dropout", "batchnorm", "embedding"].filter((m) => !only || only.includes(m))) {
  let x: tf.Tensor, y: tf.Tensor, loss: LossFunction, batchSize: number;
  const models: [Arm["name"], tf.LayersModel][] = [];
  if (name === "embedding") {
    const a = issueWorkload("embedding", quick), b = issueWorkload("embedding", quick);
    ({ x, y, loss, batchSize } = a);
    tf.dispose([b.x, b.y]);
    models.push(["tfjs", a.model], ["default", b.model]);
  } else {
    x = tf.randomNormal([rows, 784], 0, 1, "float32", 1);
    y = tf.oneHot(tf.randomUniform([rows], 0, 10, "int32", 2), 10).toFloat();
    loss = mlpLoss as LossFunction;
    batchSize = 128;
    const mlp = name as "dropout" | "batchnorm";
    models.push(["tfjs", makeModel(mlp)], ["default", makeModel(mlp)], [
      "plain",
      plainMlp(mlp === "dropout" ? 512 : 256),
    ]);
  }
  const arms: Arm[] = models.map(([arm, model]) => {
    const optimizer = tf.train.adam(1e-3);
    const options = {
      data: [x, y],
      model,
      optimizer,
      loss,
      batchSize,
      seed: 1,
      engine: arm === "tfjs" ? "tfjs" as const : "auto" as const,
    };
    return {
      name: arm,
      model,
      optimizer,
      reads: timedReads(epochStream(options) as ReadableStream<unknown>),
      times: [],
    };
  });
  const why = explainEngine({ data: [x, y], model: arms[1].model, optimizer: arms[1].optimizer, loss, batchSize });
  console.log(`${name}: ${why.engine} engine by default (${why.reason})`);
  for (const arm of arms) await arm.reads(1); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const arm of r % 2 ? [...arms].reverse() : arms) arm.times.push(...await arm.reads(1));
  }
  const ms = Object.fromEntries(arms.map((a) => [a.name, median(a.times)]));
  summary.push([
    name,
    ms.tfjs,
    ms.default,
    ms.plain ?? "",
    ms.tfjs / ms.default,
    ms.plain ? ms.default / ms.plain : "",
  ]);
  results.push({
    model: name,
    engine: why.engine,
    tfjs_ms: ms.tfjs,
    default_ms: ms.default,
    ...(ms.plain ? { plain_ms: ms.plain, default_over_plain: ms.default / ms.plain } : {}),
    tfjs_over_default: ms.tfjs / ms.default,
    rounds: Object.fromEntries(arms.map((a) => [a.name, a.times])),
  });
  for (const arm of arms) {
    arm.model.dispose();
    arm.optimizer.dispose();
  }
  tf.dispose([x, y]);
}
console.log(`\nms per epoch (${runtime}, ${tf.getBackend()}; medians of ${rounds} interleaved rounds)`);
table(summary);
jsonLine("layer_engine", { rows, results });
process.exit(0); // the streams' readers are left open
