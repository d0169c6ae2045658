/**
 * The "Zero → Hero" pipeline of the tutorial (section 8) on California housing:
 * standardised features, an 8→64→1 MLP, Adam 1e-2, batch 512, validation
 * loss, the parameter norm, an EMA of val_loss, a line every 10 epochs, a
 * 500-epoch cap and early stopping, all written to JSONL.
 *
 *   deno run -A examples/housing.ts [--data DIR|URL|remote] [--out FILE] [--epochs N] [--seed N] [--backend wasm|cpu]
 *                                   [--checkpoint DIR [--resume]]
 *
 * Ctrl-C (SIGINT), SIGTERM or SIGHUP finishes the epoch in flight, writes its
 * line, closes the log and exits with status 130; a second one exits at once.
 *   bun examples/housing.ts …
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import {
  augment,
  type BackendName,
  checkpoint,
  earlyStop,
  ema,
  epochStream,
  fromJsonl,
  jsonlSink,
  loadCheckpoint,
  pipe,
  plotSvg,
  printKeys,
  take,
  tap,
  untilAborted,
  useBackend,
  validationLoss,
} from "../mod.ts";
import { housingModel, housingSources, loadHousing, modelParamNorm } from "./housing_data.ts";

const HELP = `Train the tutorial's housing pipeline and write one JSONL line per epoch.

Usage: deno run -A examples/housing.ts [options]
       bun examples/housing.ts [options]

Options:
  --data <dir|url|remote>  where the two CSVs are (default: the copy in examples/data/;
                           "remote" uses the tutorial's download URLs)
  --out <file>             the JSONL log (default: runs/california_housing.jsonl)
  --epochs <n>             cap on epochs (default: 500)
  --seed <n>               seed of the weights and the shuffle (default: 0)
  --backend <wasm|cpu>     TensorFlow.js backend (default: FITSTREAM_BACKEND, else wasm)
  --checkpoint <dir>       save model + optimizer state after every epoch (newest 3, and best/)
  --resume                 continue from the newest checkpoint in --checkpoint, appending to --out
  -h, --help               show this help

Ctrl-C (or SIGTERM, SIGHUP) finishes the current epoch, closes the log and exits with
status 130; a second Ctrl-C exits at once. --resume refuses a damaged checkpoint (it
never starts over silently) and a log that lacks steps the checkpoint has (it never
leaves a gap), and a checkpoint folder of an earlier run needs --resume.`;

/**
 * Keeps the log's complete lines up to `step` (a crash may have left more, or
 * a partial line), after checking that they hold every step from 1 to `step`:
 * a log that lost lines the checkpoint `folder` has (a disk that lost its
 * last writes, a hand edit, another --out) would otherwise go on with a
 * silent gap. Refusing changes nothing, so the lost lines can still be put
 * back; training the missing epochs again instead would need the older
 * checkpoints the rotation has deleted.
 */
async function trimLog(path: string, step: number, folder: string): Promise<void> {
  const text = existsSync(path) ? await readFile(path, "utf8") : "";
  const kept = text.split("\n").filter((line) => {
    try {
      return (JSON.parse(line) as { step: number }).step <= step;
    } catch {
      return false;
    }
  });
  const steps = new Set(kept.map((line) => (JSON.parse(line) as { step: number }).step));
  let missing = 1;
  while (missing <= step && steps.has(missing)) missing++;
  if (missing <= step) {
    const has = steps.size === 0 ? "has no complete line" : `lacks step ${missing}`;
    throw new Error(
      `--resume: the log "${path}" ${has}, but the checkpoint "${folder}" is at step ${step}: going on would ` +
        `leave a gap in the log. Nothing was changed. Put the log's missing lines back, or resume from a ` +
        `checkpoint the log covers (move the step-* folders after step ${missing - 1} out of the checkpoint ` +
        `folder), or give --checkpoint a new folder to start over`,
    );
  }
  await writeFile(`${path}.tmp`, kept.map((l) => l + "\n").join(""));
  await rename(`${path}.tmp`, path);
}

function parseIntFlag(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: "string" },
      out: { type: "string", default: "runs/california_housing.jsonl" },
      epochs: { type: "string", default: "500" },
      seed: { type: "string", default: "0" },
      backend: { type: "string" },
      checkpoint: { type: "string" },
      resume: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const epochs = parseIntFlag("epochs", values.epochs!, 1);
  const seed = parseIntFlag("seed", values.seed!, 0);
  if (values.backend !== undefined && values.backend !== "wasm" && values.backend !== "cpu") {
    throw new Error(`--backend must be "wasm" or "cpu", got "${values.backend}"`);
  }
  if (values.resume && !values.checkpoint) throw new Error("--resume needs --checkpoint <dir>");
  const backend = await useBackend(values.backend as BackendName | undefined);
  const interrupt = new AbortController();
  const stopSignals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const name of stopSignals) {
    process.on(name, () => {
      if (!interrupt.signal.aborted) {
        interrupt.abort(new Error(`interrupted by ${name}`));
        return;
      }
      console.error(`housing: second ${name}: exiting now`);
      process.exit(130);
    });
  }

  const started = performance.now();
  const data = await loadHousing(housingSources(values.data, process.env), undefined, undefined, interrupt.signal)
    .catch((error) => {
      if (!interrupt.signal.aborted) throw error;
      console.log("interrupted while loading the data");
      process.exit(130);
    });
  const model = housingModel(data.xTrain.shape[1], seed);
  const optimizer = tf.train.adam(1e-2);
  const loss = tf.losses.meanSquaredError;

  const out = values.out!;
  await mkdir(dirname(out), { recursive: true });
  let resumeFrom: string | undefined;
  let start = 0;
  const dir = values.checkpoint;
  const saved = dir !== undefined && existsSync(dir) &&
    readdirSync(dir).some((name) => /^step-\d+$/.test(name) || name === "best");
  if (saved && !values.resume) {
    throw new Error(
      `--checkpoint ${dir} holds checkpoints of an earlier run: add --resume to continue it, or choose another folder`,
    );
  }
  if (saved && values.resume) {
    // A damaged newest checkpoint stops here with the reason: the log and the older checkpoints stay as they are.
    const checkpoint = await loadCheckpoint(dir);
    checkpoint.modelWeights.concat(checkpoint.optimizerWeights).forEach((w) => w.tensor.dispose());
    resumeFrom = checkpoint.path;
    start = checkpoint.step;
    await trimLog(out, start, checkpoint.path);
    console.log(`resuming after epoch ${start} from ${checkpoint.path}`);
  } else if (values.resume) {
    console.log(`no checkpoint in ${dir} yet: starting at epoch 1`);
  }
  const log = jsonlSink(out, { append: resumeFrom !== undefined }).getWriter();

  let best = { val_loss: Infinity, step: 0 };
  let last = start;
  const events = pipe(
    epochStream({
      data: [data.xTrain, data.yTrain],
      model,
      optimizer,
      loss,
      batchSize: 512,
      shuffle: true,
      seed,
      resumeFrom,
    }),
    untilAborted(interrupt.signal),
    augment(validationLoss({ data: [data.xVal, data.yVal], loss })),
    augment(modelParamNorm),
    ema("val_loss", { halfLife: 10 }),
    tap(printKeys("train_loss", "val_loss", "val_loss_ema", "param_l2"), { every: 10 }),
    take(Math.max(0, epochs - start)),
    earlyStop({ key: "val_loss", patience: 20, mode: "min", minDelta: 1e-4 }),
    tap((e) => {
      last = e.step;
      if (e.val_loss < best.val_loss) best = { val_loss: e.val_loss, step: e.step };
      return log.write(e); // the line is on disk before the checkpoint of its epoch
    }),
    values.checkpoint ? checkpoint({ dir: values.checkpoint, best: { key: "val_loss" } }) : tap(() => {}),
  );
  try {
    for await (const _ of events) { /* the stages do the work */ }
  } finally {
    await log.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const svg = out.replace(/\.jsonl$/, "") + ".svg";
  await fromJsonl(out, { partialLastLine: "skip" }).pipeTo(
    plotSvg(svg, { keys: ["train_loss", "val_loss", "val_loss_ema"] }),
  );
  if (interrupt.signal.aborted) {
    console.log(`interrupted after epoch ${last}; log closed: ${out}`);
    process.exit(130);
  }
  const why = last < epochs ? "early stop" : "epoch cap";
  console.log(
    `done: ${last} epochs (${why}), best val_loss ${best.val_loss.toFixed(4)} at epoch ${best.step}, ` +
      `${seconds.toFixed(1)} s on ${backend}; log: ${out}, chart: ${svg}`,
  );
  data.dispose();
  model.dispose();
  optimizer.dispose();
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  console.error(`housing: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
