// Long runs that die or are stopped lose nothing: the housing example under SIGKILL and SIGINT.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkpointModel, loadCheckpoint } from "../mod.ts";
import { runScript, startScript } from "./spawn.ts";
import { waitFor, within } from "./helpers.ts";
import "./tf_helpers.ts";

/** Waits until the log at `path` has `n` lines (a bound of minutes: a busy machine starts the example slowly). */
async function waitForLines(path: string, n: number): Promise<void> {
  await waitFor(
    `${path} to reach ${n} lines`,
    () => existsSync(path) && readFileSync(path, "utf8").split("\n").length - 1 >= n,
    { every: 50 },
  );
}

/** The steps of the complete lines of a JSONL log; every complete line must parse. */
function steps(path: string): number[] {
  const text = readFileSync(path, "utf8");
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  return complete.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).step);
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("kill -9 mid-run: every complete line parses, steps have no gap, the checkpoint loads, resume goes on at k'+1", async () => {
  const dir = await mkdtemp(join(tmpdir(), "fitstream-kill-"));
  try {
    const log = join(dir, "run.jsonl"), ckpt = join(dir, "ckpt");
    const child = startScript("examples/housing.ts", ["--out", log, "--checkpoint", ckpt]);
    await waitForLines(log, 5);
    child.kill("SIGKILL");
    await child.done;
    const written = steps(log);
    assert.ok(written.length >= 5);
    assert.deepEqual(written, range(1, written.length));
    const saved = await loadCheckpoint(ckpt);
    tf.dispose([...saved.modelWeights, ...saved.optimizerWeights].map((w) => w.tensor));
    assert.ok(
      saved.step >= written.length - 1 && saved.step <= written.length,
      `checkpoint ${saved.step}, log ${written.length}`,
    );
    const model = await tf.loadLayersModel(checkpointModel(ckpt));
    assert.equal(model.outputs[0].shape[1], 1);
    model.dispose();

    const resumed = await runScript("examples/housing.ts", [
      "--out",
      log,
      "--checkpoint",
      ckpt,
      "--resume",
      "--epochs",
      String(saved.step + 3),
    ]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, new RegExp(`resuming after epoch ${saved.step} from `));
    assert.deepEqual(steps(log), range(1, saved.step + 3));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("SIGINT: the epoch in flight finishes, the log ends with a complete line and is closed, exit code 130", async () => {
  const dir = await mkdtemp(join(tmpdir(), "fitstream-int-"));
  try {
    const log = join(dir, "run.jsonl");
    const child = startScript("examples/housing.ts", ["--out", log]);
    await waitForLines(log, 3);
    child.kill("SIGINT");
    const { code, stdout } = await child.done;
    assert.equal(code, 130);
    const text = readFileSync(log, "utf8");
    assert.ok(text.endsWith("\n"), "the log ends with a complete line");
    const written = steps(log);
    assert.deepEqual(written, range(1, written.length));
    assert.match(stdout, new RegExp(`interrupted after epoch ${written.length}; log closed: `));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("SIGTERM and SIGHUP stop the run as SIGINT does: complete log, summary, chart, exit code 130", async () => {
  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    const dir = await mkdtemp(join(tmpdir(), "fitstream-term-"));
    try {
      const log = join(dir, "run.jsonl");
      const child = startScript("examples/housing.ts", ["--out", log]);
      await waitForLines(log, 2);
      child.kill(signal);
      const { code, stdout } = await child.done;
      assert.equal(code, 130, `${signal}: exit code`);
      const written = steps(log);
      assert.ok(readFileSync(log, "utf8").endsWith("\n"), `${signal}: the log ends with a complete line`);
      assert.match(stdout, new RegExp(`interrupted after epoch ${written.length}; log closed: `));
      assert.ok(existsSync(join(dir, "run.svg")), `${signal}: the chart is written`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
});

test("Ctrl-C while the data URL never answers ends the example at once with exit code 130", async () => {
  const { createServer } = await import("node:net");
  const sockets: import("node:net").Socket[] = [];
  const server = createServer((socket) => void sockets.push(socket)); // accepts, never answers
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const dir = await mkdtemp(join(tmpdir(), "fitstream-hang-"));
  try {
    const child = startScript("examples/housing.ts", [
      "--data",
      `http://127.0.0.1:${port}/`,
      "--out",
      join(dir, "run.jsonl"),
    ]);
    await waitFor("both CSV requests", () => sockets.length >= 2).catch((error) => {
      child.kill("SIGKILL");
      throw error;
    });
    child.kill("SIGINT");
    const { code, stdout } = await within(60_000, "the example after Ctrl-C", child.done).catch((error) => {
      child.kill("SIGKILL");
      throw error;
    });
    assert.equal(code, 130);
    assert.match(stdout, /interrupted while loading the data/);
  } finally {
    for (const socket of sockets) socket.destroy();
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
