import { test } from "node:test";
import assert from "node:assert/strict";
import { runScript } from "./spawn.ts";

test("the stream core (core.ts) loads without tfjs, in a fresh process", async () => {
  const core = await runScript("tests/fixtures/import_probe.ts", ["core.ts"]);
  assert.equal(core.code, 0, core.stderr);
  assert.deepEqual(JSON.parse(core.stdout), { loaded: false, sync: "not tried" });
  const full = await runScript("tests/fixtures/import_probe.ts", ["mod.ts"]);
  assert.equal(full.code, 0, full.stderr);
  assert.equal(JSON.parse(full.stdout).loaded, true, "the probe sees tfjs when it is loaded");
});

test("importing fitstream changes nothing in tfjs: a plain tfjs script works synchronously after it", async () => {
  const r = await runScript("tests/fixtures/import_probe.ts", ["mod.ts", "use-tfjs"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { loaded: true, sync: "6" });
});
