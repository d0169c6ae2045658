/**
 * Softmax classifiers under fitstream's `categoricalCrossentropy`, Adam
 * 1e-3, 6,000 random rows — 784→256 relu→10 at batch 128 (compute-bound) and
 * 16→32 relu→3 at batch 32 (overhead-bound) — on the host engine (the default path, now that it takes a softmax output layer)
 * against the tfjs path (`engine: "tfjs"`, where a softmax layer went
 * before), with the logits + `softmaxCrossEntropy` model on the host for
 * reference. The arms read one epoch each in turn, in one process, so the
 * machine's drift hits them alike; per-epoch medians.
 *
 *   deno run -A bench/classifier.ts [--quick]      bun bench/classifier.ts [--quick]
 */
import * as tf from "@tensorflow/tfjs";
import {
  categoricalCrossentropy,
  type EngineChoice,
  epochStream,
  explainEngine,
  type LossFunction,
  softmaxCrossEntropy,
  useBackend,
} from "../mod.ts";
import { benchArgs, jsonLine, median, runtime, table, timedReads } from "./common.ts";

const { backend, quick } = benchArgs();
await useBackend(backend);
const rows = quick ? 1536 : 6000, rounds = quick ? 2 : 7;

/** A model shape: inputs → hidden relu → classes, trained at `batch` rows a step. */
interface Shape {
  name: string;
  inputs: number;
  hidden: number;
  classes: number;
  batch: number;
}

const SHAPES: Shape[] = [
  { name: "784→256→10, batch 128", inputs: 784, hidden: 256, classes: 10, batch: 128 },
  { name: "16→32→3, batch 32", inputs: 16, hidden: 32, classes: 3, batch: 32 },
];

interface Arm {
  name: string;
  engine: string;
  read: (reads: number) => Promise<number[]>;
  times: number[];
}

function arm(
  shape: Shape,
  data: tf.Tensor[],
  name: string,
  activation: "softmax" | "linear",
  loss: LossFunction,
  engine: EngineChoice,
): Arm {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        units: shape.hidden,
        activation: "relu",
        inputShape: [shape.inputs],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
      }),
      tf.layers.dense({
        units: shape.classes,
        activation,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
      }),
    ],
  });
  const options = { data, model, optimizer: tf.train.adam(1e-3), loss, batchSize: shape.batch, seed: 5, engine };
  return { name, engine: explainEngine(options).engine, read: timedReads(epochStream(options)), times: [] };
}

const results: Record<string, Record<string, number>> = {};
const lines: (string | number)[][] = [["model", "arm", "engine", "ms/epoch (median)", "min", "max"]];
for (const shape of SHAPES) {
  const x = tf.randomNormal([rows, shape.inputs], 0, 1, "float32", 1);
  const y = tf.tidy(() => tf.oneHot(tf.randomUniform([rows], 0, shape.classes, "int32", 2), shape.classes).toFloat());
  const arms = [
    arm(shape, [x, y], "softmax + categoricalCrossentropy, default", "softmax", categoricalCrossentropy, "auto"),
    arm(shape, [x, y], 'softmax + categoricalCrossentropy, engine: "tfjs"', "softmax", categoricalCrossentropy, "tfjs"),
    arm(shape, [x, y], "logits + softmaxCrossEntropy, default", "linear", softmaxCrossEntropy, "auto"),
  ];
  for (const a of arms) await a.read(1); // warm-up: JIT, kernels, first copies
  for (let r = 0; r < rounds; r++) for (const a of arms) a.times.push(...await a.read(1));
  const [host, tfjsPath, logits] = arms.map((a) => median(a.times));
  for (const a of arms) {
    lines.push([shape.name, a.name, a.engine, median(a.times), Math.min(...a.times), Math.max(...a.times)]);
  }
  results[shape.name] = { host_ms: host, tfjs_ms: tfjsPath, logits_host_ms: logits, tfjs_over_host: tfjsPath / host };
  tf.dispose([x, y]);
}
table(lines);
for (const [name, r] of Object.entries(results)) {
  console.log(`${runtime}, ${name}: the tfjs path takes ${r.tfjs_over_host.toFixed(1)}× the host engine's epoch`);
}
jsonLine("classifier", { rows, rounds, results });
