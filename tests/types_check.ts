// Compile-time checks of how event keys flow through the types. `deno check`
// runs on this file in CI: each `@ts-expect-error` must be an error, and every
// other line must type-check.
import { augment, collect, earlyStop, ema, pipe, take, tap } from "../mod.ts";

type Base = { step: number; train_loss: number; model: { name: string } };
declare const source: ReadableStream<Base>;

const withVal = pipe(source, augment(() => ({ val_loss: 0.5 })));
const a: ReadableStream<{ step: number; val_loss: number }> = withVal;

const smoothed = pipe(
  source,
  augment((e) => ({ val_loss: e.train_loss * 2, lr: 0.1 })),
  ema("val_loss", { halfLife: 10 }),
  take(5),
  earlyStop({ key: "val_loss_ema", patience: 3 }),
  tap((e) => e.val_loss_ema.toFixed(2)),
);
const b: ReadableStream<{ val_loss_ema: number; lr: number; model: { name: string } }> = smoothed;

const chained = source
  .pipeThrough(augment(() => ({ val_loss: 1 })))
  .pipeThrough(ema("val_loss", { decay: 0.9, outKey: "smooth" }));
const c: ReadableStream<{ smooth: number; val_loss: number }> = chained;

// A function with an annotated parameter keeps the upstream keys.
const norm = (event: { model: { name: string } }) => ({ param_l2: event.model.name.length });
const show = (event: object) => void event;
const kept = pipe(source, augment(norm), tap(show), augment((e) => ({ both: e.param_l2 + e.train_loss })));
const d: ReadableStream<{ both: number; step: number; param_l2: number }> = kept;
// Standalone, the event type comes from the annotation.
const standalone = augment((e: { a: number }) => ({ b: e.a }));
const s2: ReadableStream<{ a: number; b: number }> = standalone.readable;

// @ts-expect-error: a typo in the key passed to ema is a compile error
pipe(source, ema("trian_loss", { decay: 0.5 }));
// @ts-expect-error: a typo in the key passed to earlyStop is a compile error
pipe(source, earlyStop({ key: "val_los", patience: 2 }));
// @ts-expect-error: lr does not exist before augment adds it
pipe(source, tap((e) => e.lr.toFixed(2)));

export async function rows(): Promise<number> {
  const r = await collect(smoothed);
  // @ts-expect-error: collect drops model
  r[0].model;
  return r[0].val_loss_ema + Number(a.locked) + Number(b.locked) + Number(c.locked) + Number(d.locked) +
    Number(s2.locked);
}

// The tutorial's pipeline on a real tfjs source keeps every key, explicit key names included.
import * as tf from "@tensorflow/tfjs";
import { epochStream, validationLoss } from "../mod.ts";
declare const xt: tf.Tensor2D;
const tutorial = pipe(
  epochStream({ data: [xt, xt], model: tf.sequential(), optimizer: tf.train.adam(), loss: tf.losses.meanSquaredError }),
  augment(validationLoss({ data: [xt, xt], loss: tf.losses.meanSquaredError, key: "val_loss" })),
  ema("val_loss", { halfLife: 10 }),
  take(500),
  earlyStop({ key: "val_loss", patience: 10, mode: "min", minDelta: 1e-4 }),
);
export const tutorialTyped: ReadableStream<
  {
    step: number;
    train_loss: number;
    train_time_sec: number;
    val_loss: number;
    val_loss_ema: number;
    model: tf.Sequential;
  }
> = tutorial;

// A replayed log (events typed by an index signature) takes any key.
import { csvDataset, fromJsonl } from "../mod.ts";
export const replayed = pipe(fromJsonl("run.jsonl"), ema("loss", { decay: 0.5 }), earlyStop({ key: "loss_ema" }));
// @ts-expect-error: a key that holds a string is no key for ema
pipe(source, augment(() => ({ note: "x" })), ema("note", { decay: 0.5 }));
// @ts-expect-error: a misspelt option is a compile error too (and a TypeError at run time)
earlyStop({ key: "val_loss", min_delta: 0.1 });
// earlyStop's patience is optional (10), as reduceLrOnPlateau's is.
pipe(source, earlyStop({ key: "train_loss" }));

// csvDataset's tf.data methods type-check, and the datasets they make train.
const halved = csvDataset("data.csv", { label: "y" }).map((b) => ({ xs: b.xs.div(2), ys: b.ys! }));
export const fromCsv = epochStream({
  data: halved.take(10),
  model: tf.sequential(),
  optimizer: tf.train.adam(),
  loss: tf.losses.meanSquaredError,
});
