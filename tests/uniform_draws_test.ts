import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../mod.ts";
import { drawUniform } from "../src/engine/layers/uniform_draws.ts";
import { keptFrom } from "../src/engine/layers/dropout.ts";

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

test("a unit is kept exactly where tfjs's floor(float32(u + keep)) is 1, for draws on either side of the edge", () => {
  const bits = new Float32Array(1), word = new Uint32Array(bits.buffer);
  // The float32 neighbours of x in [0, 1], `steps` either way.
  const around = (x: number, steps: number) => {
    bits[0] = x;
    const base = word[0], out: number[] = [];
    for (let d = -steps; d <= steps; d++) {
      word[0] = base + d;
      if (bits[0] >= 0 && bits[0] <= 1) out.push(bits[0]);
    }
    return out;
  };
  for (const rate of [0.2, 0.5, 0.1, 0.9, 1e-7, 2e-7, 0.999999, 1 / 3, 0.75, 5e-8, 2 ** -26, 1e-30]) {
    const keep = Math.fround(1 - rate), kept = keptFrom(keep);
    const tfjs = (u: number) => Math.floor(Math.fround(u + keep));
    const draws = [0, 1, 0.99999994, Math.fround(1 - keep), ...around(1 - keep, 40), ...around(1, 40)];
    if (kept === undefined) {
      // Only where u + keep may round to 2 (tfjs doubles the unit): the kind then uses tfjs's formula itself.
      assert.ok(keep > 1 - 2 ** -23, `rate ${rate}`);
      assert.ok(draws.some((u) => tfjs(u) === 2), `rate ${rate}: a draw that tfjs doubles`);
      continue;
    }
    for (const u of [...draws, ...around(kept, 40)]) {
      assert.equal(u >= kept, tfjs(u) === 1, `rate ${rate}, u ${u}`);
      assert.notEqual(tfjs(u), 2, `rate ${rate}, u ${u}`);
    }
  }
});
