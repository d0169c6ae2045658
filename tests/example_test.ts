// The housing example, run as a user runs it: a child process of this runtime.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root, runScript } from "./spawn.ts";

const runExample = (args: string[], env: Record<string, string> = {}) => runScript("examples/housing.ts", args, env);

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "fitstream-example-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true });
  }
}

test("example: trains to early stop or 500 epochs, prints every 10 epochs, logs JSONL, best val_loss < 0.34", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "runs", "housing.jsonl");
    const { code, stdout, stderr } = await runExample(["--out", out]);
    assert.equal(code, 0, stderr);
    const rows = (await readFile(out, "utf8")).trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.ok(rows.length >= 20 && rows.length <= 500, `${rows.length} epochs`);
    rows.forEach((r, i) => {
      assert.deepEqual(Object.keys(r).sort(), [
        "param_l2",
        "step",
        "train_loss",
        "train_time_sec",
        "val_loss",
        "val_loss_ema",
      ]);
      assert.equal(r.step, i + 1);
    });
    const best = Math.min(...rows.map((r) => r.val_loss));
    assert.ok(best < 0.34, `best val_loss ${best}`);
    const lines = stdout.split("\n").filter((l) => l.startsWith("step="));
    assert.equal(lines.length, Math.ceil(rows.length / 10));
    lines.forEach((line, k) => {
      const step = String(10 * k + 1).padStart(4, "0");
      assert.match(
        line,
        new RegExp(
          `^step=${step} train_loss=\\d+\\.\\d{4} val_loss=\\d+\\.\\d{4} val_loss_ema=\\d+\\.\\d{4} param_l2=\\d+\\.\\d{4}$`,
        ),
      );
    });
    assert.match(
      stdout,
      new RegExp(
        `done: ${rows.length} epochs \\((early stop|epoch cap)\\), best val_loss ${best.toFixed(4)} at epoch \\d+`,
      ),
    );
  });
});

test("example: --data remote reads the tutorial's URLs (served here on 127.0.0.1)", async () => {
  const files: Record<string, string> = {
    "/train.csv": await readFile(join(root, "examples/data/california_housing_train.csv"), "utf8"),
    "/test.csv": await readFile(join(root, "examples/data/california_housing_test.csv"), "utf8"),
  };
  const served: string[] = [];
  const server = createServer((req, res) => {
    served.push(req.url ?? "");
    const body = files[req.url ?? ""];
    res.statusCode = body ? 200 : 404;
    res.end(body ?? "no");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    await withTempDir(async (dir) => {
      const out = join(dir, "remote.jsonl");
      const env = { HOUSING_TRAIN_URL: `${base}/train.csv`, HOUSING_TEST_URL: `${base}/test.csv` };
      const { code, stdout, stderr } = await runExample(["--data", "remote", "--epochs", "3", "--out", out], env);
      assert.equal(code, 0, stderr);
      assert.deepEqual(served.sort(), ["/test.csv", "/train.csv"]);
      assert.match(stdout, /done: 3 epochs \(epoch cap\)/);
      assert.equal((await readFile(out, "utf8")).trimEnd().split("\n").length, 3);
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test("example: an unreachable URL is one clear error line and exit code 1", async () => {
  // A port that was just free: nothing listens there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  const env = {
    HOUSING_TRAIN_URL: `http://127.0.0.1:${port}/train.csv`,
    HOUSING_TEST_URL: `http://127.0.0.1:${port}/test.csv`,
  };
  const { code, stdout, stderr } = await runExample(["--data", "remote", "--epochs", "1"], env);
  assert.equal(code, 1);
  assert.equal(stdout, "");
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.match(
    lines[0],
    new RegExp(`^housing: loadCsv: cannot fetch http://127\\.0\\.0\\.1:${port}/(train|test)\\.csv: `),
  );
});

test("example: --help, and a bad flag is one clear line", async () => {
  const help = await runExample(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--data <dir\|url\|remote>/);
  const bad = await runExample(["--epochs", "zero"]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.trimEnd(), 'housing: --epochs must be an integer >= 1, got "zero"');
  const unknown = await runExample(["--nope"]);
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr.trimEnd().split("\n").length, 1);
});
