// The small examples for the tutorial's other steps run, on this runtime, and do what they say.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runScript as run } from "./spawn.ts";

test("examples/lr_warmup.ts: the rate climbs linearly from 10% to 100% over 10 epochs, then holds", async () => {
  const { code, stdout, stderr } = await run("examples/lr_warmup.ts", ["--epochs", "12"]);
  assert.equal(code, 0, stderr);
  const lrs = [...stdout.matchAll(/lr=(\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(lrs, [0.001, 0.0019, 0.0028, 0.0037, 0.0046, 0.0055, 0.0064, 0.0073, 0.0082, 0.0091, 0.01, 0.01]);
});

test("examples/custom_metric.ts: val_mae next to val_loss, smoothed", async () => {
  const { code, stdout, stderr } = await run("examples/custom_metric.ts", ["--epochs", "6"]);
  assert.equal(code, 0, stderr);
  const lines = stdout.split("\n").filter((l) => l.startsWith("step="));
  assert.equal(lines.length, 2);
  assert.match(lines[1], /^step=0006 val_loss=\d\.\d{4} val_mae=\d\.\d{4} val_mae_ema=\d\.\d{4}$/);
  assert.match(stdout, /after 6 epochs the typical error is \$\d{2},\d{3}/);
});

test("examples/network_log.ts: every event reaches the HTTP collector", async () => {
  const { code, stdout, stderr } = await run("examples/network_log.ts", ["--epochs", "3"]);
  assert.equal(code, 0, stderr);
  const got = [...stdout.matchAll(/collector got step (\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(got, [1, 2, 3]);
  assert.match(stdout, /server answered: 3 events/);
});

test("examples/big_csv.ts: writes a CSV, streams it through csvDataset each epoch, and the loss falls", async () => {
  const { code, stdout, stderr } = await run("examples/big_csv.ts", ["--rows", "20000", "--epochs", "3"]);
  assert.equal(code, 0, stderr);
  const losses = [...stdout.matchAll(/epoch (\d): train_loss (\d+\.\d+)/g)].map((m) => Number(m[2]));
  assert.equal(losses.length, 3);
  assert.ok(losses[2] < losses[0] / 4, `loss ${losses.join(" → ")}`);
});

test("examples/sweep.ts: configurations train in parallel workers and every epoch reaches the collector", async () => {
  const { mkdtempSync, readFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "fitstream-sweep-"));
  try {
    const { code, stdout, stderr } = await run("examples/sweep.ts", ["--configs", "2", "--epochs", "3", "--dir", dir]);
    assert.equal(code, 0, stderr);
    for (const name of ["lr-0.0010", "lr-0.0030"]) {
      assert.match(stdout, new RegExp(`${name}: 3 epochs, best val_loss \\d`));
      const steps = readFileSync(join(dir, `${name}.jsonl`), "utf8").trim().split("\n").map((l) => JSON.parse(l).step);
      assert.deepEqual(steps, [1, 2, 3]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("examples/classify.ts: a softmax classifier on the host engine stops early on val_acc, above 0.75", async () => {
  const { code, stdout, stderr } = await run("examples/classify.ts", ["--epochs", "60"]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^engine: host$/m);
  const lines = stdout.split("\n").filter((l) => l.startsWith("step="));
  lines.forEach((line, k) => {
    const step = String(5 * k + 1).padStart(4, "0");
    assert.match(line, new RegExp(`^step=${step} train_loss=\\d\\.\\d{4} val_acc=0\\.\\d{4} val_f1=0\\.\\d{4}$`));
  });
  const done = stdout.match(/done: (\d+) epochs \((early stop|epoch cap)\), best val_acc (0\.\d{4}) at epoch \d+/);
  assert.ok(done, stdout);
  assert.equal(lines.length, Math.ceil(Number(done[1]) / 5));
  assert.ok(Number(done[3]) > 0.75, `best val_acc ${done[3]}`);
  const confusion = JSON.parse(stdout.match(/confusion at the last epoch \(rows: true class\): (.+)$/m)![1]);
  assert.deepEqual(confusion.map((row: number[]) => row.reduce((a, b) => a + b, 0)), [200, 200, 200]);
});
