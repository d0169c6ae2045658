/**
 * A custom validation metric (tutorial §6.2): mean absolute error on the
 * held-out set, next to the built-in `validationLoss`, smoothed and printed.
 *
 *   deno run -A examples/custom_metric.ts [--epochs N]
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { parseArgs } from "node:util";
import { augment, collect, ema, epochStream, pipe, printKeys, take, tap, useBackend, validationLoss } from "../mod.ts";
import { housingModel, loadHousing, Y_SCALE } from "./housing_data.ts";

/** An augmenter adding `val_mae`: the mean absolute error in inference mode. */
function validationMae(x: tf.Tensor, y: tf.Tensor) {
  return <E extends { model: tf.LayersModel }>(event: E): { val_mae: number } => {
    const mae = tf.tidy(() => (event.model.apply(x, { training: false }) as tf.Tensor).sub(y).abs().mean());
    const value = mae.dataSync()[0];
    mae.dispose();
    return { val_mae: value };
  };
}

const { values } = parseArgs({ args: process.argv.slice(2), options: { epochs: { type: "string", default: "30" } } });
await useBackend();
const data = await loadHousing();
const loss = tf.losses.meanSquaredError;
const rows = await collect(pipe(
  epochStream({
    data: [data.xTrain, data.yTrain],
    model: housingModel(8),
    optimizer: tf.train.adam(1e-2),
    loss,
    batchSize: 512,
  }),
  augment(validationLoss({ data: [data.xVal, data.yVal], loss })),
  augment(validationMae(data.xVal, data.yVal)),
  ema("val_mae", { halfLife: 5 }),
  tap(printKeys("val_loss", "val_mae", "val_mae_ema"), { every: 5 }),
  take(Number(values.epochs)),
));
const last = rows.at(-1)!;
console.log(
  `after ${last.step} epochs the typical error is $${Math.round(last.val_mae * Y_SCALE).toLocaleString("en-US")}`,
);
