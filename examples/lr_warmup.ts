/**
 * Learning-rate warm-up with `tick` (tutorial §7.2) and state through `extra` (§7.3):
 * a linear warm-up from 10% to 100% of the rate over the first 10 epochs.
 *
 *   deno run -A examples/lr_warmup.ts [--epochs N]
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  augment,
  epochStream,
  getLearningRate,
  pipe,
  printKeys,
  setLearningRate,
  take,
  tap,
  tick,
  useBackend,
} from "../mod.ts";
import { housingModel, loadHousing } from "./housing_data.ts";

/** A per-epoch linear warm-up of an optimizer's learning rate. */
class LinearWarmup {
  #epoch = 0;
  constructor(
    readonly optimizer: tf.Optimizer,
    readonly baseLr: number,
    readonly startFactor: number,
    readonly epochs: number,
  ) {
    this.#set();
  }
  /** The rate in use now. */
  get lr(): number {
    return getLearningRate(this.optimizer);
  }
  /** Moves to the next epoch's rate. */
  step(): void {
    this.#epoch = Math.min(this.#epoch + 1, this.epochs);
    this.#set();
  }
  #set(): void {
    const factor = this.startFactor + (1 - this.startFactor) * this.#epoch / this.epochs;
    setLearningRate(this.optimizer, this.baseLr * factor);
  }
}

const { values } = parseArgs({ args: process.argv.slice(2), options: { epochs: { type: "string", default: "15" } } });
await useBackend();
const data = await loadHousing();
const optimizer = tf.train.adam(1e-2);
const scheduler = new LinearWarmup(optimizer, 1e-2, 0.1, 10);

const events = pipe(
  epochStream({
    data: [data.xTrain, data.yTrain],
    model: housingModel(8),
    optimizer,
    loss: tf.losses.meanSquaredError,
    batchSize: 512,
    seed: 0,
    extra: { scheduler }, // every event carries the scheduler (§7.3)
  }),
  augment((e) => ({ lr: e.scheduler.lr })), // the rate this epoch trained with
  tap(printKeys("train_loss", "lr", { precision: 5 })),
  tick(() => scheduler.step()), // then the rate for the next epoch (§7.2)
  take(Number(values.epochs)),
);
for await (const _ of events) { /* printing happens in tap */ }
