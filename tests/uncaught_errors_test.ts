// A user's uncaught error stays the user's: tfjs-backend-wasm's module, once loaded, adds process-wide
// listeners that rethrow, and Bun then printed their frame instead of the script's stack and exited with 7.
// useBackend takes them back (src/source/error_listeners.ts); a script's own listener stays.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runScript } from "./spawn.ts";

const SCRIPT = "tests/fixtures/uncaught.ts";

for (const backend of ["wasm", "cpu"]) {
  test(`on ${backend}, an uncaught error and an unhandled rejection keep their message and stack, status 1`, async () => {
    const [thrown, rejected] = await Promise.all([
      runScript(SCRIPT, [backend, "throw"]),
      runScript(SCRIPT, [backend, "reject"]),
    ]);
    for (
      const [result, message] of [[thrown, "thrown in the user's script"], [
        rejected,
        "rejected in the user's script",
      ]] as const
    ) {
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, new RegExp(message));
      assert.match(result.stderr, /uncaught\.ts/, "the stack names the script");
      assert.doesNotMatch(result.stderr, /tf-backend-wasm/);
    }
    assert.match(thrown.stderr, /usersCode/, "the frame of the function that threw");
  });
}

test("a script's own uncaughtException listener, added before useBackend, still handles its errors", async () => {
  const result = await runScript(SCRIPT, ["wasm", "own-handler"]);
  assert.equal(result.stdout, "the script's handler: thrown in the user's script\n");
  assert.equal(result.code, 3, result.stderr);
});
