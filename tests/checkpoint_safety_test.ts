// Checkpoints never lose or mix a user's runs: damage is refused with the folder named, another run's
// folder is refused, steps sort by number, orphans of killed saves are removed.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { checkpoint, collect, epochStream, jsonlSink, loadCheckpoint, pipe, plotSvg, take } from "../mod.ts";
import { sealManifest } from "../src/checkpoint/manifest.ts";
import { checkpointDisk } from "../src/checkpoint/store.ts";
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
      writeFileSync(join(folder, "checkpoint.json"), JSON.stringify(sealManifest({ ...manifest, step })));
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

/** Rewrites `folder`'s checkpoint.json through `edit` (the text as a user's editor would change it). */
function editManifest(folder: string, edit: (text: string) => string): void {
  const path = join(folder, "checkpoint.json");
  const before = readFileSync(path, "utf8");
  const after = edit(before);
  assert.notEqual(after, before, "the edit changed the file");
  writeFileSync(path, after);
}

test("an edited step or shuffle state in a checkpoint's metadata is refused like damaged weights, naming checkpoint.json", async () => {
  await withTempDir(async (dir) => {
    await train(dir, 6);
    const newest = join(dir, "step-000006");
    const original = readFileSync(join(newest, "checkpoint.json"), "utf8");
    const refused =
      /resumeFrom: ".*step-000006\/checkpoint\.json" does not match its checksum: the checkpoint's metadata/;
    for (
      const edit of [
        (t: string) => t.replace('"step":6', '"step":7'), // resumed "after epoch 7": the log skipped step 7
        (t: string) => t.replace('"step":6', '"step":4'), // cut the log back to 4 lines, then failed
        (t: string) => t.replace(/"rng_state":(\d+)/, (_, n) => `"rng_state":${(Number(n) + 1) % 2 ** 32}`),
        (t: string) => t.replace('"relu"', '"tanh"'), // another model's topology, same weight shapes
      ]
    ) {
      editManifest(newest, edit);
      assert.match(resumeError(dir)?.message ?? "resumed", refused);
      await assert.rejects(loadCheckpoint(dir), /step-000006\/checkpoint\.json" does not match its checksum/);
      writeFileSync(join(newest, "checkpoint.json"), original);
    }
    // The checksum is over the content, not the bytes: a re-indented file still loads.
    writeFileSync(join(newest, "checkpoint.json"), JSON.stringify(JSON.parse(original), null, 2));
    assert.equal(resumeError(dir), undefined);
  });
});

test("a checkpoint of format 2 (no metadata checksum) still resumes, unless its step disagrees with its folder; an unknown format is refused", async () => {
  await withTempDir(async (dir) => {
    await train(dir, 3);
    const folder = join(dir, "step-000003");
    const manifest = JSON.parse(readFileSync(join(folder, "checkpoint.json"), "utf8"));
    const { manifest_sha256: _, ...format2 } = { ...manifest, format: "fitstream-checkpoint/2" };
    writeFileSync(join(folder, "checkpoint.json"), JSON.stringify(format2));
    assert.equal(resumeError(dir), undefined, "format 2 still reads");
    assert.deepEqual(await train(dir, 1, dir), [4], "and resumes");
    writeFileSync(join(folder, "checkpoint.json"), JSON.stringify({ ...format2, step: 2 }));
    assert.match(
      resumeError(folder)?.message ?? "resumed",
      /"[^"]*step-000003" is not a usable checkpoint: its folder is named for step 3 but checkpoint\.json says step 2/,
    );
    writeFileSync(join(folder, "checkpoint.json"), JSON.stringify({ ...manifest, format: "fitstream-checkpoint/9" }));
    assert.match(
      resumeError(folder)?.message ?? "resumed",
      /unknown format "fitstream-checkpoint\/9" \(this version reads/,
    );
  });
});

/** The run identities recorded in `dir`'s step folders, by folder. */
function runIdsOf(dir: string): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const name of readdirSync(dir).filter((n) => n.startsWith("step-"))) {
    ids[name] = JSON.parse(readFileSync(join(dir, name, "checkpoint.json"), "utf8")).run_id;
  }
  return ids;
}

/** A stream of `train`'s run that the test reads by hand, checkpointing into `dir`. */
function handRun(dir: string, seed: number) {
  const { x, y } = lineData(24, 0.2);
  const model = mlp(1, 4, seed);
  const optimizer = tf.train.adam(0.05);
  const stream = pipe(
    epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 8, seed }),
    checkpoint({ dir, keep: 5 }),
    take(3),
  );
  const dispose = () => {
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
  };
  return { reader: stream.getReader(), dispose };
}

test("two runs started at once into one empty folder: one saves, the other is refused naming the folder; nothing is overwritten or left behind", async () => {
  await withTempDir(async (dir) => {
    const tensors = tf.memory().numTensors;
    // At once, as two streams of one process: before the claim, one died with a raw ENOENT or ENOTEMPTY.
    const outcomes = await Promise.allSettled([train(dir, 5), train(dir, 5, undefined, 4)]);
    const failed = outcomes.filter((o) => o.status === "rejected").map((o) => String(o.reason));
    assert.equal(failed.length, 1, `exactly one run saves: ${failed.join("; ")}`);
    assert.match(
      failed[0],
      new RegExp(`checkpoint: "${dir}" (is in use by another run|holds checkpoints of another run)`),
    );
    const ids = runIdsOf(dir);
    assert.deepEqual(Object.keys(ids).sort(), [
      "step-000001",
      "step-000002",
      "step-000003",
      "step-000004",
      "step-000005",
    ]);
    assert.equal(new Set(Object.values(ids)).size, 1, "every checkpoint is the same run's");
    assert.deepEqual(readdirSync(dir).filter((n) => !n.startsWith("step-")), [], "no run.lock or .tmp-* left");
    assert.equal(tf.memory().numTensors, tensors);
  });
});

test("while a run holds a folder, a second stream of the same process is refused at its first event, naming the run; once it ends the folder is free", async () => {
  await withTempDir(async (dir) => {
    const tensors = tf.memory().numTensors;
    const first = handRun(dir, 1), second = handRun(dir, 2);
    try {
      assert.equal((await first.reader.read()).value?.step, 1);
      assert.ok(existsSync(join(dir, "run.lock")), "the first run claimed the folder");
      await assert.rejects(
        second.reader.read(),
        new RegExp(`checkpoint: "${dir}" is in use by another run \\(run [0-9a-f-]+, another stream of this process`),
      );
      for (let r = await first.reader.read(); !r.done; r = await first.reader.read());
      assert.deepEqual(readdirSync(dir).sort(), ["step-000001", "step-000002", "step-000003"], "the lock is removed");
      assert.equal(new Set(Object.values(runIdsOf(dir))).size, 1);
    } finally {
      first.dispose();
      second.dispose();
    }
    assert.deepEqual(await train(dir, 1, dir), [4], "the run resumes in its folder once no one holds it");
    assert.equal(tf.memory().numTensors, tensors);
  });
});

test("a lock held by a live process or another machine is respected; a dead process's lock, or one older than the machine's start, is taken over and its temporary folders removed", async () => {
  const { hostname } = await import("node:os");
  const { spawnSync } = await import("node:child_process");
  await withTempDir(async (dir) => {
    const tensors = tf.memory().numTensors;
    const lock = (pid: number, host = hostname()) =>
      writeFileSync(
        join(dir, "run.lock"),
        JSON.stringify({ run_id: "r-other", token: "t", pid, host, since: "2026-01-01T00:00:00.000Z" }),
      );
    const orphan = join(dir, ".tmp-1700000000000-abc123");
    mkdirSync(orphan);
    lock(1); // init: alive for as long as this machine runs
    await assert.rejects(
      train(dir, 1),
      new RegExp(`"${dir}" is in use by another run \\(run r-other, process 1 on .*delete "${dir}/run\\.lock"`),
    );
    lock(1, "another-machine.example");
    await assert.rejects(train(dir, 1), /process 1 on another-machine\.example/);
    assert.ok(existsSync(orphan), "a refused run removes nothing");
    const dead = spawnSync("true").pid!; // exited and reaped: its pid names no process
    lock(dead);
    assert.deepEqual(await train(dir, 2), [1, 2]);
    assert.deepEqual(readdirSync(dir).sort(), ["step-000001", "step-000002"], "stale lock and orphan removed");
    // An empty lock (what a power cut after its creation can leave) is respected while it may be being
    // written, and taken over once it provably predates this machine's start.
    rmSync(join(dir, "step-000001"), { recursive: true });
    rmSync(join(dir, "step-000002"), { recursive: true });
    writeFileSync(join(dir, "run.lock"), "");
    await assert.rejects(train(dir, 1), /is in use by another run \(its run\.lock is being written or unreadable\)/);
    utimesSync(join(dir, "run.lock"), 86_400, 86_400); // 2 January 1970
    assert.deepEqual(await train(dir, 1), [1]);
    assert.equal(tf.memory().numTensors, tensors);
  });
});

test("a save that fails (a full disk) names the checkpoint folder and keeps the code; its temporary folder and the lock are removed", async () => {
  await withTempDir(async (dir) => {
    const tensors = tf.memory().numTensors;
    const real = checkpointDisk.writeFile;
    checkpointDisk.writeFile = ((path: string, data: Uint8Array | string) => {
      if (String(path).endsWith("optimizer.weights.bin")) {
        return Promise.reject(Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }));
      }
      return real(path, data);
    }) as typeof real;
    try {
      await assert.rejects(train(dir, 2), (error: Error & { code?: string }) => {
        assert.match(
          error.message,
          new RegExp(
            `^checkpoint: cannot save "${dir}/step-000001" \\(writing ".*optimizer\\.weights\\.bin"\\): ENOSPC: no space`,
          ),
        );
        assert.equal(error.code, "ENOSPC");
        return true;
      });
    } finally {
      checkpointDisk.writeFile = real;
    }
    assert.deepEqual(readdirSync(dir), [], "no .tmp-* folder, no run.lock");
    assert.deepEqual(await train(dir, 1), [1], "the folder is free again");
    assert.equal(tf.memory().numTensors, tensors);
  });
});

test("a newest step folder without its checkpoint.json is refused by name, not skipped; resuming from the one before names it too, not 'another run'", async () => {
  await withTempDir(async (dir) => {
    const tensors = tf.memory().numTensors;
    await train(dir, 3);
    rmSync(join(dir, "step-000003", "checkpoint.json"));
    assert.match(
      resumeError(dir)?.message ?? "resumed",
      /resumeFrom: ".*step-000003" is incomplete: it has no checkpoint\.json\. .*move it out of/,
    );
    await assert.rejects(
      train(dir, 1, join(dir, "step-000002")),
      /checkpoint: ".*" holds step-000003 without a readable checkpoint\.json: .*move them out of the folder/,
    );
    assert.equal(tf.memory().numTensors, tensors);
  });
});

test("housing --resume refuses, with the reason and nothing changed, a log that lost lines the checkpoint has and a newest step folder without its metadata", async () => {
  await withTempDir(async (dir) => {
    const log = join(dir, "run.jsonl"), ckpt = join(dir, "ckpt");
    const resume = () =>
      runScript("examples/housing.ts", ["--out", log, "--checkpoint", ckpt, "--resume", "--epochs", "8"]);
    const first = await runScript("examples/housing.ts", ["--out", log, "--checkpoint", ckpt, "--epochs", "4"]);
    assert.equal(first.code, 0, first.stderr);
    const lines = readFileSync(log, "utf8").split("\n");
    const cut = lines.slice(0, 2).join("\n") + "\n"; // the last two lines lost (and the checkpoint at step 4)
    writeFileSync(log, cut);
    const folders = readdirSync(ckpt).sort();
    const gap = await resume();
    assert.equal(gap.code, 1, "a log behind the checkpoint is an error, not a gap");
    assert.match(
      gap.stderr,
      /--resume: the log ".*run\.jsonl" lacks step 3, but the checkpoint ".*step-000004" is at step 4/,
    );
    assert.equal(readFileSync(log, "utf8"), cut, "the log is untouched");
    assert.deepEqual(readdirSync(ckpt).sort(), folders, "the checkpoints are untouched");

    writeFileSync(log, lines.join("\n"));
    rmSync(join(ckpt, "step-000004", "checkpoint.json"));
    const incomplete = await resume();
    assert.equal(incomplete.code, 1);
    assert.match(incomplete.stderr, /".*step-000004" is incomplete: it has no checkpoint\.json/);
    assert.doesNotMatch(incomplete.stderr, /another run/);
    assert.deepEqual(epochsOf(log), [1, 2, 3, 4], "no epoch was trained");
  });
});
