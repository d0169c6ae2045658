// What the compiler says to a misspelt event key. tests/types_check.ts shows
// that such a key is an error; this shows the error is one clear line on the
// key itself, listing the keys it could be, rather than a dozen lines about a
// stage's writable side that end in pipe's "implementation signatures of
// overloads are not externally visible". It runs `deno check` (under either
// runtime) on a file written for the purpose.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { root } from "./spawn.ts";

const deno = "Deno" in globalThis ? process.execPath : join(root, "node_modules", ".bin", "deno");

const SOURCE = `import { earlyStop, ema, pipe, take } from "../core.ts";
declare const source: ReadableStream<{ step: number; train_loss: number; val_acc: number; note: string }>;
pipe(source, ema("val_ac", { halfLife: 5 }), take(3));
pipe(source, take(3), earlyStop({ key: "val_ac", patience: 2 }));
`;

test("a misspelt key passed to ema or earlyStop is one line naming the key and the keys it could be", async () => {
  const dir = await mkdtemp(join(root, ".doctest-")); // inside the repo: ../core.ts resolves; deno.json excludes it
  try {
    await writeFile(join(dir, "typo.ts"), SOURCE);
    const result = spawnSync(deno, ["check", "--no-lock", join(dir, "typo.ts")], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
    });
    const out = result.stdout + result.stderr;
    assert.notEqual(result.status, 0, out);
    const errors = out.split("\n").filter((line) => /\[ERROR\]/.test(line));
    assert.equal(errors.length, 2, out);
    for (const error of errors) {
      assert.match(error, /'"val_ac"' is not assignable to (parameter of )?type '("[a-z_]+"( \| )?){3}'/, out);
      for (const key of ["step", "train_loss", "val_acc"]) assert.ok(error.includes(`"${key}"`), error);
      assert.ok(!error.includes('"note"'), "a string key is no candidate");
    }
    assert.doesNotMatch(out, /overload|writable/i);
  } finally {
    await rm(dir, { recursive: true });
  }
});
