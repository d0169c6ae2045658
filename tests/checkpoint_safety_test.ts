// Checkpoints never lose or mix a user's runs: damage is refused with the folder named, another run's
// folder is refused, steps sort by number, orphans of killed saves are removed.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkpoint, collect, epochStream, jsonlSink, loadCheckpoint, pipe, plotSvg, take } from "../mod.ts";
import { withTempDir } from "./helpers.ts";
import { runScript } from "./spawn.ts";
import { lineData, mlp } from "./tf_helpers.ts";

const mse = tf.losses.meanSquaredError;

/** Trains `epochs` epochs with checkpoints in `dir` (every epoch, keep 5); optionally resuming from `resumeFrom`. */
async function train(dir: string, epochs: number, resumeFrom?: string, hidden = 4): Promise<number[]> {
  const { x, y } = lineData(24, 0.2);
  const model = mlp(1, hidden, 3);
  const optimizer = tf.train.adam(0.05);
  try {
    const rows = await collect(pipe(
      epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 8, seed: 4, resumeFrom }),
      checkpoint({ dir, keep: 5 }),
      take(epochs),
    ));
    return rows.map((r) => r.step);
  } finally {
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
  }
}

/** What `epochStream({ resumeFrom })` throws at construction, or `undefined`. */
function resumeError(from: string, hidden = 4): Error | undefined {
  const { x, y } = lineData(8);
  const model = mlp(1, hidden, 3);
  const optimizer = tf.train.adam(0.05);
  try {
    epochStream({ data: [x, y], model, optimizer, loss: mse, resumeFrom: from });
    return undefined;
  } catch (error) {
    return error as Error;
  } finally {
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
  }
}

function flipByte(path: string, at: number): void {
  const bytes = readFileSync(path);
  bytes[at] ^= 0x40;
  writeFileSync(path, bytes);
}

test("a checkpoint whose weights were altered in place (same size) is refused when the stream is built, naming the file", async () => {
  await withTempDir(async (dir) => {
    await train(dir, 2);
    const file = join(dir, "step-000002", "model.weights.bin");
    flipByte(file, 5);
    const error = resumeError(dir);
    assert.ok(error, "resuming from a damaged checkpoint must fail");
    assert.match(error.message, /epochStream: resumeFrom: .*model\.weights\.bin" does not match its checksum/);
    await assert.rejects(loadCheckpoint(dir), (e: Error) => e.message.includes(file));
    assert.equal(resumeError(join(dir, "step-000001")), undefined, "the older checkpoint still resumes");
  });
});

test("a truncated weights file, a tampered step, a file as resumeFrom and another model's checkpoint fail at construction", async () => {
  await withTempDir(async (dir) => {
    await train(dir, 3);
    truncateSync(join(dir, "step-000003", "optimizer.weights.bin"), 10);
    assert.match(resumeError(dir)?.message ?? "", /optimizer\.weights\.bin" holds 10 bytes, .*truncated or damaged/);

    const manifestPath = join(dir, "step-000002", "checkpoint.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, step: -5 }));
    assert.match(resumeError(join(dir, "step-000002"))?.message ?? "", /step must be an integer >= 0, got -5/);

    const file = join(dir, "step-000001", "checkpoint.json");
    assert.match(resumeError(file)?.message ?? "", /is a file: name a checkpoint folder/);

    const other = resumeError(join(dir, "step-000001"), 6);
    assert.match(other?.message ?? "", /holds weight 0 of shape \[1, 4\], the model's is \[1, 6\]/);
  });
});

test("a folder that holds another run's checkpoints is refused at the first event and left as it was", async () => {
  await withTempDir(async (dir) => {
    await train(dir, 3);
    const before = readdirSync(dir).sort();
    await assert.rejects(train(dir, 2), /checkpoint: ".*" holds checkpoints of another run \(step-000001, step-000002/);
    assert.deepEqual(readdirSync(dir).sort(), before, "nothing was saved or rotated away");
    // Resuming the run that owns the folder goes on in it.
    assert.deepEqual(await train(dir, 2, dir), [4, 5]);
    assert.deepEqual(readdirSync(dir).sort(), [
      "step-000001",
      "step-000002",
      "step-000003",
      "step-000004",
      "step-000005",
    ]);
    // Resuming from an older checkpoint while newer ones of the run remain would mix two continuations.
    await assert.rejects(
      train(dir, 1, join(dir, "step-000002")),
      /holds step-000003, step-000004, step-000005 of this run, not older than step 3/,
    );
  });
});

test("step folders sort by number: step-1000000 is newer than step-999999", async () => {
  await withTempDir(async (dir) => {
    await train(dir, 1);
    for (const step of [999_999, 1_000_000]) {
      const folder = join(dir, `step-${String(step).padStart(6, "0")}`);
      cpSync(join(dir, "step-000001"), folder, { recursive: true });
      const manifest = JSON.parse(readFileSync(join(folder, "checkpoint.json"), "utf8"));
      writeFileSync(join(folder, "checkpoint.json"), JSON.stringify({ ...manifest, step }));
    }
    const latest = await loadCheckpoint(dir);
    tf.dispose([...latest.modelWeights, ...latest.optimizerWeights].map((w) => w.tensor));
    assert.equal(latest.step, 1_000_000);
    assert.equal(latest.path, join(dir, "step-1000000"));
  });
});

test("folders left by a save that was killed are removed at the next save", async () => {
  await withTempDir(async (dir) => {
    mkdirSync(dir, { recursive: true });
    for (const orphan of [".tmp-1700000000000-abc123", ".old-1700000000001-def456"]) {
      mkdirSync(join(dir, orphan));
      writeFileSync(join(dir, orphan, "model.weights.bin"), new Uint8Array(1024));
    }
    await train(dir, 1);
    assert.deepEqual(readdirSync(dir).sort(), ["step-000001"]);
  });
});

test("a folder that cannot be written (access(W_OK) says yes, creating a file fails) is refused at construction", () => {
  // /sys refuses new files even to root, while access(W_OK) passes for root: what a read-only mount did on Deno.
  if (!existsSync("/sys")) return;
  assert.throws(() => checkpoint({ dir: "/sys" }), /checkpoint: cannot write checkpoints to "\/sys"/);
  assert.throws(() => jsonlSink("/sys/run.jsonl"), /jsonlSink: cannot write "\/sys\/run\.jsonl"/);
  assert.throws(() => plotSvg("/sys/run.svg"), /plotSvg: cannot write "\/sys\/run\.svg"/);
});

const epochsOf = (log: string) => readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l).step);

test("housing --resume with a damaged newest checkpoint exits 1 with the reason; log and older checkpoints stay", async () => {
  await withTempDir(async (dir) => {
    const log = join(dir, "run.jsonl"), ckpt = join(dir, "ckpt");
    const first = await runScript("examples/housing.ts", ["--out", log, "--checkpoint", ckpt, "--epochs", "4"]);
    assert.equal(first.code, 0, first.stderr);
    const logBefore = readFileSync(log, "utf8");
    const folders = readdirSync(ckpt).sort();
    flipByte(join(ckpt, "step-000004", "model.weights.bin"), 100);
    const resumed = await runScript("examples/housing.ts", [
      "--out",
      log,
      "--checkpoint",
      ckpt,
      "--resume",
      "--epochs",
      "8",
    ]);
    assert.equal(resumed.code, 1, "a damaged checkpoint is an error, not a fresh start");
    assert.match(resumed.stderr, /step-000004.*model\.weights\.bin" does not match its checksum/);
    assert.equal(readFileSync(log, "utf8"), logBefore, "the log is untouched");
    assert.deepEqual(readdirSync(ckpt).sort(), folders, "no checkpoint was rotated away");
    assert.deepEqual(epochsOf(log), [1, 2, 3, 4]);

    // Without --resume, a folder of an earlier run is refused before the log is opened.
    const again = await runScript("examples/housing.ts", ["--out", log, "--checkpoint", ckpt, "--epochs", "2"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /holds checkpoints of an earlier run: add --resume/);
    assert.equal(readFileSync(log, "utf8"), logBefore);
  });
});
