import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../mod.ts";
import { drawUniform } from "../src/engine/layers/uniform_draws.ts";

await useBackend();

/** Runs `fn` with `Math.random` answering `values` in turn; returns how many it drew. */
function withRandom(values: number[], fn: () => void): number {
  const original = Math.random;
  let drawn = 0;
  Math.random = () => values[drawn++ % values.length];
  try {
    fn();
  } finally {
    Math.random = original;
  }
  return drawn;
}

test("drawUniform gives the bits tf.randomUniform draws, for number and text seeds and any count", () => {
  for (const seed of [1, 42, 0.5, -3, 1e21, "abc", "", "0.123"]) {
    for (const count of [1, 7, 1000, 65_537]) {
      const expected = tf.tidy(() => tf.randomUniform([count], 0, 1, "float32", seed).dataSync() as Float32Array);
      const got = new Float32Array(count);
      drawUniform(got, count, seed);
      assert.deepEqual(got, expected, `seed ${String(seed)}, ${count} numbers`);
    }
  }
});

test("without a seed drawUniform draws Math.random once, as tf.randomUniform does, and then the same numbers", () => {
  const seeds = [0.8124, 0.0001, 0.99999999];
  let expected: Float32Array = new Float32Array(0);
  const tfjsDraws = withRandom(seeds, () => {
    expected = tf.tidy(() => tf.randomUniform([4096], 0, 1, "float32").dataSync() as Float32Array);
  });
  const got = new Float32Array(4096);
  const ourDraws = withRandom(seeds, () => drawUniform(got, 4096, undefined));
  assert.equal(tfjsDraws, 1);
  assert.equal(ourDraws, 1);
  assert.deepEqual(got, expected);
});
